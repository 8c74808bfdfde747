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
        f"- Total run time: {report['minutes']:.1f} min.",
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


def main(argv=None):
    """Samples, trains, summarizes; writes design_space.md/.json and the two PNGs."""
    args = parse_args(argv)
    start = time.perf_counter()
    env = environment()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for space in args.spaces:
        configs = ds.sample(space, args.n, seed=args.seed, macs=tuple(args.band))
        print(f"[design_space] {space}: training {len(configs)} models", file=sys.stderr)
        results[space] = ds.train_samples(configs, epochs=args.epochs, image_size=args.image_size, seed=args.seed)
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
        "minutes": (time.perf_counter() - start) / 60,
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
