"""ResNetV2, the pre-activation ResNet (He et al., "Identity Mappings in Deep Residual Networks",
ECCV 2016).

Each bottleneck is BN → ReLU (the "pre-activation", shared with a projection shortcut) → 1x1
conv → BN → ReLU → 3x3 conv → BN → ReLU → 1x1 conv (4x wider), added to the identity or the
projection; nothing follows the sum. A BN → ReLU after the last block ("post-norm"), then
global average pool → dense. Stem: 7x7/2 conv (64, no BN: the first block normalizes) → 3x3/2
max pool. Four stages of ``(64, 128, 256, 512)``-wide bottlenecks.

Two published layouts, ``layout=``:

- ``"keras"``: keras.applications' ``ResNet50V2/101V2/152V2`` (TF-slim's ``resnet_v2``): the
  stride of a stage sits in its *last* block (3x3 conv stride 2, shortcut a 1x1/2 max pool
  of the block's input), so the stages end at strides 8, 16, 32, 32; the stem conv, the
  projection and each block's last 1x1 conv have biases; BN epsilon 1.001e-5, momentum 0.99; the
  stem pool reads a zero-padded map (keras.applications pads before pooling, and the stem conv
  has no ReLU: a zero can win the max).
- ``"timm"``: timm's ``resnetv2_50`` / ``resnetv2_101`` (the paper's own Torch code): the stride
  sits in a stage's *first* block (on its 3x3 conv and projection), no biases, BN epsilon 1e-5,
  PyTorch's ``MaxPool2d(3, 2, padding=1)`` (padding never wins).

Both take inputs in [-1, 1] (keras.applications' "tf" mode; timm's Inception mean and std).
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_int, check_rate
from keras_lightnets.layers import StochasticDepth, bn_act_conv, conv_bn_act
from keras_lightnets.layers.pooling import max_pool_symmetric
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import (
    INCEPTION_MEAN,
    INCEPTION_PREPROCESSING,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
)

__all__ = ["TIMM_KEY_MAP", "ResNetV2"]

# depth → bottlenecks per stage
DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)  # bottleneck widths; a block outputs EXPANSION times as many
EXPANSION = 4
STEM_WIDTH = 64
LAYOUTS = ("keras", "timm")
# What differs between the layouts.
LAYOUT_OPTIONS = {
    "keras": {
        "stride_in": "last",
        "stage_strides": (2, 2, 2, 1),
        "use_bias": True,
        "bn_epsilon": 1.001e-5,
        "bn_momentum": 0.99,
    },
    "timm": {
        "stride_in": "first",
        "stage_strides": (1, 2, 2, 2),
        "use_bias": False,
        "bn_epsilon": 1e-5,
        "bn_momentum": 0.9,
    },
}


def _bottleneck(x, width, stride, *, projection, use_bias, norm, drop_path_rate, name):
    """One pre-activation bottleneck: ``{name}_preact_bn/_act``, ``_shortcut_conv`` (or
    ``_shortcut_pool``), ``_conv1_conv``, ``_conv2_bn/_act/_conv``, ``_conv3_bn/_act/_conv``, ``_add``."""
    preact = layers.BatchNormalization(
        epsilon=norm["bn_epsilon"], momentum=norm["bn_momentum"], name=f"{name}_preact_bn"
    )(x)
    preact = layers.ReLU(name=f"{name}_preact_act")(preact)
    if projection:
        shortcut = layers.Conv2D(width * EXPANSION, 1, strides=stride, use_bias=use_bias, name=f"{name}_shortcut_conv")(
            preact
        )
    elif stride > 1:
        shortcut = layers.MaxPooling2D(1, stride, name=f"{name}_shortcut_pool")(x)
    else:
        shortcut = x
    y = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_conv1_conv")(preact)
    y = bn_act_conv(y, width, 3, stride, padding="symmetric", name=f"{name}_conv2", **norm)
    y = bn_act_conv(y, width * EXPANSION, 1, use_bias=use_bias, name=f"{name}_conv3", **norm)
    if drop_path_rate > 0:
        y = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(y)
        if projection:
            # Both branches one layer deeper: the weighted layers keep keras.applications' order
            # (graph order sorts by depth), so its files load into a model with stochastic depth too.
            shortcut = layers.Identity(name=f"{name}_shortcut_out")(shortcut)
    return layers.Add(name=f"{name}_add")([shortcut, y])  # keras.applications' order


def _stem(x, *, layout, use_bias):
    x = conv_bn_act(
        x, STEM_WIDTH, 7, 2, activation=None, use_bn=False, use_bias=use_bias, padding="symmetric", name="stem"
    )
    stem = x
    if layout == "keras":
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        return stem, layers.MaxPooling2D(3, 2, name="stem_pool")(x)
    return stem, max_pool_symmetric(x, 3, 2, name="stem_pool")


def _body(x, *, repeats, layout, drop_path_rate):
    options = LAYOUT_OPTIONS[layout]
    norm = {"bn_epsilon": options["bn_epsilon"], "bn_momentum": options["bn_momentum"]}
    tracker = FeatureTracker()
    stem, x = _stem(x, layout=layout, use_bias=options["use_bias"])
    tracker.add(stem, 2)
    tracker.add(x, 2)
    total, index = sum(repeats), 0
    for i, (width, blocks, stage_stride) in enumerate(zip(WIDTHS, repeats, options["stage_strides"], strict=True)):
        for j in range(blocks):
            strided = j == (blocks - 1 if options["stride_in"] == "last" else 0)
            stride = stage_stride if strided else 1
            x = _bottleneck(
                x,
                width,
                stride,
                projection=j == 0,
                use_bias=options["use_bias"],
                norm=norm,
                drop_path_rate=drop_path_rate * index / max(1, total - 1),
                name=f"s{i + 1}_b{j + 1}",
            )
            tracker.add(x, stride)
            index += 1
    x = layers.BatchNormalization(epsilon=norm["bn_epsilon"], momentum=norm["bn_momentum"], name="post_bn")(x)
    x = layers.ReLU(name="post_act")(x)
    tracker.add(x)
    return x, tracker.maps


def _check_blocks(blocks, depth):
    """``depth``'s bottlenecks per stage, or ``blocks`` checked: four positive integers."""
    if blocks is None:
        return DEPTHS[depth]
    if not isinstance(blocks, (tuple, list)) or len(blocks) != len(WIDTHS):
        raise ValueError(f"`blocks` must be {len(WIDTHS)} bottleneck counts, one per stage, got {blocks!r}")
    for count in blocks:
        check_int(count, "blocks", 1, hint=f" (each of {blocks!r})")
    return tuple(blocks)


