"""MobileOne (Vasu et al., "MobileOne: An Improved One millisecond Mobile Backbone", CVPR 2023).

A MobileNetV1-style stack (depthwise 3x3, then pointwise 1x1) in which every convolution trains
as several parallel linear branches of one input ``x``, summed, then (S4) squeeze-excite and ReLU::

    sum_i BN_i(conv_kxk_i(x))  [+ BN(conv_1x1(x)) when k > 1]  [+ BN(x) when in = out, stride 1]

``num_conv_branches`` kxk branches (S0: 4, S1-S4: 1), a 1x1 "scale" branch beside a 3x3
convolution and an identity BN; the 3x3 blocks are depthwise (groups = channels), the 1x1
blocks dense. :func:`keras_lightnets.reparameterize` folds every block into one convolution
with bias (a ``DepthwiseConv2D`` for the depthwise ones): the deploy form is a plain
MobileNetV1 without BatchNorm.

Stem: one 3x3 block (dense, one kxk branch + scale) of ``min(64, 64 w_1)`` channels at stride
2. Four stages of ``(2, 8, 10, 1)`` (depthwise, pointwise) block pairs of
``(64 w_1, 128 w_2, 256 w_3, 512 w_4)`` channels, the first depthwise block of each stage at
stride 2. S4 puts squeeze-excite (``channels / 16`` hidden, ReLU, sigmoid) into both blocks of
the last 5 pairs of stage 3 and the pair of stage 4. Head: global average pool → fully
connected (no final 1x1 convolution).

Reference: timm ``byobnet.py`` ``mobileone_s0..s4`` (its ``MobileOneBlock`` and
``_mobileone_bcfg``; the port of ``apple/ml-mobileone``): same parameters and outputs, and
timm's layer names (``stem``, ``stages.{i}.{j}.conv_kxk.{k}``, ``conv_scale``, ``identity``,
``attn.fc1/fc2``, ``head.fc``) are ours with dots as underscores (``attn_reduce``/``attn_expand``).
"""

from functools import partial

from keras_lightnets.checks import check_bool, check_int, check_number, check_rate
from keras_lightnets.layers import activation_layer, squeeze_excite
from keras_lightnets.layers.rep_branches import rep_branch_sum
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, timm_source

__all__ = ["TIMM_KEY_MAP", "MobileOne", "mobileone_block"]

BASE_WIDTHS = (64, 128, 256, 512)
DEPTHS = (2, 8, 10, 1)
STEM_MAX_WIDTH = 64
SE_RATIO = 1 / 16  # timm SEModule's rd_ratio; every MobileOne width is a multiple of 128
BN_EPSILON = 1e-5


def mobileone_block(
    x,
    filters,
    kernel_size=3,
    strides=1,
    *,
    depthwise=False,
    num_conv_branches=1,
    se=False,
    activation="relu",
    zero_init_branches=False,
    name,
):
    """``act(SE(sum_i BN(conv_kxk_i(x)) [+ BN(conv_1x1(x))] [+ BN(x)]))``, timm's ``MobileOneBlock``.

    The branches and their sum are :func:`~keras_lightnets.layers.rep_branches.rep_branch_sum`'s (shared
    with GhostNetV3). Layers: ``{name}_pad`` (stride 2: ``k // 2`` zeros on every side, PyTorch's padding,
    shared by the kxk branches), ``{name}_conv_kxk_{i}_conv/_bn``, ``{name}_conv_scale_conv/_bn`` (k > 1),
    ``{name}_identity`` (in = out, stride 1), ``{name}_add``, ``{name}_attn*`` (SE) and
    ``{name}_act``. ``depthwise``: ``DepthwiseConv2D`` branches (``filters`` must equal the input's
    channels). ``zero_init_branches``: a block with an identity branch starts as ``act(BN(x))``.
    """
    in_channels = x.shape[-1]
    if depthwise and filters != in_channels:
        raise ValueError(f"{name}: a depthwise block keeps its {in_channels} channels, got filters={filters}")
    x = rep_branch_sum(
        x,
        filters,
        kernel_size,
        strides,
        num_branches=num_conv_branches,
        depthwise=depthwise,
        scale=kernel_size > 1,
        skip=in_channels == filters and strides == 1,
        bn_epsilon=BN_EPSILON,
        zero_init_branches=zero_init_branches,
        name=name,
    )
    if se:
        x = squeeze_excite(x, hidden=int(filters * SE_RATIO), name=f"{name}_attn")
    return activation_layer(activation, name=f"{name}_act")(x)


