"""The ``lightnets`` command.

lightnets info                 every registered model: measured vs published params and MACs
lightnets info rexnet_100      one model in detail (profile, reference, preprocessing)
lightnets list [PATTERN]       registered names
lightnets train MODEL          train on the bundled digits (or --dataset NAME), resumably, into --output
lightnets train MODEL --weights imagenet --transfer head|from-back[:N]
                               transfer learning: pretrained body, new classifier, the head (and last N blocks) trains
lightnets evaluate RUN_DIR     loss / top-1 / top-5 of a run's final model (or of a .keras file)
lightnets predict IMAGE --model NAME --weights imagenet|TAG|FILE
                               the top-5 ImageNet classes of an image (published weights or a checkpoint)

Each command prints its own progress, results and errors only; --show-warnings (before or after
the command name) also shows the warnings and log lines of TensorFlow, TFDS, absl, tf_keras and
tfmot. --verbose (train, export) sets Keras' progress output only.

Exit codes: 0 success, 1 a failed check or a diverged run, 2 bad input (one line on stderr: an
unknown name, a missing or damaged file, a bad value), 130 Ctrl-C (train says where it stopped
and how to resume).
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_lightnets.checks import check_writable_folder
from keras_lightnets.data import BUNDLED_DATASET
from keras_lightnets.data.augment import eval_transform
from keras_lightnets.deploy import benchmark_tflite
from keras_lightnets.deploy.android import default_output
from keras_lightnets.deploy.report import export_report
from keras_lightnets.imagenet import decode_predictions, preprocess_input
from keras_lightnets.profile import profile
from keras_lightnets.quiet import quiet_library_output
from keras_lightnets.registry import get_entry, list_models, suggest
from keras_lightnets.training import NonFiniteLossError, evaluate, fit
from keras_lightnets.training.callbacks import TrainingInterrupted
from keras_lightnets.training.fit import summary
from keras_lightnets.training.recipes import OPTIMIZERS
from keras_lightnets.training.strategy import STRATEGIES
from keras_lightnets.weights import load_checkpoint
from keras_lightnets.weights.errors import CheckpointError


def _fmt_top1(top1):
    return "—" if top1 is None else f"{top1:.2f}"


def _info_table(names, out):
    import keras
    from tqdm import tqdm

    header = (
        f"{'model':30s} {'params':>12s} {'published':>12s} {'':2s} {'MACs (M)':>9s} {'published':>9s} "
        f"{'diff':>7s} {'top-1':>6s}  source"
    )
    rows, mismatches = [], 0
    for name in tqdm(names, desc="building", unit="model", file=sys.stderr, disable=len(names) < 2):
        entry = get_entry(name)
        measured = profile(entry.build(input_shape=tuple(entry.reference.input_size)))
        keras.backend.clear_session()
        ref = entry.reference
        same = measured.params == ref.params
        mismatches += not same
        macs_m = measured.macs / 1e6
        rows.append(
            f"{name:30s} {measured.params:>12,d} {ref.params:>12,d} {'ok' if same else '!!':2s} {macs_m:>9.1f} "
            f"{ref.macs_m:>9.1f} {100 * (macs_m / ref.macs_m - 1):>+6.2f}% {_fmt_top1(ref.top1):>6s}  {ref.source}"
        )
    print(header, file=out)
    print("\n".join(rows), file=out)
    print(
        f"\n{len(names) - mismatches}/{len(names)} models match their published parameter count exactly "
        "(params: trainable, PyTorch convention; MACs at each model's stated input size).",
        file=out,
    )
    return 0 if mismatches == 0 else 1


def _info_one(name, out):

    entry = get_entry(name)
    model = entry.build(input_shape=tuple(entry.reference.input_size))
    measured = profile(model)
    ref, prep = entry.reference, entry.preprocessing
    arguments = ", ".join(f"{key}={value!r}" for key, value in entry.kwargs.items())
    lines = [
        f"{name} ({entry.family}, {entry.builder.__name__}({arguments}))",
        f"  params       {measured.params:>14,d}   published {ref.params:,d}"
        f" {'(exact)' if measured.params == ref.params else '(MISMATCH)'}",
        f"  MACs         {measured.macs:>14,d}   published {ref.macs_m:.1f} M"
        f" at {ref.input_size[0]}x{ref.input_size[1]}",
        f"  activations  {measured.activations:>14,d}",
        f"  depth        {measured.depth:>14d}   conv/dense layers on the longest path",
        f"  Keras total  {model.count_params():>14,d}   incl. BatchNorm statistics",
        f"  top-1        {_fmt_top1(ref.top1):>14s}   {ref.source}",
        f"  tested equal to {entry.equals}",
        f"  input        {prep.input_size}, mean {prep.mean}, std {prep.std}, crop {prep.crop_pct}, "
        f"{prep.interpolation}",
    ]
    print("\n".join(lines), file=out)
    return 0 if measured.params == ref.params else 1


SHOW_WARNINGS_HELP = (
    "also show library warnings and log lines (TensorFlow, TFDS, absl, tf_keras, tfmot), hidden by default"
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lightnets", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--show-warnings", action="store_true", help=SHOW_WARNINGS_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="measured vs published params/MACs of registered models")
    info.add_argument("names", nargs="*", help="model names or shell patterns (default: all)")
    listing = commands.add_parser("list", help="registered model names")
    listing.add_argument(
        "pattern", nargs="?", default=None, help="shell-style pattern, case ignored, e.g. 'rexnet*' or 'ReXNet_1*'"
    )
    _add_train_parser(commands)
    _add_evaluate_parser(commands)
    _add_export_parser(commands)
    _add_bench_parser(commands)
    for command in commands.choices.values():  # also after the command; SUPPRESS keeps a flag given before it
        command.add_argument("--show-warnings", action="store_true", default=argparse.SUPPRESS, help=SHOW_WARNINGS_HELP)
    return parser


def _add_export_parser(commands):
    export = commands.add_parser(
        "export",
        help="export a trained model (run folder / .keras) or a registered name to an Android-ready .tflite",
        description="Exports to .tflite with built-in ops only and Android metadata (labels, normalization, "
        "name, version). int8: quantization-aware training for --qat-epochs epochs (0: post-training "
        "calibration). With --report: also writes the float32 file and prints accuracy, size and latency of both.",
    )
    export.add_argument("model", metavar="MODEL_OR_PATH", help="a run folder, a .keras file or a registered name")
    export.add_argument("--quantization", default="int8", choices=["float32", "float16", "dynamic", "int8"])
    export.add_argument(
        "--qat-epochs", type=int, default=None, help="int8 only (default 2); 0: post-training quantization"
    )
    export.add_argument("--output", default=None, help="the .tflite file (default: next to the model)")
    export.add_argument("--overwrite", action="store_true", help="replace the output file(s) if they exist")
    export.add_argument("--dataset", default=None, help="labels, QAT and calibration data (default: the run's)")
    export.add_argument("--seed", type=int, default=None)
    export.add_argument("--report", action="store_true", help="compare with float32: accuracy, size, latency")
    export.add_argument("--threads", type=int, default=1, help="latency threads for --report")
    export.add_argument("--verbose", type=int, default=None, choices=[0, 1, 2])
    export.add_argument(
        "--reparameterize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fuse re-parameterizable blocks (RepVGG, ParNet, MobileOne, GhostNetV3) before conversion "
        "(default: whenever the model has them)",
    )


def _add_bench_parser(commands):
    bench = commands.add_parser("bench-tflite", help="latency (median, p90) of .tflite files, batch 1, XNNPACK")
    bench.add_argument("paths", nargs="+", metavar="FILE")
    bench.add_argument("--threads", type=int, nargs="+", default=[1], help="one or more thread counts")
    bench.add_argument("--runs", type=int, default=50)
    bench.add_argument("--warmup", type=int, default=5)


def _add_train_parser(commands):

    train = commands.add_parser(
        "train",
        help="train a registered model (default: on the bundled digits, 32 px, a few epochs)",
        description="Train a registered model. Running the same command again resumes an interrupted run.",
    )
    train.add_argument("model", help="registered model name, e.g. squeezenet1_1")
    train.add_argument("--dataset", default=None, help="TFDS dataset name (default: the bundled lightnets_digits)")
    train.add_argument(
        "--epochs", type=int, default=None, help="default: the recipe's (5 for 'default', SqueezeNet's 15)"
    )
    train.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's)")
    train.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="default: the recipe's (SqueezeNet: 64), 32 for the bundled data, else 224",
    )
    train.add_argument("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy (default: auto)")
    train.add_argument("--output", default=None, help="output folder (default: runs/MODEL-DATASET)")
    train.add_argument("--recipe", default="default", help="'default' (small data) or 'paper' (published recipe)")
    train.add_argument(
        "--weights",
        default=None,
        metavar="WEIGHTS",
        help="pretrained body: 'imagenet' or a published tag (downloaded once), or a checkpoint file (.safetensors, "
        ".pth/.pt/.bin, .weights.h5, .keras); the classifier is new, for the dataset's classes",
    )
    train.add_argument(
        "--transfer",
        default=None,
        metavar="METHOD",
        help="with --weights: 'head' trains the classifier only; 'from-back' the classifier and the last stage, "
        "'from-back:N' the last N blocks, 'from-back:NAME' every block from a block or layer name on; the rest is "
        "frozen (BatchNorm in inference mode). Default: every layer trains",
    )
    train.add_argument(
        "--body-rate",
        type=float,
        default=0.1,
        help="with --transfer: the unfrozen body's learning rate as a fraction of the head's (default: 0.1)",
    )
    train.add_argument("--learning-rate", type=float, default=None, help="peak rate (default: recipe's, batch-scaled)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="override the recipe's optimizer")
    train.add_argument(
        "--mixed-precision",
        nargs="?",
        const="auto",
        default=None,
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
        help="dtype policy; the bare flag means auto (float16 on GPU, bfloat16 on TPU, none on CPU)",
    )
    train.add_argument("--jit-compile", action="store_true", help="compile steps with XLA")
    train.add_argument("--data-dir", default=None, help="TFDS data directory")
    train.add_argument("--seed", type=int, default=None, help="seed for weights, shuffling and augmentation")
    train.add_argument("--steps-per-epoch", type=int, default=None, help="default: train examples // batch size")
    train.add_argument("--overwrite", action="store_true", help="start afresh in an output folder that holds a run")
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="Keras progress output: 0 none, 1 progress bar, 2 a line per epoch (default: 1 on a terminal, else 2)",
    )


def _add_evaluate_parser(commands):
    predict = commands.add_parser("predict", help="top-5 ImageNet classes of an image (JPEG/PNG/...)")
    predict.add_argument("image", metavar="IMAGE", help="an image file (JPEG, PNG, BMP, GIF)")
    predict.add_argument("--model", required=True, help="a registered name, e.g. efficientnet_lite0")
    predict.add_argument(
        "--weights",
        required=True,
        metavar="FILE",
        help="'imagenet' or a published tag (downloaded once, with a progress bar), or a checkpoint file: "
        ".safetensors, .pth/.pt/.bin (timm, torchvision, efficientnet_pytorch names) or .weights.h5",
    )
    predict.add_argument("--top", type=int, default=5, help="how many classes (default: 5)")
    evaluate = commands.add_parser("evaluate", help="loss, top-1 and top-5 accuracy of a run or a .keras model")
    evaluate.add_argument("model", metavar="MODEL_OR_DIR", help="a run folder (its final.keras) or a .keras file")
    evaluate.add_argument("--dataset", default=None, help="default: the run's dataset, else the bundled one")
    evaluate.add_argument("--split", default=None, help="default: the run's validation split, else validation/test")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--image-size", type=int, default=None, help="default: the run's / the model's")
    evaluate.add_argument("--data-dir", default=None, help="TFDS data directory")


def train_kwargs(args):
    """``fit`` keyword arguments from parsed ``lightnets train`` arguments."""
    return {
        "dataset": args.dataset or _bundled_dataset(),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "strategy": args.strategy,
        "output_dir": args.output,
        "recipe": args.recipe,
        "weights": args.weights,
        "transfer": args.transfer,
        "body_rate": args.body_rate,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "mixed_precision": args.mixed_precision,
        "jit_compile": args.jit_compile,
        "data_dir": args.data_dir,
        "seed": args.seed,
        "steps_per_epoch": args.steps_per_epoch,
        "overwrite": args.overwrite,
        # A progress bar redrawn with carriage returns turns a log file into one huge line.
        "verbose": args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2),
    }


def _bundled_dataset():

    return BUNDLED_DATASET


def _train(args, out):

    try:
        name = get_entry(args.model).name  # fails fast, before TensorFlow starts
        result = fit(name, log=lambda *parts: print(*parts, file=out, flush=True), **train_kwargs(args))
    except TrainingInterrupted as stop:  # Ctrl-C, caught at a batch end: where it stopped, how to resume
        print(f"lightnets: {stop.describe('the same lightnets train command')}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C
        print(
            "lightnets: interrupted; finished epochs stay saved in the output folder: run the same command again "
            "to resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    except NonFiniteLossError as error:
        return _error(error, 1)
    except (ValueError, OSError) as error:  # OSError: pretrained weights unavailable
        return _error(error)
    print("\n".join(summary(result)), file=out)
    return 0


def _evaluate(args, out):

    try:
        metrics = evaluate(
            args.model,
            dataset=args.dataset,
            split=args.split,
            batch_size=args.batch_size,
            image_size=args.image_size,
            data_dir=args.data_dir,
        )
    except ValueError as error:
        return _error(error)
    text = f"{args.model}: top-1 {100 * metrics['accuracy']:.2f}%"
    if "top5" in metrics:
        text += f", top-5 {100 * metrics['top5']:.2f}%"
    text += f", loss {metrics['loss']:.4f} on {metrics['num_examples']} images ({metrics['split']})"
    print(text, file=out)
    return 0


def _expand(patterns):

    if not patterns:
        return list_models()
    names = []
    for pattern in patterns:
        matched = list_models(pattern)  # case ignored; a name without wildcards matches itself
        if not matched and not any(char in pattern for char in "*?["):
            get_entry(pattern)  # raises: unknown model, with the closest names
        names += matched or _no_match(pattern)
    return names


def _no_match(pattern):
    """Raises the error of a pattern that matches no registered name, with the closest names."""

    close = suggest(pattern)
    hint = f"; closest names: {', '.join(close)}" if close else ""
    raise ValueError(f"no registered model matches {pattern!r}{hint} (`lightnets list` shows them all)")


def _list(args, out):

    names = list_models(args.pattern)  # ValueError for '' or an unclosed '['
    if not names:
        _no_match(args.pattern)
    print("\n".join(names), file=out)
    return 0


# Exit codes: bad input (as argparse's), and Ctrl-C (128 + SIGINT, what shells report).
USAGE = 2
INTERRUPTED = 130


def _one_line(error):
    """An error's message on one line (a multi-line one joined with "; "), for a one-line stderr report."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def _error(error, code=USAGE):
    print(f"lightnets: error: {_one_line(error)}", file=sys.stderr)
    return code


