"""EfficientNet B0-B7 (Tan & Le, ICML 2019, arXiv 1905.11946) and EfficientNet-Lite0-4.

References: keras.applications ``EfficientNetB0`` ... ``B7`` (TF "same" padding, BN epsilon
1e-3, SE hidden width from the block *input*, SiLU inside the SE, drop-connect rising
linearly over the blocks), identical to timm's ``tf_efficientnet_b*``; EfficientNet-Lite is
tensorflow/tpu ``efficientnet/lite`` = timm ``tf_efficientnet_lite*``: no SE, ReLU6, the stem
(32) and the head (1280) not scaled, the first and last stage not repeated more.

Compound scaling is data (:data:`COEFFICIENTS`): a coefficient name gives the width and depth
multipliers, the input resolution and the classifier dropout, and ``width_coefficient`` /
``depth_coefficient`` build an unpublished point of the same line (``EfficientNet("b0",
width_coefficient=1.05)``).
"""

import dataclasses
import math
from functools import partial

from keras_lightnets.checks import check_choice, check_rate, check_width
from keras_lightnets.layers import conv_bn_act, inverted_residual, squeeze_excite
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.mobilenetv2 import make_divisible
from keras_lightnets.models.scaffold import (
    FeatureTracker,
    build_model,
    dense_head,
    stage_block_name,
)
from keras_lightnets.models.variant import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
)

# The B0 baseline found by the architecture search (Table 1 of the paper): (kernel, repeats,
# output channels, expansion, first stride); every block has SE with ratio 0.25 (B only).
BLOCKS = [
    (3, 1, 16, 1, 1),
    (3, 2, 24, 6, 2),
    (5, 2, 40, 6, 2),
    (3, 3, 80, 6, 2),
    (5, 3, 112, 6, 1),
    (5, 4, 192, 6, 2),
    (3, 1, 320, 6, 1),
]
STEM_FILTERS = 32
HEAD_FILTERS = 1280
SE_RATIO = 0.25


# Compound scaling: name -> (width multiplier, depth multiplier, resolution, dropout), from
# tensorflow/tpu efficientnet_builder.py and lite/efficientnet_lite_builder.py.
COEFFICIENTS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}

# keras.applications' initializers (fan-out, as the TF reference): the training recipe depends on them.
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


def round_filters(filters, width_coefficient, divisor=8):
    """Channels scaled by the width coefficient, to a multiple of ``divisor``, never more than 10 % down."""
    return make_divisible(filters * width_coefficient, divisor)


def round_repeats(repeats, depth_coefficient):
    """Blocks per stage scaled by the depth coefficient, rounded up (B1 at 1.1: 1 -> 2, 2 -> 3)."""
    return int(math.ceil(depth_coefficient * repeats))


def is_lite(coefficient):
    return coefficient.startswith("lite")


def stage_plan(width_coefficient, depth_coefficient, lite=False):
    """``[(kernel, repeats, channels, expansion, stride), ...]`` after compound scaling.

    Lite keeps the first and the last stage at one block (tensorflow/tpu lite builder), so
    depth goes where it pays and the head stays cheap.
    """
    plan = []
    for index, (kernel, repeats, channels, expansion, stride) in enumerate(BLOCKS):
        fixed = lite and index in (0, len(BLOCKS) - 1)
        plan.append(
            (
                kernel,
                repeats if fixed else round_repeats(repeats, depth_coefficient),
                round_filters(channels, width_coefficient),
                expansion,
                stride,
            )
        )
    return plan


def _body(x, *, width_coefficient, depth_coefficient, lite, drop_connect_rate):
    activation = "relu6" if lite else "silu"
    conv_args = {"bn_epsilon": 1e-3, "bn_momentum": 0.99, "kernel_initializer": CONV_KERNEL_INITIALIZER}
    tracker = FeatureTracker()
    stem = STEM_FILTERS if lite else round_filters(STEM_FILTERS, width_coefficient)
    x = conv_bn_act(x, stem, 3, 2, activation=activation, padding="same", name="stem", **conv_args)
    tracker.add(x, 2)
    plan = stage_plan(width_coefficient, depth_coefficient, lite)
    num_blocks = sum(repeats for _, repeats, _, _, _ in plan)
    index = 0
    for stage, (kernel, repeats, channels, expansion, first_stride) in enumerate(plan):
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            in_channels = x.shape[-1]
            # The SE's hidden width comes from the block *input*, not the expanded width.
            se = (
                None
                if lite
                else partial(
                    squeeze_excite,
                    hidden=max(1, int(in_channels * SE_RATIO)),
                    activation="silu",
                    kernel_initializer=CONV_KERNEL_INITIALIZER,
                )
            )
            x = inverted_residual(
                x,
                channels,
                stride,
                expanded=in_channels * expansion,
                kernel_size=kernel,
                activation=activation,
                dw_activation=activation,
                se=se,
                residual="full",
                # keras.applications: rate * b / blocks, b counted from 0 over all blocks.
                drop_path_rate=drop_connect_rate * index / num_blocks,
                padding="same",
                name=stage_block_name(stage, repeat),
                **conv_args,
            )
            tracker.add(x, stride)
            index += 1
    head = HEAD_FILTERS if lite else round_filters(HEAD_FILTERS, width_coefficient)
    x = conv_bn_act(x, head, 1, activation=activation, padding="valid", name="top", **conv_args)
    return x, tracker.maps


