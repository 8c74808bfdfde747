"""Design-space benchmark: the RegNet paper's AnyNetX_A vs RegNetX comparison, in small.

For each ``--spaces`` entry (default ``AnyNetX_A`` and ``RegNetX``):

1. ``design_space.sample`` draws ``--n`` configurations (default 32) whose MACs at 224x224 fall in
   ``--band`` (default 50-100 MF; the paper's 360-400 MF band costs ~4x more to train here), seeded by
   ``--seed``;
2. ``design_space.train_samples`` trains each for ``--epochs`` (default 2) on the bundled digits at
   ``--image-size`` (default 64: RegNets barely learn the digits at 32 px) with ``fit``'s default
   recipe and records its test error (355 images), params, MACs and activations at that size;
3. the error EDFs of the spaces go on one plot (``design_space_edf.png``), the errors against
   complexity on another (``design_space_complexity.png``), and a table gives per space the error
   quartiles, the share of models under 5 % error, and a bootstrap 95 % interval (10,000
   resamples of models) for the difference of mean errors against the first space.

The results are printed as Markdown and written (atomically) to ``<output-dir>/design_space.md``
and ``<output-dir>/design_space.json`` with the two PNGs next to them.

    python benchmarks/design_space.py                          # full run (hours on 2 CPU cores, minutes on a GPU)
    python benchmarks/design_space.py --n 2 --epochs 1 --output-dir /tmp/bench
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # before keras is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info messages off

import numpy as np  # noqa: E402
from _harness import environment, markdown_table, write_atomic  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from keras_lightnets import design_space as ds  # noqa: E402

DEFAULT_SPACES = ("AnyNetX_A", "RegNetX")
GOOD_ERROR = 25.0  # percent: "a good model" after a few epochs on the digits (--good-error)
BOOTSTRAP_RESAMPLES = 10_000
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", nargs="+", default=list(DEFAULT_SPACES), choices=ds.SPACES)
    parser.add_argument("--n", type=int, default=32, help="models per space (default: 32)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per model (default: 2)")
    parser.add_argument("--image-size", type=int, default=64, help="training resolution (default: 64)")
    parser.add_argument(
        "--band", type=float, nargs=2, default=[50e6, 100e6], help="MACs at 224x224 (default: 50e6 100e6)"
    )
    parser.add_argument(
        "--good-error", type=float, default=GOOD_ERROR, help=f"error (%%) counted as good (default: {GOOD_ERROR:g})"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling and training seed (default: 0)")
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where results go (default: {DEFAULT_OUTPUT_DIR})"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.epochs < 1:
        parser.error("--n and --epochs must be at least 1")
    if args.image_size < 32:
        parser.error("--image-size must be at least 32")
    if not 0 <= args.band[0] <= args.band[1]:
        parser.error("--band must be LOW HIGH with 0 <= LOW <= HIGH")
    return args


def bootstrap_mean_difference(errors, baseline, seed):
    """95 % interval of mean(errors) - mean(baseline), resampling models of each space with replacement."""
    rng = np.random.default_rng(seed)
    errors, baseline = np.asarray(errors), np.asarray(baseline)
    ours = rng.choice(errors, (BOOTSTRAP_RESAMPLES, errors.size)).mean(axis=1)
    theirs = rng.choice(baseline, (BOOTSTRAP_RESAMPLES, baseline.size)).mean(axis=1)
    low, high = np.percentile(ours - theirs, [2.5, 97.5])
    return float(low), float(high)


def summarize(results_by_space, seed, good_error=GOOD_ERROR):
    """Per space: error quartiles, share under ``good_error``, mean difference to the first space with its interval."""
    baseline_name = next(iter(results_by_space))
    baseline = [r.error for r in results_by_space[baseline_name]]
    rows = []
    for name, results in results_by_space.items():
        errors = np.array([r.error for r in results])
        row = {
            "space": name,
            "n": int(errors.size),
            "min": float(errors.min()),
            "q25": float(np.percentile(errors, 25)),
            "median": float(np.median(errors)),
            "q75": float(np.percentile(errors, 75)),
            "mean": float(errors.mean()),
            "share_good": float((errors < good_error).mean()),
            "median_params_m": float(np.median([r.params for r in results]) / 1e6),
            "seconds_per_model": float(np.mean([r.seconds for r in results])),
        }
        if name != baseline_name:
            row["mean_minus_baseline"] = float(errors.mean() - np.mean(baseline))
            row["interval_95"] = bootstrap_mean_difference(errors, baseline, seed)
        rows.append(row)
    return baseline_name, rows


def render_markdown(report):
    """The report as a Markdown document."""
    env, settings = report["environment"], report["settings"]
    baseline = report["baseline"]
    low, high = settings["band"]
    lines = [
        "# keras_lightnets design-space benchmark",
        "",
        f"- Date: {env['date']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}, CPU count {env['cpu_count']}",
        f"- {settings['n']} configurations per space in {low / 1e6:.0f}-{high / 1e6:.0f} MF (at 224x224), seed "
        f"{settings['seed']}; each trained {settings['epochs']} epochs on `lightnets_digits` at "
        f"{settings['image_size']}x{settings['image_size']} "
        "(default recipe), error on the 355 test images.",
        f"- Training time, summed over the models: {report['model_minutes']:.1f} min.",
        "",
        "![error EDFs](design_space_edf.png)",
        "",
    ]
    header = ["space", "n", "min", "q25", "median", "q75", f"share < {settings['good_error']:g} %", "median params (M)",
              f"mean − {baseline} (95 % CI)"]  # fmt: skip
    rows = []
    for row in report["summary"]:
        difference = "—"
        if "interval_95" in row:
            low_ci, high_ci = row["interval_95"]
            difference = f"{row['mean_minus_baseline']:+.2f} ({low_ci:+.2f}, {high_ci:+.2f})"
        rows.append([row["space"], str(row["n"]), f"{row['min']:.2f}", f"{row['q25']:.2f}", f"{row['median']:.2f}",
                     f"{row['q75']:.2f}", f"{100 * row['share_good']:.0f} %", f"{row['median_params_m']:.2f}",
                     difference])  # fmt: skip
    lines += ["Test error (%) per space:", "", markdown_table(header, rows), ""]
    lines += ["![complexity](design_space_complexity.png)"]
    return "\n".join(lines) + "\n"


PROGRESS_FILE = "design_space.progress.jsonl"


def training_settings(args):
    """What decides a model's result: a progress file written under other settings is not reused."""
    return {"n": args.n, "epochs": args.epochs, "image_size": args.image_size, "band": list(args.band),
            "seed": args.seed}  # fmt: skip


