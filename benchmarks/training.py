"""Training benchmark: is the input pipeline ever the bottleneck, and do our models train as fast
as keras.applications?

1. Input pipeline vs training step, MobileNetV2 (alpha 1.0) at 224x224: images/s that
   ``keras_lightnets.data.make_dataset`` delivers from JPEG-encoded TFDS data (decode, random
   resized crop, flip, normalize, batch, prefetch) against images/s that one training step
   consumes. Target: the pipeline is at least 3x faster than the step.
2. Training throughput of keras_lightnets ``MobileNetV2`` against ``keras.applications.MobileNetV2``
   (same optimizer, loss, batch and input), steps interleaved A B A B, medians. Target ratio >= 0.98.
   With ``--mixed-precision`` on a GPU the comparison is repeated under ``mixed_float16``.

    python benchmarks/training.py                 # full run (a few minutes on 2 CPU cores)
    python benchmarks/training.py --steps 2 --pipeline-batches 5   # a quick check
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _harness import environment, interleaved_medians, markdown_table, write_atomic  # noqa: E402
from jpeg_digits import NAME as JPEG_DATASET  # noqa: E402
from tqdm import tqdm  # noqa: E402

import keras_lightnets  # noqa: E402
from keras_lightnets.data import make_dataset  # noqa: E402

PIPELINE_TARGET, TRAINING_TARGET = 3.0, 0.98
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first (default: 2)")
    parser.add_argument("--pipeline-batches", type=int, default=40, help="timed pipeline batches (default: 40)")
    parser.add_argument("--data-dir", type=Path, default=None, help="TFDS data dir (default: a temporary one)")
    parser.add_argument("--mixed-precision", action="store_true", help="also compare under mixed_float16 (GPU)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    args = parser.parse_args(argv)
    for option in ("batch_size", "image_size", "steps", "pipeline_batches"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    return args


def pipeline_throughput(data_dir, batch_size, image_size, batches):
    """Images/s the training pipeline delivers, measured after one warm-up batch."""
    dataset = make_dataset(
        JPEG_DATASET,
        "train",
        image_size=image_size,
        batch_size=batch_size,
        training=True,
        model="mobilenetv2_100",
        data_dir=str(data_dir),
        seed=0,
    ).repeat()
    iterator = iter(dataset)
    first = next(iterator)
    start = time.perf_counter()
    for _ in tqdm(range(batches), desc="input pipeline", unit="batch"):
        images, _ = next(iterator)
    images.numpy()
    return batches * batch_size / (time.perf_counter() - start), first


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    return model


def training_throughput(batch, warmup, steps, policy):
    """Images/s of one training step, ours vs keras.applications, interleaved."""
    keras.mixed_precision.set_global_policy(policy)
    images, labels = batch
    shape, classes = tuple(images.shape[1:]), int(labels.shape[-1])
    models = {
        "ours": compiled(
            keras_lightnets.MobileNetV2(1.0, input_shape=shape, classes=classes, classifier_activation=None)
        ),
        "keras": compiled(
            keras.applications.MobileNetV2(
                alpha=1.0, input_shape=shape, weights=None, classes=classes, classifier_activation=None
            )
        ),
    }
    calls = {name: (lambda m=model: float(m.train_on_batch(images, labels))) for name, model in models.items()}
    interleaved_medians(calls, warmup)
    medians = interleaved_medians(calls, steps, progress=lambda r: tqdm(r, desc=f"training steps ({policy})"))
    batch_size = int(images.shape[0])
    result = {side: batch_size / median for side, (median, _) in medians.items()}
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    return {"policy": policy, "ours_images_per_s": result["ours"], "keras_images_per_s": result["keras"]}


def render(report):
    env, p = report["environment"], report["pipeline"]
    lines = [
        "# keras_lightnets training benchmark",
        "",
        f"- Date: {env['date']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}; CPU count {env['cpu_count']}; "
        f"devices: {', '.join(report['devices'])}",
        f"- MobileNetV2 1.0, batch {report['settings']['batch_size']}, {report['settings']['image_size']}px, "
        f"JPEG 256x256 TFDS data ({JPEG_DATASET}), SGD momentum 0.9, from-logits cross-entropy; "
        f"{report['settings']['steps']} timed steps per model, interleaved, medians.",
        "",
        "## Input pipeline vs training step",
        "",
        markdown_table(
            ["pipeline img/s", "training step img/s", "pipeline / step", f"target >= {PIPELINE_TARGET}"],
            [
                [
                    f"{p['pipeline_images_per_s']:.1f}",
                    f"{p['step_images_per_s']:.1f}",
                    f"{p['ratio']:.1f}",
                    "met" if p["ratio"] >= PIPELINE_TARGET else "NOT met",
                ]
            ],
        ),
        "",
        "## Training throughput: keras_lightnets vs keras.applications MobileNetV2",
        "",
    ]
    rows = [
        [
            row["policy"],
            f"{row['ours_images_per_s']:.1f}",
            f"{row['keras_images_per_s']:.1f}",
            f"{row['ours_images_per_s'] / row['keras_images_per_s']:.3f}",
        ]
        for row in report["training"]
    ]
    lines.append(markdown_table(["precision", "keras_lightnets img/s", "keras.applications img/s", "ratio"], rows))
    lines += ["", f"Target: ratio >= {TRAINING_TARGET}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    import jpeg_digits  # noqa: F401  (registers the builder)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        print(f"preparing {JPEG_DATASET} in {data_dir} ...", file=sys.stderr)
        import tensorflow_datasets as tfds

        tfds.builder(JPEG_DATASET, data_dir=str(data_dir)).download_and_prepare()
        pipeline_ips, batch = pipeline_throughput(data_dir, args.batch_size, args.image_size, args.pipeline_batches)

    policies = ["float32"] + (["mixed_float16"] if args.mixed_precision else [])
    training = [training_throughput(batch, args.warmup, args.steps, policy) for policy in policies]
    step_ips = training[0]["ours_images_per_s"]
    report = {
        "environment": environment(),
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "pipeline": {
            "pipeline_images_per_s": pipeline_ips,
            "step_images_per_s": step_ips,
            "ratio": pipeline_ips / step_ips,
        },
        "training": training,
    }
    markdown = render(report)
    print(markdown, end="")
    write_atomic(args.output_dir / "training.md", markdown)
    write_atomic(args.output_dir / "training.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
