"""EfficientNetV2 (Tan & Le, ICML 2021, arXiv 2104.00298): B0-B3, S, M and L.

Early stages are Fused-MBConv (:func:`~keras_lightnets.layers.fused_mbconv`: one kxk conv in
place of MBConv's 1x1 expansion and kxk depthwise conv), later ones MBConv with SE; the
configurations are data (:data:`BLOCKS`, :data:`CONFIGS`).

References, all with BatchNorm epsilon 1e-3 and SiLU:

- keras.applications ``EfficientNetV2B0`` ... ``EfficientNetV2L`` = timm ``tf_efficientnetv2_*``
  (the ports of google/automl's checkpoints): TF ``"same"`` padding (``padding="same"``, the
  default). Its weighted layers come in keras.applications' order, so its ``.h5`` files load.
- torchvision ``efficientnet_v2_s/m/l``: the same network with PyTorch's symmetric padding
  (``padding="symmetric"``; registered as ``efficientnetv2_{s,m,l}_tv``). Same head, same widths.

``include_preprocessing=True`` takes raw RGB pixels in [0, 255], as keras.applications' default
does: B0-B3 normalize with ImageNet's mean and std, S/M/L map to ``pixel / 128 - 1``.
"""

from functools import partial

from keras_lightnets.checks import check_choice, check_rate
from keras_lightnets.layers import conv_bn_act, fused_mbconv, inverted_residual, squeeze_excite
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.efficientnet import CONV_KERNEL_INITIALIZER, DENSE_KERNEL_INITIALIZER, round_repeats
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head, stage_block_name
from keras_lightnets.models.variant import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
    torchvision_source,
)

# Stages as (block, kernel, repeats, output channels, expansion, first stride, SE ratio); "fused":
# Fused-MBConv, "mbconv": MBConv. keras.applications' DEFAULT_BLOCKS_ARGS = the paper's Table 4
# (S) and google/automl effnetv2_configs.py (B, M, L).
BLOCKS = {
    "base": (
        ("fused", 3, 1, 16, 1, 1, 0.0),
        ("fused", 3, 2, 32, 4, 2, 0.0),
        ("fused", 3, 2, 48, 4, 2, 0.0),
        ("mbconv", 3, 3, 96, 4, 2, 0.25),
        ("mbconv", 3, 5, 112, 6, 1, 0.25),
        ("mbconv", 3, 8, 192, 6, 2, 0.25),
    ),
    "s": (
        ("fused", 3, 2, 24, 1, 1, 0.0),
        ("fused", 3, 4, 48, 4, 2, 0.0),
        ("fused", 3, 4, 64, 4, 2, 0.0),
        ("mbconv", 3, 6, 128, 4, 2, 0.25),
        ("mbconv", 3, 9, 160, 6, 1, 0.25),
        ("mbconv", 3, 15, 256, 6, 2, 0.25),
    ),
    "m": (
        ("fused", 3, 3, 24, 1, 1, 0.0),
        ("fused", 3, 5, 48, 4, 2, 0.0),
        ("fused", 3, 5, 80, 4, 2, 0.0),
        ("mbconv", 3, 7, 160, 4, 2, 0.25),
        ("mbconv", 3, 14, 176, 6, 1, 0.25),
        ("mbconv", 3, 18, 304, 6, 2, 0.25),
        ("mbconv", 3, 5, 512, 6, 1, 0.25),
    ),
    "l": (
        ("fused", 3, 4, 32, 1, 1, 0.0),
        ("fused", 3, 7, 64, 4, 2, 0.0),
        ("fused", 3, 7, 96, 4, 2, 0.0),
        ("mbconv", 3, 10, 192, 4, 2, 0.25),
        ("mbconv", 3, 19, 224, 6, 1, 0.25),
        ("mbconv", 3, 25, 384, 6, 2, 0.25),
        ("mbconv", 3, 7, 640, 6, 1, 0.25),
    ),
}
HEAD_FILTERS = 1280

