"""MnasNet (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019,
arXiv 1807.11626): the searched models B1 (no squeeze-excite) and A1 (squeeze-excite in three stages).

References: TensorFlow's tensorflow/tpu ``models/official/mnasnet`` (``mnasnet_models.py``: both
versions at any depth multiplier), torchvision ``mnasnet0_5`` ... ``mnasnet1_3`` (B1 only) and timm
``mnasnet_*`` (B1) / ``semnasnet_*`` (A1). The three agree on every width: the stem and every block
width are ``make_divisible(c * alpha, 8)`` with the 10 % rule, the 1280-wide head conv is never
scaled. PyTorch conventions here: symmetric padding, BatchNorm epsilon 1e-5 (TensorFlow pads
"same" and uses 1e-3, so its outputs differ from the PyTorch ones from the first conv on).
"""

from functools import partial

from keras_lightnets.checks import check_choice, check_positive, check_rate, check_width
from keras_lightnets.layers import conv_bn_act, inverted_residual, squeeze_excite
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.efficientnet import timm_key_map
from keras_lightnets.models.mobilenetv2 import make_divisible
from keras_lightnets.models.scaffold import (
    FeatureTracker,
    build_model,
    dense_head,
    stage_block_name,
    width_tag,
)
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, timm_source, torchvision_source

# The searched architectures (the paper's Figure 7 and Appendix; TF's block strings), one row
# per stage: (kernel, expansion, output channels, repeats, first stride, SE ratio, skip).
# ``skip=False`` is TF's "noskip": no identity shortcut even where the shapes would allow one.
# The first stage is a depthwise-separable block (expansion 1: no expansion conv, linear project).
STEM_FILTERS = 32
VERSIONS = {
    "b1": (
        (3, 1, 16, 1, 1, 0.0, False),
        (3, 3, 24, 3, 2, 0.0, True),
        (5, 3, 40, 3, 2, 0.0, True),
        (5, 6, 80, 3, 2, 0.0, True),
        (3, 6, 96, 2, 1, 0.0, True),
        (5, 6, 192, 4, 2, 0.0, True),
        # TF and timm mark it noskip; torchvision adds a shortcut wherever the widths match,
        # which only happens at alpha 0.055 and below (192 and 320 both rounded to 8 or 16).
        (3, 6, 320, 1, 1, 0.0, False),
    ),
    "a1": (
        (3, 1, 16, 1, 1, 0.0, False),
        (3, 6, 24, 2, 2, 0.0, True),
        (5, 3, 40, 3, 2, 0.25, True),
        (3, 6, 80, 4, 2, 0.0, True),
        (3, 6, 112, 2, 1, 0.25, True),
        (5, 6, 160, 3, 2, 0.25, True),
        (3, 6, 320, 1, 1, 0.0, True),
    ),
}
HEAD_FILTERS = 1280  # not scaled by alpha in any of the references
DEFAULT_DROPOUT = 0.2
# TF trains with momentum 0.99 (torchvision's comment cites 0.9997 from the paper); it only
# affects training, and PyTorch's momentum m is Keras's 1 - m.
BN_MOMENTUM = 0.99


def se_hidden(block_in, ratio):
    """The squeeze-excite hidden width: TF's ``max(1, int(block_in * ratio))``, from the block
    *input* width, not the expanded one (timm gets the same number by dividing the ratio by the
    expansion and rounding ``expanded * ratio / expansion``)."""
    return max(1, int(block_in * ratio))


def _body(x, *, alpha, version, bn_epsilon, drop_path_rate):
    """The stem, the seven stages of inverted-residual blocks and the 1x1 head conv."""
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": BN_MOMENTUM}
    stages = VERSIONS[version]
    tracker = FeatureTracker()
    # torchvision scales the stem with alpha since its version 2 (version-1 checkpoints of
    # alpha != 1 had a fixed 32-wide stem and 16-wide first block); timm and TF always did.
    x = conv_bn_act(x, make_divisible(STEM_FILTERS * alpha), 3, 2, activation="relu", name="stem", **norm)
    tracker.add(x, 2)
    num_blocks = sum(stage[3] for stage in stages)
    index = 0
    for stage, (kernel, expansion, channels, repeats, first_stride, se_ratio, skip) in enumerate(stages):
        filters = make_divisible(channels * alpha)
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            block_in = x.shape[-1]
            se = partial(squeeze_excite, hidden=se_hidden(block_in, se_ratio), activation="relu") if se_ratio else None
            x = inverted_residual(
                x,
                filters,
                stride,
                expanded=block_in * expansion,
                kernel_size=kernel,
                activation="relu",
                dw_activation="relu",
                se=se,
                residual="full" if skip else None,
                # timm's schedule: block i of n drops with rate * i / n
                drop_path_rate=drop_path_rate * index / num_blocks,
                padding="symmetric",
                name=stage_block_name(stage, repeat),
                **norm,
            )
            tracker.add(x, stride)
            index += 1
    x = conv_bn_act(x, HEAD_FILTERS, 1, activation="relu", padding="valid", name="head", **norm)
    return x, tracker.maps


