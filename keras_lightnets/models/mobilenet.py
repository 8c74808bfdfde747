"""MobileNetV1 (Howard et al., 2017, arXiv 1704.04861).

Reference: keras.applications ``MobileNet`` (default conventions) and timm
``mobilenetv1_100`` (``padding="symmetric", bn_epsilon=1e-5``).
"""

from functools import partial

from keras_lightnets.checks import check_choice, check_positive, check_rate, check_width
from keras_lightnets.layers import conv_bn_act, depthwise_separable
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head, width_tag
from keras_lightnets.models.variant import INCEPTION_PREPROCESSING, Family, Reference, Variant, keras_source

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


def _body(x, *, alpha, depth_multiplier, activation, padding, bn_epsilon):
    """The stem and the 13 depthwise separable blocks."""
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": 0.99 if padding == "keras" else 0.9}
    stem_padding, block_padding = ("same", "bottom_right") if padding == "keras" else ("symmetric", "symmetric")
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
    return x, tracker.maps


@family_constructor
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
    include_preprocessing=False,
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

        include_preprocessing: the model takes RGB pixels scaled to [0, 1] and scales them
            to [-1, 1] itself; otherwise it takes inputs in [-1, 1].

    The standard keras.applications arguments behave as there.
    """
    check_width(alpha, "alpha", params_at_one=4_231_976)  # the 1.0 variant's parameters
    check_positive(depth_multiplier, "depth_multiplier", integer=True)
    check_rate(dropout_rate, "dropout_rate")
    check_choice(padding, "padding", PADDINGS)
    check_positive(bn_epsilon, "bn_epsilon")
    if int(STEM_FILTERS * alpha) < 1:
        raise ValueError(f"`alpha` must be at least {1 / STEM_FILTERS} so every layer keeps a channel, got {alpha}")
    # keras.applications ends in GAP → Dropout → 1x1 conv → Reshape; a Dense
    # layer is the same function with the same parameters.
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, **FAMILY.architecture_of(locals())),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"mobilenetv1_{width_tag(alpha)}",
    )


# --- weight porting --------------------------------------------------------------------
# timm mobilenetv1_100 → MobileNet(1.0, padding="symmetric", bn_epsilon=1e-5).
# blocks.S.B: stage S (0-4, of 1, 2, 2, 6, 2 blocks), block B in it; our blocks are numbered
# 1-13 through the stages, stage S starting at block (1, 2, 4, 6, 12)[S].
TIMM_KEY_MAP = (
    (r"conv_stem", "stem_conv"),
    (r"bn1", "stem_bn"),
    (r"blocks\.(\d)\.(\d+)\.conv_dw", lambda m: f"block{(1, 2, 4, 6, 12)[int(m[1])] + int(m[2])}_dw_conv"),
    (r"blocks\.(\d)\.(\d+)\.bn1", lambda m: f"block{(1, 2, 4, 6, 12)[int(m[1])] + int(m[2])}_dw_bn"),
    (r"blocks\.(\d)\.(\d+)\.conv_pw", lambda m: f"block{(1, 2, 4, 6, 12)[int(m[1])] + int(m[2])}_pw_conv"),
    (r"blocks\.(\d)\.(\d+)\.bn2", lambda m: f"block{(1, 2, 4, 6, 12)[int(m[1])] + int(m[2])}_pw_bn"),
    (r"classifier", "predictions"),
)


# How keras.applications spells each alpha in its weight files' names.
KERAS_ALPHA_TEXT = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}


def _variant(alpha, params, macs_m, top1):
    tag = width_tag(alpha)
    return Variant(
        f"mobilenetv1_{tag}",
        {"alpha": alpha},
        Reference(
            params, macs_m, top1, "keras.applications MobileNet" + ("; timm mobilenetv1_100" if alpha == 1.0 else "")
        ),
        equals=f"keras:MobileNet(alpha={alpha})",
        # keras.applications' 224-pixel file; its source states no digest: the host's MD5 is checked
        weights=(keras_source(f"mobilenet/mobilenet_{KERAS_ALPHA_TEXT[alpha]}_224_tf.h5", top1),),
    )


FAMILY = Family(
    name="mobilenetv1",
    constructor=MobileNet,
    architecture_args=("alpha", "depth_multiplier", "activation", "padding", "bn_epsilon"),
    preprocessing=INCEPTION_PREPROCESSING,
    variants=(
        _variant(0.25, 470_072, 41.0, 50.6),
        _variant(0.5, 1_331_592, 149.5, 63.7),
        _variant(0.75, 2_585_560, 325.4, 68.4),
        _variant(1.0, 4_231_976, 568.7, 70.6),
    ),
)
