"""ReXNet (Han et al., "Rethinking Channel Dimensions for Efficient Model Design", arXiv 2007.00992).

Reference: clovaai/rexnet ``rexnetv1.py`` and timm ``rexnet_*`` (same model).
PyTorch conventions: symmetric padding, BatchNorm epsilon 1e-5.
"""

from functools import partial

from keras_lightnets.checks import check_rate, check_width
from keras_lightnets.layers import conv_bn_act, inverted_residual, squeeze_excite
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head, width_tag
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, timm_source

# The paper's channel configuration: 16 inverted-residual blocks in six stages
# whose output widths grow linearly from 16 by 180/16 per block, times the width.
STAGE_REPEATS = (1, 2, 2, 3, 3, 5)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2)
FIRST_EXPANSION, EXPANSION = 1, 6
SE_FIRST_STAGE = 2  # 0-based: stages 3 to 6 have squeeze-excite
SE_DIVISOR = 12  # SE hidden width = expanded channels // 12
INITIAL_CHANNELS, FINAL_CHANNELS = 16, 180
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
DEFAULT_DROPOUT = 0.2
NORM = {"bn_epsilon": 1e-5, "bn_momentum": 0.9}  # PyTorch's BatchNorm defaults


def block_config(width):
    """``[(out_channels, expansion, stride, use_se), ...]`` for the 16 blocks.

    Widths are ``round((16 + i * 180/16) * width)`` with Python's round-half-even
    (38.5 -> 38 at width 1.0), the base being ``16 / width`` below width 1. The
    base grows by repeated addition, as in the reference, so float rounding agrees.
    """
    num_blocks = sum(STAGE_REPEATS)
    strides, expansions, use_se = [], [], []
    for stage, (repeats, stride) in enumerate(zip(STAGE_REPEATS, STAGE_STRIDES, strict=True)):
        strides += [stride] + [1] * (repeats - 1)
        expansions += [FIRST_EXPANSION if stage == 0 else EXPANSION] * repeats
        use_se += [stage >= SE_FIRST_STAGE] * repeats
    base = INITIAL_CHANNELS / width if width < 1.0 else INITIAL_CHANNELS
    channels = []
    for _ in range(num_blocks):
        channels.append(round(base * width))
        base += FINAL_CHANNELS / num_blocks
    return list(zip(channels, expansions, strides, use_se, strict=True))


def stem_channels(width):
    return round((STEM_CHANNELS / width if width < 1.0 else STEM_CHANNELS) * width)


