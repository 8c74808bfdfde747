"""PolyNet (Zhang, Li, Loy and Lin, "PolyNet: A Pursuit of Structural Diversity in Very Deep
Networks", CVPR 2017, arXiv 1611.05725): the "very deep" PolyNet, 331x331 input.

An Inception-ResNet-v2 whose residual modules are replaced by *polynomial* compositions of
their Inception block F:

- a **2-way** module adds two blocks side by side: ``relu(x + s·(F(x) + G(x)))``;
- a **poly-3** module applies one block three times in a row, and every order joins the sum:
  ``relu(x + s·(F₁(x) + F₂(r(F₁(x))) + F₃(r(F₂(r(F₁(x)))))))`` with ``r`` a ReLU. The three
  orders **share their convolutions** (one ``Conv2D`` layer called three times); each order has
  its own BatchNorms and its own final 1x1 convolution + BN.

Topology (the reference port, ``Cadene/pretrained-models.pytorch``
``pretrainedmodels/models/polynet.py``; every convolution is conv → BN (eps 1e-5) → ReLU,
no bias, PyTorch padding):

==========  ==========================================================  ============
stage       modules                                                     map at 331
==========  ==========================================================  ============
stem        Inception-v4 stem (3 valid 3x3 convs, three pool/conv        39x39x384
            concatenations, a 7x1/1x7 pair)
A           10 2-way Inception-ResNet-A (384 channels)                   39x39x384
reduction A max pool ‖ 3x3/2 conv ‖ 1x1-3x3-3x3/2 convs                   19x19x1152
B           20: poly-3 and 2-way Inception-ResNet-B, alternating         19x19x1152
reduction B max pool ‖ three 1x1-3x3/2 conv paths                         9x9x2048
C           10: poly-3 and 2-way Inception-ResNet-C, alternating         9x9x2048
head        9x9 average pool → dropout 0.2 → fully connected
==========  ==========================================================  ============

**Residual scales** ``s`` decay linearly over the 40 modules, from 1.0 for the first module of
stage A to 0.7 for the last of stage C: module ``i`` (0-based) has ``1 - 0.3 · i / 39``,
rounded to six decimals as the port writes them (0.992308, 0.984615, ...).

**Head.** The port pools with ``AvgPool2d(9, stride=1)``, which at 331 pixels is the global
average of the 9x9 map. We use the global average, so that other input sizes build too (the
smallest is 75 pixels: the two reductions need a 7x7 stem output). At 331 the two are the same.

Weights: the port's ImageNet checkpoint (``polynet-f71d82a5.pth``, top-1 81.002 at 331 with
ImageNet mean/std; the paper's Caffe model gives 81.29 single-crop). It is served over plain
http only; see :data:`CADENE_WEIGHTS` for how it is verified.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_int, check_rate
from keras_lightnets.layers import conv_bn_act
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, WeightSource

__all__ = ["CADENE_WEIGHTS", "TORCH_KEY_MAP", "PolyNet", "module_scales", "poly_module", "two_way"]

BN_EPSILON = 1e-5  # PyTorch's
# The published layout: modules per stage; stage A has only 2-way modules, B and C alternate
# poly-3 and 2-way, starting with poly-3.
STAGE_MODULES = {"a": 10, "b": 20, "c": 10}
MODULE_COUNT = sum(STAGE_MODULES.values())  # 40
FIRST_SCALE, LAST_SCALE = 1.0, 0.7
POLY_ORDERS = 3
MIN_INPUT_SIZE = 75  # the two reductions need a 7x7 stem output

# Inception-ResNet blocks as data: each path is a list of (filters, kernel, padding) convs,
# then the concatenated paths go through a 1x1 convolution + BN (no ReLU) back to the width.
BLOCK_PATHS = {
    "a": ([(32, 1), (48, 3), (64, 3)], [(32, 1), (32, 3)], [(32, 1)]),
    "b": ([(128, 1), (160, (1, 7)), (192, (7, 1))], [(192, 1)]),
    "c": ([(192, 1), (224, (1, 3)), (256, (3, 1))], [(192, 1)]),
}
# The poly-3 modules' shared convolutions, named as in the port (``path0_1x7``, ...).
POLY_CONV_NAMES = {
    "b": (("path0_1x1", "path0_1x7", "path0_7x1"), "path1"),
    "c": (("path0_1x1", "path0_1x3", "path0_3x1"), "path1"),
}


def module_scales(count=MODULE_COUNT):
    """The residual scales of ``count`` modules: linear from 1.0 to 0.7, six decimals (the port's)."""
    if count == 1:
        return [FIRST_SCALE]
    return [round(FIRST_SCALE - (FIRST_SCALE - LAST_SCALE) * i / (count - 1), 6) for i in range(count)]


def _conv(x, filters, kernel, strides=1, *, padding="symmetric", activation="relu", name):
    return conv_bn_act(
        x, filters, kernel, strides, activation=activation, padding=padding, bn_epsilon=BN_EPSILON, name=name
    )


def _stem(x, tracker):
    x = _conv(x, 32, 3, 2, padding="valid", name="stem_conv1_0")
    x = _conv(x, 32, 3, padding="valid", name="stem_conv1_1")
    x = tracker.add(_conv(x, 64, 3, name="stem_conv1_2"), 2)
    pooled = layers.MaxPooling2D(3, 2, name="stem_conv1_pool_branch")(x)
    x = layers.Concatenate(name="stem_concat1")([pooled, _conv(x, 96, 3, 2, padding="valid", name="stem_conv1_branch")])
    tracker.add(x, 2)
    short = _conv(x, 64, 1, name="stem_conv2_short_0")
    short = _conv(short, 96, 3, padding="valid", name="stem_conv2_short_1")
    long = _conv(x, 64, 1, name="stem_conv2_long_0")
    long = _conv(long, 64, (7, 1), name="stem_conv2_long_1")
    long = _conv(long, 64, (1, 7), name="stem_conv2_long_2")
    long = _conv(long, 96, 3, padding="valid", name="stem_conv2_long_3")
    x = layers.Concatenate(name="stem_concat2")([short, long])
    pooled = layers.MaxPooling2D(3, 2, name="stem_conv2_pool_branch")(x)
    x = layers.Concatenate(name="stem_concat3")(
        [pooled, _conv(x, 192, 3, 2, padding="valid", name="stem_conv2_branch")]
    )
    return tracker.add(x, 2)


def _inception_block(x, kind, *, name):
    """One Inception-ResNet block (A, B or C) of a 2-way module, up to its 1x1 conv + BN."""
    paths = []
    for p, path in enumerate(BLOCK_PATHS[kind]):
        y = x
        for k, (filters, kernel) in enumerate(path):
            suffix = f"path{p}_{k}" if len(path) > 1 else f"path{p}"
            y = _conv(y, filters, kernel, name=f"{name}_{suffix}")
        paths.append(y)
    y = layers.Concatenate(name=f"{name}_concat")(paths)
    return _conv(y, x.shape[-1], 1, activation=None, name=f"{name}_conv2d")


def _residual_sum(x, branches, scale, *, name):
    """``relu(x + scale · Σ branches)``: the end of every 2-way and poly-N module.

    The branches are summed two at a time (``{name}_branches``, ``{name}_branches2``, ...): TFLite
    splits a many-input ADD into binary ADDs whose intermediate sums have no learned INT8 range
    and would stay float, while every Keras ``Add`` gets its own range in QAT.
    """
    residual = branches[0]
    for index, branch in enumerate(branches[1:], start=1):
        suffix = "" if index == 1 else str(index)
        residual = layers.Add(name=f"{name}_branches{suffix}")([residual, branch])
    residual = layers.Rescaling(scale, name=f"{name}_scale")(residual)
    x = layers.Add(name=f"{name}_add")([x, residual])
    return layers.ReLU(name=f"{name}_relu")(x)


def two_way(x, kind, scale, *, name):
    """A 2-way module: ``relu(x + scale · (F(x) + G(x)))``, F and G two Inception-ResNet blocks."""
    branches = [_inception_block(x, kind, name=f"{name}_way{j}") for j in range(2)]
    return _residual_sum(x, branches, scale, name=name)


def poly_module(x, kind, scale, orders=POLY_ORDERS, *, name):
    """A poly-N module (Inception-ResNet-B or -C): ``relu(x + scale · Σₙ Fₙ(...))``.

    The n-th order applies the block to the ReLU of the order before it. Its four
    convolutions are one ``Conv2D`` layer each, called once per order (shared weights); the
    BatchNorm after each call is the order's own (``{name}_{conv}_bn{n}``), and so is the final
    1x1 convolution + BN (``{name}_order{n}_conv2d``).
    """
    width = x.shape[-1]
    path0_names, path1_name = POLY_CONV_NAMES[kind]
    path0_specs, path1_specs = BLOCK_PATHS[kind]
    specs = [*zip(path0_names, path0_specs, strict=True), (path1_name, path1_specs[0])]
    # One convolution layer per position, shared by every order ("same" = the port's padding here).
    shared = {
        conv_name: layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_{conv_name}_conv")
        for conv_name, (filters, kernel) in specs
    }

    def unit(y, conv_name, order):
        y = shared[conv_name](y)
        y = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"{name}_{conv_name}_bn{order}")(y)
        return layers.ReLU(name=f"{name}_{conv_name}_relu{order}")(y)

    branches = []
    y = x
    for order in range(1, orders + 1):
        y0 = y
        for conv_name in path0_names:
            y0 = unit(y0, conv_name, order)
        y1 = unit(y, path1_name, order)
        y = layers.Concatenate(name=f"{name}_order{order}_concat")([y0, y1])
        y = _conv(y, width, 1, activation=None, name=f"{name}_order{order}_conv2d")
        branches.append(y)
        if order < orders:
            y = layers.ReLU(name=f"{name}_order{order}_relu")(y)
    return _residual_sum(x, branches, scale, name=name)


