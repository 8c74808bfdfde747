#!/usr/bin/env bash
# Quickstart, main job: sets up .venv if needed, then trains ReXNet-1.0 on the bundled
# offline dataset (real handwritten digits, 32 px) for 5 epochs with the default recipe,
# evaluates it and prints accuracy, time per epoch and where the outputs are (runs/quickstart).
# Extra arguments go to `lightnets train` (e.g. `--epochs 2`, or another model first:
# `bash scripts/main.sh squeezenet1_1`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" ""
cd "$ROOT"
model="rexnet_100"
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then model="$1"; shift; fi
lightnets train "$model" --output "runs/quickstart-$model" --overwrite --seed 0 --verbose 2 "$@"
