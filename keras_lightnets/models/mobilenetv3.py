"""MobileNetV3 (Howard et al., "Searching for MobileNetV3", ICCV 2019, arXiv 1905.02244): Large and
Small, at any width, and the "minimalistic" models (no squeeze-excite, no hard-swish, no 5x5 kernels).

Three published layouts of one network; they agree on every width of the registered variants and
differ only in padding and BatchNorm epsilon (``padding=`` / ``bn_epsilon=``):

- keras.applications ``MobileNetV3Large/Small`` (TF-slim's checkpoints, and timm's ports of them,
  ``tf_mobilenetv3_*``): TF "same" padding, epsilon 1e-3; raw 0-255 pixels in, scaled to [-1, 1]
  inside the model (``include_preprocessing=True``, keras.applications' default);
- torchvision ``mobilenet_v3_large/small``: symmetric padding, epsilon 1e-3 (torchvision's own
  choice for this family);
- timm ``mobilenetv3_large_100`` / ``mobilenetv3_small_*``: symmetric padding, epsilon 1e-5.

All three define the hard sigmoid as ``relu6(x + 3) / 6`` and the hard swish as ``x * relu6(x + 3) / 6``
(Keras 3's ``hard_sigmoid`` / ``hard_swish``; Keras 2's ``hard_sigmoid`` is ``clip(0.2 x + 0.5, 0, 1)``,
another function: the tf_keras twin for quantization computes Keras 3's).

Widths follow keras.applications: block outputs ``make_divisible(c * alpha)``, the expansion
``make_divisible(block_in * e)``, the squeeze-excite hidden width ``make_divisible(expanded / 4)``, the
stem 16 at every width (timm fixes it below 0.75, torchvision scales it: no published checkpoint differs),
the last 1x1 conv six times the last block's width, the pre-logits layer 1280 (Large) / 1024 (Small),
scaled only above ``alpha=1``.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_positive, check_rate, check_width
from keras_lightnets.layers import activation_layer, conv_bn_act, inverted_residual, squeeze_excite
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.mobilenetv2 import make_divisible
from keras_lightnets.models.scaffold import FeatureTracker, build_model, stage_block_name, width_tag
from keras_lightnets.models.variant import (
    IMAGENET_PREPROCESSING,
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

__all__ = ["MobileNetV3", "TIMM_KEY_MAPS", "TORCHVISION_KEY_MAPS"]

RE, HS = "relu", "hard_swish"
# Tables 1 and 2 of the paper (keras.applications' stack_fn): per block (kernel, expansion,
# output channels, squeeze-excite, activation, stride), grouped in stages as timm's arch_def groups
# them (its checkpoints index blocks by stage and repeat). The minimalistic models turn every 5x5
# kernel into 3x3, every hard-swish into ReLU and drop the squeeze-excite.
LARGE = (
    ((3, 1, 16, False, RE, 1),),
    ((3, 4, 24, False, RE, 2), (3, 3, 24, False, RE, 1)),
    ((5, 3, 40, True, RE, 2), (5, 3, 40, True, RE, 1), (5, 3, 40, True, RE, 1)),
    ((3, 6, 80, False, HS, 2), (3, 2.5, 80, False, HS, 1), (3, 2.3, 80, False, HS, 1), (3, 2.3, 80, False, HS, 1)),
    ((3, 6, 112, True, HS, 1), (3, 6, 112, True, HS, 1)),
    ((5, 6, 160, True, HS, 2), (5, 6, 160, True, HS, 1), (5, 6, 160, True, HS, 1)),
)
SMALL = (
    ((3, 1, 16, True, RE, 2),),
    ((3, 72 / 16, 24, False, RE, 2), (3, 88 / 24, 24, False, RE, 1)),
    ((5, 4, 40, True, HS, 2), (5, 6, 40, True, HS, 1), (5, 6, 40, True, HS, 1)),
    ((5, 3, 48, True, HS, 1), (5, 3, 48, True, HS, 1)),
    ((5, 6, 96, True, HS, 2), (5, 6, 96, True, HS, 1), (5, 6, 96, True, HS, 1)),
)
# size -> (blocks, pre-logits width)
SIZES = {"large": (LARGE, 1280), "small": (SMALL, 1024)}
STEM_FILTERS = 16
HEAD_EXPANSION = 6  # the last 1x1 conv: six times the last block's width
SE_RATIO = 0.25
PADDINGS = ("same", "symmetric")
BN_MOMENTUM = 0.999  # keras.applications'; PyTorch's momentum m is Keras's 1 - m (torchvision 0.99, timm 0.9)


def block_plan(size, minimalistic):
    """``[[(kernel, expansion, channels, se, activation, stride), ...] per stage]`` of ``size``."""
    blocks, _ = SIZES[size]
    if not minimalistic:
        return [list(stage) for stage in blocks]
    return [[(3, e, c, False, RE, s) for _, e, c, _, _, s in stage] for stage in blocks]


def _body(x, *, size, alpha, minimalistic, padding, bn_epsilon, drop_path_rate):
    """The stem, the inverted-residual blocks and the last 1x1 conv (keras.applications' ``conv_1``)."""
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": BN_MOMENTUM}
    activation = RE if minimalistic else HS
    tracker = FeatureTracker()
    x = conv_bn_act(x, STEM_FILTERS, 3, 2, activation=activation, padding=padding, name="stem", **norm)
    tracker.add(x, 2)
    plan = block_plan(size, minimalistic)
    num_blocks = sum(len(stage) for stage in plan)
    index = 0
    for stage, blocks in enumerate(plan):
        for repeat, (kernel, expansion, channels, se, block_activation, stride) in enumerate(blocks):
            expanded = make_divisible(x.shape[-1] * expansion)
            x = inverted_residual(
                x,
                make_divisible(channels * alpha),
                stride,
                expanded=expanded,
                kernel_size=kernel,
                activation=block_activation,
                dw_activation=block_activation,
                se=_se(expanded) if se else None,
                residual="full",
                drop_path_rate=drop_path_rate * index / num_blocks,  # timm's schedule
                padding=padding,
                name=stage_block_name(stage, repeat),
                **norm,
            )
            tracker.add(x, stride)
            index += 1
    x = conv_bn_act(x, x.shape[-1] * HEAD_EXPANSION, 1, activation=activation, padding="valid", name="head", **norm)
    return x, tracker.maps


def _se(expanded):
    """Squeeze-excite of an expanded width: ReLU inside, hard-sigmoid gate, hidden ``make_divisible(expanded / 4)``."""
    return partial(squeeze_excite, hidden=make_divisible(expanded * SE_RATIO), activation="relu", gate="hard_sigmoid")


def _head(x, *, classes, classifier_activation, width, activation, dropout_rate):
    """Pool → 1x1 "pre-logits" layer with bias → activation → dropout → classifier (keras.applications'
    ``conv_2`` and ``logits``, torchvision's ``classifier``, timm's ``conv_head`` and ``classifier``)."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(width, name="pre_logits")(x)
    x = activation_layer(activation, name="pre_logits_act")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


@family_constructor
def MobileNetV3(
    size="large",
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
    minimalistic=False,
    dropout_rate=0.2,
    drop_path_rate=0.0,
    padding="same",
    bn_epsilon=1e-3,
    features_only=False,
    include_preprocessing=True,
):
    """MobileNetV3-Large or -Small with width multiplier ``alpha``.

    Stem: 3x3/2 conv (16) → BN → hard-swish. Blocks: [expand 1x1 → BN → act] → depthwise kxk → BN →
    act → [squeeze-excite: pool, 1x1 + ReLU, 1x1 + hard-sigmoid, multiply] → project 1x1 → BN, plus
    the identity when stride 1 and the widths match. Head: 1x1 conv (6x the last width) → BN → act,
    average pool, 1x1 pre-logits with bias → act, dropout, classifier.

    Args:
        size: ``"large"`` or ``"small"``.
        alpha: width multiplier (published: 0.75 and 1.0; timm also 0.5 for Small).
        minimalistic: 3x3 kernels, ReLU everywhere, no squeeze-excite (keras.applications'
            ``minimalistic=True``, timm ``tf_mobilenetv3_*_minimal_100``).
        dropout_rate: before the classifier (0.2 in all three references).
        drop_path_rate: stochastic depth on the residual branches, ``rate * i / n`` for block i of n.
        padding: ``"same"`` (TensorFlow, keras.applications, timm ``tf_*``) or ``"symmetric"``
            (torchvision, timm).
        bn_epsilon: 1e-3 (keras.applications, torchvision, timm ``tf_*``) or 1e-5 (timm).
        features_only: the last feature map at each stride, outputs ``"stride2"`` ... ``"stride32"``.
        include_preprocessing: ``True`` (keras.applications' default): the model takes raw RGB pixels
            in [0, 255] and normalizes them itself (to [-1, 1] for the keras.applications variants);
            ``False``: it takes normalized inputs. The torchvision and timm variants default to
            ``False``, as their references take normalized inputs.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    Inputs must be at least 32 pixels on each side.
    """
    check_choice(size, "size", tuple(SIZES))
    check_width(alpha, "alpha", params_at_one=5_483_032)  # Large 1.0
    check_bool(minimalistic, "minimalistic")
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    check_choice(padding, "padding", PADDINGS)
    check_positive(bn_epsilon, "bn_epsilon")
    _, pre_logits = SIZES[size]
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, **FAMILY.architecture_of(locals()), drop_path_rate=drop_path_rate),
        head=partial(
            _head,
            width=make_divisible(pre_logits * alpha) if alpha > 1.0 else pre_logits,
            activation=RE if minimalistic else HS,
            dropout_rate=dropout_rate,
        ),
        default_name=f"mobilenetv3_{size}{'_minimal' if minimalistic else ''}_{width_tag(alpha)}",
    )


# --- weight porting --------------------------------------------------------------------
# timm (mobilenetv3_* and tf_mobilenetv3_*, one builder): conv_stem, bn1, blocks.<stage>.<repeat>,
# the last stage a ConvBnAct (conv, bn1), conv_head (the pre-logits 1x1 conv), classifier. The first
# block is a DepthwiseSeparable (conv_dw/bn1, SE, conv_pw/bn2), the others InvertedResidual
# (conv_pw/bn1, conv_dw/bn2, SE, conv_pwl/bn3).
_TIMM_SEPARABLE = {"conv_dw": "dw_conv", "bn1": "dw_bn", "conv_pw": "project_conv", "bn2": "project_bn"}
_TIMM_INVERTED = {
    "conv_pw": "expand_conv",
    "bn1": "expand_bn",
    "conv_dw": "dw_conv",
    "bn2": "dw_bn",
    "conv_pwl": "project_conv",
    "bn3": "project_bn",
}


def timm_key_map(size):
    """timm's MobileNetV3 names onto ours for ``size`` (its last stage, the head conv, is stage ``len(blocks)``)."""
    head = len(SIZES[size][0])
    separable, inverted = "|".join(_TIMM_SEPARABLE), "|".join(_TIMM_INVERTED)
    return (
        (r"conv_stem", "stem_conv"),
        (r"bn1", "stem_bn"),
        (rf"blocks\.{head}\.0\.conv", "head_conv"),
        (rf"blocks\.{head}\.0\.bn1", "head_bn"),
        (r"blocks\.(\d+)\.(\d+)\.se\.conv_reduce", lambda m: f"{stage_block_name(int(m[1]), int(m[2]))}_se_reduce"),
        (r"blocks\.(\d+)\.(\d+)\.se\.conv_expand", lambda m: f"{stage_block_name(int(m[1]), int(m[2]))}_se_expand"),
        (rf"blocks\.0\.0\.({separable})", lambda m: f"{stage_block_name(0, 0)}_{_TIMM_SEPARABLE[m[1]]}"),
        (
            rf"blocks\.([1-9])\.(\d+)\.({inverted})",
            lambda m: f"{stage_block_name(int(m[1]), int(m[2]))}_{_TIMM_INVERTED[m[3]]}",
        ),
        (r"conv_head", "pre_logits"),
        (r"classifier", "predictions"),
    )


def torchvision_key_map(size):
    """torchvision's ``features.<i>`` (0: stem, 1..n: blocks, n + 1: the head conv) onto ours: each
    block's ``block`` Sequential holds [expand], depthwise, [SE: fc1, fc2], project, numbered in order."""
    rules = [(r"features\.0\.0", "stem_conv"), (r"features\.0\.1", "stem_bn")]
    index = 1
    for stage, blocks in enumerate(SIZES[size][0]):
        for repeat, (_, expansion, _, se, _, _) in enumerate(blocks):
            name = stage_block_name(stage, repeat)
            parts = (["expand"] if expansion != 1 else []) + ["dw"] + (["se"] if se else []) + ["project"]
            for position, part in enumerate(parts):
                prefix = rf"features\.{index}\.block\.{position}"
                if part == "se":
                    rules += [(rf"{prefix}\.fc1", f"{name}_se_reduce"), (rf"{prefix}\.fc2", f"{name}_se_expand")]
                else:
                    rules += [(rf"{prefix}\.0", f"{name}_{part}_conv"), (rf"{prefix}\.1", f"{name}_{part}_bn")]
            index += 1
    rules += [(rf"features\.{index}\.0", "head_conv"), (rf"features\.{index}\.1", "head_bn")]
    rules += [(r"classifier\.0", "pre_logits"), (r"classifier\.3", "predictions")]
    return tuple(rules)


TIMM_KEY_MAPS = {size: timm_key_map(size) for size in SIZES}
TORCHVISION_KEY_MAPS = {size: torchvision_key_map(size) for size in SIZES}

# --- variants --------------------------------------------------------------------------
# keras.applications: raw pixels, scaled to [-1, 1] in the graph; timm's tf_ ports evaluate the same way.
KERAS_PREPROCESSING = Preprocessing(mean=INCEPTION_MEAN, std=INCEPTION_STD, pixel_max=255.0)
TIMM_PREPROCESSING = Preprocessing(interpolation="bicubic")
MIIL_PREPROCESSING = Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # timm's miil_in21k_ft_in1k
TV2_PREPROCESSING = Preprocessing(crop_pct=0.965)  # torchvision's IMAGENET1K_V2: resize 232, crop 224

# keras.applications' files (MD5 from its source) and timm's tf_ ports of the same TF checkpoints; top-1:
# keras.applications' documentation, timm's results table for the ports.
KERAS_WEIGHTS = {
    ("large", 0.75, False): ("765b44a33ad4005b3ac83185abf1d0eb", 73.3, 73.432),
    ("large", 1.0, False): ("59e551e166be033d707958cf9e29a6a7", 75.6, 75.516),
    ("large", 1.0, True): ("675e7b876c45c57e9e63e6d90a36599c", 72.3, 72.258),
    ("small", 0.75, False): ("cb65d4e5be93758266aa0a7f2c6708b7", 65.4, 65.728),
    ("small", 1.0, False): ("8768d4c2e7dee89b9d02b2d03d65d862", 68.1, 67.918),
    ("small", 1.0, True): ("99cd97fb2fcdad2bf028eb838de69e37", 61.9, 62.890),
}
LICENSE_TIMM = "Apache-2.0 (timm)"


def _keras_name(size, alpha, minimalistic):
    return f"mobilenetv3_{size}{'_minimal' if minimalistic else ''}_{width_tag(alpha)}"


def _keras_weights(size, alpha, minimalistic):
    if (size, alpha, minimalistic) not in KERAS_WEIGHTS:
        return ()
    md5, top1, timm_top1 = KERAS_WEIGHTS[size, alpha, minimalistic]
    file = f"{size}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    timm_name = f"tf_mobilenetv3_{size}{'_minimal' if minimalistic else ''}_{width_tag(alpha)}.in1k"
    return (
        keras_source(f"mobilenet_v3/weights_mobilenet_v3_{file}.h5", top1, md5, "md5"),
        timm_source(timm_name, timm_top1, LICENSE_TIMM),
    )


def _keras_variant(size, alpha, minimalistic, params, macs_m, top1, compared):
    constructor = f"MobileNetV3{size.capitalize()}"
    arguments = f"alpha={alpha}" + (", minimalistic=True" if minimalistic else "")
    return Variant(
        _keras_name(size, alpha, minimalistic),
        {"size": size, "alpha": alpha, "minimalistic": minimalistic},
        Reference(params, macs_m, top1, f"keras.applications {constructor}({arguments}); timm tf_mobilenetv3"),
        equals=f"keras:{constructor}({arguments})",
        preprocessing=KERAS_PREPROCESSING,
        layouts={"timm": TIMM_KEY_MAPS[size]},  # timm's tf_mobilenetv3_* ports
        weights=_keras_weights(size, alpha, minimalistic),
        compared=compared,
    )


def _pytorch_variant(library, size, alpha, params, macs_m, top1, weights, compared=True):
    """A torchvision (``_tv``: symmetric padding, epsilon 1e-3) or timm (``_timm``: epsilon 1e-5) variant."""
    torchvision = library == "torchvision"
    reference = f"mobilenet_v3_{size}" if torchvision else f"mobilenetv3_{size}_{width_tag(alpha)}"
    return Variant(
        f"mobilenetv3_{size}_{width_tag(alpha)}_{'tv' if torchvision else 'timm'}",
        {"size": size, "alpha": alpha, "padding": "symmetric", "bn_epsilon": 1e-3 if torchvision else 1e-5},
        Reference(params, macs_m, top1, f"{library} {reference}"),
        equals=f"{library}:{reference}",
        preprocessing=IMAGENET_PREPROCESSING if torchvision else TIMM_PREPROCESSING,
        key_map=(TORCHVISION_KEY_MAPS if torchvision else TIMM_KEY_MAPS)[size],
        weights=weights,
        defaults={"include_preprocessing": False},  # like its reference, it takes normalized inputs
        compared=compared,
    )


def _timm(name, top1, preprocessing=None):
    return timm_source(name, top1, LICENSE_TIMM, preprocessing)


# Parameters: keras.applications' trainable weights = timm's = torchvision's (tested). MACs: kl.profile at
# 224 (keras.applications' table: 217 / 155 / 209 / 66 / 44 / 65 M; its Small minimalistic 65 is 52.4 here).
# Compared with their references: Large 1.0 and Small 1.0 (every block kind, both SE placements), Large minimal 1.0
# (the minimalistic path) and Small 0.75 (width rounding) against keras.applications; both torchvision
# variants; timm's Large 1.0 and Small 0.5 (the smallest width).
FAMILY = Family(
    name="mobilenetv3",
    constructor=MobileNetV3,
    architecture_args=("size", "alpha", "minimalistic", "padding", "bn_epsilon"),
    preprocessing=KERAS_PREPROCESSING,
    variants=(
        _keras_variant("large", 0.75, False, 3_993_528, 154.7, 73.3, False),
        _keras_variant("large", 1.0, False, 5_483_032, 216.7, 75.6, True),
        _keras_variant("small", 0.75, False, 2_041_872, 43.5, 65.4, True),
        _keras_variant("small", 1.0, False, 2_542_856, 56.7, 68.1, True),
        _keras_variant("large", 0.75, True, 3_050_312, 149.0, None, False),
        _keras_variant("large", 1.0, True, 3_924_288, 209.3, 72.3, True),
        _keras_variant("small", 0.75, True, 1_732_512, 40.2, None, False),
        _keras_variant("small", 1.0, True, 2_044_736, 52.4, 61.9, False),
        _pytorch_variant(
            "torchvision", "large", 1.0, 5_483_032, 216.6, 75.274,
            (
                torchvision_source("mobilenet_v3_large-8738ca79.pth", 74.042),
                torchvision_source("mobilenet_v3_large-5c1a4163.pth", 75.274, tag="tv2_in1k"),
            ),
        ),
        _pytorch_variant(
            "torchvision", "small", 1.0, 2_542_856, 56.5, 67.668,
            (torchvision_source("mobilenet_v3_small-047dcff4.pth", 67.668),),
        ),
        _pytorch_variant(
            "timm", "large", 1.0, 5_483_032, 216.6, 75.766,
            (
                _timm("mobilenetv3_large_100.ra_in1k", 75.766),
                _timm("mobilenetv3_large_100.miil_in21k_ft_in1k", 77.918, MIIL_PREPROCESSING),
            ),
        ),
        _pytorch_variant(
            "timm", "small", 0.5, 1_593_224, 24.2, 57.910, (_timm("mobilenetv3_small_050.lamb_in1k", 57.910),)
        ),
        _pytorch_variant(
            "timm", "small", 0.75, 2_041_872, 43.4, 65.234, (_timm("mobilenetv3_small_075.lamb_in1k", 65.234),),
            compared=False,
        ),
        _pytorch_variant(
            "timm", "small", 1.0, 2_542_856, 56.5, 67.656, (_timm("mobilenetv3_small_100.lamb_in1k", 67.656),),
            compared=False,
        ),
    ),
)  # fmt: skip
