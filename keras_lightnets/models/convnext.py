"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022, arXiv 2201.03545).

References: keras.applications ``ConvNeXtTiny`` ... ``ConvNeXtXLarge`` (the graph and weighted-layer
order here: raw 0-255 pixels normalized in the graph, LayerNorm epsilon 1e-6, layer scale 1e-6),
torchvision ``convnext_tiny`` ... ``convnext_large`` and timm ``convnext_*`` (the same network: a
``LayerNorm2d`` / ``Linear`` block, or timm's 1x1-conv MLP for its small models; their
checkpoints load through key maps). The three agree on every operation -- 4x4/4 stem, 2x2/2
downsampling, 7x7 depthwise "same" padding (3 on each side), LayerNorm 1e-6, exact GELU -- so one
body builds them all; they differ only in what the model takes (keras.applications: raw pixels,
``include_preprocessing=True``; timm / torchvision: normalized pixels) and in key names.

A block is ``x + drop_path(gamma * pw2(gelu(pw1(LN(dwconv7x7(x))))))``; the pointwise layers are
1x1 convolutions here (keras.applications and torchvision use ``Dense`` / ``Linear`` on the
channels-last map: the same weights, reshaped), which TFLite runs as CONV_2D with per-channel
INT8 weights.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_positive, check_rate
from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.layers.stochastic_depth import StochasticDepth
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model
from keras_lightnets.models.variant import (
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
    torchvision_source,
)