@family_constructor
def EfficientNet(
    coefficient="b0",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    width_coefficient=None,
    depth_coefficient=None,
    dropout_rate=None,
    drop_connect_rate=0.2,
    features_only=False,
    include_preprocessing=False,
):
    """EfficientNet ``"b0"`` ... ``"b7"`` or EfficientNet-Lite ``"lite0"`` ... ``"lite4"``.

    Args:
        coefficient: a name in :data:`COEFFICIENTS`: its width and depth multipliers, default
            input size and dropout. ``"lite*"`` names build the Lite line (no SE, ReLU6, stem
            and head not scaled).
        width_coefficient, depth_coefficient: override the name's multipliers, for a point of
            the scaling line nobody published (``None``: the name's).
        dropout_rate: before the classifier; ``None``: the name's (0.2 for B0 ... 0.5 for B7).
        drop_connect_rate: stochastic depth of the last block; block ``b`` of ``n`` drops its
            residual branch with ``rate * b / n`` (keras.applications' schedule).
        include_preprocessing: the model takes raw RGB pixels in [0, 255] and normalizes them
            itself, as keras.applications' EfficientNet does; otherwise it takes
            ``(pixel / 255 - mean) / std`` with the variant's mean and std.
        features_only: the last feature map at each stride, outputs ``"stride2"`` ... ``"stride32"``.

    Inputs must be at least 32 pixels on each side (five stride-2 stages).
    """
    check_choice(coefficient, "coefficient", tuple(COEFFICIENTS))
    named_width, named_depth, _, named_dropout = COEFFICIENTS[coefficient]
    if width_coefficient is not None:
        check_width(width_coefficient, "width_coefficient", params_at_one=5_288_548)  # B0
    if depth_coefficient is not None:
        check_width(depth_coefficient, "depth_coefficient", params_at_one=5_288_548, exponent=1)
    dropout_rate = named_dropout if dropout_rate is None else dropout_rate
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_connect_rate, "drop_connect_rate")
    width = named_width if width_coefficient is None else width_coefficient
    depth = named_depth if depth_coefficient is None else depth_coefficient
    # A coefficient equal to the name's is the named model: recorded as None so it matches its variant.
    width_coefficient = None if width == named_width else width
    depth_coefficient = None if depth == named_depth else depth
    return build_model(
        FAMILY,
        locals(),
        body=partial(
            _body,
            width_coefficient=width,
            depth_coefficient=depth,
            lite=is_lite(coefficient),
            drop_connect_rate=drop_connect_rate,
        ),
        head=partial(dense_head, dropout_rate=dropout_rate, kernel_initializer=DENSE_KERNEL_INITIALIZER),
        default_name=f"efficientnet_{coefficient}",
    )


# --- weight porting --------------------------------------------------------------------
# timm's EfficientNet builder (tf_efficientnet_b* / _lite*, and MnasNet's mnasnet_* / semnasnet_*):
# conv_stem, bn1, blocks.<stage>.<repeat>, conv_head, bn2, classifier. Stage 0 holds
# DepthwiseSeparable blocks (conv_dw/bn1, SE, conv_pw/bn2: no expansion), the other stages
# InvertedResidual blocks (conv_pw/bn1 expand, conv_dw/bn2, SE, conv_pwl/bn3 project).
_TIMM_SEPARABLE_PARTS = {"conv_dw": "dw_conv", "bn1": "dw_bn", "conv_pw": "project_conv", "bn2": "project_bn"}
_TIMM_INVERTED_PARTS = {
    "conv_pw": "expand_conv",
    "bn1": "expand_bn",
    "conv_dw": "dw_conv",
    "bn2": "dw_bn",
    "se.conv_reduce": "se_reduce",
    "se.conv_expand": "se_expand",
    "conv_pwl": "project_conv",
    "bn3": "project_bn",
}


