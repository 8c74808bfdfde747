"""SqueezeNet (Iandola et al., 2016, arXiv 1602.07360), versions 1.0 and 1.1, with the paper's bypasses.

Reference: torchvision ``squeezenet1_0`` / ``squeezenet1_1``; bypass variants
from the paper (section 6) and songhan/SqueezeNet-Residual.
"""

from keras import initializers, layers

from keras_lightnets.layers import StochasticDepth, conv_bn_act, fire, max_pool_ceil
from keras_lightnets.models._common import (
    FeatureTracker,
    check_choice,
    check_rate,
    finalize,
    make_inputs,
    validate_common,
)

# Fire modules 2..9 as (squeeze, expand1x1, expand3x3).
FIRES = {
    2: (16, 64, 64),
    3: (16, 64, 64),
    4: (32, 128, 128),
    5: (32, 128, 128),
    6: (48, 192, 192),
    7: (48, 192, 192),
    8: (64, 256, 256),
    9: (64, 256, 256),
}
# conv1 (filters, kernel) and the fire modules a 3x3/2 ceil-mode max pool follows
# (one also follows conv1).
VERSIONS = {
    "1.0": {"conv1": (96, 7), "pool_after": (4, 8)},
    "1.1": {"conv1": (64, 3), "pool_after": (3, 5)},
}
# Simple bypass: identity around the fires whose input and output widths match.
# Complex bypass adds a 1x1 conv (with bias) around the others.
IDENTITY_BYPASS = (3, 5, 7, 9)
CONV_BYPASS = (2, 4, 6, 8)
BYPASSES = (None, "simple", "complex")
# torchvision's initialization: kaiming_uniform_ (fan-in, gain sqrt(2): Keras's HeUniform)
# everywhere, normal(0, 0.01) for conv10, zero biases. Without BatchNorm it decides whether
# the network trains: under Keras's default Glorot init the signal shrinks at every layer
# (measured at init: fire9's mean output is 1/4000 of conv1's) and the model stayed at chance.
KERNEL_INITIALIZER = "he_uniform"
CLASSIFIER_STDDEV = 0.01
DEFAULT_DROPOUT = 0.5


def SqueezeNet(
    version="1.0",
    bypass=None,
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
):
    """SqueezeNet ``version`` "1.0" or "1.1", optionally with ``bypass`` "simple" or "complex".

    All convolutions have biases and no BatchNorm; max pools are 3x3/2 in
    PyTorch's ceil mode, which needs a static input size. The classifier is
    Dropout → 1x1 conv (``conv10``) → ReLU → global average pool.

    Args:
        version: "1.0" (conv1 96@7x7) or "1.1" (conv1 64@3x3, 2.4x fewer MACs).
        bypass: None, "simple" (identity shortcuts around fire3/5/7/9) or
            "complex" (plus 1x1-conv shortcuts around fire2/4/6/8).
        dropout_rate: before conv10 (0.5).
        drop_path_rate: stochastic depth on the bypassed fire modules.
        features_only: return the last feature map at each stride as a list in
            stride order, outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).
    """
    check_choice(version, "version", tuple(VERSIONS))
    check_choice(bypass, "bypass", BYPASSES)
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    input_shape, weights_path = validate_common(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        features_only=features_only,
        static=True,
    )

    config = VERSIONS[version]
    identity_bypass = IDENTITY_BYPASS if bypass else ()
    conv_bypass = CONV_BYPASS if bypass == "complex" else ()
    inputs, x = make_inputs(input_tensor, input_shape)
    tracker = FeatureTracker()
    filters, kernel = config["conv1"]
    x = conv_bn_act(
        x,
        filters,
        kernel,
        2,
        use_bias=True,
        use_bn=False,
        padding="valid",
        kernel_initializer=KERNEL_INITIALIZER,
        name="conv1",
    )
    tracker.add(x, 2)
    x = tracker.add(max_pool_ceil(x, name="pool1"), 2)
    for index, (squeeze, expand1x1, expand3x3) in FIRES.items():
        shortcut = x
        x = fire(x, squeeze, expand1x1, expand3x3, kernel_initializer=KERNEL_INITIALIZER, name=f"fire{index}")
        if index in conv_bypass:
            shortcut = layers.Conv2D(
                x.shape[-1], 1, kernel_initializer=KERNEL_INITIALIZER, name=f"fire{index}_bypass_conv"
            )(shortcut)
        if index in identity_bypass or index in conv_bypass:
            if drop_path_rate > 0:
                x = StochasticDepth(drop_path_rate, name=f"fire{index}_drop_path")(x)
            x = layers.Add(name=f"fire{index}_add")([x, shortcut])
        tracker.add(x)
        if index in config["pool_after"]:
            x = tracker.add(max_pool_ceil(x, name=f"pool{index}"), 2)

    def top(x):
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="dropout")(x)
        x = conv_bn_act(
            x,
            classes,
            1,
            use_bias=True,
            use_bn=False,
            activation="relu",
            kernel_initializer=initializers.RandomNormal(stddev=CLASSIFIER_STDDEV),
            name="conv10",
        )
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Activation(classifier_activation, name="predictions")(x)

    suffix = "" if bypass is None else f"_{bypass}_bypass"
    return finalize(
        inputs,
        x,
        tracker.maps,
        top=top,
        include_top=include_top,
        pooling=pooling,
        features_only=features_only,
        weights_path=weights_path,
        name=name or f"squeezenet{version.replace('.', '_')}{suffix}",
    )
