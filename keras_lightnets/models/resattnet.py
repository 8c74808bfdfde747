"""Residual Attention Network (Wang et al., "Residual Attention Network for Image
Classification", CVPR 2017, arXiv 1704.06904).

A ResNet whose stages stack **attention modules**. Each module has a trunk branch ``T`` (two
residual units) and a soft mask branch ``M`` of the same size, and outputs
``(1 + M(x)) · T(x)`` ("attention residual learning": the mask can only amplify the trunk,
never erase it), computed as Caffe does, ``T · M + T``. One residual unit comes before the
split (its output feeds both branches) and one after the sum.

The mask branch is an hourglass: max pools (3x3/2, Caffe's ceil-mode windows) each followed by
a residual unit, two units at the lowest resolution, then at each level back up a bilinear
up-sampling to the size of that level's map (Caffe's ``Interp`` layer with two bottoms:
corners aligned, :class:`~keras_lightnets.layers.AlignedBilinearResize`) added to a *skip*
connection (a residual unit on the down-going map of that level) and one more unit; the last
up-sampling returns to the trunk's size, and the mask head is ``BN-ReLU-1x1-BN-ReLU-1x1``
then a sigmoid (one mask value per channel and pixel: mixed attention). Stage 1 pools three
times (56 → 28 → 14 → 7 at 224), stage 2 twice, stage 3 once: each mask reaches 7x7.

**ImageNet** (the authors' Caffe deploy files, ``fwang91/residual-attention-network``
``imagenet_model/Attention-{56,92}-deploy.prototxt``, ``AttentionNeXt-56-deploy.prototxt``):

- stem: 7x7/2 conv (64) → BN → ReLU → 3x3/2 max pool (ceil mode: 56x56 at 224);
- per stage (widths 256, 512, 1024): one projection unit (stride 2 from stage 2 on), then
  1, 1, 1 (Attention-56) or 1, 2, 3 (Attention-92) attention modules; then three units of
  width 2048 (the first with stride 2), the final BN-ReLU, the global average (Caffe's 7x7
  average pool at 224) and a fully connected classifier with bias;
- Attention-56/92: **pre-activation** bottleneck units (BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1,
  bottleneck = width / 4; a projection shortcut is a 1x1 conv of the pre-activated input);
  every BN is the one of the "BN" layer (scale and shift included), epsilon 1e-5;
- AttentionNeXt-56: **ResNeXt** units (1x1-BN-ReLU, 3x3 grouped 32-BN-ReLU, 1x1-BN, projection
  1x1-BN, sum, ReLU; bottleneck = width / 2), the mask head without its first BN-ReLU
  (``1x1-BN-ReLU-1x1-sigmoid``), no final BN-ReLU.

The counts equal the prototxts' (BN scale and shift counted as PyTorch counts gamma/beta):
Attention-56 31,810,728, Attention-92 52,466,344, AttentionNeXt-56 31,318,824, and MACs (conv
and FC, 224x224) 6,270.8 M, 10,533.8 M and 6,419.1 M. No weights were ever released.

**CIFAR** (``resattnet92_cifar``, ``resattnet56_cifar``, ``layout="cifar"``). No official code; built from the
paper's section 4.1: "The network consists of 3 stages and similar to ResNet, equal number of
Attention Modules are stacked in each stage. Additionally, we add two Residual Units at each
stage. The number of weighted layers in trunk branch is 36m+20 where m is the number of
Attention Module in one stage", trained and tested at 32x32. Our choices where the text is
silent:

- m = 2 modules per stage for Attention-92 (36 · 2 + 20 = 92; m = 1 is Attention-56, the
  smallest model of the paper's Table 1);
- stem: one 3x3 convolution (stride 1) of 16 channels, no pooling (pre-activation ResNet-164's
  CIFAR stem, the paper's CIFAR baseline);
- the two residual units of a stage: one before its modules (the projection, stride 2 in
  stages 2 and 3) and one after them; widths 64, 128, 256 with bottlenecks 16, 32, 64
  (ResNet-164's), so the trunk follows the ResNet the paper compares with;
- mask branches pool 3, 2 and 1 times as on ImageNet (32 → 4, 16 → 4, 8 → 4): the lowest
  resolution is 4x4 in every stage;
- the head: final BN-ReLU, global average, fully connected (the pre-activation ResNet's).

This gives 1,841,242 parameters for 10 classes (211.9 M MACs at 32x32; Attention-56: 1,030,362
and 122.8 M); the paper's table lists 1.9 M for its Attention-92 on CIFAR-10. The variant
table's figures are what this build measures (golden tensors, no reference).

**Input size.** The innermost max pool of every mask needs a map of at least 2 pixels (Caffe's
ceil-mode window then covers it): 31 pixels for the ImageNet layout, 8 for CIFAR's. A smaller
``input_shape`` is a ``ValueError`` saying so.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice
from keras_lightnets.layers import conv_bn_act, max_pool_ceil
from keras_lightnets.layers.interp import AlignedBilinearResize
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant

__all__ = ["ResidualAttentionNet", "attention_module", "min_input_size"]

BN_EPSILON = 1e-5  # the Caffe "BN" layer's default
LAYOUTS = ("imagenet", "cifar")
UNITS = ("preact", "resnext")
DEPTHS = (56, 92)
# Attention modules per stage: ImageNet (Table 2 of the paper, the prototxts), CIFAR (36m + 20).
MODULES = {("imagenet", 56): (1, 1, 1), ("imagenet", 92): (1, 2, 3), ("cifar", 56): (1, 1, 1), ("cifar", 92): (2, 2, 2)}
# Max pools in the mask branch of each stage's modules.
MASK_POOLS = (3, 2, 1)
# (output width, bottleneck width) of each stage; ImageNet's fourth stage has no attention.
STAGE_WIDTHS = {
    ("imagenet", "preact"): ((256, 64), (512, 128), (1024, 256), (2048, 512)),
    ("imagenet", "resnext"): ((256, 128), (512, 256), (1024, 512), (2048, 1024)),
    ("cifar", "preact"): ((64, 16), (128, 32), (256, 64)),
}
STEM_WIDTH = {"imagenet": 64, "cifar": 16}
RESNEXT_GROUPS = 32
POST_UNITS = 3  # ImageNet: units of the last (attention-free) stage


def _bn(x, name):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=name)(x)


def preact_unit(x, width, bottleneck, strides=1, *, name):
    """Pre-activation bottleneck unit: ``x + conv1x1(BN-ReLU(conv3x3(BN-ReLU(conv1x1(BN-ReLU(x))))))``.

    A unit that changes the width or the stride takes a 1x1 convolution of the pre-activated
    input as its shortcut (the prototxts' ``branch2``).
    """
    y = layers.ReLU(name=f"{name}_act")(_bn(x, f"{name}_bn"))
    if strides != 1 or x.shape[-1] != width:
        shortcut = layers.Conv2D(width, 1, strides=strides, use_bias=False, name=f"{name}_shortcut_conv")(y)
    else:
        shortcut = x
    y = conv_bn_act(y, bottleneck, 1, bn_epsilon=BN_EPSILON, name=f"{name}_conv1")
    y = conv_bn_act(y, bottleneck, 3, strides, bn_epsilon=BN_EPSILON, name=f"{name}_conv2")
    y = conv_bn_act(y, width, 1, activation=None, use_bn=False, name=f"{name}_conv3")
    return layers.Add(name=f"{name}_add")([shortcut, y])


def resnext_unit(x, width, bottleneck, strides=1, *, name):
    """ResNeXt unit (post-activation): ``ReLU(shortcut + BN(conv1x1(...(grouped 3x3)...)))``."""
    if strides != 1 or x.shape[-1] != width:
        shortcut = conv_bn_act(x, width, 1, strides, activation=None, bn_epsilon=BN_EPSILON, name=f"{name}_shortcut")
    else:
        shortcut = x
    y = conv_bn_act(x, bottleneck, 1, bn_epsilon=BN_EPSILON, name=f"{name}_conv1")
    y = conv_bn_act(y, bottleneck, 3, strides, groups=RESNEXT_GROUPS, bn_epsilon=BN_EPSILON, name=f"{name}_conv2")
    y = conv_bn_act(y, width, 1, activation=None, bn_epsilon=BN_EPSILON, name=f"{name}_conv3")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_relu")(y)


UNIT_FUNCTIONS = {"preact": preact_unit, "resnext": resnext_unit}


def _mask_head(x, unit, *, name):
    """``sigmoid(1x1(BN-ReLU(1x1(BN-ReLU(x)))))`` (pre-activation); ResNeXt: ``sigmoid(1x1(ReLU(BN(1x1(x)))))``."""
    width = x.shape[-1]
    if unit == "preact":
        x = layers.ReLU(name=f"{name}_head_act")(_bn(x, f"{name}_head_bn"))
    x = conv_bn_act(x, width, 1, bn_epsilon=BN_EPSILON, name=f"{name}_head1")
    x = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_head2_conv")(x)
    return layers.Activation("sigmoid", name=name)(x)


def attention_module(x, bottleneck, pools, *, unit="preact", name):
    """One attention module: ``out = U(T + T · M)`` with ``T = U(U(U(x)))`` (trunk) and ``M`` the soft
    mask of ``U(x)`` (``pools`` max pools down, bilinear up-samplings with skip units back up).

    Layer names: ``{name}_pre`` (the unit before the split), ``{name}_trunk1/2``,
    ``{name}_mask_pool{l}``, ``{name}_mask_down{l}_{k}``, ``{name}_mask_skip{l}``,
    ``{name}_mask_interp{l}``, ``{name}_mask_up{l}``, ``{name}_mask_up{l}_1``,
    ``{name}_mask_head*``, ``{name}_mask`` (the sigmoid), ``{name}_attend`` (T · M),
    ``{name}_fusion`` (T · M + T) and ``{name}_post``.
    """
    residual = partial(UNIT_FUNCTIONS[unit], width=x.shape[-1], bottleneck=bottleneck)
    first = residual(x, name=f"{name}_pre")
    trunk = residual(residual(first, name=f"{name}_trunk1"), name=f"{name}_trunk2")

    mask = first
    levels = []  # the down-going map of each level, for the skip connections
    for level in range(1, pools + 1):
        mask = max_pool_ceil(mask, 3, 2, name=f"{name}_mask_pool{level}")
        mask = residual(mask, name=f"{name}_mask_down{level}_1")
        levels.append(mask)
    mask = residual(mask, name=f"{name}_mask_down{pools}_2")
    for level in range(pools - 1, 0, -1):
        up = AlignedBilinearResize(name=f"{name}_mask_interp{level + 1}")([mask, levels[level - 1]])
        skip = residual(levels[level - 1], name=f"{name}_mask_skip{level}")
        mask = layers.Add(name=f"{name}_mask_up{level}")([skip, up])
        mask = residual(mask, name=f"{name}_mask_up{level}_1")
    mask = AlignedBilinearResize(name=f"{name}_mask_interp1")([mask, trunk])
    mask = _mask_head(mask, unit, name=f"{name}_mask")

    attended = layers.Multiply(name=f"{name}_attend")([trunk, mask])
    fused = layers.Add(name=f"{name}_fusion")([attended, trunk])
    return residual(fused, name=f"{name}_post")


def _final_bn_relu(x, unit):
    if unit != "preact":
        return x
    return layers.ReLU(name="final_act")(_bn(x, "final_bn"))


def _body(x, *, depth, unit, layout):
    residual = UNIT_FUNCTIONS[unit]
    widths = STAGE_WIDTHS[(layout, unit)]
    tracker = FeatureTracker()
    if layout == "imagenet":
        x = tracker.add(conv_bn_act(x, STEM_WIDTH[layout], 7, 2, bn_epsilon=BN_EPSILON, name="stem"), 2)
        x = max_pool_ceil(x, 3, 2, name="stem_pool")
        stride = 1
    else:
        x = conv_bn_act(x, STEM_WIDTH[layout], 3, activation=None, use_bn=False, name="stem")
        stride = 1
    for stage, modules in enumerate(MODULES[(layout, depth)]):
        width, bottleneck = widths[stage]
        x = residual(x, width, bottleneck, stride, name=f"stage{stage + 1}_unit1")
        for index in range(modules):
            x = attention_module(
                x, bottleneck, MASK_POOLS[stage], unit=unit, name=f"stage{stage + 1}_attention{index + 1}"
            )
        if layout == "cifar":
            x = residual(x, width, bottleneck, name=f"stage{stage + 1}_unit2")
        tracker.add(x, 2 if (layout == "imagenet" or stage > 0) else 1)
        stride = 2
    if layout == "imagenet":
        width, bottleneck = widths[3]
        for index in range(POST_UNITS):
            x = residual(x, width, bottleneck, 2 if index == 0 else 1, name=f"stage4_unit{index + 1}")
        x = _final_bn_relu(x, unit)
        tracker.add(x, 2)
    else:
        x = _final_bn_relu(x, unit)
        tracker.maps[tracker.stride] = x
    return x, tracker.maps


# --- input size ---------------------------------------------------------------------------


def _conv_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def _pool_size(size):
    """Caffe's (and PyTorch's) ceil-mode 3x3/2 max pool; 0 when there is nothing to pool."""
    return 0 if size < 2 else -(-(size - 3) // 2) + 1


def _fits(size, layout):
    if layout == "imagenet":
        size = _pool_size(_conv_size(size, 7, 2, 3))
    for stage, pools in enumerate(MASK_POOLS):
        if stage > 0:
            size = _conv_size(size, 3, 2, 1)
        mask = size
        for _ in range(pools):
            mask = _pool_size(mask)
        if mask < 1:
            return False
    return True


def min_input_size(layout="imagenet"):
    """The smallest input height / width the attention stages of ``layout`` accept."""
    return next(size for size in range(1, 1024) if _fits(size, layout))


def _check_input_size(input_shape, input_tensor, layout):
    if input_tensor is not None and hasattr(input_tensor, "shape") and len(input_tensor.shape) == 4:
        argument, dims = "input_tensor", tuple(input_tensor.shape)[1:3]
    elif isinstance(input_shape, (tuple, list)) and len(input_shape) == 3:
        argument, dims = "input_shape", tuple(input_shape)[:2]
    else:
        return  # the scaffold names anything malformed
    smallest = min_input_size(layout)
    for dim, axis in zip(dims, ("height", "width"), strict=True):
        if isinstance(dim, int) and not isinstance(dim, bool) and 0 < dim < smallest:
            raise ValueError(
                f"`{argument}` {axis} {dim} is too small for the attention stages: input {axis} must be at least "
                f"{smallest} pixels for the {layout} layout (its mask branches max-pool each stage's map "
                f"{', '.join(map(str, MASK_POOLS))} times)"
            )


@family_constructor
def ResidualAttentionNet(
    depth=56,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    unit="preact",
    layout="imagenet",
    features_only=False,
    include_preprocessing=False,
):
    """Attention-56 / Attention-92 (ImageNet or CIFAR layout); ``unit="resnext"``: AttentionNeXt.

    Args:
        depth: 56 or 92 (trunk depth; the number of attention modules per stage follows).
        unit: ``"preact"`` (pre-activation bottlenecks, Attention-56/92) or ``"resnext"``
            (ResNeXt 32-group units, AttentionNeXt; ImageNet layout only).
        layout: ``"imagenet"`` (the authors' prototxts) or ``"cifar"`` (32x32, three stages;
            the paper's text, choices in the module docstring).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(depth, "depth", DEPTHS)
    check_choice(unit, "unit", UNITS)
    check_choice(layout, "layout", LAYOUTS)
    if (layout, unit) not in STAGE_WIDTHS:
        raise ValueError(f"`unit={unit!r}` exists for layout='imagenet' only (AttentionNeXt), got layout={layout!r}")
    _check_input_size(input_shape, input_tensor, layout)
    prefix = "resattnext" if unit == "resnext" else "resattnet"
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, depth=depth, unit=unit, layout=layout),
        head=partial(dense_head, dropout_rate=0.0),
        default_name=f"{prefix}{depth}" + ("_cifar" if layout == "cifar" else ""),
        min_size=min_input_size(layout),
    )


