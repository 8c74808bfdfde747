"""MobileNetV2 (Sandler et al., 2018, arXiv 1801.04381).

Reference: keras.applications ``MobileNetV2``. torchvision/timm have the same
parameters but pad stride-2 convs symmetrically (``padding="symmetric"``).
"""

from functools import partial

from keras_lightnets.checks import check_choice, check_positive, check_rate, check_width
from keras_lightnets.layers import conv_bn_act, inverted_residual
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head, width_tag
from keras_lightnets.models.variant import INCEPTION_PREPROCESSING, Family, Reference, Variant, keras_source

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


def _body(x, *, alpha, activation, padding, bn_epsilon, drop_path_rate):
    """The stem, the 17 inverted-residual blocks and the 1x1 head conv."""
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": 0.999}
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
    return x, tracker.maps


@family_constructor
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
    include_preprocessing=False,
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

        include_preprocessing: the model takes RGB pixels scaled to [0, 1] and scales them
            to [-1, 1] itself; otherwise it takes inputs in [-1, 1].
    """
    check_width(alpha, "alpha", params_at_one=3_504_872)  # the 1.0 variant's parameters
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    check_choice(padding, "padding", PADDINGS)
    check_positive(bn_epsilon, "bn_epsilon")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, **FAMILY.architecture_of(locals()), drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"mobilenetv2_{width_tag(alpha)}",
    )


def _variant(alpha, params, macs_m, top1):
    return Variant(
        f"mobilenetv2_{width_tag(alpha)}",
        {"alpha": alpha},
        Reference(params, macs_m, top1, "keras.applications MobileNetV2"),
        equals=f"keras:MobileNetV2(alpha={alpha})",
        # keras.applications' 224-pixel file; its source states no digest: the host's MD5 is checked
        weights=(
            keras_source(f"mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224.h5", top1),
        ),
    )


FAMILY = Family(
    name="mobilenetv2",
    constructor=MobileNetV2,
    architecture_args=("alpha", "activation", "padding", "bn_epsilon"),
    preprocessing=INCEPTION_PREPROCESSING,
    variants=(
        _variant(0.35, 1_677_128, 59.3, 60.3),
        _variant(0.5, 1_968_680, 97.1, 65.4),
        _variant(0.75, 2_636_424, 209.1, 69.8),
        _variant(1.0, 3_504_872, 300.8, 71.8),
        _variant(1.3, 5_386_792, 509.4, 74.4),
        _variant(1.4, 6_108_776, 582.2, 75.0),
    ),
)
