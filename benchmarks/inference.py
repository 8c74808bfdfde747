"""CPU inference benchmark: keras_lightnets against keras.applications and kimm, and build times.

1. Throughput (images/s) of a keras_lightnets model against its peer, untrained (``weights=None``):
   ``MobileNet`` / ``MobileNetV2`` against keras.applications' at each ``--alphas`` width;
   ``resnet50_v1`` against ``keras.applications.ResNet50`` (the same layout), ``efficientnet_b0``
   (``include_preprocessing=True``) against ``keras.applications.EfficientNetB0``, ``vgg16`` against
   ``keras.applications.VGG16``, ``densenet121`` against ``keras.applications.DenseNet121``;
   RegNetX-400MF and RegNetY-400MF against kimm's ``RegNetX004`` / ``RegNetY004`` when kimm is installed (a
   benchmark-only dependency: ``pip install kimm``; skipped and said so otherwise). Both models
   run through the same forward, a ``tf.function(jit_compile=False)`` calling
   ``model(x, training=False)``; after ``--warmup`` calls each, ``--runs`` timed calls alternate
   ours / peer (A B A B ...) so that drift in the machine's speed hits both alike. The median of
   each side gives images/s, and the ratio of the medians (ours / peer) should be >= 0.98.
2. Wall-clock build time of every registered model (or of ``--models``).

The results are printed as Markdown and written to ``<output-dir>/inference.md``
and ``<output-dir>/inference.json``. TensorFlow's threading is left at its
defaults.

    python benchmarks/inference.py                          # full run
    python benchmarks/inference.py --runs 2 --warmup 1 --models mobilenetv2_100
    python benchmarks/inference.py --pairs ResNet50 RegNetX-400MF --skip-build-times
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
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def _kimm(class_name):
    """kimm's model class, or None where kimm is not installed."""
    try:
        import kimm
    except ImportError:
        return None
    return getattr(kimm.models, class_name)


def _kimm_builder(class_name):
    def build(input_shape, alpha=None):
        # kimm normalizes inside its models by default; ours (and keras.applications') outside.
        return _kimm(class_name)(input_shape=input_shape, include_preprocessing=False, weights=None)

    return build


