"""SqueezeNet (Iandola et al., 2016, arXiv 1602.07360), versions 1.0 and 1.1, with the paper's bypasses.

Reference: torchvision ``squeezenet1_0`` / ``squeezenet1_1``; bypass variants
from the paper (section 6) and songhan/SqueezeNet-Residual.
"""

from functools import partial

from keras import initializers, layers

from keras_lightnets.checks import check_choice, check_rate
from keras_lightnets.layers import StochasticDepth, conv_bn_act, fire, max_pool_ceil
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model
from keras_lightnets.models.variant import Family, Reference, Variant, torchvision_source

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


def _body(x, *, version, bypass, drop_path_rate):
    """conv1, the eight fire modules (with their bypasses) and the ceil-mode max pools."""
    config = VERSIONS[version]
    identity_bypass = IDENTITY_BYPASS if bypass else ()
    conv_bypass = CONV_BYPASS if bypass == "complex" else ()
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
    return x, tracker.maps


def _head(x, *, classes, classifier_activation, dropout_rate):
    """Dropout → 1x1 conv (``conv10``) → ReLU → global average pool."""
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


@family_constructor
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
    include_preprocessing=False,
):
    """SqueezeNet ``version`` "1.0" or "1.1", optionally with ``bypass`` "simple" or "complex".

    All convolutions have biases and no BatchNorm; max pools are 3x3/2 in
    PyTorch's ceil mode (standard Keras pools for a static input size, a
    :class:`~keras_lightnets.layers.CeilMaxPool2D` where the size is unknown). The classifier is
    Dropout → 1x1 conv (``conv10``) → ReLU → global average pool.

    Args:
        version: "1.0" (conv1 96@7x7) or "1.1" (conv1 64@3x3, 2.4x fewer MACs).
        bypass: None, "simple" (identity shortcuts around fire3/5/7/9) or
            "complex" (plus 1x1-conv shortcuts around fire2/4/6/8).
        dropout_rate: before conv10 (0.5).
        drop_path_rate: stochastic depth on the bypassed fire modules.
        features_only: return the last feature map at each stride as a list in
            stride order, outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).
        include_preprocessing: the model takes RGB pixels scaled to [0, 1] and applies the
            ImageNet mean/std itself; otherwise it takes normalized inputs.
    """
    check_choice(version, "version", tuple(VERSIONS))
    check_choice(bypass, "bypass", BYPASSES)
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    suffix = "" if bypass is None else f"_{bypass}_bypass"
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, version=version, bypass=bypass, drop_path_rate=drop_path_rate),
        head=partial(_head, dropout_rate=dropout_rate),
        default_name=f"squeezenet{version.replace('.', '_')}{suffix}",
    )


# --- weight porting --------------------------------------------------------------------
# torchvision squeezenet1_0 / squeezenet1_1 → SqueezeNet(version), by version: ``features``
# interleaves the fire modules with ReLU and max pools (after fire4 and fire8 in 1.0, after
# fire3 and fire5 in 1.1), so fire N sits at a different index in each. classifier.1 is conv10.
TORCHVISION_KEY_MAPS = {
    "1.0": (
        (r"features\.0", "conv1_conv"),
        (r"features\.3\.(squeeze|expand1x1|expand3x3)", r"fire2_\1_conv"),
        (r"features\.4\.(squeeze|expand1x1|expand3x3)", r"fire3_\1_conv"),
        (r"features\.5\.(squeeze|expand1x1|expand3x3)", r"fire4_\1_conv"),
        (r"features\.7\.(squeeze|expand1x1|expand3x3)", r"fire5_\1_conv"),
        (r"features\.8\.(squeeze|expand1x1|expand3x3)", r"fire6_\1_conv"),
        (r"features\.9\.(squeeze|expand1x1|expand3x3)", r"fire7_\1_conv"),
        (r"features\.10\.(squeeze|expand1x1|expand3x3)", r"fire8_\1_conv"),
        (r"features\.12\.(squeeze|expand1x1|expand3x3)", r"fire9_\1_conv"),
        (r"classifier\.1", "conv10_conv"),
    ),
    "1.1": (
        (r"features\.0", "conv1_conv"),
        (r"features\.3\.(squeeze|expand1x1|expand3x3)", r"fire2_\1_conv"),
        (r"features\.4\.(squeeze|expand1x1|expand3x3)", r"fire3_\1_conv"),
        (r"features\.6\.(squeeze|expand1x1|expand3x3)", r"fire4_\1_conv"),
        (r"features\.7\.(squeeze|expand1x1|expand3x3)", r"fire5_\1_conv"),
        (r"features\.9\.(squeeze|expand1x1|expand3x3)", r"fire6_\1_conv"),
        (r"features\.10\.(squeeze|expand1x1|expand3x3)", r"fire7_\1_conv"),
        (r"features\.11\.(squeeze|expand1x1|expand3x3)", r"fire8_\1_conv"),
        (r"features\.12\.(squeeze|expand1x1|expand3x3)", r"fire9_\1_conv"),
        (r"classifier\.1", "conv10_conv"),
    ),
}


FAMILY = Family(
    name="squeezenet",
    constructor=SqueezeNet,
    architecture_args=("version", "bypass"),
    variants=(
        Variant(
            "squeezenet1_0",
            {"version": "1.0", "bypass": None},
            Reference(1_248_424, 818.9, 58.092, "torchvision squeezenet1_0"),
            equals="torchvision:squeezenet1_0",
            key_map=TORCHVISION_KEY_MAPS["1.0"],
            weights=(torchvision_source("squeezenet1_0-b66bff10.pth", 58.092),),
        ),
        Variant(
            "squeezenet1_1",
            {"version": "1.1", "bypass": None},
            Reference(1_235_496, 349.2, 58.178, "torchvision squeezenet1_1"),
            equals="torchvision:squeezenet1_1",
            key_map=TORCHVISION_KEY_MAPS["1.1"],
            weights=(torchvision_source("squeezenet1_1-b8a52dc0.pth", 58.178),),
        ),
        Variant(
            "squeezenet1_0_simple_bypass",
            {"version": "1.0", "bypass": "simple"},
            Reference(1_248_424, 818.9, 60.38, "songhan/SqueezeNet-Residual"),
            equals="golden",
        ),
        Variant(
            "squeezenet1_0_complex_bypass",
            {"version": "1.0", "bypass": "complex"},
            Reference(1_589_672, 1165.3, None, "SqueezeNet paper, section 6"),
            equals="golden",
        ),
    ),
)