def _usage_error(message):
    return _error(message)


def _export_files(args, quantization):
    """The files ``lightnets export`` writes (with --report, also the float32 one), checked first:
    the model must exist, and an existing output is replaced only with --overwrite (as train's)."""
    from pathlib import Path

    if not os.path.exists(args.model) and args.model not in list_models():
        close = suggest(args.model) if not args.model.endswith((".keras", "/", os.sep)) else []
        hint = f"; registered names close to it: {', '.join(close)}" if close else ""
        raise ValueError(
            f"MODEL_OR_PATH {args.model!r} does not exist: it is neither a .keras file nor a run folder, nor a "
            f"registered model name{hint}"
        )
    output = Path(args.output) if args.output else default_output(args.model, quantization)
    check_writable_folder(output.parent, "--output", output)  # before any model is loaded or trained
    outputs = [output]
    if args.report and quantization is not None:
        outputs.append(output.with_name(f"{output.stem}_float32.tflite"))
    existing = [str(path) for path in outputs if path.exists()]
    if existing and not args.overwrite:
        raise ValueError(
            f"output file {', '.join(existing)} already exists; use another --output, or --overwrite to replace it"
        )
    return output


def _export(args, out):

    quantization = None if args.quantization == "float32" else args.quantization
    if args.qat_epochs is not None and quantization != "int8":
        return _usage_error(f"--qat-epochs applies to --quantization int8 only, not {args.quantization}")
    if args.qat_epochs is not None and args.qat_epochs < 0:
        return _usage_error(f"--qat-epochs must be 0 (post-training quantization) or more, got {args.qat_epochs}")
    qat_epochs = 2 if args.qat_epochs is None else args.qat_epochs
    verbose = args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)
    try:
        output = _export_files(args, quantization)
        lines = export_report(
            args.model,
            output=output,
            quantization=quantization,
            qat_epochs=qat_epochs if quantization == "int8" else 0,
            dataset=args.dataset,
            seed=args.seed,
            compare=args.report,
            threads=args.threads,
            verbose=verbose,
            log=lambda *parts: print(*parts, file=out, flush=True),
            reparameterize=args.reparameterize,
        )
    except (ValueError, TypeError, RuntimeError) as error:
        return _error(error)
    print("\n".join(lines), file=out)
    return 0


