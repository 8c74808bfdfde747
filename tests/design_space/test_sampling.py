"""Design spaces: seeded samples with each space's constraints, MACs computed without building
(equal to ``profile`` of the built model), EDFs, and bad input named."""

import re

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.design_space import SPACES, anynet_macs, edf, plot_edfs, sample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("space", SPACES)
def test_samples_are_reproducible_and_keep_the_space_constraints(space):
    configs = sample(space, 20, seed=3)
    assert configs == sample(space, 20, seed=3) and configs != sample(space, 20, seed=4)
    for config in configs:
        assert config["stem_width"] == 32 and set(config["strides"]) == {2}
        assert len(config["depths"]) == 4  # RegNets too: their stage count is kept at AnyNetX's
        if space.startswith("AnyNetX"):
            assert all(1 <= d <= 16 for d in config["depths"])
            assert all(8 <= w <= 1024 for w in config["widths"])
        if space >= "AnyNetX_B" and space.startswith("AnyNetX") or space.startswith("RegNet"):
            assert len(set(config["bottleneck_ratios"])) == 1
        if space in ("AnyNetX_D", "AnyNetX_E") or space.startswith("RegNet"):
            assert config["widths"] == sorted(config["widths"])
        if space == "AnyNetX_E":
            assert config["depths"] == sorted(config["depths"])
        assert (config["se_ratio"] == 0.25) == (space == "RegNetY")
        for width, ratio, group_width in zip(
            config["widths"], config["bottleneck_ratios"], config["group_widths"], strict=True
        ):
            assert round(width * ratio) % group_width == 0  # buildable: AnyNet rejects anything else


def test_the_mac_band_is_kept():
    configs = sample("AnyNetX_A", 10, seed=0, macs=(300e6, 500e6))
    assert all(300e6 <= anynet_macs(config) <= 500e6 for config in configs)


@pytest.mark.parametrize("space, seed", [("AnyNetX_A", 1), ("RegNetY", 2)])
def test_macs_from_the_numbers_equal_profile_of_the_built_model(space, seed):
    config = sample(space, 1, seed=seed, macs=(100e6, 600e6))[0]
    with keras.StatelessScope(initialize_variables=False):
        model = kl.AnyNet(**config, input_shape=(224, 224, 3))
    assert anynet_macs(config) == kl.profile(model).macs
    with keras.StatelessScope(initialize_variables=False):
        small = kl.AnyNet(**config, input_shape=(65, 65, 3), classes=10)
    assert anynet_macs(config, input_size=65, classes=10) == kl.profile(small).macs


def test_published_regnets_macs_from_the_numbers():
    # regnetx_002 as an AnyNet point: 199.0 M MACs, as profile and pycls count.
    config = {
        "stem_width": 32,
        "depths": (1, 1, 4, 7),
        "widths": (24, 56, 152, 368),
        "strides": (2, 2, 2, 2),
        "bottleneck_ratios": (1, 1, 1, 1),
        "group_widths": (8, 8, 8, 8),
    }
    assert anynet_macs(config) / 1e6 == pytest.approx(kl.get_entry("regnetx_002").reference.macs_m, rel=1e-5)


def test_edf_and_its_plot(tmp_path):
    values, fraction = edf([3.0, 1.0, 2.0, 2.0])
    assert values.tolist() == [1.0, 2.0, 2.0, 3.0] and fraction.tolist() == [0.25, 0.5, 0.75, 1.0]
    path = plot_edfs({"A": [30.0, 35.0, 40.0], "B": [28.0, 29.0]}, tmp_path / "edf.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: sample("AnyNetX_F", 2, seed=0), ValueError, "`space` must be one of ('AnyNetX_A',"),
        (lambda: sample("RegNetX", 0, seed=0), ValueError, "`n` must be an integer >= 1, got 0"),
        (lambda: sample("RegNetX", 2, seed=-1), ValueError, "`seed` must be an integer >= 0, got -1"),
        (lambda: sample("RegNetX", 2, seed=0, macs=(5e8, 1e8)), ValueError, "low <= high"),
        (lambda: sample("RegNetX", 2, seed=0, macs=400e6), TypeError, "`macs` must be None or a (low, high) pair"),
        (lambda: sample("AnyNetX_A", 1, seed=0, macs=(1, 2)), ValueError, "fell in the band after 20000 draws"),
        (lambda: edf([]), ValueError, "`errors` must hold at least one error"),
        (lambda: edf([1.0, float("nan")]), ValueError, "`errors` must be finite numbers"),
    ],
)
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_regnet_samples_build():
    for config in sample("RegNetX", 3, seed=0, macs=(100e6, 800e6)):
        with keras.StatelessScope(initialize_variables=False):
            assert kl.AnyNet(**config, input_shape=(64, 64, 3)).output_shape == (None, 1000)
    assert np.isfinite(anynet_macs(config))