@family_constructor
def MnasNet(
    alpha=1.0,
    version="b1",
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
    bn_epsilon=1e-5,
    features_only=False,
    include_preprocessing=False,
):
    """MnasNet-B1 or -A1 with depth multiplier ``alpha``.

    Stem: 3x3/2 conv → BN → ReLU. Blocks: [expand 1x1 → BN → ReLU] → depthwise kxk → BN → ReLU
    → [SE] → project 1x1 → BN, identity shortcut when stride 1 and the widths match (never in
    the first, depthwise-separable block). Head: 1x1 conv to 1280 → BN → ReLU, average pool,
    dropout, classifier. ReLU everywhere, inside the SE too (sigmoid gate).

    Args:
        alpha: depth multiplier (published: B1 0.5, 0.75, 1.0, 1.3, 1.4; A1 0.35, 0.5, 0.75,
            1.0, 1.4). The stem and block widths are ``make_divisible(c * alpha, 8)`` (never
            more than 10 % down); the head stays 1280 wide.
        version: ``"b1"`` (torchvision's MNASNet, timm ``mnasnet_*``) or ``"a1"`` (squeeze-excite
            in stages 3, 5 and 6 with hidden width ``max(1, int(block_in * 0.25))``; timm
            ``semnasnet_*``).
        dropout_rate: before the classifier (0.2 in all three references).
        drop_path_rate: stochastic depth on the residual branches, ``rate * i / n`` for block i
            of n (timm's schedule; the references train without it).
        bn_epsilon: 1e-5 (PyTorch: torchvision, timm) or 1e-3 (TensorFlow).
        features_only: return the last feature map at each stride as a list in stride order,
            outputs named ``"stride2"``, ``"stride4"``, ... (``model.output_names``).
        include_preprocessing: the model takes RGB pixels scaled to [0, 1] and applies the
            ImageNet mean/std itself; otherwise it takes normalized inputs.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_width(alpha, "alpha", params_at_one=4_383_312)  # the 1.0 variant's parameters
    check_choice(version, "version", tuple(VERSIONS))
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    check_positive(bn_epsilon, "bn_epsilon")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, **FAMILY.architecture_of(locals()), drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"mnasnet_{version}_{width_tag(alpha)}",
    )


# --- weight porting --------------------------------------------------------------------
# Both layouts index blocks by (stage, repeat), so each map serves A1 and B1 at every width.

# timm mnasnet_* / semnasnet_* come from timm's EfficientNet builder: EfficientNet's timm map,
# with our head conv named ``head``.
TIMM_KEY_MAP = timm_key_map(head="head")

# torchvision MNASNet: one ``layers`` Sequential. 0-2 stem conv/BN/ReLU; 3-7 the depthwise-
# separable block (dw conv, BN, ReLU, project conv, BN); 8-13 the six inverted-residual stacks
# (``layers.{8 + s}.{repeat}.layers``: expand conv, BN, ReLU, dw conv, BN, ReLU, project conv,
# BN); 14-16 the head conv/BN/ReLU; ``classifier`` is Dropout, Linear.
_TORCHVISION_DS_PARTS = {"3": "dw_conv", "4": "dw_bn", "6": "project_conv", "7": "project_bn"}
_TORCHVISION_IR_PARTS = {
    "0": "expand_conv",
    "1": "expand_bn",
    "3": "dw_conv",
    "4": "dw_bn",
    "6": "project_conv",
    "7": "project_bn",
}
_TORCHVISION_FIRST_STACK = 8  # layers.8 is stage 1 (0-based; stage 0 is the separable block)

TORCHVISION_KEY_MAP = (
    (r"layers\.0", "stem_conv"),
    (r"layers\.1", "stem_bn"),
    (r"layers\.([3467])", lambda m: f"{stage_block_name(0, 0)}_{_TORCHVISION_DS_PARTS[m[1]]}"),
    (
        r"layers\.(\d+)\.(\d+)\.layers\.([013467])",
        lambda m: (
            f"{stage_block_name(int(m[1]) - _TORCHVISION_FIRST_STACK + 1, int(m[2]))}_{_TORCHVISION_IR_PARTS[m[3]]}"
        ),
    ),
    (r"layers\.14", "head_conv"),
    (r"layers\.15", "head_bn"),
    (r"classifier\.1", "predictions"),
)

# --- variants --------------------------------------------------------------------------
# Compared with their PyTorch reference in the suite: torchvision mnasnet1_0 (B1), timm
# semnasnet_100 (A1, the SE path) and timm mnasnet_140 (B1 above alpha 1, timm's layout). The
# other widths run the same code with other numbers; their parameters and MACs are checked exactly.
COMPARED = ("mnasnet_b1_100", "mnasnet_b1_140", "mnasnet_a1_100")

_TORCHVISION_NAMES = {0.5: "mnasnet0_5", 0.75: "mnasnet0_75", 1.0: "mnasnet1_0", 1.3: "mnasnet1_3"}
_TIMM_B1 = {0.5: "mnasnet_050", 0.75: "mnasnet_075", 1.0: "mnasnet_100", 1.4: "mnasnet_140"}


# torchvision's ImageNet weights of the scaled-stem (version 2) layout this file builds. Its
# mnasnet0_5 file predates that layout (a 32-wide stem at every alpha, which torchvision patches
# back in on load), so it is not listed.
TORCHVISION_WEIGHTS = {
    0.75: ("mnasnet0_75-7090bc5f.pth", 71.180),
    1.0: ("mnasnet1.0_top1_73.512-f206786ef8.pth", 73.456),
    1.3: ("mnasnet1_3-a4c69d6f.pth", 76.506),
}


# timm's own ImageNet weights (RMSProp recipe) on the Hub: (version, alpha) → (timm name, top-1 at
# 224, bicubic). The B1 1.0 file is in timm's layout, a second layout of that torchvision-born variant.
TIMM_WEIGHTS = {
    ("b1", 1.0): ("mnasnet_100.rmsp_in1k", 74.672),
    ("a1", 0.75): ("semnasnet_075.rmsp_in1k", 73.000),
    ("a1", 1.0): ("semnasnet_100.rmsp_in1k", 75.452),
}
TIMM_PREPROCESSING = Preprocessing(interpolation="bicubic")


def _weights(version, alpha):
    sources = []
    if version == "b1" and alpha in TORCHVISION_WEIGHTS:
        sources.append(torchvision_source(*TORCHVISION_WEIGHTS[alpha]))
    if (version, alpha) in TIMM_WEIGHTS:
        name, top1 = TIMM_WEIGHTS[version, alpha]
        sources.append(timm_source(name, top1, "Apache-2.0 (timm)", TIMM_PREPROCESSING))
    return tuple(sources)


def _variant(version, alpha, params, macs_m, top1, source):
    name = f"mnasnet_{version}_{width_tag(alpha)}"
    if version == "b1" and alpha in _TORCHVISION_NAMES:
        equals, key_map = f"torchvision:{_TORCHVISION_NAMES[alpha]}", TORCHVISION_KEY_MAP
    elif version == "b1":
        equals, key_map = f"timm:{_TIMM_B1[alpha]}", TIMM_KEY_MAP
    elif alpha == 0.35:
        # TF's reference cannot be installed here (and pads "same"): pinned to golden tensors.
        equals, key_map = "golden", None
    else:
        equals, key_map = f"timm:semnasnet_{width_tag(alpha)}", TIMM_KEY_MAP
    return Variant(
        name,
        {"alpha": alpha, "version": version},
        Reference(params, macs_m, top1, source),
        equals=equals,
        key_map=key_map,
        layouts={"timm": TIMM_KEY_MAP} if version == "b1" and key_map is not TIMM_KEY_MAP else {},
        weights=_weights(version, alpha),
        compared=name in COMPARED or equals == "golden",
    )


# Parameters: torchvision / timm / TF, identical for each (version, alpha). Top-1: torchvision's
# for B1 0.5-1.3, the paper's (TF) for A1; none is published for B1 1.4.
FAMILY = Family(
    name="mnasnet",
    constructor=MnasNet,
    architecture_args=("alpha", "version", "bn_epsilon"),
    variants=(
        _variant("b1", 0.5, 2_218_512, 104.5, 67.734, "torchvision mnasnet0_5; timm mnasnet_050"),
        _variant("b1", 0.75, 3_170_208, 215.5, 71.180, "torchvision mnasnet0_75; timm mnasnet_075"),
        _variant("b1", 1.0, 4_383_312, 314.4, 73.456, "torchvision mnasnet1_0; timm mnasnet_100"),
        _variant("b1", 1.3, 6_282_256, 526.4, 76.506, "torchvision mnasnet1_3"),
        _variant("b1", 1.4, 7_115_728, 588.8, None, "TF mnasnet_b1(1.4); timm mnasnet_140"),
        _variant("a1", 0.35, 1_747_018, 61.7, 64.1, "TF mnasnet_a1(0.35), paper"),
        _variant("a1", 0.5, 2_082_006, 103.2, 68.9, "TF mnasnet_a1(0.5), paper; timm semnasnet_050"),
        _variant("a1", 0.75, 2_912_278, 223.4, 73.3, "TF mnasnet_a1(0.75), paper; timm semnasnet_075"),
        _variant("a1", 1.0, 3_887_038, 311.6, 75.2, "TF mnasnet_a1, paper; timm semnasnet_100"),
        _variant("a1", 1.4, 6_105_992, 586.3, 77.2, "TF mnasnet_a1(1.4), paper; timm semnasnet_140"),
    ),
)