@family_constructor
def ResNetV2(
    depth=50,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    layout="keras",
    blocks=None,
    dropout_rate=0.0,
    drop_path_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """Pre-activation ResNet-``depth`` (50, 101, 152), inputs in [-1, 1]
    (``include_preprocessing=True``: pixels in [0, 1]).

    Args:
        depth: 50, 101 or 152.
        layout: ``"keras"`` (keras.applications' ``ResNet50V2``...: stride in each stage's last
            block, biased convolutions, BN epsilon 1.001e-5) or ``"timm"`` (timm's
            ``resnetv2_50``: stride in each stage's first block, no biases, BN epsilon 1e-5).
        blocks: bottlenecks per stage, four positive integers, instead of ``depth``'s
            (ResNet-50: ``(3, 4, 6, 3)``); a published count is recorded as ``None``.
        dropout_rate: before the classifier (0 in both references).
        drop_path_rate: stochastic depth, rising linearly over the blocks.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(depth, "depth", tuple(DEPTHS))
    check_choice(layout, "layout", LAYOUTS)
    repeats = _check_blocks(blocks, depth)
    # A published count is recorded as its depth alone (what the variants state), another one with
    # `blocks`; either is named by its layers: 3 per bottleneck, the stem and the classifier.
    published = next((d for d, row in DEPTHS.items() if row == repeats), None)
    depth, blocks = (published, None) if published else (depth, repeats)
    layers_deep = 3 * sum(repeats) + 2
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, repeats=repeats, layout=layout, drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"resnet{layers_deep}_v2" if layout == "keras" else f"resnetv2_{layers_deep}",
    )


# --- weight porting --------------------------------------------------------------------
# timm resnetv2_*: stem.conv, stages.{i}.blocks.{j}.{norm1, downsample.conv, conv1, norm2, conv2,
# norm3, conv3}, norm, head.fc (a 1x1 conv, loaded into the Dense).
def _block(m):
    return f"s{int(m[1]) + 1}_b{int(m[2]) + 1}"


TIMM_BLOCK_PARTS = {
    "norm1": "preact_bn",
    "downsample.conv": "shortcut_conv",
    "conv1": "conv1_conv",
    "norm2": "conv2_bn",
    "conv2": "conv2_conv",
    "norm3": "conv3_bn",
    "conv3": "conv3_conv",
}
TIMM_KEY_MAP = (
    (r"stem\.conv", "stem_conv"),
    (
        r"stages\.(\d)\.blocks\.(\d+)\.(norm1|downsample\.conv|conv1|norm2|conv2|norm3|conv3)",
        lambda m: f"{_block(m)}_{TIMM_BLOCK_PARTS[m[3]]}",
    ),
    (r"norm", "post_bn"),
    (r"head\.fc", "predictions"),
)

# timm's "ResNet strikes back" A1h weights: evaluated at 224, crop 0.95, bicubic, Inception mean/std.
STRIKES_BACK = Preprocessing(mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.95, interpolation="bicubic")
# keras.applications' files: (file, MD5 from its source); top-1 from its documentation.
KERAS_WEIGHTS = {
    50: ("resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels.h5", "3ef43a0b657b3be2300d5770ece849e0", 76.0),
    101: ("resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels.h5", "6343647c601c52e1368623803854d971", 77.2),
    152: ("resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels.h5", "a49b44d1979771252814e80f8ec446f9", 78.0),
}
TIMM_TOP1 = {50: 80.410, 101: 82.042}  # timm's results table at 224


def _keras_variant(depth, params, macs_m, *, compared):
    path, md5, top1 = KERAS_WEIGHTS[depth]
    return Variant(
        f"resnet{depth}_v2",
        {"depth": depth},
        Reference(
            params, macs_m, top1, f"keras.applications ResNet{depth}V2 (top-1: its documentation; MACs measured)"
        ),
        equals=f"keras:ResNet{depth}V2",
        weights=(keras_source(path, top1, md5),),
        compared=compared,
    )


def _timm_variant(depth, params, macs_m, *, compared):
    return Variant(
        f"resnetv2_{depth}",
        {"depth": depth, "layout": "timm"},
        Reference(params, macs_m, TIMM_TOP1[depth], f"timm resnetv2_{depth}.a1h_in1k"),
        equals=f"timm:resnetv2_{depth}",
        key_map=TIMM_KEY_MAP,
        weights=(timm_source(f"resnetv2_{depth}.a1h_in1k", TIMM_TOP1[depth], "Apache-2.0 (timm)", STRIKES_BACK),),
        compared=compared,
    )


# Parameters: the references' (keras.applications' trainable weights; timm's parameters), to
# the integer. MACs: kl.profile at 224 (Keras publishes none; timm states 4.11 and 7.83 GMACs).
# Compared with their references in the suite: one model of each layout (50 layers); the deeper
# ones run the same code with more blocks and keep their exact parameter and MAC checks.
FAMILY = Family(
    name="resnetv2",
    constructor=ResNetV2,
    architecture_args=("depth", "layout", "blocks"),
    preprocessing=INCEPTION_PREPROCESSING,
    variants=(
        _keras_variant(50, 25_568_360, 3_482.3, compared=True),
        _keras_variant(101, 44_577_896, 7_194.5, compared=False),
        _keras_variant(152, 60_236_904, 10_906.7, compared=False),
        _timm_variant(50, 25_549_352, 4_089.2, compared=True),
        _timm_variant(101, 44_541_480, 7_801.4, compared=False),
    ),
)
