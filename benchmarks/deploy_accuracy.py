"""Deployment accuracy benchmark: FP32 vs post-training (PTQ) vs quantization-aware (QAT) INT8 TFLite.

For each model (default ``rexnet_100``, ``mobilenetv2_100``, ``squeezenet1_1``):

1. train it with ``keras_lightnets.training.fit`` on the bundled ``lightnets_digits`` (the
   family's default recipe and its resolution: 32 px, 64 px for SqueezeNet, RegNet and EfficientNet; ``--epochs``,
   ``--seed``), into a temporary run folder (or under ``--runs-dir``), then recompute its BatchNorm statistics from
   ``--precise-bn-steps`` training batches (``recalibrate_batchnorm``, "precise BN"): with
   keras.applications' BatchNorm momentum of 0.999, MobileNetV2's moving averages still
   hold their initial values after a few hundred steps and it predicts one class;
2. make the deployable float model (``deploy.android.load_deployable``: input ``pixel / 255``,
   fused by ``keras_lightnets.reparameterize`` for RepVGG / ParNet,
   normalization inside, softmax out) and export it to TFLite three ways, each with the
   Android metadata (labels, mean 0 / std 255): FP32; PTQ-INT8 (calibrated on
   ``--representative-samples`` training images); QAT-INT8 (``quantize_aware`` +
   ``fit_quantize_aware`` for ``--qat-epochs`` with the family's recipe at 0.1x the rate, then
   precise BN on the QAT model where its BatchNorm averages are stale: MobileNetV2);
3. measure top-1 on the test split: the FP32 Keras model, every ``.tflite`` with the LiteRT
   interpreter, and the QAT Keras (fake-quant) model, plus the agreement: the share of test
   images where the QAT Keras model's top-1 equals the QAT-INT8 TFLite file's.

Targets (reported PASS/MISS, never an error): QAT-INT8 top-1 within 1.0 point of FP32 (Keras),
and agreement >= 99 %.

The results are printed as Markdown and written (atomically) to
``<output-dir>/deploy_accuracy.md`` and ``<output-dir>/deploy_accuracy.json``.

    python benchmarks/deploy_accuracy.py                                   # full run
    python benchmarks/deploy_accuracy.py --models mobilenetv2_100 --epochs 1 --qat-epochs 1 --output-dir /tmp/bench
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

import keras_lightnets  # noqa: E402
from keras_lightnets.data import dataset_info, make_dataset  # noqa: E402
from keras_lightnets.deploy import evaluate_tflite, export_tflite, fit_quantize_aware, quantize_aware  # noqa: E402
from keras_lightnets.deploy.android import classifier_metadata, load_deployable  # noqa: E402
from keras_lightnets.deploy.report import keras_accuracy  # noqa: E402
from keras_lightnets.reparameterize import fusable_blocks  # noqa: E402
from keras_lightnets.training import fit, recalibrate_batchnorm  # noqa: E402

DATASET = "lightnets_digits"
SPLIT = "test"
DEFAULT_MODELS = ("rexnet_100", "mobilenetv2_100", "squeezenet1_1")
TARGET_QAT_DROP = 1.0  # points of top-1 below FP32
TARGET_AGREEMENT = 0.99
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
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of fit (default: 30)")
    parser.add_argument(
        "--precise-bn-steps",
        type=int,
        default=32,
        help="training batches that recompute the BatchNorm statistics after fit (default: 32; 0: off)",
    )
    parser.add_argument("--qat-epochs", type=int, default=2, help="quantization-aware fine-tuning epochs (default: 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training and QAT (default: 0)")
    parser.add_argument("--representative-samples", type=int, default=200, help="PTQ calibration images (default: 200)")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="keep the training runs and .tflite files here (default: a temp dir)",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where results go (default: {DEFAULT_OUTPUT_DIR})"
    )
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras fit verbosity (default: 2)")
    args = parser.parse_args(argv)
    for option in ("epochs", "qat_epochs", "representative_samples"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.precise_bn_steps < 0:
        parser.error("--precise-bn-steps must be at least 0")
    try:
        args.models = [keras_lightnets.get_entry(name).name for name in args.models]
    except ValueError as error:
        parser.error(str(error))
    return args


def log(message):
    print(f"[deploy_accuracy] {message}", file=sys.stderr, flush=True)


def unit_range_data(split, resolution):
    """Unaugmented ``(pixel / 255, one-hot)`` batches of ``split``, in ``evaluate_tflite``'s order."""
    return make_dataset(
        DATASET, split, image_size=resolution, batch_size=64, training=False, preset="cifar", mean=0.0, std=1.0
    )


