"""PyramidNet (Han, Kim and Kim, "Deep Pyramidal Residual Networks", CVPR 2017, arXiv 1610.02915),
the additive PyramidNet as the authors' PyTorch port builds it (``dyhan0920/PyramidNet-PyTorch``,
``PyramidNet.py``).

Instead of doubling the width at each downsampling, every residual unit widens by ``α / N``
(``N``: the number of units): unit ``k`` (from 1, through all stages) has ``round(w0 + k · α / N)``
channels, ``w0`` the stem's width (16 on CIFAR, 64 on ImageNet), the running sum accumulated one
unit at a time in floating point and rounded with Python's ``round`` (half to even) as the
reference does. A bottleneck unit outputs 4 times that.

Units (pre-activation, with the reference's two differences from ResNet's: no ReLU before the
first convolution, and a BatchNorm after the last one):

- basic: BN → 3x3 conv (stride) → BN → ReLU → 3x3 conv → BN;
- bottleneck: BN → 1x1 conv → BN → ReLU → 3x3 conv (stride) → BN → ReLU → 1x1 conv (x4) → BN.

The shortcut is the identity, zero-padded with the extra channels at the end
(:class:`~keras_lightnets.layers.ChannelPadAdd`; a plain ``Add`` where the widths match); on a
downsampling unit it is first a 2x2/2 average pool in PyTorch's ceil mode (``AvgPool2d((2, 2),
stride=(2, 2), ceil_mode=True)``: on an odd size the last window holds the last row alone and
averages it alone, which is Keras's ``AveragePooling2D(2, 2, padding="same")``). There is no ReLU
after the addition. The network ends with BN → ReLU → global average pool → fully connected.

Layouts:

- ``"cifar"``: 3x3 conv (16) → BN (no ReLU); three stages of ``n`` units at strides 1, 2, 2,
  ``n = (depth - 2) / 6`` (basic) or ``(depth - 2) / 9`` (bottleneck).
- ``"imagenet"``: 7x7/2 conv (64) → BN → ReLU → 3x3/2 max pool; four stages at strides 1, 2, 2, 2
  of ResNet's unit counts (18, 34: basic; 50, 101, 152, 200: bottleneck, 200 = ``[3, 24, 36, 3]``),
  other depths ``(depth - 2) / 8`` (basic) or ``(depth - 2) / 12`` (bottleneck) units per stage,
  as the reference does.

The published PyramidNet-200 (α = 450) trains with dropout 0.5 before the classifier: the
variant ``pyramidnet200_a450`` sets ``dropout_rate=0.5`` (the reference code has no dropout;
it is no architecture argument, so any model can take it).

Not installable (the reference needs CUDA), so the suite pins outputs with golden tensors and
checks the distinctive operations (the padded, pooled shortcut; the width schedule; no ReLU
after the sum) by hand-computed cases. ``TORCH_KEY_MAPS`` maps the reference's state dicts
(``conv1``, ``bn1``, ``layer{i}.{j}.{bn,conv}{k}``, ``bn_final``, ``fc``), the format of the
authors' released PyramidNet-101 (α = 360) checkpoint, onto these layers.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_int, check_number, check_rate
from keras_lightnets.layers import bn_act_conv, conv_bn_act, residual_add
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant

__all__ = ["TORCH_KEY_MAPS", "PyramidNet", "pyramidal_unit", "pyramidnet_widths", "stage_units"]

LAYOUTS = ("imagenet", "cifar")
STEM_WIDTH = {"cifar": 16, "imagenet": 64}
STAGE_STRIDES = {"cifar": (1, 2, 2), "imagenet": (1, 2, 2, 2)}
# The reference's ImageNet table: depth → (bottleneck, units per stage).
IMAGENET_LAYOUTS = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
    200: (True, (3, 24, 36, 3)),
}
EXPANSION = 4  # a bottleneck unit outputs 4x its width
BN = {"bn_epsilon": 1e-5, "bn_momentum": 0.9}  # PyTorch's defaults


def stage_units(depth, bottleneck, layout):
    """Units per stage: ``(n, n, n)`` on CIFAR, the reference's table (or its formula) on ImageNet.

    Raises ``ValueError`` naming ``depth`` and what it allows when it fits no formula.
    """
    convs = 3 if bottleneck else 2  # convolutions per unit
    kind = "bottleneck" if bottleneck else "basic"
    if layout == "imagenet" and depth in IMAGENET_LAYOUTS:
        return IMAGENET_LAYOUTS[depth][1]
    stages = len(STAGE_STRIDES[layout])
    step = convs * stages
    if (depth - 2) % step or depth - 2 < step:
        table = f" or one of the table's {sorted(IMAGENET_LAYOUTS)}" if layout == "imagenet" else ""
        raise ValueError(
            f"`depth` of a {layout} PyramidNet with {kind} units must be 2 + {step} n (n >= 1: {stages} stages of "
            f"n units of {convs} convolutions){table}, e.g. {2 + step}, {2 + 2 * step}, ...; got {depth}"
        )
    return ((depth - 2) // step,) * stages


def pyramidnet_widths(units, alpha, start):
    """The width of every unit, stage by stage: ``round(start + k · α / N)`` for unit ``k`` of ``N``,
    accumulated one unit at a time in floating point as the reference does (``featuremap_dim +=
    addrate``), rounded with Python's ``round``."""
    addrate = alpha / (sum(units) * 1.0)
    dim = float(start)
    widths = []
    for count in units:
        stage = []
        for _ in range(count):
            dim = dim + addrate
            stage.append(int(round(dim)))
        widths.append(tuple(stage))
    return tuple(widths)