def load_progress(path, settings):
    """Models already trained under ``settings``: {(space, index): SampleResult}. ``ValueError`` on other settings."""
    if not path.exists():
        return {}
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0].get("settings") != settings:
        found = lines[0].get("settings") if lines else None
        raise ValueError(
            f"{path} was written with settings {found}, this run has {settings}: "
            "pass another --output-dir or delete the file to start afresh"
        )
    return {(line["space"], line["index"]): ds.SampleResult(**line["result"]) for line in lines[1:]}


def _reusable(done, space, index, config):
    """The saved result of model ``index`` of ``space`` if it was trained on this very configuration."""
    previous = done.get((space, index))
    # the configuration as the progress file stores it (JSON: tuples become lists)
    return previous if previous is not None and previous.config == json.loads(json.dumps(config)) else None


def train_with_progress(args, output_dir):
    """Trains every sample, one model at a time, appending each result to the progress file.

    A run of this benchmark takes hours on a CPU: when it is stopped, the same command resumes
    after the last model it finished (a model's result is kept only when its configuration is
    the one the seeded sampling draws again).
    """
    settings = training_settings(args)
    path = output_dir / PROGRESS_FILE
    done = load_progress(path, settings)
    if not path.exists():
        path.write_text(json.dumps({"settings": settings}) + "\n", encoding="utf-8")
    results = {}
    for space in args.spaces:
        configs = ds.sample(space, args.n, seed=args.seed, macs=tuple(args.band))
        kept = sum(_reusable(done, space, index, config) is not None for index, config in enumerate(configs))
        print(f"[design_space] {space}: {len(configs)} models, {kept} already trained", file=sys.stderr)
        results[space] = []
        for index, config in enumerate(tqdm(configs, desc=space, unit="model")):
            previous = _reusable(done, space, index, config)
            if previous is not None:
                results[space].append(previous)
                continue
            # model `index` gets seed + index, as train_samples gives it within one call
            (result,) = ds.train_samples([config], epochs=args.epochs, image_size=args.image_size,
                                         seed=args.seed + index, progress=False)  # fmt: skip
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"space": space, "index": index, "result": asdict(result)}, default=int) + "\n")
            results[space].append(result)
    return results


def main(argv=None):
    """Samples, trains (resuming from the progress file), summarizes; writes design_space.md/.json and the PNGs."""
    args = parse_args(argv)
    start = time.perf_counter()
    env = environment()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results = train_with_progress(args, args.output_dir)
    baseline, summary = summarize(results, args.seed, args.good_error)
    ds.plot_edfs(
        {space: [r.error for r in trained] for space, trained in results.items()},
        args.output_dir / "design_space_edf.png",
        title=f"Error EDFs: {args.n} models per space, {args.epochs} epochs on digits at {args.image_size} px",
    )
    ds.plot_complexity(results, args.output_dir / "design_space_complexity.png")
    report = {
        "environment": env,
        "settings": {
            "spaces": args.spaces,
            "n": args.n,
            "epochs": args.epochs,
            "image_size": args.image_size,
            "band": args.band,
            "good_error": args.good_error,
            "seed": args.seed,
        },  # fmt: skip
        "minutes": (time.perf_counter() - start) / 60,  # this invocation only (a resumed run is shorter)
        "model_minutes": sum(r.seconds for trained in results.values() for r in trained) / 60,
        "baseline": baseline,
        "summary": summary,
        "models": {space: [asdict(r) for r in trained] for space, trained in results.items()},
    }
    markdown = render_markdown(report)
    print(markdown, end="")
    write_atomic(args.output_dir / "design_space.md", markdown)
    write_atomic(args.output_dir / "design_space.json", json.dumps(report, indent=2, default=int) + "\n")
    print(f"Wrote {args.output_dir / 'design_space.md'} and the PNGs next to it", file=sys.stderr)


if __name__ == "__main__":
    main()