def keras_predictions(model):
    """Top-1 indices of a model taking ``pixel / 255`` on the test split, in ``evaluate_tflite``'s order."""
    data = unit_range_data(SPLIT, int(model.input_shape[1]))
    predictions, labels = [], []
    for images, one_hot in data.as_numpy_iterator():
        predictions.append(np.asarray(model(images, training=False)).argmax(-1))
        labels.append(one_hot.argmax(-1))
    return np.concatenate(predictions), np.concatenate(labels)


def evaluate_file(path):
    result = evaluate_tflite(path, DATASET, split=SPLIT, return_predictions=True, verbose=False)
    return result["accuracy"], result["predictions"], result["labels"]


def measure_model(name, args, work_dir):
    """Trains ``name``, exports FP32 / PTQ-INT8 / QAT-INT8 and measures them; returns the JSON row."""
    timings = {}
    started = time.perf_counter()
    run_dir = work_dir / f"bench-deploy-{name}"
    log(f"{name}: training {args.epochs} epochs (seed {args.seed}) into {run_dir}")
    fitted = fit(
        name,
        dataset=DATASET,
        epochs=args.epochs,
        seed=args.seed,
        output_dir=run_dir,
        overwrite=True,
        verbose=args.verbose,
    )
    timings["train_s"] = time.perf_counter() - started

    float_model, _ = load_deployable(str(run_dir))
    metadata = classifier_metadata(float_model, dataset_info(DATASET).class_names)
    resolution = int(float_model.input_shape[1])
    fp32_keras_before_precise_bn = keras_accuracy(float_model, DATASET, SPLIT)
    if args.precise_bn_steps:
        train_images = unit_range_data("train", resolution).map(lambda images, labels: images)
        recalibrate_batchnorm(float_model, train_images, steps=args.precise_bn_steps)
    if fusable_blocks(float_model):
        # RepVGG / ParNet ship fused (as `lightnets export` does): every export and QAT start here.
        float_model = keras_lightnets.reparameterize(float_model)
        log(f"{name}: reparameterized (blocks fused) after precise BN")
    fp32_keras = keras_accuracy(float_model, DATASET, SPLIT)
    fp32_keras_predictions, _ = keras_predictions(float_model)

    step = time.perf_counter()
    paths = {kind: work_dir / f"{name}_{kind}.tflite" for kind in ("fp32", "ptq_int8", "qat_int8")}
    exports = {"fp32": export_tflite(float_model, paths["fp32"], metadata=metadata)}
    exports["ptq_int8"] = export_tflite(
        float_model,
        paths["ptq_int8"],
        quantization="int8",
        representative_data=DATASET,
        representative_samples=args.representative_samples,
        metadata=metadata,
    )
    timings["export_fp32_ptq_s"] = time.perf_counter() - step

    step = time.perf_counter()
    log(f"{name}: quantization-aware fine-tuning, {args.qat_epochs} epochs")
    qat_model = quantize_aware(float_model)
    qat_fit = fit_quantize_aware(
        qat_model, dataset=DATASET, epochs=args.qat_epochs, seed=args.seed, verbose=args.verbose
    )
    timings["qat_fit_s"] = time.perf_counter() - step
    step = time.perf_counter()
    exports["qat_int8"] = export_tflite(qat_model, paths["qat_int8"], quantization="int8", metadata=metadata)
    timings["export_qat_s"] = time.perf_counter() - step

    step = time.perf_counter()
    accuracies, predictions = {}, {}
    for kind, path in paths.items():
        accuracies[kind], predictions[kind], labels = evaluate_file(path)
    qat_keras_predictions, qat_labels = keras_predictions(qat_model)
    if not np.array_equal(qat_labels, labels):
        raise RuntimeError("the Keras and TFLite evaluations saw the test images in different orders")
    qat_keras = float((qat_keras_predictions == labels).mean())
    agreement = float((qat_keras_predictions == predictions["qat_int8"]).mean())
    fp32_agreement = float((fp32_keras_predictions == predictions["fp32"]).mean())
    timings["evaluate_s"] = time.perf_counter() - step
    timings["total_s"] = time.perf_counter() - started

    drop = 100 * (fp32_keras - accuracies["qat_int8"])
    row = {
        "model": name,
        "resolution": resolution,
        "num_examples": int(len(labels)),
        "fit_final_accuracy": fitted.final_accuracy,
        "fp32_keras_top1_before_precise_bn": fp32_keras_before_precise_bn,
        "fp32_keras_top1": fp32_keras,
        "fp32_tflite_top1": accuracies["fp32"],
        "ptq_int8_top1": accuracies["ptq_int8"],
        "qat_int8_top1": accuracies["qat_int8"],
        "qat_keras_top1": qat_keras,
        "qat_agreement": agreement,
        "fp32_tflite_keras_agreement": fp32_agreement,
        "qat_drop_points": drop,
        "qat_within_target": drop <= TARGET_QAT_DROP,
        "agreement_meets_target": agreement >= TARGET_AGREEMENT,
        "fully_integer": {kind: exports[kind].summary.fully_integer for kind in ("ptq_int8", "qat_int8")},
        "size_bytes": {kind: result.size_bytes for kind, result in exports.items()},
        "qat_learning_rate": qat_fit.learning_rate,
        "qat_validation": {key: float(value) for key, value in qat_fit.metrics.items()},
        "timings_s": timings,
    }
    log(
        f"{name}: FP32 {fp32_keras:.4f}, FP32 TFLite {accuracies['fp32']:.4f}, PTQ {accuracies['ptq_int8']:.4f}, "
        f"QAT {accuracies['qat_int8']:.4f}, QAT Keras {qat_keras:.4f}, agreement {agreement:.4f} "
        f"({timings['total_s']:.0f} s)"
    )
    del fitted, float_model, qat_model
    keras.backend.clear_session()
    return row


