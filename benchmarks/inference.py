"""CPU inference benchmark: keras_lightnets MobileNets against keras.applications, and build times.

1. Throughput (images/s) of ``keras_lightnets.MobileNet`` / ``MobileNetV2`` against
   ``keras.applications.MobileNet`` / ``MobileNetV2`` (``weights=None``) for each
   ``--alphas`` width. Both models run through the same forward, a
   ``tf.function(jit_compile=False)`` calling ``model(x, training=False)``; after
   ``--warmup`` calls each, ``--runs`` timed calls alternate ours / keras (A B A B ...)
   so that drift in the machine's speed hits both alike. The median of each side
   gives images/s, and the ratio of the medians (ours / keras) should be >= 0.98.
2. Wall-clock build time of every registered model (or of ``--models``).

The results are printed as Markdown and written to ``<output-dir>/inference.md``
and ``<output-dir>/inference.json``. TensorFlow's threading is left at its
defaults.

    python benchmarks/inference.py                          # full run
    python benchmarks/inference.py --runs 2 --warmup 1 --models mobilenetv2_100
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # before keras is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ info messages off

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _harness import environment, interleaved_medians, markdown_table, write_atomic  # noqa: E402
from tqdm import tqdm  # noqa: E402

import keras_lightnets  # noqa: E402

TARGET_RATIO = 0.98
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"

# label → (keras_lightnets builder, keras.applications builder); both take alpha and input_shape.
PAIRS = {
    "MobileNet": (keras_lightnets.MobileNet, keras.applications.MobileNet),
    "MobileNetV2": (keras_lightnets.MobileNetV2, keras.applications.MobileNetV2),
}


def parse_args(argv=None):
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed calls per model (default: 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per model first (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per call (default: 32)")
    parser.add_argument("--image-size", type=int, default=224, help="input height and width (default: 224)")
    parser.add_argument(
        "--alphas", type=float, nargs="+", default=[1.0], help="MobileNet widths to compare (default: 1.0)"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="registry names or patterns such as 'rexnet_*' to time the build of (default: all)",
    )
    parser.add_argument("--skip-build-times", action="store_true", help="skip the build-time part")
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where results go (default: {DEFAULT_OUTPUT_DIR})"
    )
    args = parser.parse_args(argv)
    for option in ("runs", "batch_size", "image_size"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if any(alpha <= 0 for alpha in args.alphas):
        parser.error("--alphas must be positive")
    try:
        args.models = resolve_models(args.models)
    except ValueError as error:
        parser.error(str(error))
    return args


def resolve_models(names):
    """Registry names for the build-time part: all when ``names`` is None; patterns are expanded."""
    if names is None:
        return keras_lightnets.list_models()
    resolved = []
    for name in names:
        if any(char in name for char in "*?["):
            matches = keras_lightnets.list_models(name)
            if not matches:
                raise ValueError(f"no registered model matches {name!r}")
        else:
            matches = [keras_lightnets.get_entry(name).name]  # ValueError with close names if unknown
        resolved.extend(match for match in matches if match not in resolved)
    return resolved


def make_forward(model):
    """``model``'s inference call as a traced (not XLA-compiled) function; the same for every model."""

    @tf.function(jit_compile=False)
    def forward(x):
        return model(x, training=False)

    return forward


def compare_throughput(label, alpha, x, warmup, runs):
    """Interleaved timing of keras_lightnets vs keras.applications ``label`` at width ``alpha``."""
    ours_builder, keras_builder = PAIRS[label]
    input_shape = tuple(x.shape[1:])
    ours = ours_builder(alpha=alpha, input_shape=input_shape)
    reference = keras_builder(alpha=alpha, input_shape=input_shape, weights=None)
    forwards = {"ours": make_forward(ours), "keras": make_forward(reference)}
    calls = {side: (lambda forward=forward: forward(x).numpy()) for side, forward in forwards.items()}
    desc = f"{label} alpha={alpha}"
    interleaved_medians(calls, warmup, progress=lambda r: tqdm(r, desc=f"{desc} warm-up", leave=False))
    medians = interleaved_medians(calls, runs, progress=lambda r: tqdm(r, desc=desc, unit="pair"))
    times = {side: values for side, (_, values) in medians.items()}

    batch = int(x.shape[0])
    ours_ips = batch / medians["ours"][0]
    keras_ips = batch / medians["keras"][0]
    result = {
        "model": f"{label} alpha={alpha}",
        "family": label,
        "alpha": alpha,
        "ours_params": ours.count_params(),
        "keras_params": reference.count_params(),
        "ours_images_per_s": ours_ips,
        "keras_images_per_s": keras_ips,
        "ratio": ours_ips / keras_ips,
        "meets_target": ours_ips / keras_ips >= TARGET_RATIO,
        "ours_times_s": times["ours"],
        "keras_times_s": times["keras"],
    }
    del ours, reference, forwards
    keras.backend.clear_session()
    return result


