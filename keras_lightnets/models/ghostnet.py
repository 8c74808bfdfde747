"""GhostNet V1, V2 and V3 (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020,
arXiv 1911.11907; Tang et al., "GhostNetV2: Enhance Cheap Operation with Long-Range Attention",
NeurIPS 2022, arXiv 2211.12905; Liu et al., "GhostNetV3: Exploring the Training Strategies for
Compact Models", arXiv 2404.11202), as timm's ``ghostnet.py`` builds them (the authors' code).

One network, three versions of its Ghost bottleneck (:mod:`keras_lightnets.layers.ghost_module`):

- V1: Ghost module (1x1 conv for half the channels, a cheap depthwise 3x3 for the other half) →
  [depthwise kxk/2 → BN] → [SE] → linear Ghost module, plus the identity or a depthwise kxk + BN →
  1x1 + BN shortcut;
- V2: the first Ghost module of every block after the second is gated by DFC attention
  (2x2 average pool, 1x1, depthwise 1x5 and 5x1 with BNs, sigmoid, nearest upsampling);
- V3: V2's gate (timm's "shortcut" mode), and every convolution of the blocks trained as
  re-parameterizable branches (three kxk + BN, a 1x1 + BN, an identity BN) that
  :func:`keras_lightnets.reparameterize` fuses into one convolution for inference, as timm's
  ``reparameterize_model`` does.

Widths: ``make_divisible(c * width, 4)`` for the stem (16), every block's expansion and output and
the last 1x1 conv (960); SE hidden ``make_divisible(expanded / 4, 4)``; the pre-logits layer 1280 at
every width. BN epsilon 1e-5, PyTorch's symmetric padding.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_rate, check_width
from keras_lightnets.layers import activation_layer, conv_bn_act, squeeze_excite
from keras_lightnets.layers.ghost_module import REP_BRANCHES, ghost_module, rep_ghost_module
from keras_lightnets.layers.rep_branches import rep_branch_sum
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.mobilenetv2 import make_divisible
from keras_lightnets.models.scaffold import FeatureTracker, build_model, stage_block_name, width_tag
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, timm_source

__all__ = ["GhostNet", "TIMM_KEY_MAPS"]

# timm's (the paper's Table 1) ``cfgs``: per block (kernel, expansion width, output width, SE ratio,
# stride), grouped as timm's ``blocks.<stage>.<repeat>`` index them.
BLOCKS = (
    ((3, 16, 16, 0, 1),),
    ((3, 48, 24, 0, 2),),
    ((3, 72, 24, 0, 1),),
    ((5, 72, 40, 0.25, 2),),
    ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0, 2),),
    ((3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)),
)
STEM_FILTERS = 16
HEAD_FILTERS = 960  # the last 1x1 conv, scaled by the width (timm's last ``exp_size``)
PRE_LOGITS = 1280  # at every width
DIVISOR = 4
VERSIONS = ("v1", "v2", "v3")
ATTENTION_FROM = 2  # V2 / V3: DFC attention in every block from the third on (timm's ``layer_idx > 1``)
# V2 / V3: the DFC gate 2x2-pools the 1/32 map of the last blocks, which must keep 2 pixels (stride-2
# convolutions padded k // 2 give ceil(size / 2): 33 pixels -> 2 at 1/32, 32 -> 1).
MIN_SIZE = {"v1": 32, "v2": 33, "v3": 33}


def _shortcut(x, filters, kernel, stride, name):
    """The identity, or depthwise kxk/stride → BN → 1x1 → BN when the shape changes."""
    if x.shape[-1] == filters and stride == 1:
        return x
    s = conv_bn_act(x, x.shape[-1], kernel, stride, depthwise=True, activation=None, name=f"{name}_shortcut_dw")
    return conv_bn_act(s, filters, 1, activation=None, name=f"{name}_shortcut")


def _bottleneck(x, mid, out, kernel, stride, se_ratio, *, version, attention, name):
    """A Ghost bottleneck (V1 / V2: ``GhostBottleneck``; V3: ``GhostBottleneckV3``, training form)."""
    module = rep_ghost_module if version == "v3" else ghost_module
    shortcut = _shortcut(x, out, kernel, stride, name)
    y = module(x, mid, activation="relu", attention=attention, name=f"{name}_ghost1")
    if stride > 1 and version == "v3":
        y = rep_branch_sum(
            y, mid, kernel, stride, num_branches=REP_BRANCHES, depthwise=True, scale=True, skip=False, name=f"{name}_dw"
        )
    elif stride > 1:
        y = conv_bn_act(y, mid, kernel, stride, depthwise=True, activation=None, name=f"{name}_dw")
    if se_ratio:
        hidden = make_divisible(mid * se_ratio, DIVISOR)
        y = squeeze_excite(y, hidden=hidden, activation="relu", gate="hard_sigmoid", name=f"{name}_se")
    y = module(y, out, activation=None, name=f"{name}_ghost2")
    return layers.Add(name=f"{name}_add")([y, shortcut])


def _body(x, *, width, version):
    """Stem 3x3/2 → BN → ReLU, the Ghost bottlenecks, the last 1x1 conv → BN → ReLU."""
    tracker = FeatureTracker()
    x = conv_bn_act(x, make_divisible(STEM_FILTERS * width, DIVISOR), 3, 2, name="stem")
    tracker.add(x, 2)
    index = 0
    for stage, blocks in enumerate(BLOCKS):
        for repeat, (kernel, expansion, channels, se_ratio, stride) in enumerate(blocks):
            x = _bottleneck(
                x,
                make_divisible(expansion * width, DIVISOR),
                make_divisible(channels * width, DIVISOR),
                kernel,
                stride,
                se_ratio,
                version=version,
                attention=version != "v1" and index >= ATTENTION_FROM,
                name=stage_block_name(stage, repeat),
            )
            tracker.add(x, stride)
            index += 1
    x = conv_bn_act(x, make_divisible(HEAD_FILTERS * width, DIVISOR), 1, name="head")
    return x, tracker.maps


def _head(x, *, classes, classifier_activation, dropout_rate):
    """Pool → 1x1 pre-logits (1280, with bias) → ReLU → dropout → classifier (timm's ``conv_head``,
    ``act2``, ``classifier``)."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(PRE_LOGITS, name="pre_logits")(x)
    x = activation_layer("relu", name="pre_logits_act")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


