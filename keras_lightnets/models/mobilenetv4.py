"""MobileNetV4 (Qin et al., "MobileNetV4: Universal Models for the Mobile Ecosystem", ECCV 2024, arXiv
2404.10518): the convolutional models (small, medium, large) and the hybrids (medium, large) that add
mobile multi-query attention, as timm builds them (``mobilenetv4_*``, the only published PyTorch weights).

Blocks (timm's block strings, kept as timm writes them):

- ``cn``: conv → BN → act (timm's ``ConvBnAct``);
- ``er``: the fused inverted bottleneck, kxk expand conv → BN → act → 1x1 project → BN (``EdgeResidual``);
- ``uir``: the universal inverted bottleneck (:func:`~keras_lightnets.layers.universal_inverted_bottleneck`):
  ``a`` the start depthwise kernel, ``k`` the middle one (0: none), so ExtraDW (``a3_k5``), IB (``a0_k3``),
  ConvNeXt-like (``a3_k0``) and FFN (``a0_k0``);
- ``mqa``: mobile multi-query attention (:func:`~keras_lightnets.layers.mobile_attention`): ``h`` heads,
  ``d`` key and value width, ``v2`` keys and values on a map downsampled by a stride-2 depthwise conv.

Hybrids put a layer scale (1e-5 at first) on every ``uir`` and ``mqa`` branch; hybrid-large uses GELU,
every other model ReLU. Widths: ``make_divisible(c * alpha)`` (timm's ``round_channels``), the stem 32 (24
for the large models) unscaled below ``alpha=1``, the expansion ``make_divisible(block_in * e)``, the head
1280 at every width. timm pads symmetrically (``k // 2``) and uses BatchNorm epsilon 1e-5.

Head: the last stage's 1x1 conv (960) → BN → act, average pool, 1x1 conv (1280, no bias) → BN → act,
dropout, classifier (timm's ``head_norm=True``).
"""

import re
from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_rate, check_width
from keras_lightnets.layers import conv_bn_act, fused_mbconv
from keras_lightnets.layers.anti_aliasing import ANTI_ALIASING
from keras_lightnets.layers.mobile_attention import mobile_attention
from keras_lightnets.layers.universal_inverted_bottleneck import universal_inverted_bottleneck
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.mobilenetv2 import make_divisible
from keras_lightnets.models.scaffold import FeatureTracker, build_model, stage_block_name, width_tag
from keras_lightnets.models.variant import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    timm_source,
)

__all__ = ["MobileNetV4", "TIMM_KEY_MAPS"]

