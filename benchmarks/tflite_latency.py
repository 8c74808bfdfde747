"""TFLite latency and size benchmark: FP32 vs post-training INT8, batch 1, XNNPACK, 1 and 2 threads.

For one variant per family (default ``mobilenetv1_100``, ``mobilenetv2_100``, ``rexnet_100``,
``rexnet_lite_100``, ``squeezenet1_1``, ``resnet18``, ``regnetx_004``), untrained, at the
registry's reference input (224x224, 1000 classes) as ``deploy.android.load_deployable(name)``
builds it (input ``pixel / 255``, normalization inside, softmax out), fused by
``keras_lightnets.reparameterize`` where it has RepVGG / ParNet / MobileOne / GhostNetV3 blocks (what
the export ships):

1. export it to an FP32 ``.tflite`` and a fully integer INT8 one (post-training quantization
   calibrated on ``--representative-samples`` ``lightnets_digits`` training images; weights
   are random, so only size and latency mean anything here, not accuracy);
2. for each ``--threads`` count, time ``--runs`` invokes of each file at batch 1 with the LiteRT
   interpreter and its default XNNPACK delegate (what ``deploy.benchmark_tflite`` measures),
   after ``--warmup`` untimed ones, alternating FP32 / INT8 invokes (A B A B ...) so that both
   see the same machine load; median and 90th percentile per file;
3. report the INT8 / FP32 latency ratio per thread count (target <= 0.7 for the mobilenetv2
   and rexnet families) and the size ratio (target <= 0.3);
4. with ``--baseline NAME``, also the INT8 latency of each model against that model's INT8 file
   (e.g. ``efficientnet_lite0`` against ``mobilenetv2_100``), its file timed in the same
   interleaved loop (A B C A B C ...) as the model's two files.

The results are printed as Markdown and written (atomically) to
``<output-dir>/tflite_latency.md`` and ``<output-dir>/tflite_latency.json``.

    python benchmarks/tflite_latency.py                                   # full run
    python benchmarks/tflite_latency.py --models mobilenetv2_100 --runs 5 --output-dir /tmp/bench
    python benchmarks/tflite_latency.py --models efficientnet_lite0 --baseline mobilenetv2_100
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # before keras is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info messages off

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _harness import environment, interleaved_medians, markdown_table, write_atomic  # noqa: E402

import keras_lightnets  # noqa: E402
from keras_lightnets.deploy import TFLiteRunner, export_tflite  # noqa: E402
from keras_lightnets.deploy.android import load_deployable  # noqa: E402
from keras_lightnets.reparameterize import fusable_blocks, reparameterize  # noqa: E402

DEFAULT_MODELS = (
    "mobilenetv1_100",
    "mobilenetv2_100",
    "rexnet_100",
    "rexnet_lite_100",
    "squeezenet1_1",
    "resnet18",
    "regnetx_004",
)
LATENCY_TARGET = 0.7
LATENCY_TARGET_FAMILIES = ("mobilenetv2", "rexnet")
SIZE_TARGET = 0.3
KINDS = ("fp32", "int8")
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help=f"registry names (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument("--runs", type=int, default=50, help="timed invokes per file and thread count (default: 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed invokes per file first (default: 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default: 1 2)")
    parser.add_argument("--representative-samples", type=int, default=32, help="INT8 calibration images (default: 32)")
    parser.add_argument(
        "--baseline",
        default=None,
        help="a registry name whose INT8 file every model's INT8 file is also timed against (default: none)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where results go (default: {DEFAULT_OUTPUT_DIR})"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.representative_samples < 1 or any(t < 1 for t in args.threads):
        parser.error("--runs, --representative-samples and --threads must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    try:
        args.models = [keras_lightnets.get_entry(name).name for name in args.models]
        if args.baseline is not None:
            args.baseline = keras_lightnets.get_entry(args.baseline).name
    except ValueError as error:
        parser.error(str(error))
    return args


def log(message):
    print(f"[tflite_latency] {message}", file=sys.stderr, flush=True)


def _delegated(runner):
    """Whether XNNPACK took the graph (it shows as DELEGATE nodes), as ``benchmark_tflite`` reports it."""
    return any(op["op_name"] == "DELEGATE" for op in runner.interpreter._get_ops_details())


def time_files(paths, threads, runs, warmup):
    """Interleaved batch-1 latency of every file in ``paths`` (a dict) on ``threads`` threads, in ms."""
    runners = {kind: TFLiteRunner(path, threads=threads) for kind, path in paths.items()}
    # One image per file: a baseline file may take another resolution (a checkpoint trained at 256 px
    # deploys at 256, MobileNetV2 at 224).
    rng = np.random.default_rng(0)
    images = {
        kind: rng.standard_normal((1, *runner.input_shape)).astype(np.float32) for kind, runner in runners.items()
    }
    calls = {kind: (lambda runner=runner, image=images[kind]: runner.invoke(image)) for kind, runner in runners.items()}
    if warmup:
        interleaved_medians(calls, warmup)  # the first invokes pay XNNPACK's weight packing
    timed = interleaved_medians(calls, runs)
    results = {}
    for kind, (_, seconds) in timed.items():
        ms = np.asarray(seconds) * 1000.0
        results[kind] = {
            "median_ms": float(np.median(ms)),
            "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(np.mean(ms)),
            "min_ms": float(np.min(ms)),
            "delegated": _delegated(runners[kind]),
            "times_ms": ms.tolist(),
        }
    return results


def export_pair(name, args, work_dir):
    """``(paths, exports, params, resolution)``: ``name``'s FP32 and INT8 files."""
    model, _ = load_deployable(name)
    if fusable_blocks(model):  # what ships: the export fuses RepVGG / ParNet / MobileOne / GhostNetV3 blocks
        model = reparameterize(model)
    resolution = int(model.input_shape[1])
    paths = {kind: work_dir / f"{name}_{kind}.tflite" for kind in KINDS}
    log(f"{name}: exporting FP32 and INT8 ({args.representative_samples} calibration images)")
    exports = {
        "fp32": export_tflite(model, paths["fp32"]),
        "int8": export_tflite(
            model,
            paths["int8"],
            quantization="int8",
            representative_data="lightnets_digits",
            representative_samples=args.representative_samples,
        ),
    }
    params = model.count_params()
    del model
    keras.backend.clear_session()
    return paths, exports, params, resolution


