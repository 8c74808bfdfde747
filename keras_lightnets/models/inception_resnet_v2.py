"""Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke and Alemi, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", AAAI 2017, arXiv 1602.07261), as TF-slim released it
and keras.applications ``InceptionResNetV2`` and timm ``inception_resnet_v2`` port it.

Every block is a table of branches (:data:`MIXED_5B`, :data:`BLOCK35`, :data:`MIXED_6A`,
:data:`BLOCK17`, :data:`MIXED_7A`, :data:`BLOCK8`): a branch is a list of units, each a
convolution → BatchNorm (epsilon 1e-3) → ReLU (:class:`Conv`) or a pool (:class:`Pool`), and one
function (:func:`branches`) turns a table into layers. Convolutions with stride 1 pad "same"
(symmetric for these odd kernels, so TensorFlow and PyTorch agree), the stride-2 ones and the stem's
marked ones are unpadded ("V" in the paper's figures).

==========  ==============================================================  ============
stage       blocks                                                          map at 299
==========  ==============================================================  ============
stem        3x3/2 V, 3x3 V, 3x3, 3x3/2 max pool, 1x1, 3x3 V, 3x3/2 max pool  35x35x192
mixed_5b    1x1 ‖ 1x1-5x5 ‖ 1x1-3x3-3x3 ‖ 3x3 avg pool-1x1                    35x35x320
block35     10 x Inception-ResNet-A, residual scale 0.17                      35x35x320
mixed_6a    3x3/2 ‖ 1x1-3x3-3x3/2 ‖ 3x3/2 max pool (Reduction-A)              17x17x1088
block17     20 x Inception-ResNet-B, residual scale 0.1                       17x17x1088
mixed_7a    three 1x1-...-3x3/2 paths ‖ 3x3/2 max pool (Reduction-B)          8x8x2080
block8      9 x Inception-ResNet-C, scale 0.2; a 10th, scale 1.0, no ReLU     8x8x2080
conv2d_7b   1x1 conv → BN → ReLU                                              8x8x1536
head        global average pool → (dropout) → fully connected
==========  ==============================================================  ============

**The residual blocks.** The branches are concatenated, projected back to the block's width by a
1x1 convolution *with a bias and no BatchNorm*, scaled and added:
``relu(x + scale · conv(concat(branches)))``. keras.applications computes the scaled sum in one
custom layer (``CustomScaleLayer``: ``inputs[0] + inputs[1] * scale``); here it is two standard
layers, ``Rescaling(scale)`` on the projection and ``Add`` (the same operations in the same order,
so the same floats; a MUL by a constant and an ADD in TFLite, both quantizable). The last block8
has scale 1.0 (no ``Rescaling``) and no ReLU.

**Two layouts** (``version``), otherwise the same network (same padding, epsilon 1e-3, the biased
up-projections in both):

- ``"keras"`` (``inception_resnet_v2``): keras.applications' and TF-slim's BatchNorm has no learned
  scale (``scale=False``: beta only), momentum 0.99. Its weighted layers are in keras.applications'
  order, so its ``.h5`` files load.
- ``"timm"`` (``inception_resnet_v2_timm``): timm's ``ConvNormAct`` BatchNorm has a scale (gamma)
  too, 30,272 more parameters; PyTorch's momentum (0.1, 0.9 here). timm's checkpoints (ported from
  TF-slim) load by name through :data:`TIMM_KEY_MAP`.

Input: 299x299, Inception preprocessing (``x / 127.5 - 1``, i.e. mean 0.5, std 0.5 on [0, 1]);
inputs of at least 75 pixels (keras.applications' minimum: Reduction-B needs a 3x3 map).
"""

from functools import partial
from typing import NamedTuple

from keras import layers

from keras_lightnets.checks import check_choice, check_int, check_rate
from keras_lightnets.layers import StochasticDepth, activation_layer
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
)

__all__ = ["TIMM_KEY_MAP", "Conv", "InceptionResNetV2", "Pool", "branches", "residual_block"]


class Conv(NamedTuple):
    """A convolution → BatchNorm → ReLU unit."""

    filters: int
    kernel: int | tuple = 1
    strides: int = 1
    padding: str = "same"