# timm's _gen_mobilenet_v4 arch_def, stage by stage (timm 1.0.31, mobilenetv3.py).
CONV_SMALL = (
    ("cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"),
    ("cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"),
    ("uir_r1_a5_k5_s2_e3_c96", "uir_r4_a0_k3_s1_e2_c96", "uir_r1_a3_k0_s1_e4_c96"),
    ("uir_r1_a3_k3_s2_e6_c128", "uir_r1_a5_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e3_c128",
     "uir_r2_a0_k3_s1_e4_c128"),
    ("cn_r1_k1_s1_c960",),
)  # fmt: skip
CONV_MEDIUM = (
    ("er_r1_k3_s2_e4_c48",),
    ("uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"),
    ("uir_r1_a3_k5_s2_e6_c160", "uir_r2_a3_k3_s1_e4_c160", "uir_r1_a3_k5_s1_e4_c160", "uir_r1_a3_k3_s1_e4_c160",
     "uir_r1_a3_k0_s1_e4_c160", "uir_r1_a0_k0_s1_e2_c160", "uir_r1_a3_k0_s1_e4_c160"),
    ("uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256", "uir_r1_a0_k0_s1_e4_c256",
     "uir_r1_a3_k0_s1_e4_c256", "uir_r1_a3_k5_s1_e2_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a0_k0_s1_e4_c256",
     "uir_r1_a5_k0_s1_e2_c256"),
    ("cn_r1_k1_s1_c960",),
)  # fmt: skip
CONV_LARGE = (
    ("er_r1_k3_s2_e4_c48",),
    ("uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"),
    ("uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192", "uir_r5_a5_k3_s1_e4_c192",
     "uir_r1_a3_k0_s1_e4_c192"),
    ("uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r2_a5_k0_s1_e4_c512",
     "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512", "uir_r3_a5_k0_s1_e4_c512"),
    ("cn_r1_k1_s1_c960",),
)  # fmt: skip
HYBRID_MEDIUM = (
    ("er_r1_k3_s2_e4_c48",),
    ("uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"),
    ("uir_r1_a3_k5_s2_e6_c160", "uir_r1_a0_k0_s1_e2_c160", "uir_r1_a3_k3_s1_e4_c160", "uir_r1_a3_k5_s1_e4_c160",
     "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k3_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160",
     "uir_r1_a3_k0_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k3_s1_e4_c160",
     "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k0_s1_e4_c160"),
    ("uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256", "uir_r1_a0_k0_s1_e2_c256",
     "uir_r1_a3_k5_s1_e2_c256", "uir_r1_a0_k0_s1_e2_c256", "uir_r1_a0_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256",
     "uir_r1_a3_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a5_k5_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256",
     "uir_r1_a5_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a5_k0_s1_e4_c256"),
    ("cn_r1_k1_s1_c960",),
)  # fmt: skip
HYBRID_LARGE = (
    ("er_r1_k3_s2_e4_c48",),
    ("uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"),
    ("uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192", "uir_r2_a5_k3_s1_e4_c192",
     "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192",
     "uir_r1_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a5_k3_s1_e4_c192",
     "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a3_k0_s1_e4_c192"),
    ("uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r2_a5_k0_s1_e4_c512",
     "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512", "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512",
     "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512", "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512",
     "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512"),
    ("cn_r1_k1_s1_c960",),
)  # fmt: skip
# size -> (block strings, stem width, activation, layer scale of the uir / mqa branches)
SIZES = {
    "conv_small": (CONV_SMALL, 32, "relu", None),
    "conv_medium": (CONV_MEDIUM, 32, "relu", None),
    "conv_large": (CONV_LARGE, 24, "relu", None),
    "hybrid_medium": (HYBRID_MEDIUM, 32, "relu", 1e-5),
    "hybrid_large": (HYBRID_LARGE, 24, "gelu", 1e-5),
}
HEAD_WIDTH = 1280
BN = {"bn_epsilon": 1e-5, "bn_momentum": 0.9}  # PyTorch's BatchNorm2d defaults
PADDING = "symmetric"
_OPTION = re.compile(r"([a-z]+)(\d+)")


def parse_block(block):
    """``"uir_r2_a3_k5_s1_e4_c160"`` -> ``(kind, repeats, {option: number})`` (timm's ``_decode_block_str``)."""
    kind, *options = block.split("_")
    values = {}
    for option in options:
        key, number = _OPTION.fullmatch(option).groups()
        values[key] = int(number)
    return kind, values.pop("r"), values


def block_plan(size):
    """``[[(kind, {option: number}), ...] per stage]`` of ``size``, repeats unrolled: only the first repeat
    of a block string takes its stride (``uir_r4_..._s2``: one stride-2 block, then three of stride 1)."""
    return [
        [
            (kind, {**options, "s": options["s"] if repeat == 0 else 1})
            for kind, repeats, options in map(parse_block, stage)
            for repeat in range(repeats)
        ]
        for stage in SIZES[size][0]
    ]


def _block(x, kind, options, *, alpha, activation, layer_scale, drop_path_rate, anti_aliasing, name):
    """One block of ``kind`` at width ``make_divisible(c * alpha)``."""
    filters, stride = make_divisible(options["c"] * alpha), options["s"]
    common = {"padding": PADDING, "anti_aliasing": anti_aliasing, "name": name, **BN}
    if kind == "cn":
        return conv_bn_act(x, filters, options["k"], stride, activation=activation, **common)
    if kind == "er":
        return fused_mbconv(
            x, filters, stride, expansion=options["e"], kernel_size=options["k"], activation=activation,
            drop_path_rate=drop_path_rate, **common,
        )  # fmt: skip
    if kind == "uir":
        return universal_inverted_bottleneck(
            x, filters, stride, expanded=make_divisible(x.shape[-1] * options["e"]), start_kernel_size=options["a"],
            mid_kernel_size=options["k"], activation=activation, layer_scale=layer_scale,
            drop_path_rate=drop_path_rate, **common,
        )  # fmt: skip
    return mobile_attention(
        x, filters, num_heads=options["h"], key_dim=options["d"], value_dim=options["d"],
        kv_stride=options.get("v", 1), kernel_size=options["k"], layer_scale=layer_scale,
        drop_path_rate=drop_path_rate, padding=PADDING, name=name, **BN,
    )  # fmt: skip