def pyramidal_unit(x, width, strides=1, *, bottleneck=False, name):
    """One pyramidal residual unit: ``BN(F(x)) + pad(pool(x))`` with no activation after the sum.

    ``F`` is BN → conv3x3(stride) → BN → ReLU → conv3x3 (basic) or BN → 1x1 → BN → ReLU →
    3x3(stride) → BN → ReLU → 1x1 (x4) (bottleneck). The shortcut is ``x`` itself, average-pooled
    2x2/2 in ceil mode when the unit downsamples, with zero channels appended up to the unit's width.
    """
    if bottleneck:
        y = bn_act_conv(x, width, 1, activation=None, name=f"{name}_conv1", **BN)
        y = bn_act_conv(y, width, 3, strides, name=f"{name}_conv2", **BN)
        y = bn_act_conv(y, width * EXPANSION, 1, name=f"{name}_conv3", **BN)
    else:
        y = bn_act_conv(x, width, 3, strides, activation=None, name=f"{name}_conv1", **BN)
        y = bn_act_conv(y, width, 3, name=f"{name}_conv2", **BN)
    y = layers.BatchNormalization(epsilon=BN["bn_epsilon"], momentum=BN["bn_momentum"], name=f"{name}_bn")(y)
    shortcut = x
    if strides != 1:
        # PyTorch's AvgPool2d(2, 2, ceil_mode=True): TensorFlow's "same" pads the odd row at the end
        # and leaves it out of the average, the divisor PyTorch uses for a window past the edge.
        shortcut = layers.AveragePooling2D(2, 2, padding="same", name=f"{name}_shortcut_pool")(x)
    return residual_add(y, shortcut, name=f"{name}_add")


def _body(x, *, depth, alpha, bottleneck, layout):
    units = stage_units(depth, bottleneck, layout)
    widths = pyramidnet_widths(units, alpha, STEM_WIDTH[layout])
    tracker = FeatureTracker()
    if layout == "cifar":
        x = conv_bn_act(x, STEM_WIDTH[layout], 3, activation=None, name="stem", **BN)
        tracker.add(x)
    else:
        x = conv_bn_act(x, STEM_WIDTH[layout], 7, 2, name="stem", **BN)
        tracker.add(x, 2)
        # Zero padding equals PyTorch's -inf padding here: the pool follows a ReLU (values >= 0).
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, 2, name="stem_pool")(x)
        tracker.stride *= 2
    last = len(units) - 1
    for i, (stage_widths, stage_stride) in enumerate(zip(widths, STAGE_STRIDES[layout], strict=True)):
        for j, width in enumerate(stage_widths):
            stride = stage_stride if j == 0 else 1
            x = pyramidal_unit(x, width, stride, bottleneck=bottleneck, name=f"s{i + 1}_b{j + 1}")
        if i < last:
            tracker.add(x, stage_stride)
    x = layers.BatchNormalization(epsilon=BN["bn_epsilon"], momentum=BN["bn_momentum"], name="final_bn")(x)
    x = layers.ReLU(name="final_act")(x)
    tracker.add(x, STAGE_STRIDES[layout][-1])
    return x, tracker.maps


