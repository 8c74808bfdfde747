#!/usr/bin/env bash
# Quickstart, main job: sets up .venv if needed, then, on the bundled offline dataset (real
# handwritten digits, 32 px):
#   1. trains ReXNet-1.0 for 5 epochs with the default recipe (runs/quickstart-rexnet_100);
#   2. fine-tunes it with quantization-aware training for 2 epochs and exports a fully
#      integer INT8 .tflite with Android metadata (labels, normalization, name, version);
#   3. prints FP32 vs INT8 top-1 (Keras and LiteRT), file sizes and batch-1 XNNPACK latency.
# Another registered model can come first: `bash scripts/main.sh squeezenet1_1`; further
# arguments go to `lightnets train` (e.g. `--epochs 2`). RepVGG and ParNet (`bash scripts/main.sh
# parnet_cifar10`) train in their branched form and are fused (`kl.reparameterize`) by the export
# before quantization-aware training, so the INT8 file holds one 3x3 convolution per block.
# Only our progress and results are printed; `--show-warnings` also shows what TensorFlow, TFDS,
# absl, tf_keras and tfmot print (both commands get it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" ""
cd "$ROOT"
model="rexnet_100"
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then model="$1"; shift; fi
run="runs/quickstart-$model"
show_warnings=()
for arg in "$@"; do [ "$arg" != --show-warnings ] || show_warnings=(--show-warnings); done

# The commands quiet the libraries once they start (keras_lightnets/quiet.py), but `import
# keras_lightnets` imports TensorFlow, whose shared libraries print CUDA probes and absl notices
# before that; keras_lightnets/quiet.py run as a script is the filter that drops those lines
# (and only those) from stderr.
quiet() {
  if [ ${#show_warnings[@]} -gt 0 ]; then
    TF_CPP_MIN_LOG_LEVEL=0 "$@"
  else
    { "$@" 2>&1 1>&3 3>&- | "$VENV/bin/python" -I "$ROOT/keras_lightnets/quiet.py" >&2 3>&-; } 3>&1
  fi
}
quiet lightnets train "$model" --output "$run" --overwrite --seed 0 --verbose 2 "$@"
quiet lightnets export "$run" --quantization int8 --qat-epochs 2 --seed 0 --output "$run/${model}_int8.tflite" --overwrite \
  --report --verbose 2 ${show_warnings[@]+"${show_warnings[@]}"}