def _body(x, *, size, alpha, drop_path_rate, anti_aliasing):
    """The stem and the five stages (the last one timm's 1x1 conv to 960); ``anti_aliasing`` reaches every
    strided block, not the stem (timm's)."""
    _, stem, activation, layer_scale = SIZES[size]
    tracker = FeatureTracker()
    stem = stem if alpha < 1.0 else make_divisible(stem * alpha)  # timm's fix_stem below 1.0
    x = conv_bn_act(x, stem, 3, 2, activation=activation, padding=PADDING, name="stem", **BN)
    tracker.add(x, 2)
    plan = block_plan(size)
    num_blocks = sum(len(stage) for stage in plan)
    index = 0
    for stage, blocks in enumerate(plan):
        for repeat, (kind, options) in enumerate(blocks):
            x = _block(
                x, kind, options, alpha=alpha, activation=activation, layer_scale=layer_scale,
                drop_path_rate=drop_path_rate * index / num_blocks, anti_aliasing=anti_aliasing,
                name=stage_block_name(stage, repeat),
            )  # fmt: skip
            tracker.add(x, options["s"])
            index += 1
    return x, tracker.maps


def _head(x, *, classes, classifier_activation, activation, dropout_rate):
    """Pool → 1x1 conv (1280, no bias) → BN → act → dropout → classifier (timm's ``head_norm=True``). The
    pre-logits layer stays a convolution on the 1x1 map, so that quantization folds its BatchNorm."""
    x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    x = conv_bn_act(x, HEAD_WIDTH, 1, activation=activation, padding="valid", name="pre_logits", **BN)
    x = layers.Flatten(name="flatten")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


