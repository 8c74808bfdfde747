"""MobileNetV2 (Sandler et al., 2018, arXiv 1801.04381).

Reference: keras.applications ``MobileNetV2``. torchvision/timm have the same
parameters but pad stride-2 convs symmetrically (``padding="symmetric"``).
"""

from functools import partial

from keras_lightnets.layers import conv_bn_act, inverted_residual
from keras_lightnets.models._common import (
    FeatureTracker,
    check_choice,
    check_positive,
    check_rate,
    dense_classifier,
    finalize,
    make_inputs,
    validate_common,
    width_tag,
)

# Table 2 of the paper: (expansion t, output channels c, repeats n, first stride s).
STEM_FILTERS = 32
BLOCKS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
HEAD_FILTERS = 1280

PADDINGS = ("same", "symmetric")


def make_divisible(value, divisor=8, min_value=None):
    """Round to a multiple of ``divisor``, never more than 10 % down (TF-slim's rule)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def MobileNetV2(
    alpha=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    dropout_rate=0.0,
    drop_path_rate=0.0,
    activation="relu6",
    padding="same",
    bn_epsilon=1e-3,
    features_only=False,
):
    """MobileNetV2 with width multiplier ``alpha``.

    Args:
        alpha: width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 are published);
            block widths are ``make_divisible(int(c * alpha), 8)``, the stem is
            ``make_divisible(32 * alpha, 8)``, the head 1280 unless ``alpha > 1``.
        dropout_rate: before the classifier (keras.applications: none; the
            torchvision recipe: 0.2).
        drop_path_rate: stochastic depth, rising linearly over the blocks.
        padding: ``"same"`` (keras.applications) or ``"symmetric"`` (torchvision/timm).
        bn_epsilon: 1e-3 (Keras) or 1e-5 (PyTorch).
        features_only: return the last feature map at each stride as a list in
            stride order, outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).

    The model expects inputs scaled to [-1, 1] (see its registry entry).
    """
    check_positive(alpha, "alpha")
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    check_choice(padding, "padding", PADDINGS)
    check_positive(bn_epsilon, "bn_epsilon")
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

    norm = dict(bn_epsilon=bn_epsilon, bn_momentum=0.999)
    inputs, x = make_inputs(input_tensor, input_shape)
    tracker = FeatureTracker()
    x = conv_bn_act(
        x, make_divisible(STEM_FILTERS * alpha), 3, 2, activation=activation, padding=padding, name="stem", **norm
    )
    tracker.add(x, 2)

    num_blocks = sum(repeats for _, _, repeats, _ in BLOCKS)
    index = 0
    for expansion, channels, repeats, first_stride in BLOCKS:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = inverted_residual(
                x,
                make_divisible(int(channels * alpha)),
                stride,
                expanded=x.shape[-1] * expansion,
                activation=activation,
                dw_activation=activation,
                residual="full",
                drop_path_rate=drop_path_rate * index / (num_blocks - 1),
                padding=padding,
                name=f"block{index + 1}",
                **norm,
            )
            tracker.add(x, stride)
            index += 1

    head_filters = make_divisible(HEAD_FILTERS * alpha) if alpha > 1.0 else HEAD_FILTERS
    x = conv_bn_act(x, head_filters, 1, activation=activation, padding="valid", name="head", **norm)

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
        name=name or f"mobilenetv2_{width_tag(alpha)}",
    )