def _pct(value):
    return f"{100 * value:.2f}"


def _mark(ok):
    return "PASS" if ok else "MISS"


def render_markdown(report):
    """The whole report as a Markdown document."""
    env, settings = report["environment"], report["settings"]
    lines = [
        "# keras_lightnets deployment accuracy: FP32 vs PTQ-INT8 vs QAT-INT8 TFLite",
        "",
        f"- Date: {env['date']}",
        f"- TensorFlow {env['tensorflow']}, Keras {env['keras']}, keras_lightnets {env['keras_lightnets']}, "
        f"Python {env['python']}",
        f"- CPU count: {env['cpu_count']}; processor: {env['processor']}; platform: {env['platform']}",
        f"- Dataset `{settings['dataset']}` ({settings['split']} split, {report['num_examples']} images) at the "
        "recipe's resolution (the Resolution column); "
        f"`fit` with the family's default recipe for {settings['epochs']} epochs, seed {settings['seed']}, then "
        f"BatchNorm statistics recomputed from {settings['precise_bn_steps']} training batches (precise BN); "
        f"PTQ calibrated on {settings['representative_samples']} training images; QAT: `quantize_aware` + "
        f"`fit_quantize_aware` for {settings['qat_epochs']} epochs (family recipe, 0.1x rate), then precise BN "
        "on the QAT model where its BatchNorm averages are stale (momentum^steps > 5 %: MobileNetV2).",
        "- Deployed model: input `pixel / 255`, normalization inside, softmax out, Android metadata embedded; "
        "TFLite top-1 from the LiteRT interpreter (XNNPACK). FP32 top-1 is the Keras model's.",
        f"- Total run time: {report['total_s'] / 60:.1f} min.",
        "",
        "## Top-1 accuracy (%)",
        "",
    ]
    header = [
        "Model",
        "Resolution",
        "FP32 top-1 before precise BN",
        "FP32 top-1",
        "PTQ-INT8 top-1",
        "QAT-INT8 top-1",
        "FP32 TFLite top-1",
        "QAT Keras top-1",
        "QAT Keras/TFLite agreement",
    ]
    rows = [
        [
            row["model"],
            f"{row['resolution']}x{row['resolution']}",
            _pct(row["fp32_keras_top1_before_precise_bn"]),
            _pct(row["fp32_keras_top1"]),
            _pct(row["ptq_int8_top1"]),
            _pct(row["qat_int8_top1"]),
            _pct(row["fp32_tflite_top1"]),
            _pct(row["qat_keras_top1"]),
            _pct(row["qat_agreement"]),
        ]
        for row in report["models"]
    ]
    lines += [markdown_table(header, rows), "", "## Targets", ""]
    header = [
        "Model",
        "QAT-INT8 - FP32 (points)",
        f"within {TARGET_QAT_DROP} point",
        f"agreement >= {100 * TARGET_AGREEMENT:.0f} %",
    ]
    rows = [
        [
            row["model"],
            f"{round(-row['qat_drop_points'], 2) + 0.0:+.2f}",  # no "-0.00"
            _mark(row["qat_within_target"]),
            _mark(row["agreement_meets_target"]),
        ]
        for row in report["models"]
    ]
    lines.append(markdown_table(header, rows))
    gained = [row["model"] for row in report["models"] if -row["qat_drop_points"] > TARGET_QAT_DROP]
    if gained:
        lines += [
            "",
            f"Note: QAT-INT8 is more than {TARGET_QAT_DROP} point above FP32 for {', '.join(gained)}: the "
            f"{settings['qat_epochs']} QAT epochs go on training a model that {settings['epochs']} epochs left "
            "short of convergence, so the difference is not a quantization effect.",
        ]
    near_chance = [row["model"] for row in report["models"] if row["fp32_keras_top1"] < report["near_chance"]]
    if near_chance:
        lines += [
            "",
            f"Note: {', '.join(near_chance)} stayed near chance ({100 / report['num_classes']:.0f} % for "
            f"{report['num_classes']} classes) on the test split after {settings['epochs']} epochs of the default "
            "recipe and precise BN, so the quantization comparison says nothing there (a model that "
            "predicts one class everywhere agrees with itself trivially). This is a training-recipe limit, not a "
            "deployment one; the recipes are not tuned here.",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Runs the benchmark, prints the Markdown report and writes deploy_accuracy.md and deploy_accuracy.json."""
    args = parse_args(argv)
    env = environment()
    log(f"os.cpu_count() = {env['cpu_count']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as temporary:
        work_dir = args.runs_dir or Path(temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        rows = [measure_model(name, args, work_dir) for name in args.models]
    info = dataset_info(DATASET)
    report = {
        "environment": env,
        "settings": {
            "dataset": DATASET,
            "split": SPLIT,
            "epochs": args.epochs,
            "precise_bn_steps": args.precise_bn_steps,
            "qat_epochs": args.qat_epochs,
            "seed": args.seed,
            "representative_samples": args.representative_samples,
            "target_qat_drop_points": TARGET_QAT_DROP,
            "target_agreement": TARGET_AGREEMENT,
        },
        "num_examples": rows[0]["num_examples"],
        "num_classes": info.num_classes,
        "near_chance": 2.0 / info.num_classes,  # below twice chance: not really trained
        "total_s": time.perf_counter() - started,
        "models": rows,
    }
    markdown = render_markdown(report)
    print(markdown, end="")
    write_atomic(args.output_dir / "deploy_accuracy.md", markdown)
    write_atomic(args.output_dir / "deploy_accuracy.json", json.dumps(report, indent=2) + "\n")
    print(
        f"Wrote {args.output_dir / 'deploy_accuracy.md'} and {args.output_dir / 'deploy_accuracy.json'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