def timm_key_map(head="top"):
    """The key map of timm's EfficientNet builder onto blocks named by :func:`stage_block_name`;
    ``head`` is the name of our 1x1 head conv (``top_conv`` here, ``head_conv`` in MnasNet)."""
    separable = "|".join(_TIMM_SEPARABLE_PARTS)
    inverted = "|".join(part.replace(".", r"\.") for part in _TIMM_INVERTED_PARTS)
    return (
        (r"conv_stem", "stem_conv"),
        (r"bn1", "stem_bn"),
        (r"conv_head", f"{head}_conv"),
        (r"bn2", f"{head}_bn"),
        (r"classifier", "predictions"),
        (
            rf"blocks\.0\.(\d+)\.({separable})",
            lambda m: f"{stage_block_name(0, int(m[1]))}_{_TIMM_SEPARABLE_PARTS[m[2]]}",
        ),
        (
            rf"blocks\.(\d+)\.(\d+)\.({inverted})",
            lambda m: f"{stage_block_name(int(m[1]), int(m[2]))}_{_TIMM_INVERTED_PARTS[m[3]]}",
        ),
    )


TIMM_KEY_MAP = timm_key_map()


# lukemelas/EfficientNet-PyTorch (``efficientnet_pytorch``) and the checkpoints converted to its
# names: blocks numbered over the whole network (``_blocks.N``), ``_bn0`` / ``_bn1`` / ``_bn2``
# after the expand / depthwise / project convs; at the top ``_bn0`` follows the stem and
# ``_bn1`` the head. The global block index depends on the depth coefficient, hence one map per
# variant.
_EFFICIENTNET_PYTORCH_PARTS = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dw_conv",
    "_bn1": "dw_bn",
    "_se_reduce": "se_reduce",
    "_se_expand": "se_expand",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}


def efficientnet_pytorch_key_map(coefficient):
    """The key map of an ``efficientnet_pytorch``-named checkpoint of ``EfficientNet(coefficient)``."""
    width, depth, _, _ = COEFFICIENTS[coefficient]
    plan = stage_plan(width, depth, is_lite(coefficient))
    blocks = tuple(
        stage_block_name(stage, repeat) for stage, (_, repeats, *_) in enumerate(plan) for repeat in range(repeats)
    )
    parts = "|".join(_EFFICIENTNET_PYTORCH_PARTS)
    return (
        (r"_conv_stem", "stem_conv"),
        (r"_bn0", "stem_bn"),
        (r"_conv_head", "top_conv"),
        (r"_bn1", "top_bn"),
        (r"_fc", "predictions"),
        (rf"_blocks\.(\d+)\.({parts})", lambda m: f"{blocks[int(m[1])]}_{_EFFICIENTNET_PYTORCH_PARTS[m[2]]}"),
    )


def _preprocessing(coefficient, crop_pct, interpolation="bicubic"):
    """timm's evaluation settings for the tf_ ports; Lite normalizes to [-1, 1] (TF's 127.5 / 128)."""
    size = COEFFICIENTS[coefficient][2]
    lite = {"mean": INCEPTION_MEAN, "std": INCEPTION_STD} if is_lite(coefficient) else {}
    return Preprocessing(
        input_size=(size, size, 3), crop_pct=crop_pct, interpolation=interpolation, pixel_max=255.0, **lite
    )


# ImageNet weights. B0-B7: keras.applications' files (the TF AutoAugment checkpoints; MD5 from
# keras.applications' source, top-1 from its documentation), the first; then timm's ports of TF's
# checkpoints on the Hub, with timm's top-1 at the TF sizes: AutoAugment (aa_in1k, the same
# weights), RandAugment (ra_in1k), AdvProp (ap_in1k, normalized to [-1, 1]) and Noisy Student
# (ns_jft_in1k, trained with JFT images). Lite0-4: timm's ports of the TF Lite checkpoints.
KERAS_WEIGHTS = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", 77.1),
    "b1": ("1d254153d4ab51201f1646940f018540", 79.1),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", 80.1),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", 81.6),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", 82.9),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", 83.6),
    "b6": ("165f6e37dce68623721b423839de8be5", 84.0),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", 84.3),
}
TIMM_WEIGHTS = {
    "b0": {"aa_in1k": 76.882, "in1k": 76.542, "ap_in1k": 77.100, "ns_jft_in1k": 78.680},
    "b1": {"aa_in1k": 78.840, "in1k": 78.546, "ap_in1k": 79.288, "ns_jft_in1k": 81.388},
    "b2": {"aa_in1k": 80.074, "in1k": 79.612, "ap_in1k": 80.300, "ns_jft_in1k": 82.412},
    "b3": {"aa_in1k": 81.648, "in1k": 80.878, "ap_in1k": 81.842, "ns_jft_in1k": 84.054},
    "b4": {"aa_in1k": 83.040, "in1k": 82.598, "ap_in1k": 83.246, "ns_jft_in1k": 85.156},
    "b5": {"aa_in1k": 83.696, "in1k": 83.170, "ra_in1k": 83.834, "ap_in1k": 84.258, "ns_jft_in1k": 86.096},
    "b6": {"aa_in1k": 84.124, "ap_in1k": 84.794, "ns_jft_in1k": 86.476},
    "b7": {"aa_in1k": 84.424, "ra_in1k": 84.926, "ap_in1k": 85.132, "ns_jft_in1k": 86.850},
    "lite0": {"in1k": 74.846},
    "lite1": {"in1k": 76.674},
    "lite2": {"in1k": 77.470},
    "lite3": {"in1k": 79.808},
    "lite4": {"in1k": 81.540},
}


