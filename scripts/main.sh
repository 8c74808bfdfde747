#!/usr/bin/env bash
# Quickstart, main job: sets up .venv if needed, then, on the bundled offline dataset (real
# handwritten digits, 32 px):
#   1. trains ReXNet-1.0 for 5 epochs with the default recipe (runs/quickstart-rexnet_100);
#   2. fine-tunes it with quantization-aware training for 2 epochs and exports a fully
#      integer INT8 .tflite with Android metadata (labels, normalization, name, version);
#   3. prints FP32 vs INT8 top-1 (Keras and LiteRT), file sizes and batch-1 XNNPACK latency.
# Another registered model can come first: `bash scripts/main.sh squeezenet1_1`; further
# arguments go to `lightnets train` (e.g. `--epochs 2`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" ""
cd "$ROOT"
model="rexnet_100"
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then model="$1"; shift; fi
run="runs/quickstart-$model"
lightnets train "$model" --output "$run" --overwrite --seed 0 --verbose 2 "$@"
lightnets export "$run" --quantization int8 --qat-epochs 2 --seed 0 --output "$run/${model}_int8.tflite" \
  --report --verbose 2