# Section 2 of the paper (keras.applications' MODEL_CONFIGS; timm's small models): size ->
# (blocks per stage, channels per stage). Stage 1 runs at stride 4 after the 4x4/4 stem, each
# later stage starts with LayerNorm + a 2x2/2 convolution.
SIZES = {
    "atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
MLP_RATIO = 4
KERNEL_SIZE = 7
LN_EPSILON = 1e-6  # every LayerNorm of every reference


def _layer_norm(x, name):
    return layers.LayerNormalization(epsilon=LN_EPSILON, name=name)(x)


def convnext_block(x, *, drop_path_rate, layer_scale_init_value, name):
    """``x + drop_path(gamma * pw2(gelu(pw1(LN(dwconv7x7(x))))))``."""
    channels = x.shape[-1]
    # keras.applications: Conv2D(groups=C), kernel (7, 7, 1, C); the same numbers as a depthwise
    # kernel (7, 7, C, 1), which TFLite runs as DEPTHWISE_CONV_2D instead of a grouped CONV_2D.
    y = layers.DepthwiseConv2D(KERNEL_SIZE, padding="same", name=f"{name}_dw_conv")(x)
    y = _layer_norm(y, f"{name}_layernorm")
    y = layers.Conv2D(MLP_RATIO * channels, 1, name=f"{name}_pw1_conv")(y)
    y = layers.Activation("gelu", name=f"{name}_gelu")(y)
    y = layers.Conv2D(channels, 1, name=f"{name}_pw2_conv")(y)
    y = LayerScale(layer_scale_init_value, name=f"{name}_layer_scale")(y)
    if drop_path_rate > 0:
        y = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def _body(x, *, size, drop_path_rate, layer_scale_init_value):
    """Stem, four stages (downsampling LayerNorm + 2x2/2 conv before stages 2-4)."""
    depths, widths = SIZES[size]
    tracker = FeatureTracker()
    x = layers.Conv2D(widths[0], 4, strides=4, name="stem_conv")(x)
    x = _layer_norm(x, "stem_layernorm")
    tracker.stride = 4
    total, index = sum(depths), 0
    for stage, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        if stage > 0:
            x = _layer_norm(x, f"stage{stage + 1}_downsample_layernorm")
            x = layers.Conv2D(width, 2, strides=2, name=f"stage{stage + 1}_downsample_conv")(x)
        for block in range(depth):
            x = convnext_block(
                x,
                # keras.applications / timm / torchvision: linspace(0, rate, blocks)
                drop_path_rate=drop_path_rate * index / max(1, total - 1),
                layer_scale_init_value=layer_scale_init_value,
                name=f"stage{stage + 1}_block{block + 1}",
            )
            index += 1
        tracker.add(x, 1 if stage == 0 else 2)
    return x, tracker.maps


def convnext_head(x, *, classes, classifier_activation, dropout_rate):
    """GAP -> LayerNorm -> (Dropout) -> Dense: keras.applications' ``Head``, timm's ``NormMlpClassifierHead``."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = _layer_norm(x, "head_layernorm")
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


@family_constructor
def ConvNeXt(
    size="tiny",
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
    layer_scale_init_value=1e-6,
    features_only=False,
    include_preprocessing=True,
):
    """ConvNeXt of ``size`` ``"tiny"``, ``"small"``, ``"base"``, ``"large"``, ``"xlarge"``
    (keras.applications, torchvision, timm) or timm's ``"atto"``, ``"femto"``, ``"pico"``, ``"nano"``.

    Args:
        size: a key of :data:`SIZES` (blocks and channels per stage).
        dropout_rate: before the classifier (none in the references).
        drop_path_rate: stochastic depth, rising linearly from 0 at the first block to this at the
            last (the paper: 0.1 / 0.4 / 0.5 / 0.5 for T / S / B / L on ImageNet-1k).
        layer_scale_init_value: the initial per-channel gain of each residual branch (1e-6).
        include_preprocessing: the model takes raw RGB pixels in [0, 255] and normalizes them with
            ImageNet's mean and std itself, as keras.applications' ConvNeXt does (the default);
            otherwise it takes ``(pixel / 255 - mean) / std`` (timm's and torchvision's input).
        features_only: the last map at strides 4, 8, 16, 32 (outputs ``"stride4"`` ... ``"stride32"``).

    With ``include_top=False`` the output is the last stage's map (or its pooling): keras.applications
    also applies its head LayerNorm there, timm and torchvision do not (this package follows them).
    """
    check_choice(size, "size", tuple(SIZES))
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    check_positive(layer_scale_init_value, "layer_scale_init_value")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, size=size, drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value),
        head=partial(convnext_head, dropout_rate=dropout_rate),
        default_name=f"convnext_{size}",
    )


# --- weight porting --------------------------------------------------------------------
# timm: stem.{0,1}, stages.<s>.downsample.{0: LayerNorm2d, 1: conv} (s >= 1),
# stages.<s>.blocks.<b>.{gamma, conv_dw, norm, mlp.fc1, mlp.fc2}, head.norm, head.fc.
_TIMM_BLOCK_PARTS = {"conv_dw": "dw_conv", "norm": "layernorm", "mlp.fc1": "pw1_conv", "mlp.fc2": "pw2_conv"}
TIMM_KEY_MAP = (
    (r"stem\.0", "stem_conv"),
    (r"stem\.1", "stem_layernorm"),
    (r"stages\.(\d)\.downsample\.0", lambda m: f"stage{int(m[1]) + 1}_downsample_layernorm"),
    (r"stages\.(\d)\.downsample\.1", lambda m: f"stage{int(m[1]) + 1}_downsample_conv"),
    (
        r"stages\.(\d)\.blocks\.(\d+)\.(conv_dw|norm|mlp\.fc1|mlp\.fc2)",
        lambda m: f"stage{int(m[1]) + 1}_block{int(m[2]) + 1}_{_TIMM_BLOCK_PARTS[m[3]]}",
    ),
    (r"stages\.(\d)\.blocks\.(\d+)", lambda m: f"stage{int(m[1]) + 1}_block{int(m[2]) + 1}_layer_scale"),
    (r"head\.norm", "head_layernorm"),
    (r"head\.fc", "predictions"),
)

# torchvision: features.0 = stem (conv, LayerNorm2d); features.<2s-1> = stage s's blocks (CNBlock:
# layer_scale, block.0 conv, block.2 LayerNorm, block.3 / block.5 Linear); features.<2s-2> = its
# downsampling (LayerNorm2d, conv) for s >= 2; classifier.0 LayerNorm2d, classifier.2 Linear.
_TORCHVISION_BLOCK_PARTS = {"0": "dw_conv", "2": "layernorm", "3": "pw1_conv", "5": "pw2_conv"}
TORCHVISION_KEY_MAP = (
    (r"features\.0\.0", "stem_conv"),
    (r"features\.0\.1", "stem_layernorm"),
    (r"features\.([246])\.0", lambda m: f"stage{int(m[1]) // 2 + 1}_downsample_layernorm"),
    (r"features\.([246])\.1", lambda m: f"stage{int(m[1]) // 2 + 1}_downsample_conv"),
    (
        r"features\.([1357])\.(\d+)\.block\.([0235])",
        lambda m: f"stage{int(m[1]) // 2 + 1}_block{int(m[2]) + 1}_{_TORCHVISION_BLOCK_PARTS[m[3]]}",
    ),
    (r"features\.([1357])\.(\d+)", lambda m: f"stage{int(m[1]) // 2 + 1}_block{int(m[2]) + 1}_layer_scale"),
    (r"classifier\.0", "head_layernorm"),
    (r"classifier\.2", "predictions"),
)

# keras.applications: raw pixels, normalized in the graph; timm's and torchvision's evaluation
# (bicubic / bilinear, crop 0.875) at 224.
PREPROCESSING = Preprocessing(crop_pct=0.875, interpolation="bicubic", pixel_max=255.0)

# keras.applications' files (SHA-256 from its source; top-1 from keras.io's applications table, checked:
# base, large and xlarge are the ImageNet-22k pre-trained, 1k fine-tuned checkpoints).
KERAS_WEIGHTS = {
    "tiny": ("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff", 81.3),
    "small": ("ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c", 82.3),
    "base": ("52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6", 85.3),
    "large": ("070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6", 86.3),
    "xlarge": ("c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee", 86.7),
}
# torchvision's files (its documented top-1).
TORCHVISION_WEIGHTS = {
    "tiny": ("convnext_tiny-983f1562.pth", 82.52),
    "small": ("convnext_small-0c510722.pth", 83.616),
    "base": ("convnext_base-6075fbad.pth", 84.062),
    "large": ("convnext_large-ea097f82.pth", 84.414),
}
# timm's ports of the official checkpoints and timm's own small models: top-1 at 224 from timm's
# results/results-imagenet.csv (checked; the paper's Table 1 / 2 round them to 82.1 / 83.1 / 83.8 /
# 84.3 in1k and 82.9 / 84.6 / 85.8 / 86.6 / 87.0 22k->1k).
TIMM_WEIGHTS = {
    "atto": {"d2_in1k": 75.672},
    "femto": {"d1_in1k": 77.498},
    "pico": {"d1_in1k": 79.516},
    "nano": {"d1h_in1k": 80.762},
    "tiny": {"fb_in1k": 82.066, "fb_in22k_ft_in1k": 82.900},
    "small": {"fb_in1k": 83.144, "fb_in22k_ft_in1k": 84.582},
    "base": {"fb_in1k": 83.838, "fb_in22k_ft_in1k": 85.814},
    "large": {"fb_in1k": 84.304, "fb_in22k_ft_in1k": 86.612},
    "xlarge": {"fb_in22k_ft_in1k": 86.970},
}
# timm-born checkpoints take normalized pixels.
TIMM_PREPROCESSING = Preprocessing(crop_pct=0.875, interpolation="bicubic")


def _weights(size):
    sources = []
    if size in KERAS_WEIGHTS:
        digest, top1 = KERAS_WEIGHTS[size]
        sources.append(keras_source(f"convnext/convnext_{size}.h5", top1, digest, "sha256"))
    if size in TORCHVISION_WEIGHTS:
        sources.append(torchvision_source(*TORCHVISION_WEIGHTS[size]))
    sources += [
        timm_source(f"convnext_{size}.{tag}", top1, "Apache-2.0", layout="timm")
        for tag, top1 in TIMM_WEIGHTS[size].items()
    ]
    return tuple(sources)


def _keras_variant(size, params, macs_m, top1, *, compared=False):
    constructor = f"ConvNeXt{size.capitalize().replace('Xl', 'XL')}"
    return Variant(
        f"convnext_{size}",
        {"size": size},
        Reference(params, macs_m, top1, "keras.applications ConvNeXt; paper Table 1 (top-1, FLOPs)"),
        equals=f"keras:{constructor}",
        layouts={"timm": TIMM_KEY_MAP, "torchvision": TORCHVISION_KEY_MAP},
        weights=_weights(size),
        compared=compared,
    )


def _timm_variant(size, params, macs_m, top1, *, compared=False):
    return Variant(
        f"convnext_{size}",
        {"size": size},
        Reference(params, macs_m, top1, "timm convnext_*; timm release notes (top-1)"),
        equals=f"timm:convnext_{size}",
        preprocessing=TIMM_PREPROCESSING,
        key_map=TIMM_KEY_MAP,
        weights=_weights(size),
        # timm's small models take normalized pixels, as timm does.
        defaults={"include_preprocessing": False},
        compared=compared,
    )


# Parameters: keras.applications / torchvision / timm (equal, tested); MACs: kl.profile at 224
# (the paper: 4.5 / 8.7 / 15.4 / 34.4 / 60.9 GFLOPs for T / S / B / L / XL); top-1: the paper's
# ImageNet-1k numbers at 224 (XL: ImageNet-22k pre-trained). Compared: tiny against
# keras.applications (its torchvision / timm layouts in tests/models/test_convnext.py) and
# atto against timm; the other sizes differ only in their numbers.
FAMILY = Family(
    name="convnext",
    constructor=ConvNeXt,
    architecture_args=("size",),
    preprocessing=PREPROCESSING,
    variants=(
        _timm_variant("atto", 3_695_520, 547.3, 75.7, compared=True),
        _timm_variant("femto", 5_217_784, 779.6, 77.5),
        _timm_variant("pico", 9_045_672, 1_367.1, 79.5),
        _timm_variant("nano", 15_593_560, 2_445.5, 80.8),
        _keras_variant("tiny", 28_589_128, 4_455.7, 82.1, compared=True),
        _keras_variant("small", 50_223_688, 8_683.9, 83.1),
        _keras_variant("base", 88_591_464, 15_354.9, 83.8),
        _keras_variant("large", 197_767_336, 34_361.6, 84.3),
        _keras_variant("xlarge", 350_196_968, 60_921.2, 87.0),
    ),
)
