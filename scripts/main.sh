#!/usr/bin/env bash
# Quickstart, main job: sets up .venv if needed, then runs `lightnets info`
# (every registered model built, its params and MACs measured next to the
# published figures). Extra arguments go to `lightnets info`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" ""
lightnets info "$@"