def _bench(args, out):

    rows = []
    try:
        for path in args.paths:
            for threads in args.threads:
                result = benchmark_tflite(path, threads=threads, runs=args.runs, warmup=args.warmup)
                rows.append(
                    f"| {path} | {threads} | {result.median_ms:.3f} | {result.p90_ms:.3f} | "
                    f"{result.size_bytes / 1e6:.2f} | {'yes' if result.delegated else 'no'} |"
                )
    except (ValueError, TypeError, FileNotFoundError) as error:
        return _error(error)
    header = ["| file | threads | median ms | p90 ms | MB | XNNPACK |", "|---|---:|---:|---:|---:|---|"]
    print("\n".join(header + rows), file=out)
    return 0


def _predict(args, out):
    import numpy as np
    import tensorflow as tf

    try:
        entry = get_entry(args.model)  # fails fast, before the model is built
        if not 1 <= args.top <= 1000:
            raise ValueError(f"--top must be in [1, 1000], got {args.top}")
        if not os.path.isfile(args.image):
            raise ValueError(f"IMAGE file does not exist: {args.image!r}")
        if os.path.isfile(args.weights):
            model = entry.build()
            _load_weights_file(load_checkpoint, model, args.weights)
        else:
            model = entry.build(weights=args.weights)  # "imagenet" or a tag: the published checkpoint
        image = tf.io.decode_image(tf.io.read_file(args.image), channels=3, expand_animations=False)
    except (ValueError, OSError, tf.errors.InvalidArgumentError) as error:  # OSError: weights unavailable
        return _error(error)
    # The input pipeline's evaluation transform: shorter side to size / crop_pct, centre crop.
    prep = entry.preprocessing
    crop = eval_transform(
        image,
        preset="imagenet",
        image_size=prep.input_size[0],
        crop_pct=prep.crop_pct,
        interpolation=prep.interpolation,
    )
    scores = np.asarray(model(preprocess_input(crop.numpy()[None], model)))
    for _, name, score in decode_predictions(scores, top=args.top)[0]:
        print(f"{score:7.2%}  {name}", file=out)
    return 0