# config -> (blocks, stem channels, width multiplier, depth multiplier, input size, dropout):
# keras.applications' coefficients and sizes; dropout google/automl's (= torchvision's for S/M/L;
# keras.applications uses 0.2 for all, without effect on inference).
CONFIGS = {
    "b0": ("base", 32, 1.0, 1.0, 224, 0.2),
    "b1": ("base", 32, 1.0, 1.1, 240, 0.2),
    "b2": ("base", 32, 1.1, 1.2, 260, 0.3),
    "b3": ("base", 32, 1.2, 1.4, 300, 0.3),
    "s": ("s", 24, 1.0, 1.0, 384, 0.2),
    "m": ("m", 24, 1.0, 1.0, 480, 0.3),
    "l": ("l", 32, 1.0, 1.0, 480, 0.4),
}
PADDINGS = ("same", "symmetric")
BN_MOMENTUM = 0.9  # keras.applications'; PyTorch's 0.1 (the same update rule, written the other way round)


def round_filters(filters, width_coefficient, divisor=8):
    """keras.applications' EfficientNetV2 rounding: to the nearest multiple of 8, at least 8, with
    no 10 % floor (unlike EfficientNet v1's; timm's ``round_limit=0``)."""
    return max(divisor, int(filters * width_coefficient + divisor / 2) // divisor * divisor)


def stage_plan(config):
    """``[(block, kernel, repeats, channels, expansion, stride, se_ratio), ...]`` after scaling."""
    blocks, _, width, depth, _, _ = CONFIGS[config]
    return [
        (block, kernel, round_repeats(repeats, depth), round_filters(channels, width), expansion, stride, se_ratio)
        for block, kernel, repeats, channels, expansion, stride, se_ratio in BLOCKS[blocks]
    ]


def _block(x, plan_row, stride, *, drop_path_rate, conv_args, name):
    block, kernel, _, channels, expansion, _, se_ratio = plan_row
    # keras.applications, timm and torchvision: the SE width comes from the block *input*.
    se = None
    if se_ratio:
        hidden = max(1, int(x.shape[-1] * se_ratio))
        se = partial(squeeze_excite, hidden=hidden, activation="silu", kernel_initializer=CONV_KERNEL_INITIALIZER)
    common = {"kernel_size": kernel, "se": se, "drop_path_rate": drop_path_rate, "name": name, **conv_args}
    if block == "fused":
        return fused_mbconv(x, channels, stride, expansion=expansion, activation="silu", **common)
    return inverted_residual(
        x,
        channels,
        stride,
        expanded=x.shape[-1] * expansion,
        activation="silu",
        dw_activation="silu",
        residual="full",
        **common,
    )


def _body(x, *, config, padding, drop_path_rate):
    _, stem, width, _, _, _ = CONFIGS[config]
    conv_args = {
        "bn_epsilon": 1e-3,
        "bn_momentum": BN_MOMENTUM,
        "kernel_initializer": CONV_KERNEL_INITIALIZER,
        "padding": padding,
    }
    tracker = FeatureTracker()
    x = conv_bn_act(x, round_filters(stem, width), 3, 2, activation="silu", name="stem", **conv_args)
    tracker.add(x, 2)
    plan = stage_plan(config)
    num_blocks = sum(row[2] for row in plan)
    index = 0
    for stage, row in enumerate(plan):
        for repeat in range(row[2]):
            stride = row[5] if repeat == 0 else 1
            # timm and torchvision: rate * b / blocks, b counted from 0 (keras.applications: the same at depth 1).
            rate = drop_path_rate * index / num_blocks
            x = _block(x, row, stride, drop_path_rate=rate, conv_args=conv_args, name=stage_block_name(stage, repeat))
            tracker.add(x, stride)
            index += 1
    conv_args["padding"] = "valid"
    x = conv_bn_act(x, round_filters(HEAD_FILTERS, width), 1, activation="silu", name="top", **conv_args)
    return x, tracker.maps


@family_constructor
def EfficientNetV2(
    config="s",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    padding="same",
    dropout_rate=None,
    drop_path_rate=0.2,
    features_only=False,
    include_preprocessing=False,
):
    """EfficientNetV2 ``"b0"`` ... ``"b3"``, ``"s"``, ``"m"`` or ``"l"``.

    Args:
        config: a name in :data:`CONFIGS`: its stages, width and depth multipliers, default
            input size and dropout.
        padding: ``"same"`` (TensorFlow: keras.applications, timm ``tf_efficientnetv2_*``) or
            ``"symmetric"`` (torchvision ``efficientnet_v2_*``).
        dropout_rate: before the classifier; ``None``: the config's (0.2 for B0 ... 0.4 for L).
        drop_path_rate: stochastic depth; block ``b`` of ``n`` (counted from 0) drops its
            residual branch with ``rate * b / n``: timm's and torchvision's schedule, and
            keras.applications' at depth 1.0 (for B1-B3 it divides by the blocks before depth
            scaling, so its last rates exceed ``rate``).
        include_preprocessing: the model takes raw RGB pixels in [0, 255] and normalizes them
            itself, as keras.applications' EfficientNetV2 does by default; otherwise it takes
            ``(pixel / 255 - mean) / std`` with the variant's mean and std.
        features_only: the last feature map at each stride, outputs ``"stride2"`` ... ``"stride32"``.

    Inputs must be at least 32 pixels on each side (five stride-2 stages).
    """
    check_choice(config, "config", tuple(CONFIGS))
    check_choice(padding, "padding", PADDINGS)
    dropout_rate = CONFIGS[config][5] if dropout_rate is None else dropout_rate
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, config=config, padding=padding, drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate, kernel_initializer=DENSE_KERNEL_INITIALIZER),
        default_name=f"efficientnetv2_{config}" + ("_tv" if padding == "symmetric" else ""),
    )