@family_constructor
def PyramidNet(
    depth=101,
    alpha=360,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    bottleneck=None,
    layout="imagenet",
    dropout_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """An additive PyramidNet of ``depth`` layers widened by ``alpha`` in all.

    Args:
        depth: convolutional and fully connected layers. CIFAR: ``2 + 6 n`` (basic units) or
            ``2 + 9 n`` (bottleneck); ImageNet: 18, 34 (basic), 50, 101, 152, 200 (bottleneck),
            or ``2 + 8 n`` / ``2 + 12 n``.
        alpha: the total widening α (> 0): the last unit is ``α`` channels wider than the stem
            (times 4 for a bottleneck's output).
        bottleneck: bottleneck units; ``None``: basic on CIFAR, the reference's table on
            ImageNet (bottleneck from depth 50, and for depths outside the table).
        layout: ``"imagenet"`` (224 px, 7x7 stem, 4 stages) or ``"cifar"`` (32 px, 3x3 stem, 3 stages).
        dropout_rate: before the classifier (0.5 for the published PyramidNet-200, α = 450).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(layout, "layout", LAYOUTS)
    check_int(depth, "depth", 3)
    check_number(alpha, "alpha", minimum=0, exclusive_minimum=True, hint=" (the total widening α)")
    if bottleneck is None:
        bottleneck = IMAGENET_LAYOUTS.get(depth, (True,))[0] if layout == "imagenet" else False
    check_bool(bottleneck, "bottleneck")
    if layout == "imagenet" and depth in IMAGENET_LAYOUTS and IMAGENET_LAYOUTS[depth][0] != bottleneck:
        kind = "bottleneck" if IMAGENET_LAYOUTS[depth][0] else "basic"
        raise ValueError(
            f"`bottleneck={bottleneck}`: the ImageNet PyramidNet-{depth} of the reference table has {kind} units "
            f"(18, 34: basic; 50, 101, 152, 200: bottleneck); got depth={depth}"
        )
    stage_units(depth, bottleneck, layout)  # checks the depth
    check_rate(dropout_rate, "dropout_rate")
    suffix = ("_bottleneck" if bottleneck else "") + ("_cifar" if layout == "cifar" else "")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, **FAMILY.architecture_of(locals())),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"pyramidnet{depth}_a{alpha:g}{suffix}",
        # Each stride-2 step needs at least 2 pixels: 2 steps on CIFAR (4 px), 5 on ImageNet.
        min_size=4 if layout == "cifar" else 32,
    )


# --- weight porting --------------------------------------------------------------------
# dyhan0920/PyramidNet-PyTorch: conv1, bn1, layer{i}.{j}.{bn,conv}{k}, bn_final, fc (optionally
# behind DataParallel's "module."). A unit's BN k precedes its conv k; its last BN (bn3 basic,
# bn4 bottleneck) follows the last conv.
def _torch_key_map(bottleneck):
    last_bn = 4 if bottleneck else 3

    def bn(m):
        unit = f"s{m[1]}_b{int(m[2]) + 1}"
        return f"{unit}_bn" if int(m[3]) == last_bn else f"{unit}_conv{m[3]}_bn"

    return (
        (r"(?:module\.)?conv1", "stem_conv"),
        (r"(?:module\.)?bn1", "stem_bn"),
        (r"(?:module\.)?layer(\d)\.(\d+)\.bn(\d)", bn),
        (r"(?:module\.)?layer(\d)\.(\d+)\.conv(\d)", lambda m: f"s{m[1]}_b{int(m[2]) + 1}_conv{m[3]}_conv"),
        (r"(?:module\.)?bn_final", "final_bn"),
        (r"(?:module\.)?fc", "predictions"),
    )


TORCH_KEY_MAPS = {False: _torch_key_map(False), True: _torch_key_map(True)}

# The reference's CIFAR normalization (train.py): mean (125.3, 123.0, 113.9) / 255, std (63.0, 62.1, 66.7) / 255.
CIFAR_PREPROCESSING = Preprocessing(
    input_size=(32, 32, 3),
    mean=(125.3 / 255, 123.0 / 255, 113.9 / 255),
    std=(63.0 / 255, 62.1 / 255, 66.7 / 255),
    crop_pct=1.0,
)

_PORT = "dyhan0920/PyramidNet-PyTorch PyramidNet.py (parameters, MACs); paper {}"
_CIFAR = _PORT.format("(CIFAR)")
_IMAGENET = _PORT.format("(ImageNet, 224 single crop)")
# Golden tensors for one model of each code path: basic CIFAR, bottleneck CIFAR, ImageNet (bottleneck).
COMPARED = ("pyramidnet110_a48_cifar10", "pyramidnet164_a48_bottleneck_cifar10", "pyramidnet101_a360")

# name: (depth, alpha, bottleneck, layout, classes, params, MACs (M) at the input size, ImageNet top-1, source)
TABLE = {
    "pyramidnet101_a360": (101, 360, True, "imagenet", 1000, 42_455_070, 8696.7, 78.02,
                           "dyhan0920/PyramidNet-PyTorch README (PyramidNet-v1-101, α=360: 42.5M, top-1 error 21.98)"),
    "pyramidnet200_a300": (200, 300, True, "imagenet", 1000, 62_368_168, 16550.5, 79.53, _IMAGENET),
    "pyramidnet200_a450": (200, 450, True, "imagenet", 1000, 116_775_213, 29196.8, 79.89,
                           _PORT.format("(ImageNet, 224 single crop, with dropout 0.5)")),
    "pyramidnet110_a48_cifar10": (110, 48, False, "cifar", 10, 1_772_706, 403.8, None, _CIFAR),
    "pyramidnet110_a48_cifar100": (110, 48, False, "cifar", 100, 1_778_556, 403.8, None, _CIFAR),
    "pyramidnet110_a84_cifar10": (110, 84, False, "cifar", 10, 3_904_446, 772.2, None, _CIFAR),
    "pyramidnet110_a270_cifar10": (110, 270, False, "cifar", 10, 28_485_477, 4718.0, None, _CIFAR),
    "pyramidnet164_a48_bottleneck_cifar10": (164, 48, True, "cifar", 10, 1_715_442, 388.4, None, _CIFAR),
    "pyramidnet164_a270_bottleneck_cifar10": (164, 270, True, "cifar", 10, 27_216_021, 4569.8, None, _CIFAR),
    "pyramidnet200_a240_bottleneck_cifar10": (200, 240, True, "cifar", 10, 26_752_702, 4519.6, None, _CIFAR),
    "pyramidnet236_a220_bottleneck_cifar10": (236, 220, True, "cifar", 10, 26_969_046, 4582.7, None, _CIFAR),
    "pyramidnet272_a200_bottleneck_cifar10": (272, 200, True, "cifar", 10, 26_210_842, 4488.8, None, _CIFAR),
}  # fmt: skip


def _variant(name, depth, alpha, bottleneck, layout, classes, params, macs_m, top1, source):
    kwargs = {"depth": depth, "alpha": alpha, "bottleneck": bottleneck, "layout": layout}
    defaults = {} if classes == 1000 else {"classes": classes}
    if name == "pyramidnet200_a450":
        defaults["dropout_rate"] = 0.5
    preprocessing = CIFAR_PREPROCESSING if layout == "cifar" else None
    return Variant(
        name,
        kwargs,
        Reference(params, macs_m, top1, source, input_size=(preprocessing or Preprocessing()).input_size),
        equals="golden",
        preprocessing=preprocessing,
        layouts={"pytorch": TORCH_KEY_MAPS[bottleneck]},
        defaults=defaults,
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="pyramidnet",
    constructor=PyramidNet,
    architecture_args=("depth", "alpha", "bottleneck", "layout"),
    # ImageNet first: the family's first variant is its default layout.
    variants=tuple(_variant(name, *row) for name, row in TABLE.items()),
)
