"""ReXNet (Han et al., "Rethinking Channel Dimensions for Efficient Model Design", arXiv 2007.00992).

Reference: clovaai/rexnet ``rexnetv1.py`` and timm ``rexnet_*`` (same model).
PyTorch conventions: symmetric padding, BatchNorm epsilon 1e-5.
"""

from functools import partial

from keras_lightnets.layers import conv_bn_act, inverted_residual
from keras_lightnets.models._common import (
    FeatureTracker,
    check_positive,
    check_rate,
    dense_classifier,
    finalize,
    make_inputs,
    validate_common,
    width_tag,
)

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

    Inputs are normalized with ImageNet mean/std (see the registry entry).
    """
    check_positive(width, "width")
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    if int(HEAD_CHANNELS * width) < 1:
        raise ValueError(f"`width` must be at least {1 / HEAD_CHANNELS} so the head keeps a channel, got {width}")
    input_shape, weights_path = validate_common(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        features_only=features_only,
    )

    norm = dict(bn_epsilon=1e-5, bn_momentum=0.9)
    inputs, x = make_inputs(input_tensor, input_shape)
    tracker = FeatureTracker()
    x = conv_bn_act(x, stem_channels(width), 3, 2, activation=activation, padding="symmetric", name="stem", **norm)
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
            se_hidden=expanded // SE_DIVISOR if use_se else None,
            se_use_bn=True,
            dw_activation_after_se=True,
            residual="partial",
            drop_path_rate=drop_path_rate * index / (len(config) - 1),
            padding="symmetric",
            name=f"block{index + 1}",
            **norm,
        )
        tracker.add(x, stride)

    x = conv_bn_act(x, int(HEAD_CHANNELS * width), 1, activation=activation, padding="valid", name="head", **norm)

    top = partial(
        dense_classifier, classes=classes, classifier_activation=classifier_activation, dropout_rate=dropout_rate
    )
    return finalize(
        inputs,
        x,
        tracker.maps,
        top=top,
        include_top=include_top,
        pooling=pooling,
        features_only=features_only,
        weights_path=weights_path,
        name=name or f"rexnet_{width_tag(width)}",
    )