# --- weight porting --------------------------------------------------------------------
# timm's EfficientNet builder (tf_efficientnetv2_*): conv_stem, bn1, blocks.<stage>.<repeat>,
# conv_head, bn2, classifier. A stage's block kind fixes its names: ConvBnAct (a Fused-MBConv of
# expansion 1: conv, bn1), EdgeResidual (Fused-MBConv: conv_exp/bn1, SE, conv_pwl/bn2),
# InvertedResidual (MBConv: conv_pw/bn1, conv_dw/bn2, SE, conv_pwl/bn3).
_SE_PARTS = {"se.conv_reduce": "se_reduce", "se.conv_expand": "se_expand"}
_TIMM_PARTS = {
    ("fused", True): {"conv": "project_conv", "bn1": "project_bn"},
    ("fused", False): {"conv_exp": "expand_conv", "bn1": "expand_bn", **_SE_PARTS, "conv_pwl": "project_conv",
                       "bn2": "project_bn"},
    ("mbconv", False): {"conv_pw": "expand_conv", "bn1": "expand_bn", "conv_dw": "dw_conv", "bn2": "dw_bn",
                        **_SE_PARTS, "conv_pwl": "project_conv", "bn3": "project_bn"},
}  # fmt: skip
# torchvision's EfficientNet: features.0 the stem, features.<stage + 1>.<repeat>.block.<i> the
# blocks, features.<stages + 1> the head conv, classifier.1 the Linear; each conv a
# Conv2dNormActivation (.0 conv, .1 BN), the SE's convs fc1 / fc2.
_TORCHVISION_PARTS = {
    ("fused", True): {"0.0": "project_conv", "0.1": "project_bn"},
    ("fused", False): {"0.0": "expand_conv", "0.1": "expand_bn", "1.0": "project_conv", "1.1": "project_bn"},
    ("mbconv", False): {"0.0": "expand_conv", "0.1": "expand_bn", "1.0": "dw_conv", "1.1": "dw_bn",
                        "2.fc1": "se_reduce", "2.fc2": "se_expand", "3.0": "project_conv", "3.1": "project_bn"},
}  # fmt: skip


def _stage_rule(pattern, stage, parts):
    alternatives = "|".join(part.replace(".", r"\.") for part in parts)
    return (
        pattern.format(alternatives),
        lambda m: f"{stage_block_name(stage, int(m[1]))}_{parts[m[2]]}",
    )