@family_constructor
def GhostNet(
    width=1.0,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    version="v1",
    dropout_rate=0.2,
    features_only=False,
    include_preprocessing=False,
):
    """GhostNet ``version`` ("v1", "v2", "v3") with width multiplier ``width``.

    Args:
        width: width multiplier (published: 0.5, 1.0, 1.3 for V1; 1.0, 1.3, 1.6 for V2; 0.5, 1.0,
            1.3, 1.6 for V3).
        version: ``"v1"`` (Ghost modules), ``"v2"`` (+ DFC attention) or ``"v3"`` (+ re-parameterizable
            branches, the training form: :func:`keras_lightnets.reparameterize` gives the deploy form).
        dropout_rate: before the classifier (0.2 in timm).
        features_only: the last feature map at each stride, outputs ``"stride2"`` ... ``"stride32"``.
        include_preprocessing: the model takes RGB pixels in [0, 1] and applies the ImageNet mean/std
            itself; otherwise (the default, like timm) it takes normalized inputs.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    Inputs must be at least 32 pixels on each side (V1), 33 (V2, V3: the DFC gate pools the 1/32 map).
    """
    check_width(width, "width", params_at_one=5_182_508)  # V1 1.0
    check_choice(version, "version", VERSIONS)
    check_rate(dropout_rate, "dropout_rate")
    prefix = "ghostnet" if version == "v1" else f"ghostnet{version}"
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, width=width, version=version),
        head=partial(_head, dropout_rate=dropout_rate),
        default_name=f"{prefix}_{width_tag(width)}",
        min_size=MIN_SIZE[version],
    )


# --- weight porting --------------------------------------------------------------------
# timm: conv_stem, bn1, blocks.<stage>.<repeat> (the last stage, blocks.9.0, the ConvBnAct head conv),
# conv_head (the pre-logits 1x1 conv), classifier. V1 / V2 modules: primary_conv / cheap_operation
# Sequentials (0: conv, 1: BN), V2's short_conv (0-5: conv, BN, 1x5, BN, 5x1, BN); V3: *_rpr_conv.<i>,
# *_rpr_scale (ConvBnAct: conv, bn1), cheap_rpr_skip (a BN).
_SEQUENTIAL = {"primary_conv": "primary", "cheap_operation": "cheap"}
_ATTENTION = ("attn_conv", "attn_bn", "attn_h_conv", "attn_h_bn", "attn_v_conv", "attn_v_bn")
_SHORTCUT = ("shortcut_dw_conv", "shortcut_dw_bn", "shortcut_conv", "shortcut_bn")
_BLOCK = r"blocks\.(\d+)\.(\d+)\."


def _block(match):
    return stage_block_name(int(match[1]), int(match[2]))


def _rep_rules():
    """V3's training-form branches (named as MobileOne's: ``conv_kxk_{i}``, ``conv_scale``, ``identity``)."""
    return (
        (_BLOCK + r"(ghost[12]\.)?(primary|cheap|dw)_rpr_conv\.(\d)\.(conv|bn)1?",
         lambda m: f"{_block(m)}_{_module(m[3])}{m[4]}_conv_kxk_{m[5]}_{m[6]}"),
        (_BLOCK + r"(ghost[12]\.)?(cheap|dw)_rpr_scale\.(conv|bn)1?",
         lambda m: f"{_block(m)}_{_module(m[3])}{m[4]}_conv_scale_{m[5]}"),
        (_BLOCK + r"ghost([12])\.cheap_rpr_skip", lambda m: f"{_block(m)}_ghost{m[3]}_cheap_identity"),
    )  # fmt: skip


