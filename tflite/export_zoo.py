"""Exports registered models to Android-ready .tflite files (FP32 and INT8) and writes a manifest.

    python tflite/export_zoo.py                          # the whole registry (long: ~1 min per model)
    python tflite/export_zoo.py --models "squeezenet*" --output tflite/zoo

keras_lightnets ships no pretrained weights, so each model is built with random weights at
its reference input size and 1000 ImageNet classes (labels: TFDS's ImageNet class ids, read
offline). The INT8 file is post-training quantized, calibrated on the bundled digits (the
only offline images): its size and latency are those of a trained model, its accuracy is
meaningless. A model with layers TFLite runs in float only (AlexNet-2012's local response
normalization) cannot be fully integer: its second file is dynamic-range quantized (int8 weights,
float activations) and says so in its quantization column. Each file carries Android metadata
(labels, normalization, name, version).
Writes OUTPUT/manifest.json and OUTPUT/results.md (name, quantization, size, MACs, latency).
"""

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from keras_lightnets import list_models, profile
from keras_lightnets.deploy import benchmark_tflite
from keras_lightnets.deploy.android import export_for_android, load_deployable
from keras_lightnets.layers.custom_layers import float_only_layers
from keras_lightnets.training.run_dir import atomic_write_text


def export_one(name, output, *, threads, runs, samples):
    model = load_deployable(name)[0]
    macs = profile(model).macs
    smallest = "dynamic" if float_only_layers(model) else "int8"
    rows = []
    for quantization in (None, smallest):
        path = output / f"{name}_{quantization or 'float32'}.tflite"
        started = time.perf_counter()
        made = export_for_android(name, path, quantization=quantization, qat_epochs=0, representative_samples=samples)
        latency = benchmark_tflite(path, threads=threads, runs=runs)
        rows.append(
            {
                "name": name,
                "file": path.name,
                "quantization": quantization or "float32",
                "size_bytes": made.export.size_bytes,
                "macs": int(macs),
                "latency_median_ms": round(latency.median_ms, 3),
                "latency_p90_ms": round(latency.p90_ms, 3),
                "threads": threads,
                "fully_integer": made.export.summary.fully_integer,
                "export_seconds": round(time.perf_counter() - started, 1),
            }
        )
    return rows


def markdown(rows, threads):
    lines = [
        f"| model | quantization | size (MB) | MACs (M) | latency median / p90 (ms, {threads} thread, XNNPACK) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['quantization']} | {row['size_bytes'] / 1e6:.2f} | {row['macs'] / 1e6:.1f} | "
            f"{row['latency_median_ms']:.2f} / {row['latency_p90_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=None, help="names or patterns (default: all)")
    parser.add_argument("--output", type=Path, default=Path("tflite/zoo"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=32, help="calibration images for INT8")
    args = parser.parse_args(argv)
    names = []
    for pattern in args.models or ["*"]:
        names += [name for name in list_models(pattern) if name not in names]
    if not names:
        parser.error(f"no registered model matches {args.models}")
    args.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in tqdm(names, desc="export", unit="model"):
        rows += export_one(name, args.output, threads=args.threads, runs=args.runs, samples=args.samples)
        # Written after every model, so an interrupted run keeps what it measured.
        atomic_write_text(args.output / "manifest.json", json.dumps(rows, indent=2) + "\n")
        atomic_write_text(args.output / "results.md", markdown(rows, args.threads))
    print(markdown(rows, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
