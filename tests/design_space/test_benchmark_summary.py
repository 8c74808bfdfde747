"""The design-space benchmark's statistics (benchmarks/design_space.py) on made-up errors: the
table it puts in the README is computed right, without training anything."""

import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from keras_lightnets.design_space import SampleResult

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # for its `_harness` import
    try:
        spec = importlib.util.spec_from_file_location("design_space_benchmark", BENCHMARKS / "design_space.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def results(errors, params=1_000_000):
    return [SampleResult({}, float(e), params, 1, 1, 2.0) for e in errors]


def test_summary_quartiles_share_and_difference(bench):
    baseline, rows = bench.summarize({"A": results([10, 20, 30, 40, 50]), "B": results([5, 15, 25])}, 0, 25.0)
    assert baseline == "A"
    a, b = rows
    assert (a["min"], a["q25"], a["median"], a["q75"], a["mean"]) == (10, 20, 30, 40, 30)
    assert a["share_good"] == pytest.approx(0.4) and b["share_good"] == pytest.approx(2 / 3)
    assert "interval_95" not in a and b["mean_minus_baseline"] == pytest.approx(-15.0)
    low, high = b["interval_95"]
    assert low < -15.0 < high


def test_bootstrap_interval_is_a_point_without_spread_and_narrows_with_more_models(bench):
    assert bench.bootstrap_mean_difference([3.0] * 4, [1.0] * 4, seed=0) == (2.0, 2.0)
    rng = np.random.default_rng(0)
    few = bench.bootstrap_mean_difference(rng.normal(10, 5, 8), rng.normal(10, 5, 8), seed=0)
    many = bench.bootstrap_mean_difference(rng.normal(10, 5, 512), rng.normal(10, 5, 512), seed=0)
    assert many[1] - many[0] < (few[1] - few[0]) / 4  # ~sqrt(64) = 8x narrower


def test_markdown_states_the_settings_and_the_table(bench):
    summary = {"A": results([10, 30]), "B": results([20, 40])}
    baseline, rows = bench.summarize(summary, 0, 25.0)
    report = {
        "environment": {"date": "2026-12-02", "tensorflow": "2.21.0", "keras": "3.15.1", "cpu_count": 2},
        "settings": {"n": 2, "seed": 0, "epochs": 2, "image_size": 64, "band": [50e6, 100e6], "good_error": 25.0},
        "minutes": 3.0,
        "model_minutes": 2.5,
        "baseline": baseline,
        "summary": rows,
    }
    text = bench.render_markdown(report)
    assert "2 configurations per space in 50-100 MF" in text and "at 64x64" in text
    assert "summed over the models: 2.5 min" in text
    assert "| A | 2 | 10.00 | 15.00 | 20.00 | 25.00 | 50 % | 1.00 | — |" in text
    assert "| B | 2 | 20.00 | 25.00 | 30.00 | 35.00 | 50 % | 1.00 | +10.00 (" in text and "share < 25 %" in text


def test_bad_options_are_refused(bench):
    for argv in (["--n", "0"], ["--image-size", "16"], ["--band", "2e6", "1e6"]):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
    assert bench.parse_args([]).image_size == 64


def test_a_stopped_run_resumes_after_the_last_model_it_finished(bench, tmp_path, monkeypatch):
    args = bench.parse_args(["--n", "3", "--spaces", "RegNetX", "--output-dir", str(tmp_path)])
    configs = bench.ds.sample("RegNetX", 3, seed=0, macs=tuple(args.band))
    trained = []

    def fake_train(configs, *, epochs, image_size, seed, progress):  # records the calls, trains nothing
        trained.append(seed)
        return [SampleResult(configs[0], 10.0 + seed, 1, 1, 1, 1.0)]

    monkeypatch.setattr(bench.ds, "train_samples", fake_train)
    progress = tmp_path / bench.PROGRESS_FILE
    progress.write_text(
        json.dumps({"settings": bench.training_settings(args)})
        + "\n"
        + json.dumps({"space": "RegNetX", "index": 0, "result": asdict(SampleResult(configs[0], 42.0, 1, 1, 1, 9.0))})
        + "\n"
    )
    results = bench.train_with_progress(args, tmp_path)
    assert trained == [1, 2]  # model 0 was reused; models 1 and 2 got seeds 0 + 1 and 0 + 2
    assert [r.error for r in results["RegNetX"]] == [42.0, 11.0, 12.0]
    assert len(progress.read_text().splitlines()) == 4  # settings + the three models
    assert bench.train_with_progress(args, tmp_path)["RegNetX"] == results["RegNetX"] and trained == [1, 2]

    other = bench.parse_args(["--n", "3", "--epochs", "5", "--spaces", "RegNetX", "--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="was written with settings"):
        bench.train_with_progress(other, tmp_path)