# label → (keras_lightnets builder, peer builder, peer's name, takes alpha); the builders take
# input_shape (and alpha where it applies) and build untrained models of the same layout.
PAIRS = {
    "MobileNet": (keras_lightnets.MobileNet, keras.applications.MobileNet, "keras.applications", True),
    "MobileNetV2": (keras_lightnets.MobileNetV2, keras.applications.MobileNetV2, "keras.applications", True),
    "ResNet50": (
        lambda input_shape: keras_lightnets.create_model("resnet50_v1", input_shape=input_shape),
        lambda input_shape: keras.applications.ResNet50(input_shape=input_shape, weights=None),
        "keras.applications",
        False,
    ),
    # keras.applications' EfficientNet rescales and normalizes inside; ours does the same with
    # include_preprocessing=True (one frozen 1x1 depthwise conv), so both do the same work.
    "EfficientNetB0": (
        lambda input_shape: keras_lightnets.create_model(
            "efficientnet_b0", input_shape=input_shape, include_preprocessing=True
        ),
        lambda input_shape: keras.applications.EfficientNetB0(input_shape=input_shape, weights=None),
        "keras.applications",
        False,
    ),
    # The same layers in the same order as keras.applications' VGG16 (outputs equal, tested); ours
    # has separate ReLU layers (Keras fuses them into Conv2D / Dense) and two Dropout layers.
    "VGG16": (
        lambda input_shape: keras_lightnets.create_model("vgg16", input_shape=input_shape),
        lambda input_shape: keras.applications.VGG16(input_shape=input_shape, weights=None),
        "keras.applications",
        False,
    ),
    # keras.applications' DenseNet121 differs from torchvision's (ours) only in its BatchNorm epsilon
    # (1.001e-5, `densenet121_keras`): the same layers in the same order, the same work.
    "DenseNet121": (
        lambda input_shape: keras_lightnets.create_model("densenet121", input_shape=input_shape),
        lambda input_shape: keras.applications.DenseNet121(input_shape=input_shape, weights=None),
        "keras.applications",
        False,
    ),
    "RegNetX-400MF": (
        lambda input_shape: keras_lightnets.create_model("regnetx_004", input_shape=input_shape),
        _kimm_builder("RegNetX004"),
        "kimm",
        False,
    ),
    "RegNetY-400MF": (
        lambda input_shape: keras_lightnets.create_model("regnety_004", input_shape=input_shape),
        _kimm_builder("RegNetY004"),
        "kimm",
        False,
    ),
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
    parser.add_argument(
        "--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS), help="comparisons to run (default: all)"
    )
    parser.add_argument("--skip-build-times", action="store_true", help="skip the build-time part")
    parser.add_argument(
        "--clock",
        choices=list(CLOCKS),
        default="wall",
        help="wall: elapsed seconds (default); cpu: this process's CPU seconds, all threads (time.process_time), "
        "which leaves out what other processes take from a shared machine",
    )
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


def compare_throughput(label, alpha, x, warmup, runs, clock="wall"):
    """Interleaved timing of keras_lightnets vs its peer for ``label`` (at width ``alpha`` where it has one)."""
    ours_builder, peer_builder, peer_name, takes_alpha = PAIRS[label]
    input_shape = tuple(x.shape[1:])
    if takes_alpha:
        ours = ours_builder(alpha=alpha, input_shape=input_shape)
        reference = peer_builder(alpha=alpha, input_shape=input_shape, weights=None)
    else:
        ours, reference = ours_builder(input_shape), peer_builder(input_shape)
    forwards = {"ours": make_forward(ours), "peer": make_forward(reference)}
    calls = {side: (lambda forward=forward: forward(x).numpy()) for side, forward in forwards.items()}
    desc = f"{label} alpha={alpha}" if takes_alpha else label
    interleaved_medians(calls, warmup, progress=lambda r: tqdm(r, desc=f"{desc} warm-up", leave=False))
    medians = interleaved_medians(calls, runs, progress=lambda r: tqdm(r, desc=desc, unit="pair"), clock=CLOCKS[clock])
    times = {side: values for side, (_, values) in medians.items()}

    batch = int(x.shape[0])
    ours_ips = batch / medians["ours"][0]
    peer_ips = batch / medians["peer"][0]
    result = {
        "model": desc,
        "family": label,
        "peer": peer_name,
        "alpha": alpha if takes_alpha else None,
        "ours_params": ours.count_params(),
        "peer_params": reference.count_params(),
        "same_params": ours.count_params() == reference.count_params(),
        "ours_images_per_s": ours_ips,
        "peer_images_per_s": peer_ips,
        "ratio": ours_ips / peer_ips,
        "meets_target": ours_ips / peer_ips >= TARGET_RATIO,
        "ours_times_s": times["ours"],
        "peer_times_s": times["peer"],
    }
    del ours, reference, forwards
    keras.backend.clear_session()
    return result


def measure_throughput(pairs, alphas, batch_size, image_size, warmup, runs, clock="wall"):
    """:func:`compare_throughput` for every label in ``pairs`` (every width where it has one)."""
    x = tf.random.stateless_uniform((batch_size, image_size, image_size, 3), seed=(0, 0), dtype=tf.float32)
    results = []
    for label in pairs:
        if PAIRS[label][2] == "kimm" and _kimm("RegNetX004") is None:
            print(f"{label}: kimm is not installed (pip install kimm), skipped", file=sys.stderr)
            continue
        for alpha in alphas if PAIRS[label][3] else [None]:
            results.append(compare_throughput(label, alpha, x, warmup, runs, clock))
    return results


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
        f"{settings['warmup']} warm-up and {settings['runs']} timed calls per model, ours/peer interleaved; "
        "median; forward: `tf.function(jit_compile=False)` calling `model(x, training=False)`; "
        "default TF threading"
        + (
            "; clock: CPU seconds of the process (`time.process_time`, all threads), images/s per CPU second."
            if settings.get("clock") == "cpu"
            else "."
        ),
    ]
    if report["throughput"]:
        rows = []
        for row in report["throughput"]:
            flag = "" if row["meets_target"] else " (below target)"
            rows.append(
                [
                    row["model"],
                    row.get("peer", "keras.applications"),
                    f"{row['ours_images_per_s']:.1f}",
                    f"{row['peer_images_per_s']:.1f}",
                    f"{row['ratio']:.3f}{flag}",
                ]
            )
        header = ["model", "peer", "keras_lightnets img/s", "peer img/s", "ratio"]
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

    throughput = measure_throughput(
        args.pairs, args.alphas, args.batch_size, args.image_size, args.warmup, args.runs, args.clock
    )
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
            "clock": args.clock,
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