def measure_model(name, args, work_dir, baseline_int8=None):
    """Builds ``name``, exports FP32 and INT8, times both (and ``baseline_int8``, a path, alongside);
    returns the JSON row."""
    started = time.perf_counter()
    entry = keras_lightnets.get_entry(name)
    paths, exports, params, resolution = export_pair(name, args, work_dir)
    export_s = time.perf_counter() - started
    timed_paths = dict(paths) if baseline_int8 is None else {**paths, "baseline_int8": baseline_int8}

    latency = {}
    for threads in args.threads:
        load_before = os.getloadavg()[0]
        latency[str(threads)] = time_files(timed_paths, threads, args.runs, args.warmup)
        latency[str(threads)]["load_average_1min_before"] = load_before
        fp32, int8 = latency[str(threads)]["fp32"], latency[str(threads)]["int8"]
        log(
            f"{name} @ {threads} thread(s): FP32 {fp32['median_ms']:.2f} ms, INT8 {int8['median_ms']:.2f} ms "
            f"(ratio {int8['median_ms'] / fp32['median_ms']:.2f}; load {load_before:.2f})"
        )
    sizes = {kind: result.size_bytes for kind, result in exports.items()}
    latency_ratios = {t: v["int8"]["median_ms"] / v["fp32"]["median_ms"] for t, v in latency.items()}
    baseline_ratios = (
        None
        if baseline_int8 is None
        else {t: v["int8"]["median_ms"] / v["baseline_int8"]["median_ms"] for t, v in latency.items()}
    )
    has_target = entry.family in LATENCY_TARGET_FAMILIES
    return {
        "model": name,
        "family": entry.family,
        "resolution": resolution,
        "params": params,
        "size_bytes": sizes,
        "size_ratio": sizes["int8"] / sizes["fp32"],
        "size_meets_target": sizes["int8"] / sizes["fp32"] <= SIZE_TARGET,
        "int8_fully_integer": exports["int8"].summary.fully_integer,
        "latency": latency,
        "latency_ratio": latency_ratios,
        "int8_vs_baseline_int8": baseline_ratios,
        "latency_target": LATENCY_TARGET if has_target else None,
        "latency_meets_target": {t: r <= LATENCY_TARGET for t, r in latency_ratios.items()} if has_target else None,
        "export_s": export_s,
        "total_s": time.perf_counter() - started,
    }


def _mark(ok):
    return "PASS" if ok else "MISS"


