"""ReXNet-lite (clovaai/rexnet ``rexnetv1_lite.py``): ReXNet without SE and SiLU, widths multiple of 8.

No installable reference exists; the tests pin parameter counts to the
official figures and outputs to golden tensors.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_rate, check_width
from keras_lightnets.layers import conv_bn_act, inverted_residual
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.mobilenetv2 import make_divisible
from keras_lightnets.models.rexnet import STAGE_REPEATS, STAGE_STRIDES
from keras_lightnets.models.scaffold import FeatureTracker, build_model, width_tag
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant

INITIAL_CHANNELS, FINAL_CHANNELS = 16, 164  # 164 added over 15 steps (not 180 over 16)
STEM_CHANNELS, HEAD_CHANNELS, CLASSIFIER_HIDDEN = 32, 1280, 1024
FIRST_EXPANSION, EXPANSION = 1, 6
DIVISOR = 8
DEFAULT_DROPOUT = 0.2
NORM = {"bn_epsilon": 1e-5, "bn_momentum": 0.9}  # PyTorch's BatchNorm defaults


def block_config(multiplier):
    """``[(out_channels, expansion, stride), ...]`` for the 16 blocks.

    Block 0 outputs ``make_divisible(round(16 m), 8)``; each later block adds
    ``164 / 15`` to the base before rounding (Python round, then multiple of 8).
    """
    num_blocks = sum(STAGE_REPEATS)
    strides, expansions = [], []
    for stage, (repeats, stride) in enumerate(zip(STAGE_REPEATS, STAGE_STRIDES, strict=True)):
        strides += [stride] + [1] * (repeats - 1)
        expansions += [FIRST_EXPANSION if stage == 0 else EXPANSION] * repeats
    base = INITIAL_CHANNELS / multiplier if multiplier < 1.0 else INITIAL_CHANNELS
    channels = [make_divisible(int(round(base * multiplier)), DIVISOR)]
    for _ in range(1, num_blocks):
        base += FINAL_CHANNELS / (num_blocks - 1)
        channels.append(make_divisible(int(round(base * multiplier)), DIVISOR))
    return list(zip(channels, expansions, strides, strict=True))


def stem_channels(multiplier):
    base = STEM_CHANNELS / multiplier if multiplier < 1.0 else STEM_CHANNELS
    return make_divisible(int(round(base * multiplier)), DIVISOR)


def head_channels(multiplier):
    return int(HEAD_CHANNELS * multiplier) if multiplier > 1.0 else HEAD_CHANNELS


def _body(x, *, width, drop_path_rate):
    """Stem, the 16 inverted-residual blocks and the 1x1 head conv."""
    tracker = FeatureTracker()
    x = conv_bn_act(x, stem_channels(width), 3, 2, activation="relu6", padding="symmetric", name="stem", **NORM)
    tracker.add(x, 2)
    config = block_config(width)
    for index, (channels, expansion, stride) in enumerate(config):
        x = inverted_residual(
            x,
            channels,
            stride,
            expanded=x.shape[-1] * expansion,
            activation="relu6",
            dw_activation="relu6",
            residual="partial",
            drop_path_rate=drop_path_rate * index / (len(config) - 1),
            padding="symmetric",
            name=f"block{index + 1}",
            **NORM,
        )
        tracker.add(x, stride)
    x = conv_bn_act(x, head_channels(width), 1, activation="relu6", padding="valid", name="head", **NORM)
    return x, tracker.maps


def _head(x, *, classes, classifier_activation, dropout_rate):
    """Pool first, then 1x1 conv (bias) to 1024 → BN → ReLU6 → Dropout → 1x1 conv (bias)."""
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = conv_bn_act(x, CLASSIFIER_HIDDEN, 1, activation="relu6", use_bias=True, name="pre_logits", **NORM)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = layers.Conv2D(classes, 1, name="logits")(x)
    x = layers.Flatten(name="flatten")(x)
    return layers.Activation(classifier_activation, name="predictions")(x)


@family_constructor
def ReXNetLite(
    width=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    dropout_rate=DEFAULT_DROPOUT,
    drop_path_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """ReXNet-lite with width multiplier ``width`` (1.0, 1.3, 1.5, 2.0 are published).

    ReLU6 after every expansion and depthwise conv, no SE. The classifier pools
    first, then 1x1 conv (bias) to 1024 → BN → ReLU6 → Dropout → 1x1 conv (bias).

    Args:
        width: width multiplier.
        dropout_rate: before the last conv (0.2).
        drop_path_rate: stochastic depth on the residual blocks, rising linearly.
        features_only: return the last feature map at each stride as a list in
            stride order, outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).
        include_preprocessing: the model takes RGB pixels scaled to [0, 1] and applies the
            ImageNet mean/std itself; otherwise it takes normalized inputs.
    """
    check_width(width, "width", params_at_one=4_796_873)  # the 1.0 variant's parameters
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, width=width, drop_path_rate=drop_path_rate),
        head=partial(_head, dropout_rate=dropout_rate),
        default_name=f"rexnet_lite_{width_tag(width)}",
    )


def _variant(width, params, macs_m, top1):
    return Variant(
        f"rexnet_lite_{width_tag(width)}",
        {"width": width},
        Reference(params, macs_m, top1, "clovaai/rexnet rexnetv1_lite.py"),
        equals="golden",  # the official code is not installable
    )


FAMILY = Family(
    name="rexnet_lite",
    constructor=ReXNetLite,
    architecture_args=("width",),
    preprocessing=Preprocessing(interpolation="bicubic"),
    variants=(
        _variant(1.0, 4_740_056, 406.8, 76.2),
        _variant(1.3, 6_747_960, 646.4, 77.8),
        _variant(1.5, 8_332_296, 836.4, 78.6),
        _variant(2.0, 12_966_200, 1498.3, 80.2),
    ),
)