def stage_widths(width_multipliers):
    """``(stem, stage 1..4)`` widths: ``min(64, 64 w_1)`` and ``(64 w_1, 128 w_2, 256 w_3, 512 w_4)``."""
    widths = tuple(int(base * m) for base, m in zip(BASE_WIDTHS, width_multipliers, strict=True))
    return min(STEM_MAX_WIDTH, widths[0]), widths


def _body(x, *, depths, width_multipliers, num_conv_branches, se_blocks, activation, zero_init_branches):
    tracker = FeatureTracker()
    stem_width, widths = stage_widths(width_multipliers)
    block = partial(mobileone_block, activation=activation, zero_init_branches=zero_init_branches)
    x = tracker.add(block(x, stem_width, 3, 2, name="stem"), 2)
    for i, (depth, width, se_count) in enumerate(zip(depths, widths, se_blocks, strict=True)):
        for j in range(depth):
            stride = 2 if j == 0 else 1
            se = j >= depth - se_count
            common = {"num_conv_branches": num_conv_branches, "se": se}
            x = block(x, x.shape[-1], 3, stride, depthwise=True, name=f"stages_{i}_{2 * j}", **common)
            tracker.add(x, stride)
            x = tracker.add(block(x, width, 1, 1, name=f"stages_{i}_{2 * j + 1}", **common))
    return x, tracker.maps


def _check_four(value, argument, example):
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise ValueError(f"`{argument}` must be 4 numbers, one per stage, such as {example}, got {value!r}")
    return tuple(value)