def _load_weights_file(load, model, path):
    """``load(model, path)``; a reader failure that does not name the file (an unpickling or struct
    error from inside) becomes a :class:`CheckpointError` that does."""

    try:
        load(model, path)
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure on the user's file means "cannot load it"
        if path in str(error):
            raise
        raise CheckpointError(path, f"cannot be loaded ({type(error).__name__}: {_one_line(error)})") from error


COMMANDS = {"train": _train, "export": _export, "bench-tflite": _bench, "evaluate": _evaluate, "predict": _predict}


def main(argv=None, out=None):
    out = out or sys.stdout
    if argv is None:  # the command itself; a call from Python keeps its process's warnings and stderr
        # Before the parser, whose options import TensorFlow (the flag is parsed properly below).
        quiet_library_output(show="--show-warnings" in sys.argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return _run(args, out)
    except ValueError as error:  # user input (CheckpointError included) a command did not report itself
        return _error(error)
    except KeyboardInterrupt:
        print("lightnets: interrupted", file=sys.stderr)
        return INTERRUPTED


def _run(args, out):
    if args.command in COMMANDS:
        return COMMANDS[args.command](args, out)
    if args.command == "list":
        return _list(args, out)
    names = _expand(args.names)
    if len(names) == 1:
        return _info_one(names[0], out)
    return _info_table(names, out)


if __name__ == "__main__":
    sys.exit(main())