def _body(x, *, width, activation, drop_path_rate):
    """Stem, the 16 inverted-residual blocks and the 1x1 head conv."""
    tracker = FeatureTracker()
    x = conv_bn_act(x, stem_channels(width), 3, 2, activation=activation, padding="symmetric", name="stem", **NORM)
    tracker.add(x, 2)
    config = block_config(width)
    for index, (channels, expansion, stride, use_se) in enumerate(config):
        expanded = x.shape[-1] * expansion
        x = inverted_residual(
            x,
            channels,
            stride,
            expanded=expanded,
            activation=activation,
            dw_activation="relu6",
            se=partial(squeeze_excite, hidden=expanded // SE_DIVISOR, use_bn=True, **NORM) if use_se else None,
            dw_activation_after_se=True,
            residual="partial",
            drop_path_rate=drop_path_rate * index / (len(config) - 1),
            padding="symmetric",
            name=f"block{index + 1}",
            **NORM,
        )
        tracker.add(x, stride)
    x = conv_bn_act(x, int(HEAD_CHANNELS * width), 1, activation=activation, padding="valid", name="head", **NORM)
    return x, tracker.maps


@family_constructor
def ReXNet(
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
    activation="silu",
    features_only=False,
    include_preprocessing=False,
):
    """ReXNet with width multiplier ``width`` (0.9, 1.0, 1.3, 1.5, 2.0, 2.2, 3.0 are published).

    Block: expand 1x1 → BN → SiLU; depthwise 3x3 → BN → SE (from stage 3) →
    ReLU6; project 1x1 → BN; partial residual when stride 1 and the input is not
    wider than the output. Head: 1x1 conv to ``int(1280 * width)`` → BN → SiLU.

    Args:
        width: width multiplier.
        dropout_rate: before the classifier (0.2 in the paper).
        drop_path_rate: stochastic depth, rising linearly over the blocks (timm).
        activation: of the stem, expansion and head convs (SiLU in the paper).
        features_only: return the last feature map at each stride as a list in
            stride order, outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).
        include_preprocessing: the model takes RGB pixels scaled to [0, 1] and applies the
            ImageNet mean/std itself; otherwise it takes normalized inputs.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_width(width, "width", params_at_one=4_796_873)  # the 1.0 variant's parameters
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    if int(HEAD_CHANNELS * width) < 1:
        raise ValueError(f"`width` must be at least {1 / HEAD_CHANNELS} so the head keeps a channel, got {width}")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, width=width, activation=activation, drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"rexnet_{width_tag(width)}",
    )


# --- weight porting --------------------------------------------------------------------
# timm rexnet_100 / 130 / 150 / 200 / 300 (same layout at every width) → ReXNet(width).
# features.0-15 are the 16 inverted-residual blocks (conv_exp absent in the first),
# features.16 the 1x1 head conv.
TIMM_KEY_MAP = (
    (r"stem\.(conv|bn)", r"stem_\1"),
    (r"features\.16\.(conv|bn)", r"head_\1"),
    (r"features\.(\d+)\.conv_exp\.(conv|bn)", lambda m: f"block{int(m[1]) + 1}_expand_{m[2]}"),
    (r"features\.(\d+)\.conv_dw\.(conv|bn)", lambda m: f"block{int(m[1]) + 1}_dw_{m[2]}"),
    (r"features\.(\d+)\.se\.fc1", lambda m: f"block{int(m[1]) + 1}_se_reduce"),
    (r"features\.(\d+)\.se\.bn", lambda m: f"block{int(m[1]) + 1}_se_bn"),
    (r"features\.(\d+)\.se\.fc2", lambda m: f"block{int(m[1]) + 1}_se_expand"),
    (r"features\.(\d+)\.conv_pwl\.(conv|bn)", lambda m: f"block{int(m[1]) + 1}_project_{m[2]}"),
    (r"head\.fc", "predictions"),
)


# The official (NAVER) ImageNet weights in timm's layout on the Hugging Face Hub: timm's top-1 at
# 224, bicubic, crop 0.875 (this family's preprocessing).
TIMM_WEIGHTS = {"100": 77.862, "130": 79.492, "150": 80.322, "200": 81.636, "300": 82.780}


def _variant(width, params, macs_m, top1, in_timm=True):
    tag = width_tag(width)
    return Variant(
        f"rexnet_{tag}",
        {"width": width},
        Reference(params, macs_m, top1, "clovaai/rexnet" + (f"; timm rexnet_{tag}" if in_timm else "")),
        # timm registers five widths; its ReXNet class builds the official 0.9 and 2.2 as well
        equals=f"timm:rexnet_{tag}" if in_timm else f"timm:rexnet_100(width_mult={width})",
        key_map=TIMM_KEY_MAP,  # the official checkpoints use timm's layout too
        weights=(timm_source(f"rexnet_{tag}.nav_in1k", TIMM_WEIGHTS[tag], "MIT"),) if tag in TIMM_WEIGHTS else (),
    )


# clovaai/rexnet README top-1; timm's rexnet_* are the same models.
FAMILY = Family(
    name="rexnet",
    constructor=ReXNet,
    architecture_args=("width", "activation"),
    preprocessing=Preprocessing(interpolation="bicubic"),
    variants=(
        _variant(0.9, 4_091_257, 347.7, 77.2, in_timm=False),
        _variant(1.0, 4_796_873, 398.4, 77.9),
        _variant(1.3, 7_557_091, 662.2, 79.5),
        _variant(1.5, 9_728_593, 875.8, 80.3),
        _variant(2.0, 16_366_620, 1528.9, 81.6),
        # the COCO backbone width; no ImageNet result published
        _variant(2.2, 19_485_308, 1842.5, None, in_timm=False),
        _variant(3.0, 34_708_792, 3396.0, 82.8),
    ),
)