class Pool(NamedTuple):
    """A pooling unit: ``"max"`` or ``"avg"`` (the average excludes the padding, as TF and timm's
    ``count_include_pad=False``)."""

    kind: str
    size: int = 3
    strides: int = 2
    padding: str = "valid"


# The stem (Figure 14 of the paper with TF-slim's names): (name, unit).
STEM = (
    ("conv2d_1a", Conv(32, 3, 2, "valid")),
    ("conv2d_2a", Conv(32, 3, 1, "valid")),
    ("conv2d_2b", Conv(64, 3)),
    ("maxpool_3a", Pool("max")),
    ("conv2d_3b", Conv(80, 1, 1, "valid")),
    ("conv2d_4a", Conv(192, 3, 1, "valid")),
    ("maxpool_5a", Pool("max")),
)
# Blocks as tables of branches, each branch a tuple of units.
MIXED_5B = (
    (Conv(96),),
    (Conv(48), Conv(64, 5)),
    (Conv(64), Conv(96, 3), Conv(96, 3)),
    (Pool("avg", 3, 1, "same"), Conv(64)),
)
BLOCK35 = (  # Inception-ResNet-A (35x35)
    (Conv(32),),
    (Conv(32), Conv(32, 3)),
    (Conv(32), Conv(48, 3), Conv(64, 3)),
)
MIXED_6A = (  # Reduction-A
    (Conv(384, 3, 2, "valid"),),
    (Conv(256), Conv(256, 3), Conv(384, 3, 2, "valid")),
    (Pool("max"),),
)
BLOCK17 = (  # Inception-ResNet-B (17x17)
    (Conv(192),),
    (Conv(128), Conv(160, (1, 7)), Conv(192, (7, 1))),
)
MIXED_7A = (  # Reduction-B
    (Conv(256), Conv(384, 3, 2, "valid")),
    (Conv(256), Conv(288, 3, 2, "valid")),
    (Conv(256), Conv(288, 3), Conv(320, 3, 2, "valid")),
    (Pool("max"),),
)
BLOCK8 = (  # Inception-ResNet-C (8x8)
    (Conv(192),),
    (Conv(192), Conv(224, (1, 3)), Conv(256, (3, 1))),
)
# The residual stages: (name, branch table, residual scale, reduction that follows or None).
STAGES = (
    ("block35", BLOCK35, 0.17, ("mixed_6a", MIXED_6A)),
    ("block17", BLOCK17, 0.10, ("mixed_7a", MIXED_7A)),
    ("block8", BLOCK8, 0.20, None),
)
BLOCKS = (10, 20, 10)  # the published network; the last block8 has scale 1.0 and no ReLU
FINAL_SCALE = 1.0
HEAD_WIDTH = 1536  # conv2d_7b
BN_EPSILON = 1e-3
MIN_INPUT_SIZE = 75
VERSIONS = ("keras", "timm")
VERSION_OPTIONS = {
    "keras": {"bn_scale": False, "bn_momentum": 0.99},
    "timm": {"bn_scale": True, "bn_momentum": 0.9},
}


def _unit(x, unit, *, options, name):
    if isinstance(unit, Pool):
        pool = layers.MaxPooling2D if unit.kind == "max" else layers.AveragePooling2D
        return pool(unit.size, unit.strides, padding=unit.padding, name=name)(x)
    x = layers.Conv2D(
        unit.filters, unit.kernel, unit.strides, padding=unit.padding, use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=options["bn_momentum"], scale=options["bn_scale"], name=f"{name}_bn"
    )(x)
    return activation_layer("relu", name=f"{name}_act")(x)


def branches(x, table, *, options, name):
    """The outputs of a branch table's branches, each unit named ``{name}_branch{i}`` (a branch of one
    unit) or ``{name}_branch{i}_{j}`` (timm's module names with dots as underscores)."""
    outputs = []
    for i, branch in enumerate(table):
        y = x
        for j, unit in enumerate(branch):
            y = _unit(y, unit, options=options, name=f"{name}_branch{i}" + (f"_{j}" if len(branch) > 1 else ""))
        outputs.append(y)
    return outputs


