#!/usr/bin/env bash
# Creates (once) the project's virtual environment in .venv with Python 3.11 and
# installs the package with the extras given as $1 ("" or "test"); re-installs
# when setup.cfg or pyproject.toml change. Sourced by main.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIGHTNETS_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
MEDIAPIPE_VERSION=1.2.2

if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating $VENV with $("$PYTHON" --version)" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$VENV/.lightnets-installed${EXTRAS:+-$EXTRAS}"
digest="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | "$VENV/bin/python" -c 'import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "[env] installing keras_lightnets${EXTRAS:+[$EXTRAS]} (first run takes a few minutes)" >&2
  # torch==2.13.0 in the test extras resolves to the CPU wheel where one is offered.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  # mediapipe (Android metadata schema, MediaPipe Tasks for the tests) in a second step:
  # it pins absl-py~=2.3 and tensorflow-model-optimization pins absl-py~=1.2, so pip
  # refuses both in one resolve; installed afterwards, tfmot works with absl-py 2.x
  # (pip prints a dependency-conflict notice about it, which is expected).
  echo "[env] installing mediapipe==$MEDIAPIPE_VERSION after it (absl-py pin conflict, see README)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "mediapipe==$MEDIAPIPE_VERSION" 2>&1 \
    | grep -v -E "dependency resolver|tensorflow-model-optimization .* requires absl-py" >&2 || true
  "$VENV/bin/python" -c "import mediapipe, tensorflow_model_optimization" >/dev/null 2>&1 \
    || { echo "[env] mediapipe / tfmot import failed" >&2; exit 1; }
  echo "$digest" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
export KERAS_BACKEND=tensorflow
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