def _reduction_a(x):
    p0 = _conv(x, 256, 1, name="reduction_a_path0_0")
    p0 = _conv(p0, 256, 3, name="reduction_a_path0_1")
    p0 = _conv(p0, 384, 3, 2, padding="valid", name="reduction_a_path0_2")
    p1 = _conv(x, 384, 3, 2, padding="valid", name="reduction_a_path1")
    p2 = layers.MaxPooling2D(3, 2, name="reduction_a_path2")(x)
    return layers.Concatenate(name="reduction_a")([p0, p1, p2])


def _reduction_b(x):
    p0 = _conv(x, 256, 1, name="reduction_b_path0_0")
    p0 = _conv(p0, 256, 3, name="reduction_b_path0_1")
    p0 = _conv(p0, 256, 3, 2, padding="valid", name="reduction_b_path0_2")
    p1 = _conv(x, 256, 1, name="reduction_b_path1_0")
    p1 = _conv(p1, 256, 3, 2, padding="valid", name="reduction_b_path1_1")
    p2 = _conv(x, 256, 1, name="reduction_b_path2_0")
    p2 = _conv(p2, 384, 3, 2, padding="valid", name="reduction_b_path2_1")
    p3 = layers.MaxPooling2D(3, 2, name="reduction_b_path3")(x)
    return layers.Concatenate(name="reduction_b")([p0, p1, p2, p3])


