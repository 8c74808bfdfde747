#!/usr/bin/env bash
# Quickstart, test suite: sets up .venv with the test extras if needed, then runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k rexnet`). The tests run on
# $LIGHTNETS_TEST_WORKERS pytest-xdist worker processes (default 2; 0 runs them in this process).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh" "test"
cd "$ROOT"
python -m pytest -n "${LIGHTNETS_TEST_WORKERS:-2}" --dist loadgroup "$@"