def _weights(coefficient, preprocessing):
    sources = []
    if coefficient in KERAS_WEIGHTS:
        md5, top1 = KERAS_WEIGHTS[coefficient]
        sources.append(
            keras_source(f"keras-applications/efficientnet{coefficient}.h5", top1, md5, "md5", host_folder=False)
        )
    for tag, top1 in TIMM_WEIGHTS[coefficient].items():
        inception = tag == "ap_in1k" and not is_lite(coefficient)
        own = dataclasses.replace(preprocessing, mean=INCEPTION_MEAN, std=INCEPTION_STD) if inception else None
        sources.append(timm_source(f"tf_efficientnet_{coefficient}.{tag}", top1, "Apache-2.0", own))
    return tuple(sources)


def _variant(coefficient, params, macs_m, top1, crop_pct, *, compared=False, interpolation="bicubic"):
    lite = is_lite(coefficient)
    source = "tensorflow/tpu efficientnet/lite; timm" if lite else "keras.applications EfficientNet; timm"
    return Variant(
        f"efficientnet_{coefficient}",
        {"coefficient": coefficient},
        Reference(params, macs_m, top1, source, input_size=(COEFFICIENTS[coefficient][2],) * 2 + (3,)),
        equals=f"timm:tf_efficientnet_{coefficient}",
        preprocessing=_preprocessing(coefficient, crop_pct, interpolation),
        key_map=TIMM_KEY_MAP,
        # keras.applications' B0-B7 have the same weighted layers in the same order (tested)
        layouts={"efficientnet_pytorch": efficientnet_pytorch_key_map(coefficient)} | ({} if lite else {"keras": None}),
        weights=_weights(coefficient, _preprocessing(coefficient, crop_pct, interpolation)),
        compared=compared,
    )


# B: parameters = keras.applications EfficientNetB0-B7 (tested), top-1 torchvision's; Lite:
# parameters = timm tf_efficientnet_lite*, MACs measured here at the TF sizes (timm evaluates
# Lite3 at 300 and Lite4 at 380), top-1 tensorflow/tpu lite README. Compared against
# timm: B0 and B3 (SE, rounding at width 1.2), Lite0 and Lite2 (the Lite code path, width 1.1).
FAMILY = Family(
    name="efficientnet",
    constructor=EfficientNet,
    architecture_args=("coefficient", "width_coefficient", "depth_coefficient"),
    preprocessing=_preprocessing("b0", 0.875),
    variants=(
        _variant("b0", 5_288_548, 385.8, 77.692, 0.875, compared=True),
        _variant("b1", 7_794_184, 686.8, 78.642, 0.882),
        _variant("b2", 9_109_994, 993.6, 80.608, 0.890),
        _variant("b3", 12_233_232, 1_827.1, 82.008, 0.904, compared=True),
        _variant("b4", 19_341_616, 4_393.8, 83.384, 0.922),
        _variant("b5", 30_389_784, 10_266.4, 83.444, 0.934),
        _variant("b6", 43_040_704, 19_067.6, 84.008, 0.942),
        _variant("b7", 66_347_960, 37_745.9, 84.122, 0.949),
        _variant("lite0", 4_652_008, 385.2, 75.1, 0.875, compared=True),
        _variant("lite1", 5_416_680, 600.2, 76.7, 0.882),
        _variant("lite2", 6_092_072, 859.7, 77.6, 0.890, compared=True),
        _variant("lite3", 8_197_096, 1_383.3, 79.8, 0.904, interpolation="bilinear"),
        _variant("lite4", 13_006_568, 2_553.0, 81.5, 0.920, interpolation="bilinear"),
    ),
)