def render_markdown(report):
    """The whole report as a Markdown document."""
    env, settings = report["environment"], report["settings"]
    loads = report["load_average_1min"]
    lines = [
        "# keras_lightnets TFLite latency and size: FP32 vs INT8 (post-training)",
        "",
        f"- Date: {env['date']}",
        f"- TensorFlow {env['tensorflow']}, Keras {env['keras']}, keras_lightnets {env['keras_lightnets']}, "
        f"Python {env['python']}, LiteRT {report['litert']}",
        f"- CPU count: {env['cpu_count']}; processor: {env['processor']}; platform: {env['platform']}; "
        f"1-min load average {loads['start']:.2f} at the start, {loads['end']:.2f} at the end",
        "- Untrained models at the registry's reference input, 1000 classes, input `pixel / 255` with normalization "
        "inside and a softmax out (`load_deployable(name)`); INT8: full-integer post-training quantization "
        f"calibrated on {settings['representative_samples']} `lightnets_digits` images, float32 I/O.",
        f"- Batch 1, LiteRT interpreter with XNNPACK; {settings['warmup']} warm-up and {settings['runs']} timed "
        "invokes per file and thread count, FP32 / INT8 interleaved; median (p90) in ms.",
        f"- Total run time: {report['total_s'] / 60:.1f} min.",
        "",
        "## Latency (ms)",
        "",
    ]
    header = ["Model", "Resolution", "Threads", "FP32 median (p90)", "INT8 median (p90)", "INT8 / FP32"]
    rows = []
    for row in report["models"]:
        for threads, measured in row["latency"].items():
            fp32, int8 = measured["fp32"], measured["int8"]
            rows.append(
                [
                    row["model"],
                    f"{row['resolution']}x{row['resolution']}",
                    threads,
                    f"{fp32['median_ms']:.2f} ({fp32['p90_ms']:.2f})",
                    f"{int8['median_ms']:.2f} ({int8['p90_ms']:.2f})",
                    f"{row['latency_ratio'][threads]:.2f}",
                ]
            )
    lines += [markdown_table(header, rows), ""]
    if settings.get("baseline"):
        baseline = settings["baseline"]
        header = ["Model", "Threads", "INT8 median (ms)", f"{baseline} INT8 median (ms)", f"INT8 / {baseline} INT8"]
        rows = [
            [
                row["model"],
                threads,
                f"{measured['int8']['median_ms']:.2f}",
                f"{measured['baseline_int8']['median_ms']:.2f}",
                f"{row['int8_vs_baseline_int8'][threads]:.2f}",
            ]
            for row in report["models"]
            for threads, measured in row["latency"].items()
        ]
        lines += [
            f"## INT8 against {baseline} INT8 (timed in the same interleaved loop)",
            "",
            markdown_table(header, rows),
            "",
        ]
    lines += ["## Size and targets", ""]
    threads = settings["threads"]
    header = [
        "Model",
        "FP32 MB",
        "INT8 MB",
        "size ratio",
        f"size <= {SIZE_TARGET}",
        *(f"latency ratio {t}T" for t in threads),
        f"latency <= {LATENCY_TARGET}",
    ]
    rows = []
    for row in report["models"]:
        met = row["latency_meets_target"]
        latency_mark = "n/a (no target)" if met is None else ", ".join(f"{t}T {_mark(met[str(t)])}" for t in threads)
        rows.append(
            [
                row["model"],
                f"{row['size_bytes']['fp32'] / 1e6:.2f}",
                f"{row['size_bytes']['int8'] / 1e6:.2f}",
                f"{row['size_ratio']:.2f}",
                _mark(row["size_meets_target"]),
                *(f"{row['latency_ratio'][str(t)]:.2f}" for t in threads),
                latency_mark,
            ]
        )
    lines += [
        markdown_table(header, rows),
        "",
        f"Targets: INT8 / FP32 size <= {SIZE_TARGET} for every model; INT8 / FP32 median latency <= "
        f"{LATENCY_TARGET} for the {' and '.join(LATENCY_TARGET_FAMILIES)} families.",
    ]
    busiest = max(loads["start"], loads["end"])
    if max(threads) > 1 and busiest >= 1.0:
        lines += [
            "",
            f"Note: the machine was not idle (1-min load average up to {busiest:.2f} on {env['cpu_count']} CPUs), "
            f"so the {max(threads)}-thread timings measure contention as much as scaling; the INT8 / FP32 ratios "
            "are the robust numbers (both files timed alternately under the same load).",
        ]
    return "\n".join(lines) + "\n"


def _litert_version():
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - only for the header
        return "unknown"


def main(argv=None):
    """Runs the benchmark, prints the Markdown report and writes tflite_latency.md and tflite_latency.json."""
    args = parse_args(argv)
    env = environment()
    log(f"os.cpu_count() = {env['cpu_count']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}")
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-tflite-") as work_dir:
        baseline_int8 = None
        if args.baseline is not None:
            baseline_int8 = export_pair(args.baseline, args, Path(work_dir))[0]["int8"]
        rows = [measure_model(name, args, Path(work_dir), baseline_int8) for name in args.models]
    report = {
        "environment": env,
        "litert": _litert_version(),
        "settings": {
            "runs": args.runs,
            "warmup": args.warmup,
            "threads": args.threads,
            "representative_samples": args.representative_samples,
            "representative_data": "lightnets_digits",
            "baseline": args.baseline,
            "latency_target": LATENCY_TARGET,
            "latency_target_families": list(LATENCY_TARGET_FAMILIES),
            "size_target": SIZE_TARGET,
        },
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "total_s": time.perf_counter() - started,
        "models": rows,
    }
    markdown = render_markdown(report)
    print(markdown, end="")
    write_atomic(args.output_dir / "tflite_latency.md", markdown)
    write_atomic(args.output_dir / "tflite_latency.json", json.dumps(report, indent=2) + "\n")
    print(
        f"Wrote {args.output_dir / 'tflite_latency.md'} and {args.output_dir / 'tflite_latency.json'}", file=sys.stderr
    )


if __name__ == "__main__":
    main()