def residual_block(x, table, scale, *, options, activation=True, drop_path_rate=0.0, name):
    """``relu(x + scale · conv1x1(concat(branches(x))))``, the 1x1 convolution biased and without
    BatchNorm (``{name}_conv``); no ``Rescaling`` for scale 1, no ReLU with ``activation=False``."""
    mixed = layers.Concatenate(name=f"{name}_mixed")(branches(x, table, options=options, name=name))
    up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_conv")(mixed)
    if scale != 1.0:
        up = layers.Rescaling(scale, name=f"{name}_scale")(up)
    if drop_path_rate > 0:
        up = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(up)
    x = layers.Add(name=f"{name}_add")([x, up])
    return activation_layer("relu", name=f"{name}_act")(x) if activation else x


def _body(x, *, blocks, version, drop_path_rate):
    options = VERSION_OPTIONS[version]
    tracker = FeatureTracker()
    for name, unit in STEM:
        # The last map at each stride, as timm's taps: conv2d_2b (stride 2), conv2d_4a (stride 4).
        x = tracker.add(_unit(x, unit, options=options, name=name), unit.strides)
    x = layers.Concatenate(name="mixed_5b")(branches(x, MIXED_5B, options=options, name="mixed_5b"))
    total, index = sum(blocks), 0
    for (stage, table, scale, reduction), count in zip(STAGES, blocks, strict=True):
        for j in range(1, count + 1):
            last = stage == "block8" and j == count
            x = residual_block(
                x,
                table,
                FINAL_SCALE if last else scale,
                options=options,
                activation=not last,
                drop_path_rate=drop_path_rate * index / max(1, total - 1),
                name=f"{stage}_{j}",
            )
            index += 1
        if reduction is None:
            break
        tracker.add(x)
        reduction_name, reduction_table = reduction
        x = layers.Concatenate(name=reduction_name)(branches(x, reduction_table, options=options, name=reduction_name))
        tracker.add(x, 2)
    x = tracker.add(_unit(x, Conv(HEAD_WIDTH), options=options, name="conv2d_7b"))
    return x, tracker.maps