@family_constructor
def MobileNetV4(
    size="conv_small",
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
    anti_aliasing=None,
    features_only=False,
    include_preprocessing=False,
):
    """MobileNetV4 ``size`` at width multiplier ``alpha``.

    Args:
        size: ``"conv_small"``, ``"conv_medium"``, ``"conv_large"``, ``"hybrid_medium"`` or ``"hybrid_large"``.
        alpha: width multiplier (timm: 0.35 and 0.5 for conv-small, 0.75 for the hybrids).
        dropout_rate: before the classifier (timm's ``drop_rate``, 0 by default).
        drop_path_rate: stochastic depth on the residual branches, ``rate * i / n`` for block i of n.
        anti_aliasing: ``None``; ``"avg"`` or ``"blur"``: every strided block convolves at stride 1 and
            downsamples after its activation by a 2x2 average pool (timm ``mobilenetv4_conv_aa_*``) or a
            3x3 binomial blur (``mobilenetv4_conv_blur_medium``), see
            :mod:`keras_lightnets.layers.anti_aliasing`. No parameters added; 4x the MACs of those convolutions.
        features_only: the last feature map at each stride, outputs ``"stride2"`` ... ``"stride32"``.
        include_preprocessing: ``True``: the model takes RGB pixels in [0, 1] and normalizes them itself
            (with the mean and std of its weights); ``False`` (default, like timm): normalized inputs.

    The hybrids need a static input size (their attention reshapes maps into sequences and back). The other
    arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(size, "size", tuple(SIZES))
    check_width(alpha, "alpha", params_at_one=3_774_024)  # conv-small 1.0
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    if anti_aliasing is not None:
        check_choice(anti_aliasing, "anti_aliasing", ANTI_ALIASING)
    hybrid = size.startswith("hybrid")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, size=size, alpha=alpha, drop_path_rate=drop_path_rate, anti_aliasing=anti_aliasing),
        head=partial(_head, activation=SIZES[size][2], dropout_rate=dropout_rate),
        default_name=f"{timm_name(size, 1.0, anti_aliasing)}_{width_tag(alpha)}",
        static="the multi-query attention reshapes its maps into sequences and back" if hybrid else False,
    )


# --- weight porting --------------------------------------------------------------------
# timm: conv_stem, bn1, blocks.<stage>.<index>.<part>, conv_head, norm_head, classifier. Parts by block kind:
_TIMM_PARTS = {
    "cn": {"conv": "conv", "bn1": "bn"},
    "er": {"conv_exp": "expand_conv", "bn1": "expand_bn", "conv_pwl": "project_conv", "bn2": "project_bn"},
    "uir": {
        "dw_start.conv": "dw_start_conv", "dw_start.bn": "dw_start_bn", "pw_exp.conv": "expand_conv",
        "pw_exp.bn": "expand_bn", "dw_mid.conv": "dw_conv", "dw_mid.bn": "dw_bn", "pw_proj.conv": "project_conv",
        "pw_proj.bn": "project_bn", "layer_scale": "layer_scale",
    },
    "mqa": {
        "norm": "norm", "attn.query.proj": "attn_query_proj", "attn.key.down_conv": "attn_key_down_conv",
        "attn.key.norm": "attn_key_down_bn", "attn.key.proj": "attn_key_proj",
        "attn.value.down_conv": "attn_value_down_conv", "attn.value.norm": "attn_value_down_bn",
        "attn.value.proj": "attn_value_proj", "attn.output.proj": "attn_output_proj", "layer_scale": "layer_scale",
    },
}  # fmt: skip


def timm_key_map(size):
    """timm's MobileNetV4 names onto ours for ``size``: one rule per block kind and position."""
    rules = [(r"conv_stem", "stem_conv"), (r"bn1", "stem_bn")]
    for stage, blocks in enumerate(block_plan(size)):
        for repeat, (kind, _) in enumerate(blocks):
            parts = _TIMM_PARTS[kind]
            pattern = rf"blocks\.{stage}\.{repeat}\.({'|'.join(re.escape(part) for part in parts)})"
            ours = stage_block_name(stage, repeat)
            rules.append((pattern, lambda m, ours=ours, parts=parts: f"{ours}_{parts[m[1]]}"))
    rules += [(r"conv_head", "pre_logits_conv"), (r"norm_head", "pre_logits_bn"), (r"classifier", "predictions")]
    return tuple(rules)


TIMM_KEY_MAPS = {size: timm_key_map(size) for size in SIZES}

# --- variants --------------------------------------------------------------------------
LICENSE = "Apache-2.0 (timm)"


def _preprocessing(size, crop_pct, inception=False):
    mean, std = (INCEPTION_MEAN, INCEPTION_STD) if inception else (IMAGENET_MEAN, IMAGENET_STD)
    return Preprocessing(input_size=(size, size, 3), mean=mean, std=std, crop_pct=crop_pct, interpolation="bicubic")


# timm's pretrained tags with a 1000-class head, its default first; (tag, top-1, train size, crop, Inception
# mean/std). Top-1: timm's results-imagenet.csv at the train size and crop. Not registered: the ImageNet-12k
# checkpoints with 11821 classes (conv_medium e180_r384_in12k, e180_ad_r384_in12k, e250_r384_in12k;
# hybrid_medium e200_r256_in12k; conv_aa_large e230_r384_in12k). Keys: (size, alpha, anti-aliasing).
WEIGHTS = {
    ("conv_small", 0.5, None): (("e3000_r224_in1k", 64.778, 224, 0.875, True),),
    ("conv_small", 1.0, None): (
        ("e2400_r224_in1k", 73.756, 224, 0.875, False),
        ("e1200_r224_in1k", 73.450, 224, 0.875, False),
        ("e3600_r256_in1k", 74.534, 256, 0.95, True),
    ),
    ("conv_medium", 1.0, None): (
        ("e500_r256_in1k", 79.916, 256, 0.95, False),
        ("e500_r224_in1k", 79.092, 224, 0.95, False),
        ("e250_r384_in12k_ft_in1k", 82.776, 384, 0.95, False),
    ),
    ("conv_large", 1.0, None): (
        ("e600_r384_in1k", 82.974, 384, 0.95, False),
        ("e500_r256_in1k", 81.864, 256, 0.95, False),
    ),
    ("hybrid_medium", 1.0, None): (
        ("e200_r256_in12k_ft_in1k", 82.360, 256, 0.95, False),
        ("ix_e550_r256_in1k", 81.478, 256, 0.95, False),
        ("ix_e550_r384_in1k", 82.952, 384, 0.95, False),
        ("e500_r224_in1k", 80.432, 224, 0.95, False),
    ),
    ("hybrid_large", 1.0, None): (
        ("ix_e600_r384_in1k", 83.996, 384, 0.95, False),
        ("e600_r384_in1k", 83.826, 384, 0.95, False),
    ),
    ("conv_medium", 1.0, "blur"): (("e500_r224_in1k", 79.446, 224, 0.95, False),),
    ("conv_large", 1.0, "avg"): (
        ("e230_r448_in12k_ft_in1k", 84.668, 448, 0.95, False),
        ("e230_r384_in12k_ft_in1k", 84.314, 384, 0.95, False),
        ("e600_r384_in1k", 83.264, 384, 0.95, False),
    ),
}