CIFAR_PREPROCESSING = Preprocessing(
    input_size=(32, 32, 3), mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), crop_pct=1.0
)
_PROTOTXT = "fwang91/residual-attention-network imagenet_model/{}-deploy.prototxt"

FAMILY = Family(
    name="resattnet",
    constructor=ResidualAttentionNet,
    architecture_args=("depth", "unit", "layout"),
    min_input_size=min_input_size("imagenet"),
    variants=(
        Variant(
            "resattnet56",
            {"depth": 56},
            Reference(31_810_728, 6270.8, 78.24, _PROTOTXT.format("Attention-56")),
            equals="golden",
        ),
        Variant(
            "resattnet92",
            {"depth": 92},
            Reference(52_466_344, 10533.8, 80.5, _PROTOTXT.format("Attention-92") + " (top-1 at 320x320)"),
            equals="golden",
            # Attention-56's code with more modules per stage: parameters and MACs checked exactly.
            compared=False,
        ),
        Variant(
            "resattnext56",
            {"depth": 56, "unit": "resnext"},
            Reference(31_318_824, 6419.1, 78.8, _PROTOTXT.format("AttentionNeXt-56")),
            equals="golden",
        ),
        Variant(
            "resattnet56_cifar",
            {"depth": 56, "layout": "cifar"},
            Reference(
                1_030_362,
                122.8,
                None,
                "the paper's CIFAR text (36m+20, m=1; its Table 1 model); widths our choice (module docstring), "
                "figures measured",
                input_size=(32, 32, 3),
            ),
            equals="golden",
            preprocessing=CIFAR_PREPROCESSING,
            defaults={"classes": 10},
            # resattnet92_cifar's code with one module per stage instead of two.
            compared=False,
        ),
        Variant(
            "resattnet92_cifar",
            {"depth": 92, "layout": "cifar"},
            Reference(
                1_841_242,
                211.9,
                None,
                "the paper's CIFAR text (36m+20, m=2); widths our choice (module docstring), figures measured",
                input_size=(32, 32, 3),
            ),
            equals="golden",
            preprocessing=CIFAR_PREPROCESSING,
            defaults={"classes": 10},
        ),
    ),
)