def timm_key_map(config):
    """The key map of timm's ``tf_efficientnetv2_<config>`` onto ``EfficientNetV2(config)``."""
    rules = [
        (r"conv_stem", "stem_conv"),
        (r"bn1", "stem_bn"),
        (r"conv_head", "top_conv"),
        (r"bn2", "top_bn"),
        (r"classifier", "predictions"),
    ]
    for stage, (block, *_, expansion, _, _) in enumerate(stage_plan(config)):
        parts = _TIMM_PARTS[(block, expansion == 1)]
        rules.append(_stage_rule(rf"blocks\.{stage}\.(\d+)\.({{}})", stage, parts))
    return tuple(rules)


def torchvision_key_map(config):
    """The key map of torchvision's ``efficientnet_v2_<config>`` onto its symmetric-padding layout."""
    plan = stage_plan(config)
    head = len(plan) + 1
    rules = [
        (r"features\.0\.0", "stem_conv"),
        (r"features\.0\.1", "stem_bn"),
        (rf"features\.{head}\.0", "top_conv"),
        (rf"features\.{head}\.1", "top_bn"),
        (r"classifier\.1", "predictions"),
    ]
    for stage, (block, *_, expansion, _, _) in enumerate(plan):
        parts = _TORCHVISION_PARTS[(block, expansion == 1)]
        rules.append(_stage_rule(rf"features\.{stage + 1}\.(\d+)\.block\.({{}})", stage, parts))
    return tuple(rules)


# keras.applications' S/M/L scale to pixel / 128 - 1, i.e. (pixel / 255 - m) / m with m = 128 / 255.
KERAS_HALF = (128 / 255,) * 3


def _preprocessing(config, crop_pct, *, mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bicubic"):
    size = CONFIGS[config][4]
    return Preprocessing(
        input_size=(size, size, 3), mean=mean, std=std, crop_pct=crop_pct, interpolation=interpolation,
        pixel_max=255.0,
    )  # fmt: skip


def _keras_preprocessing(config):
    """keras.applications' in-graph normalization at timm's evaluation crop and interpolation."""
    if config.startswith("b"):
        return _preprocessing(config, {"b0": 0.875, "b1": 0.882, "b2": 0.89, "b3": 0.904}[config])
    return _preprocessing(config, 1.0, mean=KERAS_HALF, std=KERAS_HALF)


def _timm_preprocessing(config, tag):
    """timm's settings where they are not the variant's: [-1, 1] for S/M/L and for every
    in21k_ft_in1k checkpoint (B3's cropped at 0.9)."""
    if config.startswith("b") and tag == "in1k":
        return None
    return _preprocessing(config, 0.9 if config == "b3" else 1.0, mean=INCEPTION_MEAN, std=INCEPTION_STD)


# keras.applications' files (MD5 from its source, top-1 from its documentation's table); timm's
# ports of google/automl's checkpoints with timm's top-1 at the evaluation size (results-imagenet.csv);
# ImageNet-21k-pretrained ones fine-tuned on 1k (in21k_ft_in1k) normalize to [-1, 1].
KERAS_WEIGHTS = {
    "b0": ("21ecbf6da12460d5c40bb2f29ceb2188", 78.7),
    "b1": ("069f0534ff22adf035c89e2d9547a9dc", 79.8),
    "b2": ("424e49f28180edbde1e94797771950a7", 80.5),
    "b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", 82.0),
    "s": ("e1d88a8495beba45748fedd0cecbe016", 83.9),
    "m": ("a3bf6aa3276309f4fc6a34aa114c95cd", 85.3),
    "l": ("27e6d408b53c7ebc868fefa357689935", 85.7),
}
TIMM_WEIGHTS = {
    "b0": {"in1k": 78.386},
    "b1": {"in1k": 79.518},
    "b2": {"in1k": 80.226},
    "b3": {"in1k": 81.960, "in21k_ft_in1k": 82.634},
    "s": {"in1k": 83.900, "in21k_ft_in1k": 84.332},
    "m": {"in1k": 85.208, "in21k_ft_in1k": 86.014},
    "l": {"in1k": 85.660, "in21k_ft_in1k": 86.802},
}
# torchvision's files (digest prefix in the name) and their top-1 (IMAGENET1K_V1).
TORCHVISION_WEIGHTS = {
    "s": ("efficientnet_v2_s-dd5fe13b.pth", 84.228),
    "m": ("efficientnet_v2_m-dc08266a.pth", 85.112),
    "l": ("efficientnet_v2_l-59c71312.pth", 85.808),
}