def measure_throughput(alphas, batch_size, image_size, warmup, runs):
    """:func:`compare_throughput` for every pair in :data:`PAIRS` and every width."""
    x = tf.random.stateless_uniform((batch_size, image_size, image_size, 3), seed=(0, 0), dtype=tf.float32)
    return [compare_throughput(label, alpha, x, warmup, runs) for alpha in alphas for label in PAIRS]


def measure_build_times(names):
    """Wall-clock seconds ``keras_lightnets.create_model`` takes for each name."""
    results = []
    progress = tqdm(names, desc="build times", unit="model")
    for name in progress:
        progress.set_postfix_str(name)
        start = time.perf_counter()
        keras_lightnets.create_model(name)
        results.append({"model": name, "build_s": time.perf_counter() - start})
        keras.backend.clear_session()
    return results


def render_markdown(report):
    """The whole report as a Markdown document."""
    env, settings = report["environment"], report["settings"]
    lines = [
        "# keras_lightnets CPU inference benchmark",
        "",
        f"- Date: {env['date']}",
        f"- TensorFlow {env['tensorflow']}, Keras {env['keras']}, keras_lightnets {env['keras_lightnets']}, "
        f"Python {env['python']}",
        f"- CPU count: {env['cpu_count']}; processor: {env['processor']}; platform: {env['platform']}",
        f"- Batch {settings['batch_size']}, {settings['image_size']}x{settings['image_size']}x3 float32; "
        f"{settings['warmup']} warm-up and {settings['runs']} timed calls per model, ours/keras interleaved; "
        "median; forward: `tf.function(jit_compile=False)` calling `model(x, training=False)`; "
        "default TF threading.",
    ]
    if report["throughput"]:
        rows = []
        for row in report["throughput"]:
            flag = "" if row["meets_target"] else " (below target)"
            rows.append(
                [
                    row["model"],
                    f"{row['ours_images_per_s']:.1f}",
                    f"{row['keras_images_per_s']:.1f}",
                    f"{row['ratio']:.3f}{flag}",
                ]
            )
        header = ["model", "keras_lightnets img/s", "keras.applications img/s", "ratio"]
        lines += ["", "## Throughput", "", markdown_table(header, rows), "", f"Target: ratio >= {TARGET_RATIO}."]
    if report["build_times"]:
        rows = [[row["model"], f"{row['build_s']:.2f}"] for row in report["build_times"]]
        lines += ["", "## Build time", "", markdown_table(["model", "build s"], rows)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Runs the benchmark, prints the Markdown report and writes inference.md and inference.json."""
    args = parse_args(argv)
    env = environment()
    print(f"os.cpu_count() = {env['cpu_count']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}", file=sys.stderr)

    throughput = measure_throughput(args.alphas, args.batch_size, args.image_size, args.warmup, args.runs)
    build_times = [] if args.skip_build_times else measure_build_times(args.models)

    report = {
        "environment": env,
        "settings": {
            "runs": args.runs,
            "warmup": args.warmup,
            "batch_size": args.batch_size,
            "image_size": args.image_size,
            "alphas": args.alphas,
            "target_ratio": TARGET_RATIO,
            "forward": "tf.function(jit_compile=False) calling model(x, training=False)",
        },
        "throughput": throughput,
        "build_times": build_times,
    }
    markdown = render_markdown(report)
    print(markdown, end="")
    write_atomic(args.output_dir / "inference.md", markdown)
    write_atomic(args.output_dir / "inference.json", json.dumps(report, indent=2) + "\n")
    print(f"Wrote {args.output_dir / 'inference.md'} and {args.output_dir / 'inference.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