def _module(prefix):
    """``"ghost1."`` -> ``"ghost1_"``; no module (the depthwise conv of the block) -> ``""``."""
    return (prefix or "").replace(".", "_")


def timm_key_map():
    """timm's GhostNet names (every version and width) onto ours."""
    head = len(BLOCKS)
    return (
        (r"conv_stem", "stem_conv"),
        (r"bn1", "stem_bn"),
        (rf"blocks\.{head}\.0\.conv", "head_conv"),
        (rf"blocks\.{head}\.0\.bn1", "head_bn"),
        (_BLOCK + r"ghost([12])\.(primary_conv|cheap_operation)\.([01])",
         lambda m: f"{_block(m)}_ghost{m[3]}_{_SEQUENTIAL[m[4]]}_{('conv', 'bn')[int(m[5])]}"),
        (_BLOCK + r"ghost([12])\.short_conv\.([0-5])", lambda m: f"{_block(m)}_ghost{m[3]}_{_ATTENTION[int(m[4])]}"),
        *_rep_rules(),
        (_BLOCK + r"conv_dw", lambda m: f"{_block(m)}_dw_conv"),
        (_BLOCK + r"bn_dw", lambda m: f"{_block(m)}_dw_bn"),
        (_BLOCK + r"se\.conv_reduce", lambda m: f"{_block(m)}_se_reduce"),
        (_BLOCK + r"se\.conv_expand", lambda m: f"{_block(m)}_se_expand"),
        (_BLOCK + r"shortcut\.([0-3])", lambda m: f"{_block(m)}_{_SHORTCUT[int(m[3])]}"),
        (r"conv_head", "pre_logits"),
        (r"classifier", "predictions"),
    )  # fmt: skip


TIMM_KEY_MAPS = {"timm": timm_key_map()}


# --- variants --------------------------------------------------------------------------
LICENSE_TIMM = "Apache-2.0 (timm; the authors' checkpoints)"
TIMM_PREPROCESSING = Preprocessing(interpolation="bicubic")
# version, width: (train params, MACs (M) at 224, top-1, timm tag of published weights or None,
# compared with timm, deploy params, deploy MACs). top-1: the papers (V1 Table 7, V2 Table 2, V3 Table 9).
VARIANTS = {
    ("v1", 0.5): (2_587_292, 42.3, 66.2, None, False, None, None),
    ("v1", 1.0): (5_182_508, 141.2, 73.9, "in1k", True, None, None),
    ("v1", 1.3): (7_358_820, 227.0, 75.7, None, False, None, None),
    ("v2", 1.0): (6_156_908, 167.0, 75.3, "in1k", True, None, None),
    ("v2", 1.3): (8_960_404, 269.3, 76.9, "in1k", False, None, None),
    ("v2", 1.6): (12_392_698, 398.6, 77.8, "in1k", False, None, None),
    ("v3", 0.5): (3_395_384, 117.5, 69.4, None, False, 2_853_176, 49.6),
    ("v3", 1.0): (8_129_028, 404.1, 77.1, "in1k", True, 6_147_588, 167.0),
    ("v3", 1.3): (12_217_720, 654.8, 79.1, None, False, 8_948_296, 269.3),
    ("v3", 1.6): (17_275_700, 971.6, 80.4, None, False, 12_377_778, 398.6),
}
PAPERS = {"v1": "Han et al. 2020", "v2": "Tang et al. 2022", "v3": "Liu et al. 2024"}


def _variant(version, width):
    params, macs_m, top1, tag, compared, deploy_params, deploy_macs_m = VARIANTS[version, width]
    name = f"{'ghostnet' if version == 'v1' else f'ghostnet{version}'}_{width_tag(width)}"
    return Variant(
        name,
        {"width": width, "version": version},
        Reference(params, macs_m, top1, f"{PAPERS[version]}; timm {name}", deploy_params=deploy_params,
                  deploy_macs_m=deploy_macs_m),
        equals=f"timm:{name}",
        key_map=TIMM_KEY_MAPS["timm"],
        weights=(timm_source(f"{name}.{tag}", top1, LICENSE_TIMM),) if tag else (),
        compared=compared,
    )  # fmt: skip


FAMILY = Family(
    name="ghostnet",
    constructor=GhostNet,
    architecture_args=("width", "version"),
    preprocessing=TIMM_PREPROCESSING,
    min_input_size=max(MIN_SIZE.values()),
    variants=tuple(_variant(version, width) for version, width in VARIANTS),
)
