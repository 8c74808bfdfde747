"""Reparameterization benchmark: the fused deploy form of RepVGG / ParNet against its training form.

For each model (default ``parnet_s``, ``repvgg_a0``), untrained, random BatchNorm statistics,
at the registry's reference input (224x224, 1000 classes):

1. ``keras_lightnets.reparameterize`` it and check the outputs agree (max abs difference);
2. Keras CPU inference (batch ``--batch-size``): one ``tf.function(jit_compile=False)`` per form
   calling ``model(x, training=False)``; after ``--warmup`` calls, ``--runs`` timed calls
   alternate training / fused form (A B A B ...); median per form and the ratio fused / training
   (target <= 0.75);
3. TFLite, batch 1, the LiteRT interpreter with XNNPACK, ``--threads`` threads: the FP32 training
   form, the FP32 fused form and the fully integer INT8 fused form (post-training quantization
   calibrated on ``lightnets_digits`` images; weights are random, so only latency and size mean
   anything here), invokes alternated; median per file, ratios fused / training (target <= 0.75)
   and INT8 / FP32 of the fused form.

Results: ``<output-dir>/reparameterization.md`` and ``.json`` (atomic writes).

    python benchmarks/reparameterization.py
    python benchmarks/reparameterization.py --models repvgg_a0 --runs 3 --output-dir /tmp/bench
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # before keras is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _harness import environment, interleaved_medians, markdown_table, write_atomic  # noqa: E402

import keras_lightnets as kl  # noqa: E402
from keras_lightnets.deploy import TFLiteRunner, export_tflite  # noqa: E402

DEFAULT_MODELS = ("parnet_s", "repvgg_a0")
TARGET = 0.75
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--runs", type=int, default=10, help="timed Keras calls per form (default: 10)")
    parser.add_argument("--tflite-runs", type=int, default=30, help="timed invokes per .tflite (default: 30)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--representative-samples", type=int, default=64)
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    return parser.parse_args(argv)


def randomize_batchnorm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights(
                [rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)]
            )


def measure(name, args, workdir):
    entry = kl.get_entry(name)
    shape = tuple(entry.reference.input_size)
    model = kl.create_model(name, input_shape=shape, classifier_activation=None)
    randomize_batchnorm(model)
    fused = kl.reparameterize(model)
    x = np.random.default_rng(1).standard_normal((args.batch_size, *shape)).astype(np.float32)
    train_out, fused_out = np.asarray(model(x[:2], training=False)), np.asarray(fused(x[:2], training=False))
    diff = float(np.abs(train_out - fused_out).max())

    forms = {"training": model, "fused": fused}
    functions = {key: tf.function(lambda x, m=m: m(x, training=False), jit_compile=False) for key, m in forms.items()}
    for _ in range(args.warmup):
        for function in functions.values():
            function(x).numpy()
    keras_times = interleaved_medians({key: (lambda f=f: f(x).numpy()) for key, f in functions.items()}, args.runs)

    files = {
        "fp32 training": export_tflite(model, workdir / f"{name}_train_fp32.tflite").path,
        "fp32 fused": export_tflite(fused, workdir / f"{name}_fused_fp32.tflite").path,
        "int8 fused": export_tflite(
            fused,
            workdir / f"{name}_fused_int8.tflite",
            quantization="int8",
            representative_data="lightnets_digits",
            representative_samples=args.representative_samples,
        ).path,
    }
    runners = {key: TFLiteRunner(path, threads=args.threads) for key, path in files.items()}
    image = x[:1]
    for runner in runners.values():
        for _ in range(args.warmup):
            runner.invoke(image)
    tflite_times = interleaved_medians(
        {key: (lambda r=runner: r.invoke(image)) for key, runner in runners.items()}, args.tflite_runs
    )
    return {
        "model": name,
        "input": list(shape),
        "params": {"training": kl.profile(model).params, "fused": kl.profile(fused).params},
        "macs_m": {"training": kl.profile(model).macs / 1e6, "fused": kl.profile(fused).macs / 1e6},
        "max_abs_diff": diff,
        "output_scale": float(np.abs(train_out).max()),
        "keras_ms": {key: value[0] * 1e3 for key, value in keras_times.items()},
        "tflite_ms": {key: value[0] * 1e3 for key, value in tflite_times.items()},
        "tflite_mb": {key: os.path.getsize(path) / 1e6 for key, path in files.items()},
        "keras_all_s": {key: value[1] for key, value in keras_times.items()},
        "tflite_all_s": {key: value[1] for key, value in tflite_times.items()},
    }


def report(results, args, env, minutes):
    rows = []
    for r in results:
        keras_ratio = r["keras_ms"]["fused"] / r["keras_ms"]["training"]
        tflite_ratio = r["tflite_ms"]["fp32 fused"] / r["tflite_ms"]["fp32 training"]
        int8_ratio = r["tflite_ms"]["int8 fused"] / r["tflite_ms"]["fp32 fused"]
        rows.append(
            [
                f"`{r['model']}`",
                f"{r['params']['training']:,} → {r['params']['fused']:,}",
                f"{r['macs_m']['training']:,.1f} → {r['macs_m']['fused']:,.1f}",
                f"{r['max_abs_diff']:.2e} (of {r['output_scale']:.1f})",
                f"{r['keras_ms']['training']:.1f} / {r['keras_ms']['fused']:.1f}",
                f"**{keras_ratio:.2f}** {'PASS' if keras_ratio <= TARGET else 'MISS'}",
                f"{r['tflite_ms']['fp32 training']:.1f} / {r['tflite_ms']['fp32 fused']:.1f}",
                f"**{tflite_ratio:.2f}** {'PASS' if tflite_ratio <= TARGET else 'MISS'}",
                f"{r['tflite_ms']['int8 fused']:.1f} ({int8_ratio:.2f})",
            ]
        )
    header = [
        "model",
        "params train → fused",
        "MACs (M)",
        "max abs diff",
        f"Keras ms, batch {args.batch_size}: train / fused",
        f"Keras fused/train (≤ {TARGET})",
        "TFLite FP32 ms: train / fused",
        f"TFLite fused/train (≤ {TARGET})",
        "TFLite INT8 fused ms (INT8/FP32)",
    ]
    return "\n".join(
        [
            "# keras_lightnets reparameterization benchmark: fused deploy form vs training form",
            "",
            f"- Date: {env['date']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}, "
            f"CPU count {env['cpu_count']}",
            f"- Untrained models, random BN statistics, {results[0]['input'][0]} px. Keras: median of {args.runs} "
            f"interleaved calls after {args.warmup} warm-up; TFLite: batch 1, XNNPACK, {args.threads} thread(s), "
            f"median of {args.tflite_runs} interleaved invokes; INT8 = post-training, fully integer, "
            f"calibrated on {args.representative_samples} digit images.",
            f"- Total run time: {minutes:.1f} min.",
            "",
            markdown_table(header, rows),
            "",
        ]
    )


def main(argv=None):
    args = parse_args(argv)
    env = environment()
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            print(f"[reparameterization] {name}", file=sys.stderr, flush=True)
            results.append(measure(name, args, Path(tmp)))
            keras.backend.clear_session()
    text = report(results, args, env, (time.perf_counter() - start) / 60)
    print(text)
    write_atomic(args.output_dir / "reparameterization.md", text)
    write_atomic(
        args.output_dir / "reparameterization.json",
        json.dumps(
            {"environment": env, "args": {k: str(v) for k, v in vars(args).items()}, "results": results}, indent=1
        ),
    )


if __name__ == "__main__":
    main()