@family_constructor
def InceptionResNetV2(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    blocks=BLOCKS,
    version="keras",
    dropout_rate=0.0,
    drop_path_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """Inception-ResNet-v2: keras.applications' ``InceptionResNetV2`` (``version="keras"``) or timm's
    ``inception_resnet_v2`` (``version="timm"``).

    Args:
        blocks: Inception-ResNet-A, -B and -C blocks (``(10, 20, 10)``: the published network; the
            last C block is the one with scale 1.0 and no ReLU). Fewer build a shallower network of
            the same kinds.
        version: ``"keras"`` (BatchNorm without a learned scale, as keras.applications and TF-slim)
            or ``"timm"`` (BatchNorm with a scale, timm's layout).
        dropout_rate: before the classifier (0 in keras.applications and timm; the paper keeps 0.8).
        drop_path_rate: stochastic depth on the scaled residual branches, rising linearly over the
            blocks (0: none, as every reference).

    Inputs of at least 75x75 pixels (299x299 published). The other arguments are keras.applications'
    (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    if not isinstance(blocks, (tuple, list)) or len(blocks) != len(STAGES):
        raise ValueError(
            f"`blocks` must be the numbers of Inception-ResNet-A, -B and -C blocks, e.g. {BLOCKS}, got {blocks!r}"
        )
    for count in blocks:
        check_int(count, "blocks", 1, hint=" (blocks per stage)")
    blocks = tuple(blocks)
    check_choice(version, "version", VERSIONS)
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, blocks=blocks, version=version, drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="inception_resnet_v2" + ("_timm" if version == "timm" else ""),
        min_size=MIN_INPUT_SIZE,
    )


# --- weight porting --------------------------------------------------------------------
# timm's inception_resnet_v2: conv2d_{1a,2a,2b,3b,4a,7b}.{conv,bn}; mixed_{5b,6a,7a}.branch{i}[.{j}]
# .{conv,bn}; repeat / repeat_1 / repeat_2.{k}.branch{i}[.{j}].{conv,bn} and .conv2d (the biased
# up-projection) for the A, B and first nine C blocks; block8 (the last C block); classif.
REPEATS = {"repeat": "block35", "repeat_1": "block17", "repeat_2": "block8"}


def _unit_name(prefix, m):
    return f"{prefix}_branch{m['branch']}" + (f"_{m['index']}" if m["index"] else "") + f"_{m['layer']}"


_NAMED_UNIT = r"branch(?P<branch>\d)(?:\.(?P<index>\d))?\.(?P<layer>conv|bn)"
TIMM_KEY_MAP = (
    (r"(conv2d_\w\w)\.(conv|bn)", r"\1_\2"),
    (rf"(?P<block>mixed_\w\w)\.{_NAMED_UNIT}", lambda m: _unit_name(m["block"], m)),
    (
        rf"(?P<repeat>repeat(?:_\d)?)\.(?P<k>\d+)\.{_NAMED_UNIT}",
        lambda m: _unit_name(f"{REPEATS[m['repeat']]}_{int(m['k']) + 1}", m),
    ),
    (r"(repeat(?:_\d)?)\.(\d+)\.conv2d", lambda m: f"{REPEATS[m[1]]}_{int(m[2]) + 1}_conv"),
    (rf"block8\.{_NAMED_UNIT}", lambda m: _unit_name(f"block8_{BLOCKS[2]}", m)),
    (r"block8\.conv2d", f"block8_{BLOCKS[2]}_conv"),
    (r"classif", "predictions"),
)

# keras.applications evaluates its file with Inception preprocessing at 299 (the 0.875 centre crop
# of TF-slim's evaluation); timm's ports with a 0.8975 crop, bicubic.
PREPROCESSING = Preprocessing(input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD)
TIMM_PREPROCESSING = Preprocessing(
    input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.8975, interpolation="bicubic"
)
# keras.applications' file (MD5 from its source; top-1 from its documentation's table).
KERAS_WEIGHTS = keras_source(
    "inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5",
    80.3,
    "e693bd0210a403b3192acc6073ad2e96",
)
# timm's ports of TF-slim's checkpoints (the plain one and the ensemble-adversarially trained one,
# Tramer et al. 2018), with timm's top-1 at 299 (results-imagenet.csv).
TIMM_WEIGHTS = (
    timm_source("inception_resnet_v2.tf_in1k", 80.434, "Apache-2.0 (TF-slim; timm)", TIMM_PREPROCESSING),
    timm_source("inception_resnet_v2.tf_ens_adv_in1k", 79.998, "Apache-2.0 (TF-slim; timm)", TIMM_PREPROCESSING),
)

# Trainable parameters (BatchNorm statistics excluded): keras.applications' model.trainable_weights and
# timm's model.parameters(); the difference is timm's 30,272 BatchNorm scales. MACs: kl.profile at 299
# (timm states 13.16 GMACs).
PARAMS_KERAS = 55_813_192
PARAMS_TIMM = 55_843_464
MACS_M = 13_155.8

FAMILY = Family(
    name="inception_resnet_v2",
    constructor=InceptionResNetV2,
    architecture_args=("blocks", "version"),
    preprocessing=PREPROCESSING,
    min_input_size=MIN_INPUT_SIZE,
    variants=(
        Variant(
            "inception_resnet_v2",
            {},
            Reference(
                PARAMS_KERAS,
                MACS_M,
                80.3,
                "keras.applications InceptionResNetV2 (parameters; top-1 from its documentation; MACs measured)",
                input_size=(299, 299, 3),
            ),
            equals="keras:InceptionResNetV2",
            weights=(KERAS_WEIGHTS,),
        ),
        Variant(
            "inception_resnet_v2_timm",
            {"version": "timm"},
            Reference(
                PARAMS_TIMM,
                MACS_M,
                80.434,
                "timm inception_resnet_v2 (parameters; top-1 of tf_in1k at 299; MACs measured)",
                input_size=(299, 299, 3),
            ),
            equals="timm:inception_resnet_v2",
            preprocessing=TIMM_PREPROCESSING,
            key_map=TIMM_KEY_MAP,
            weights=TIMM_WEIGHTS,
            # Compared with timm in tests/models/test_inception_resnet_v2.py, at 75x83 with timm's
            # scales, biases and epsilon asserted there too (the suite compares it once).
            compared=False,
        ),
    ),
)