# timm's name part for each anti-aliasing kind: mobilenetv4_conv_aa_large, mobilenetv4_conv_blur_medium.
_AA_TAGS = {None: "", "avg": "aa_", "blur": "blur_"}


def timm_name(size, alpha, anti_aliasing=None):
    kind, _, scale = size.partition("_")
    return f"mobilenetv4_{kind}_{_AA_TAGS[anti_aliasing]}{scale}" + ("" if alpha == 1.0 else f"_{width_tag(alpha)}")


def _variant(size, alpha, params, macs_m, compared=False, anti_aliasing=None):
    name = timm_name(size, alpha, anti_aliasing)
    sources = tuple(
        timm_source(f"{name}.{tag}", top1, LICENSE, _preprocessing(train_size, crop, inception))
        for tag, top1, train_size, crop, inception in WEIGHTS.get((size, alpha, anti_aliasing), ())
    )
    top1 = sources[0].top1 if sources else None
    preprocessing = sources[0].preprocessing if sources else _preprocessing(224, 0.95)
    source = f"timm {name}" + (
        f", top-1 of {sources[0].tag} (timm results-imagenet.csv)" if sources else " (untrained)"
    )
    return Variant(
        name,
        {"size": size, "alpha": alpha, **({"anti_aliasing": anti_aliasing} if anti_aliasing else {})},
        Reference(params, macs_m, top1, source),
        equals=f"timm:{name}",
        preprocessing=preprocessing,
        key_map=TIMM_KEY_MAPS[size],
        weights=sources,
        compared=compared,
    )


# Parameters: timm 1.0.31's trainable parameters (tested). MACs: kl.profile at 224 (convolutions, dense layers
# and the attention's two matrix products). Compared with timm: conv-small (cn, IB, ExtraDW, ConvNeXt-like
# blocks), hybrid-medium (fused IB, FFN, both attention kinds, layer scale), hybrid-large (GELU, a repeated
# strided block string: only its first repeat strides).
FAMILY = Family(
    name="mobilenetv4",
    constructor=MobileNetV4,
    architecture_args=("size", "alpha", "anti_aliasing"),
    preprocessing=_preprocessing(224, 0.95),
    variants=(
        _variant("conv_small", 0.35, 1_905_384, 47.7),
        _variant("conv_small", 0.5, 2_238_952, 64.7),
        _variant("conv_small", 1.0, 3_774_024, 186.0, compared=True),
        _variant("conv_medium", 1.0, 9_715_512, 827.6),
        _variant("conv_medium", 1.0, 9_715_512, 1196.3, anti_aliasing="avg"),
        _variant("conv_medium", 1.0, 9_715_512, 1196.3, anti_aliasing="blur", compared=True),
        _variant("conv_large", 1.0, 32_590_864, 2171.3),
        _variant("conv_large", 1.0, 32_590_864, 2386.2, anti_aliasing="avg"),
        _variant("hybrid_medium", 1.0, 11_074_648, 966.3, compared=True),
        _variant("hybrid_medium", 0.75, 7_313_528, 649.8),
        _variant("hybrid_large", 1.0, 37_764_624, 2549.6, compared=True),
        _variant("hybrid_large", 0.75, 22_754_984, 1547.5),
    ),
)