def _tf_weights(config):
    md5, top1 = KERAS_WEIGHTS[config]
    sources = [keras_source(f"efficientnet_v2/efficientnetv2-{config}.h5", top1, md5, "md5")]
    for tag, top1 in TIMM_WEIGHTS[config].items():
        preprocessing = _timm_preprocessing(config, tag)
        sources.append(timm_source(f"tf_efficientnetv2_{config}.{tag}", top1, "Apache-2.0", preprocessing))
    return tuple(sources)


def _variant(config, params, macs_m, *, compared=False):
    """A variant in TF's layout: keras.applications' network, timm's ``tf_efficientnetv2_*``."""
    keras_name = f"EfficientNetV2{config.upper()}"
    size = CONFIGS[config][4]
    return Variant(
        f"efficientnetv2_{config}",
        {"config": config},
        Reference(
            params,
            macs_m,
            KERAS_WEIGHTS[config][1],
            f"keras.applications {keras_name}; timm tf_efficientnetv2_{config}",
            input_size=(size, size, 3),
        ),
        equals=f"keras:{keras_name}(include_preprocessing=False)",
        preprocessing=_keras_preprocessing(config),
        # keras.applications' files load in graph order (the same weighted layers, same order: tested)
        layouts={"keras": None, "timm": timm_key_map(config)},
        weights=_tf_weights(config),
        compared=compared,
    )


def _torchvision_variant(config, params, macs_m, *, compared=False):
    """torchvision's layout: symmetric padding, its own weights and evaluation transforms."""
    filename, top1 = TORCHVISION_WEIGHTS[config]
    # torchvision's transforms: resize = crop = the input size; L normalizes to [-1, 1], bicubic.
    preprocessing = (
        _preprocessing(config, 1.0, mean=INCEPTION_MEAN, std=INCEPTION_STD)
        if config == "l"
        else _preprocessing(config, 1.0, interpolation="bilinear")
    )
    size = CONFIGS[config][4]
    return Variant(
        f"efficientnetv2_{config}_tv",
        {"config": config, "padding": "symmetric"},
        Reference(params, macs_m, top1, f"torchvision efficientnet_v2_{config}", input_size=(size, size, 3)),
        equals=f"torchvision:efficientnet_v2_{config}",
        preprocessing=preprocessing,
        key_map=torchvision_key_map(config),
        weights=(torchvision_source(filename, top1),),
        compared=compared,
    )


# Parameters = keras.applications' trainable parameters (tested for B0, B3, S) = timm's =
# torchvision's; MACs measured here (kl.profile) at the input sizes stated. Compared outputs:
# B0 against keras.applications (TF padding, the base stages), S_tv against torchvision (the S
# stages with their expansion-1 residual Fused-MBConv, symmetric padding); a timm
# tf_efficientnetv2_b0 checkpoint is compared in tests/models/test_efficientnetv2.py.
FAMILY = Family(
    name="efficientnetv2",
    constructor=EfficientNetV2,
    architecture_args=("config", "padding"),
    preprocessing=_keras_preprocessing("s"),
    variants=(
        _variant("b0", 7_139_704, 718.1, compared=True),
        _variant("b1", 8_141_052, 1_196.8),
        _variant("b2", 10_096_086, 1_697.5),
        _variant("b3", 14_358_406, 3_011.5),
        _variant("s", 21_458_488, 8_365.6),
        _variant("m", 54_139_356, 24_582.5),
        _variant("l", 118_515_272, 56_079.7),
        _torchvision_variant("s", 21_458_488, 8_365.6, compared=True),
        _torchvision_variant("m", 54_139_356, 24_582.5),
        _torchvision_variant("l", 118_515_272, 56_079.7),
    ),
)
