"""MobileNetV1 (Howard et al., 2017, arXiv 1704.04861).

Reference: keras.applications ``MobileNet`` (default conventions) and timm
``mobilenetv1_100`` (``padding="symmetric", bn_epsilon=1e-5``).
"""

from functools import partial

from keras_lightnets.layers import conv_bn_act, depthwise_separable
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

# Table 1 of the paper: a 3x3/2 stem of 32 filters, then 13 depthwise
# separable blocks as (pointwise filters, stride). Widths scale as int(f * alpha).
STEM_FILTERS = 32
BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]

# "keras": TF "same" padding for the stem and keras.applications' fixed
# bottom/right pad before each stride-2 depthwise conv. "symmetric": PyTorch.
PADDINGS = ("keras", "symmetric")


def MobileNet(
    alpha=1.0,
    depth_multiplier=1,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    dropout_rate=1e-3,
    activation="relu6",
    padding="keras",
    bn_epsilon=1e-3,
    features_only=False,
):
    """MobileNetV1 with width multiplier ``alpha``.

    Args:
        alpha: width multiplier (0.25, 0.5, 0.75, 1.0 are the published ones);
            every width is ``int(f * alpha)``.
        depth_multiplier: channel multiplier of the depthwise convolutions.
        dropout_rate: before the classifier (keras.applications uses 1e-3).
        padding: ``"keras"`` (keras.applications) or ``"symmetric"`` (timm).
        bn_epsilon: 1e-3 (Keras) or 1e-5 (timm).
        features_only: return the last feature map at each stride as a list in
            stride order, outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).

    The standard keras.applications arguments behave as there. The model
    expects inputs scaled to [-1, 1] (see its registry entry's mean/std).
    """
    check_positive(alpha, "alpha")
    check_positive(depth_multiplier, "depth_multiplier", integer=True)
    check_rate(dropout_rate, "dropout_rate")
    check_choice(padding, "padding", PADDINGS)
    check_positive(bn_epsilon, "bn_epsilon")
    if int(STEM_FILTERS * alpha) < 1:
        raise ValueError(f"`alpha` must be at least {1 / STEM_FILTERS} so every layer keeps a channel, got {alpha}")
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

    norm = dict(bn_epsilon=bn_epsilon, bn_momentum=0.99 if padding == "keras" else 0.9)
    stem_padding, block_padding = ("same", "bottom_right") if padding == "keras" else ("symmetric", "symmetric")
    inputs, x = make_inputs(input_tensor, input_shape)
    tracker = FeatureTracker()
    x = conv_bn_act(
        x, int(STEM_FILTERS * alpha), 3, 2, activation=activation, padding=stem_padding, name="stem", **norm
    )
    tracker.add(x, 2)
    for index, (filters, stride) in enumerate(BLOCKS, start=1):
        x = depthwise_separable(
            x,
            int(filters * alpha),
            stride,
            depth_multiplier=depth_multiplier,
            activation=activation,
            padding=block_padding,
            name=f"block{index}",
            **norm,
        )
        tracker.add(x, stride)

    # keras.applications ends in GAP → Dropout → 1x1 conv → Reshape; a Dense
    # layer is the same function with the same parameters.
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
        name=name or f"mobilenetv1_{width_tag(alpha)}",
    )