def _body(x, *, modules):
    counts = dict(zip(STAGE_MODULES, modules, strict=True))
    tracker = FeatureTracker()
    x = _stem(x, tracker)
    scales = iter(module_scales(sum(modules)))
    for index in range(counts["a"]):
        x = two_way(x, "a", next(scales), name=f"a{index + 1}")
    tracker.add(x)
    x = _reduction_a(x)
    for stage in ("b", "c"):
        for index in range(counts[stage]):
            name = f"{stage}{index + 1}"
            if index % 2 == 0:
                x = poly_module(x, stage, next(scales), name=name)
            else:
                x = two_way(x, stage, next(scales), name=name)
        tracker.add(x, 2)
        if stage == "b":
            x = _reduction_b(x)
    return x, tracker.maps


@family_constructor
def PolyNet(
    modules=(10, 20, 10),
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    dropout_rate=0.2,
    features_only=False,
    include_preprocessing=False,
):
    """The very deep PolyNet (10 2-way A, 10 poly-3 + 10 2-way B, 5 poly-3 + 5 2-way C modules).

    Args:
        modules: modules in stages A, B and C (``(10, 20, 10)``: the very deep PolyNet; the
            paper compares other depths). Stage A's are 2-way, B's and C's alternate poly-3 and
            2-way starting with poly-3; the residual scales run from 1.0 to 0.7 over all of them.
        dropout_rate: before the classifier (0.2, the port's).

    Inputs of at least 75x75 pixels (331x331 published). The other arguments are
    keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    if not isinstance(modules, (tuple, list)) or len(modules) != 3:
        raise ValueError(f"`modules` must be the module counts of stages (A, B, C), e.g. (10, 20, 10), got {modules!r}")
    for count in modules:
        check_int(count, "modules", 1, hint=" (modules per stage)")
    modules = tuple(modules)
    check_rate(dropout_rate, "dropout_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, modules=modules),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="polynet",
        min_size=MIN_INPUT_SIZE,
    )


# --- weight porting --------------------------------------------------------------------
# pretrainedmodels' polynet: stem.conv1.{i}, stem.conv1_branch, stem.conv2_{short,long}.{i},
# stem.conv2_branch (BasicConv2d: .conv, .bn); stage_a.{i}.blocks.{j}.{path0.{k},path1.{k},
# path2,conv2d}; reduction_{a,b}.path{p}[.{k}]; stage_{b,c}.{i} (poly-3: {conv}.conv,
# {conv}.bn_blocks.{order}, conv2d_blocks.{order}; 2-way: blocks.{j}...); last_linear.
_BASIC = r"(conv|bn)"


TORCH_KEY_MAP = (
    (rf"stem\.(conv1|conv2_short|conv2_long)\.(\d)\.{_BASIC}", r"stem_\1_\2_\3"),
    (rf"stem\.(conv1_branch|conv2_branch)\.{_BASIC}", r"stem_\1_\2"),
    (
        r"stage_([abc])\.(\d+)\.blocks\.(\d)\.(path\d(?:\.\d)?|conv2d)\.(conv|bn)",
        lambda m: f"{m[1]}{int(m[2]) + 1}_way{m[3]}_{m[4].replace('.', '_')}_{m[5]}",
    ),
    (r"stage_([bc])\.(\d+)\.(path\w+)\.conv", lambda m: f"{m[1]}{int(m[2]) + 1}_{m[3]}_conv"),
    (r"stage_([bc])\.(\d+)\.(path\w+)\.bn_blocks\.(\d)", lambda m: f"{m[1]}{int(m[2]) + 1}_{m[3]}_bn{int(m[4]) + 1}"),
    (
        rf"stage_([bc])\.(\d+)\.conv2d_blocks\.(\d)\.{_BASIC}",
        lambda m: f"{m[1]}{int(m[2]) + 1}_order{int(m[3]) + 1}_conv2d_{m[4]}",
    ),
    (rf"reduction_([ab])\.(path\d)\.(\d)\.{_BASIC}", r"reduction_\1_\2_\3_\4"),
    (rf"reduction_([ab])\.(path\d)\.{_BASIC}", r"reduction_\1_\2_\3"),
    (r"last_linear", "predictions"),
)

# pretrainedmodels' settings for its checkpoint: RGB in [0, 1], ImageNet mean/std, 331 pixels.
# The package evaluates with a 0.875 crop by default (its `TransformImage`, `scale=0.875`).
PREPROCESSING = Preprocessing(input_size=(331, 331, 3), crop_pct=0.875)

# Cadene's checkpoint of the port. pretrainedmodels lists it (like every file of its host) at an
# http URL only; `insecure_http=True` admits that URL, and the download is checked against the
# first digits of its SHA-256 in the file name (torch.utils.model_zoo's naming, which its
# load_url verified when these files were published), so a tampered file is refused all the same.
CADENE_WEIGHTS = WeightSource(
    tag="cadene_in1k",
    url="http://data.lip6.fr/cadene/pretrainedmodels/polynet-f71d82a5.pth",
    layout="pretrainedmodels",
    top1=81.002,
    license="BSD-3-Clause (Cadene/pretrained-models.pytorch); ImageNet terms of access apply to the weights",
    file_hash="f71d82a5",
    insecure_http=True,
)

FAMILY = Family(
    name="polynet",
    constructor=PolyNet,
    architecture_args=("modules",),
    preprocessing=PREPROCESSING,
    min_input_size=MIN_INPUT_SIZE,
    variants=(
        Variant(
            "polynet",
            {},
            Reference(
                95_366_600,
                34_699.5,
                81.002,
                "pretrainedmodels polynet (Cadene port of the authors' Caffe model; MACs measured on the port at 331)",
                input_size=(331, 331, 3),
            ),
            equals="pretrainedmodels:polynet(num_classes=1000, pretrained=None)",
            key_map=TORCH_KEY_MAP,
            weights=(CADENE_WEIGHTS,),
        ),
    ),
)
