"""RegNetX / RegNetY (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020).

A RegNet is an :func:`~keras_lightnets.AnyNet` whose stages come from six numbers: the initial
width ``w0``, the slope ``wa``, the multiplier ``wm``, the depth and the group width (the
bottleneck ratio is 1 for every published model), through the quantized linear rule of
:func:`keras_lightnets.design_space.regnet_stages`. RegNetY adds a squeeze-excite of width
``round(0.25 * block input width)`` to every block. All stages have stride 2.

Reference: pycls ``configs/dds_baselines`` (the 24 published models) and timm ``regnet{x,y}_*``
(same parameters, same layout: stem ``s1``-``s4`` blocks ``b1``..., ``head.fc``).
"""

from functools import partial

from keras_lightnets.checks import check_number, check_rate
from keras_lightnets.models.anynet import STEM_WIDTH, anynet_body
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.regnet_rule import regnet_stages
from keras_lightnets.models.scaffold import build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, timm_source

__all__ = ["TIMM_KEY_MAP", "RegNet"]

REGNETY_SE_RATIO = 0.25
STAGE_STRIDE = 2


@family_constructor
def RegNet(
    w0,
    wa,
    wm,
    depth,
    group_width,
    se_ratio=None,
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
    activation="relu",
    features_only=False,
    include_preprocessing=False,
):
    """The RegNet with initial width ``w0``, slope ``wa``, multiplier ``wm``, ``depth`` blocks
    and 3x3 group width ``group_width``; ``se_ratio=0.25`` makes it a RegNetY.

    The published models are registered (``regnetx_002`` ... ``regnety_320``); any other
    point of the RegNet design space builds too, named ``regnetx_custom`` / ``regnety_custom``.
    The stages are ``keras_lightnets.design_space.regnet_stages(w0, wa, wm, depth, group_width)``.

    Args:
        w0: initial width (a multiple of 8).
        wa: width slope (>= 0).
        wm: width multiplier (> 1).
        depth: number of blocks.
        group_width: channels per group of the 3x3 convolutions (clipped to a stage's width).
        se_ratio: squeeze-excite width over the block input width (RegNetY: 0.25).
        dropout_rate, drop_path_rate, activation, features_only, include_preprocessing:
            as in :func:`~keras_lightnets.AnyNet`.

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    stages = regnet_stages(w0, wa, wm, depth, group_width)
    if se_ratio is not None:
        check_number(se_ratio, "se_ratio", minimum=0, maximum=1)
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(
            anynet_body,
            stem_width=STEM_WIDTH,
            stages=[(stage, STAGE_STRIDE) for stage in stages],
            se_ratio=se_ratio,
            activation=activation,
            drop_path_rate=drop_path_rate,
        ),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="regnety_custom" if se_ratio else "regnetx_custom",
    )


# --- weight porting --------------------------------------------------------------------
# timm regnet{x,y}_*: stem.{conv,bn}, s{i}.b{j}.conv{1,2,3}.{conv,bn}, s{i}.b{j}.se.fc{1,2},
# s{i}.b{j}.downsample.{conv,bn}, head.fc.
TIMM_KEY_MAP = (
    (r"stem\.(conv|bn)", r"stem_\1"),
    (r"s(\d)\.b(\d+)\.conv(\d)\.(conv|bn)", r"s\1_b\2_conv\3_\4"),
    (r"s(\d)\.b(\d+)\.se\.fc1", r"s\1_b\2_se_reduce"),
    (r"s(\d)\.b(\d+)\.se\.fc2", r"s\1_b\2_se_expand"),
    (r"s(\d)\.b(\d+)\.downsample\.(conv|bn)", r"s\1_b\2_shortcut_\3"),
    (r"head\.fc", "predictions"),
)


# Compared with timm in the suite: X and Y at 200MF (the smallest of each), RegNetX-8.0GF (its
# first stage's group width is clipped), RegNetY-4.0GF (a wide SE model). The other published
# models run the same code with other numbers; their parameters and MACs are checked exactly.
COMPARED = ("regnetx_002", "regnety_002", "regnetx_080", "regnety_040")


# ImageNet weights on the Hugging Face Hub in timm's layout, with timm's top-1 at 224: pycls's own
# (``pycls_in1k``, the first: ``weights="imagenet"``), torchvision's second recipe (``tv2_in1k``,
# crop 0.965) and timm's (``ra_in1k`` / ``ra3_in1k``, crop 0.95; DeiT's teacher ``deit_in1k``).
PYCLS = Preprocessing(interpolation="bicubic")
TV2 = Preprocessing(interpolation="bilinear", crop_pct=0.965)
TIMM_RECIPE = Preprocessing(interpolation="bicubic", crop_pct=0.95)
TIMM_WEIGHTS = {
    "regnetx_002": {"pycls_in1k": 68.758},
    "regnetx_004": {"pycls_in1k": 72.482},
    "regnetx_006": {"pycls_in1k": 73.904},
    "regnetx_008": {"pycls_in1k": 75.054, "tv2_in1k": 77.294},
    "regnetx_016": {"pycls_in1k": 76.936, "tv2_in1k": 79.440},
    "regnetx_032": {"pycls_in1k": 78.160, "tv2_in1k": 80.916},
    "regnetx_040": {"pycls_in1k": 78.486},
    "regnetx_064": {"pycls_in1k": 79.062},
    "regnetx_080": {"pycls_in1k": 79.214, "tv2_in1k": 81.552},
    "regnetx_120": {"pycls_in1k": 79.608},
    "regnetx_160": {"pycls_in1k": 79.844, "tv2_in1k": 82.574},
    "regnetx_320": {"pycls_in1k": 80.258, "tv2_in1k": 82.824},
    "regnety_002": {"pycls_in1k": 70.288},
    "regnety_004": {"pycls_in1k": 74.004, "tv2_in1k": 75.594},
    "regnety_006": {"pycls_in1k": 75.274},
    "regnety_008": {"pycls_in1k": 76.334},
    "regnety_016": {"pycls_in1k": 77.880, "tv2_in1k": 80.668},
    "regnety_032": {"pycls_in1k": 78.902, "ra_in1k": 81.948, "tv2_in1k": 81.788},
    "regnety_040": {"pycls_in1k": 79.246, "ra3_in1k": 82.308},
    "regnety_064": {"pycls_in1k": 79.734, "ra3_in1k": 83.006},
    "regnety_080": {"pycls_in1k": 79.874, "ra3_in1k": 83.166},
    "regnety_120": {"pycls_in1k": 80.382},
    "regnety_160": {"pycls_in1k": 80.284, "deit_in1k": 83.000, "tv2_in1k": 82.646},
    "regnety_320": {"pycls_in1k": 80.796, "tv2_in1k": 83.170},
}
TAG_TERMS = {
    "pycls_in1k": ("MIT (pycls)", PYCLS),
    "tv2_in1k": ("BSD-3-Clause (torchvision)", TV2),
    "ra_in1k": ("Apache-2.0 (timm)", TIMM_RECIPE),
    "ra3_in1k": ("Apache-2.0 (timm)", TIMM_RECIPE),
    "deit_in1k": ("Apache-2.0 (timm)", TIMM_RECIPE),
}


def _weights(name):
    return tuple(
        timm_source(f"{name}.{tag}", top1, TAG_TERMS[tag][0], TAG_TERMS[tag][1])
        for tag, top1 in TIMM_WEIGHTS[name].items()
    )


def _variant(name, depth, w0, wa, wm, group_width, params, pycls_flops, top1):
    y = name.startswith("regnety")
    kwargs = {"w0": w0, "wa": wa, "wm": wm, "depth": depth, "group_width": group_width}
    if y:
        kwargs["se_ratio"] = REGNETY_SE_RATIO
    return Variant(
        name,
        kwargs,
        # pycls counts bias additions in its "flops"; they are under 0.1 % of the MACs.
        Reference(params, pycls_flops / 1e6, top1, f"pycls dds_baselines {name}; timm {name}"),
        equals=f"timm:{name}",
        key_map=TIMM_KEY_MAP,
        weights=_weights(name),
        compared=name in COMPARED,
    )


# pycls configs/dds_baselines: (depth, w0, wa, wm, group width), exact parameters, "flops", top-1.
FAMILY = Family(
    name="regnet",
    constructor=RegNet,
    architecture_args=("w0", "wa", "wm", "depth", "group_width", "se_ratio", "activation"),
    variants=(
        _variant("regnetx_002", 13, 24, 36.44, 2.49, 8, 2_684_792, 199_040_872, 68.912),
        _variant("regnetx_004", 22, 24, 24.48, 2.54, 16, 5_157_512, 397_678_568, 72.618),
        _variant("regnetx_006", 16, 48, 36.97, 2.24, 24, 6_196_040, 600_891_112, 74.136),
        _variant("regnetx_008", 16, 56, 35.73, 2.28, 16, 7_259_656, 799_700_712, 75.154),
        _variant("regnetx_016", 18, 80, 34.01, 2.25, 24, 9_190_136, 1_602_850_792, 76.962),
        _variant("regnetx_032", 25, 88, 26.31, 2.25, 48, 15_296_552, 3_176_622_952, 78.264),
        _variant("regnetx_040", 23, 96, 38.65, 2.43, 40, 22_118_248, 3_964_499_816, 78.644),
        _variant("regnetx_064", 17, 184, 60.83, 2.07, 56, 26_209_256, 6_460_292_264, 79.156),
        _variant("regnetx_080", 23, 80, 49.56, 2.88, 120, 39_572_648, 7_995_133_416, 79.272),
        _variant("regnetx_120", 19, 168, 73.36, 2.37, 112, 46_106_056, 12_086_679_016, 79.712),
        _variant("regnetx_160", 22, 216, 55.59, 2.1, 128, 54_278_536, 15_940_756_456, 80.044),
        _variant("regnetx_320", 23, 320, 69.86, 2.0, 168, 107_811_560, 31_735_930_792, 80.502),
        _variant("regnety_002", 13, 24, 36.44, 2.49, 8, 3_162_996, 199_519_076, 70.342),
        _variant("regnety_004", 16, 48, 27.89, 2.09, 8, 4_344_144, 401_849_056, 74.102),
        _variant("regnety_006", 15, 48, 32.54, 2.32, 16, 6_055_160, 601_227_608, 75.46),
        _variant("regnety_008", 14, 56, 38.84, 2.4, 16, 6_263_168, 797_183_328, 76.316),
        _variant("regnety_016", 27, 48, 20.71, 2.65, 24, 11_202_430, 1_612_087_326, 77.934),
        _variant("regnety_032", 21, 80, 42.63, 2.66, 24, 19_436_338, 3_176_496_162, 78.926),
        _variant("regnety_040", 22, 96, 31.41, 2.24, 64, 20_646_656, 3_973_301_344, 79.36),
        _variant("regnety_064", 25, 112, 33.22, 2.27, 72, 30_583_252, 6_355_221_876, 79.89),
        _variant("regnety_080", 17, 192, 76.82, 2.19, 56, 39_180_068, 7_963_074_196, 79.948),
        _variant("regnety_120", 19, 168, 73.36, 2.37, 112, 51_822_544, 12_092_395_504, 80.33),
        _variant("regnety_160", 18, 200, 106.23, 2.48, 112, 83_590_140, 15_911_534_044, 80.392),
        _variant("regnety_320", 20, 232, 115.89, 2.53, 232, 145_046_770, 32_279_583_362, 80.934),
    ),
)
