"""train_samples checks everything before it trains; plot_complexity draws one panel per measure.

Training itself runs in tutorial 04 (tests/test_tutorials.py): one sample per space, one epoch.
"""

import pytest

from keras_lightnets.design_space import SampleResult, plot_complexity, sample, train_samples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _result(error, params):
    return SampleResult(config={}, error=error, params=params, macs=10 * params, activations=params // 2, seconds=1.0)


def test_plot_complexity_writes_a_png(tmp_path):
    results = {"AnyNetX_A": [_result(12.0, 2_000_000), _result(8.5, 3_000_000)], "RegNetX": [_result(7.0, 2_500_000)]}
    path = plot_complexity(results, tmp_path / "complexity.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="`results_by_space` must map at least one space"):
        plot_complexity({}, tmp_path / "empty.png")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"configs": {"depths": [1]}}, TypeError, "`configs` must be a non-empty list of kl.AnyNet keyword dicts"),
        ({"configs": []}, TypeError, "`configs` must be a non-empty list"),
        ({"configs": ["AnyNetX_A"]}, TypeError, r"`configs\[0\]` must be a dict of kl.AnyNet arguments, got str"),
        ({"epochs": 0}, ValueError, "`epochs` must be an integer >= 1, got 0"),
        ({"image_size": 16}, ValueError, "`image_size` must be an integer >= 32, got 16"),
        ({"seed": -1}, ValueError, "`seed` must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments_fail_before_any_training(kwargs, error, message):
    arguments = {"configs": sample("RegNetX", 1, seed=0), **kwargs}
    with pytest.raises(error, match=message):
        train_samples(**arguments, progress=False)


def test_a_configuration_that_cannot_build_fails_before_the_first_model_trains():
    good = sample("RegNetX", 1, seed=0)[0]
    bad = {**good, "group_widths": [3] * len(good["widths"])}  # widths are multiples of 8, not of 3
    with pytest.raises(ValueError, match="group"):
        train_samples([good, bad], progress=False)