@family_constructor
def MobileOne(
    width_multipliers=(0.75, 1.0, 1.0, 2.0),
    depths=DEPTHS,
    num_conv_branches=4,
    se_blocks=(0, 0, 0, 0),
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    activation="relu",
    dropout_rate=0.0,
    zero_init_branches=True,
    features_only=False,
    include_preprocessing=False,
):
    """A MobileOne in its training form (parallel kxk, 1x1 scale and identity branches); call
    :func:`keras_lightnets.reparameterize` on it (trained) for the deploy form.

    Args:
        width_multipliers: ``(w_1, .., w_4)`` scaling ``(64, 128, 256, 512)`` (S0: ``(0.75, 1, 1, 2)``).
        depths: (depthwise, pointwise) block pairs per stage (``(2, 8, 10, 1)``).
        num_conv_branches: parallel kxk branches of every stage block (S0: 4, S1-S4: 1; the stem has 1).
        se_blocks: how many of each stage's last block pairs have squeeze-excite (S4: ``(0, 0, 5, 1)``).
        activation: after every block (ReLU).
        dropout_rate: before the classifier (0 in the reference).
        zero_init_branches: in every block with an identity branch, the BN scales of the other branches
            start at zero (timm and apple/ml-mobileone start them at one). Why: at one, the plain stack
            of summed branches explodes the gradient with depth at initialization (measured on S0:
            the stem kernel's gradient norm is ~300x the last stage's) and a model trained from scratch on small
            data stays near chance, ours and timm's alike (bundled digits, 180 steps of AdamW at 2e-3:
            12.6 % training accuracy in timm, 14.6 % here). With the zero start, ``fit("mobileone_s1")``
            reaches 66.8 % test accuracy in 5 epochs at 64 px, 38.3 % without. Pretrained weights
            overwrite the scales, so this only changes training from scratch.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    width_multipliers = _check_four(width_multipliers, "width_multipliers", (0.75, 1.0, 1.0, 2.0))
    for multiplier in width_multipliers:
        check_number(multiplier, "width_multipliers", minimum=1 / 64, maximum=64)
    depths = _check_four(depths, "depths", DEPTHS)
    for depth in depths:
        check_int(depth, "depths", 1)
    check_int(num_conv_branches, "num_conv_branches", 1)
    se_blocks = _check_four(se_blocks, "se_blocks", (0, 0, 5, 1))
    for count, depth in zip(se_blocks, depths, strict=True):
        check_number(count, "se_blocks", minimum=0, maximum=depth, integer=True)
    _, widths = stage_widths(width_multipliers)
    if any(width < 16 for width in widths):
        raise ValueError(f"`width_multipliers` must give stages of at least 16 channels, got widths {widths}")
    check_rate(dropout_rate, "dropout_rate")
    check_bool(zero_init_branches, "zero_init_branches")
    return build_model(
        FAMILY,
        locals(),
        body=partial(
            _body,
            depths=depths,
            width_multipliers=width_multipliers,
            num_conv_branches=num_conv_branches,
            se_blocks=se_blocks,
            activation=activation,
            zero_init_branches=zero_init_branches,
        ),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="mobileone_custom",
    )


# --- weight porting --------------------------------------------------------------------
# timm mobileone_*: stem.{conv_kxk.{k},conv_scale}.{conv,bn}, stages.{i}.{j}.{conv_kxk.{k},conv_scale}.{conv,bn},
# stages.{i}.{j}.identity, stages.{i}.{j}.attn.{fc1,fc2}, head.fc.
TIMM_KEY_MAP = (
    (r"stem\.conv_kxk\.(\d)\.(conv|bn)", r"stem_conv_kxk_\1_\2"),
    (r"stem\.conv_scale\.(conv|bn)", r"stem_conv_scale_\1"),
    (r"stages\.(\d)\.(\d+)\.conv_kxk\.(\d)\.(conv|bn)", r"stages_\1_\2_conv_kxk_\3_\4"),
    (r"stages\.(\d)\.(\d+)\.conv_scale\.(conv|bn)", r"stages_\1_\2_conv_scale_\3"),
    (r"stages\.(\d)\.(\d+)\.identity", r"stages_\1_\2_identity"),
    (r"stages\.(\d)\.(\d+)\.attn\.fc1", r"stages_\1_\2_attn_reduce"),
    (r"stages\.(\d)\.(\d+)\.attn\.fc2", r"stages_\1_\2_attn_expand"),
    (r"head\.fc", "predictions"),
)

# Compared with timm in the suite: S0 (4 kxk branches) and S4 (squeeze-excite). S1-S3 run S4's
# code without SE with other widths; their parameters and MACs are exact.
COMPARED = ("mobileone_s0", "mobileone_s4")
CROP_090 = Preprocessing(crop_pct=0.9)

# name: (width multipliers, kxk branches, SE block pairs, train params, deploy params,
#        MACs train / deploy (M) at 224, top-1). Train params: timm's, to the integer. Deploy
# params: our fused form; timm's reparameterize_model has fewer by the channels of the 4
# channel-changing pointwise blocks of S1-S4 (2080 / 3040 / 3264 / 3584), which have one branch
# and no Add, so nothing to fuse: their BN stays (gamma, beta) where timm writes a conv bias; the
# TFLite converter folds it into the convolution. Deploy MACs: the paper's Table 9 (275, 825,
# 1299, 1896, 2978 M). Top-1: the paper's Table 9 and apple/ml-mobileone's README.
TABLE = {
    "mobileone_s0": ((0.75, 1.0, 1.0, 2.0), 4, (0, 0, 0, 0), 5_293_272, 2_078_504, 1051.9, 275.1, 71.4),
    "mobileone_s1": ((1.5, 1.5, 2.0, 2.5), 1, (0, 0, 0, 0), 4_825_192, 4_766_920, 830.1, 825.1, 75.9),
    "mobileone_s2": ((1.5, 2.0, 2.5, 4.0), 1, (0, 0, 0, 0), 7_884_648, 7_811_208, 1304.0, 1298.4, 77.4),
    "mobileone_s3": ((2.0, 2.5, 3.0, 4.0), 1, (0, 0, 0, 0), 10_170_600, 10_081_576, 1902.1, 1895.8, 78.1),
    "mobileone_s4": ((3.0, 3.5, 3.5, 4.0), 1, (0, 0, 5, 1), 14_951_248, 14_841_936, 2986.8, 2979.3, 79.4),
}


def _variant(name, multipliers, branches, se_blocks, params, deploy_params, macs, deploy_macs, top1):
    kwargs = {"width_multipliers": multipliers, "num_conv_branches": branches}
    if any(se_blocks):
        kwargs["se_blocks"] = se_blocks
    return Variant(
        name,
        kwargs,
        Reference(
            params,
            macs,
            top1,
            f"Vasu et al. 2023 Table 9 (top-1), apple/ml-mobileone README; timm {name} (params)",
            deploy_params=deploy_params,
            deploy_macs_m=deploy_macs,
        ),
        equals=f"timm:{name}",
        key_map=TIMM_KEY_MAP,
        weights=(timm_source(f"{name}.apple_in1k", top1, "Apple sample-code license (apple/ml-mobileone)"),),
        # timm's pretrained configs: bilinear, ImageNet mean/std, crop 0.875 (S0) or 0.9 (S1-S4).
        preprocessing=None if name == "mobileone_s0" else CROP_090,
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="mobileone",
    constructor=MobileOne,
    architecture_args=("width_multipliers", "depths", "num_conv_branches", "se_blocks", "activation"),
    variants=tuple(_variant(name, *row) for name, row in TABLE.items()),
)
