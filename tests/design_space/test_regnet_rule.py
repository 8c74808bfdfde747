"""The RegNet rule: six numbers to four stages, checked against the 24 published models
(pycls configs/dds_baselines; the derived depths and widths of architectures.md)."""

import re

import pytest

import keras_lightnets as kl
from keras_lightnets.design_space import Stage, regnet_stages

# name: (stage depths, stage widths), from ../shared/reference/architectures.md
PUBLISHED_STAGES = {
    "regnetx_002": ([1, 1, 4, 7], [24, 56, 152, 368]),
    "regnetx_004": ([1, 2, 7, 12], [32, 64, 160, 384]),
    "regnetx_006": ([1, 3, 5, 7], [48, 96, 240, 528]),
    "regnetx_008": ([1, 3, 7, 5], [64, 128, 288, 672]),
    "regnetx_016": ([2, 4, 10, 2], [72, 168, 408, 912]),
    "regnetx_032": ([2, 6, 15, 2], [96, 192, 432, 1008]),
    "regnetx_040": ([2, 5, 14, 2], [80, 240, 560, 1360]),
    "regnetx_064": ([2, 4, 10, 1], [168, 392, 784, 1624]),
    "regnetx_080": ([2, 5, 15, 1], [80, 240, 720, 1920]),
    "regnetx_120": ([2, 5, 11, 1], [224, 448, 896, 2240]),
    "regnetx_160": ([2, 6, 13, 1], [256, 512, 896, 2048]),
    "regnetx_320": ([2, 7, 13, 1], [336, 672, 1344, 2520]),
    "regnety_002": ([1, 1, 4, 7], [24, 56, 152, 368]),
    "regnety_004": ([1, 3, 6, 6], [48, 104, 208, 440]),
    "regnety_006": ([1, 3, 7, 4], [48, 112, 256, 608]),
    "regnety_008": ([1, 3, 8, 2], [64, 128, 320, 768]),
    "regnety_016": ([2, 6, 17, 2], [48, 120, 336, 888]),
    "regnety_032": ([2, 5, 13, 1], [72, 216, 576, 1512]),
    "regnety_040": ([2, 6, 12, 2], [128, 192, 512, 1088]),
    "regnety_064": ([2, 7, 14, 2], [144, 288, 576, 1296]),
    "regnety_080": ([2, 4, 10, 1], [168, 448, 896, 2016]),
    "regnety_120": ([2, 5, 11, 1], [224, 448, 896, 2240]),
    "regnety_160": ([2, 4, 11, 1], [224, 448, 1232, 3024]),
    "regnety_320": ([2, 5, 12, 1], [232, 696, 1392, 3712]),
}
RULE_ARGS = ("w0", "wa", "wm", "depth", "group_width")


def test_every_published_regnet_is_in_the_table():
    assert set(kl.list_models("regnet[xy]_*")) == set(PUBLISHED_STAGES)


@pytest.mark.parametrize("name", sorted(PUBLISHED_STAGES))
def test_the_rule_derives_the_published_stages(name):
    kwargs = kl.get_entry(name).kwargs
    stages = regnet_stages(*(kwargs[arg] for arg in RULE_ARGS))
    depths, widths = PUBLISHED_STAGES[name]
    assert [stage.depth for stage in stages] == depths
    assert [stage.width for stage in stages] == widths
    assert sum(depths) == kwargs["depth"]
    for stage in stages:
        assert stage.group_width <= stage.width and stage.width % stage.group_width == 0


def test_the_group_width_is_clipped_to_a_narrower_stage():
    # RegNetX-8.0GF: group width 120, first stage 80 channels -> one group of 80 (Keras 2 computed
    # 80 // 120 = 0 groups there).
    stages = regnet_stages(80, 49.56, 2.88, 23, 120)
    assert stages[0] == Stage(depth=2, width=80, group_width=80)
    assert stages[0].groups == 1
    assert [stage.groups for stage in stages[1:]] == [2, 6, 16]


def test_widths_are_multiples_of_the_quantum_with_round_half_even():
    # 24 * 2.49 = 59.76 -> 59.76 / 8 = 7.47 -> 56; numpy rounds half to even like pycls.
    assert [stage.width for stage in regnet_stages(24, 36.44, 2.49, 13, 8)][:2] == [24, 56]
    for stage in regnet_stages(48, 27.89, 2.09, 16, 8, quantum=16):
        assert stage.width % 16 == 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"w0": 20}, ValueError, "`w0` must be a multiple of quantum=8, got 20"),
        ({"w0": 0}, ValueError, "`w0` must be a number > 0, got 0"),
        ({"wa": -1.0}, ValueError, "`wa` must be a number >= 0, got -1.0"),
        ({"wm": 1.0}, ValueError, "`wm` must be a number > 1, got 1.0"),
        ({"depth": 0}, ValueError, "`depth` must be an integer >= 1, got 0"),
        ({"depth": 2.5}, TypeError, "`depth` must be an integer >= 1, got 2.5"),
        ({"group_width": 0}, ValueError, "`group_width` must be an integer >= 1, got 0"),
        ({"wa": "36"}, TypeError, "`wa` must be a number >= 0, got '36'"),
    ],
)
def test_bad_rule_arguments_name_the_argument(kwargs, error, message):
    arguments = {"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 13, "group_width": 8, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        regnet_stages(**arguments)
