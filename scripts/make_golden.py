"""Writes tests/golden/<name>.npz for the models without an installable reference.

Run only after a deliberate change that was checked against the reference code:
    python scripts/make_golden.py [NAME ...]
"""

import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import numpy as np  # noqa: E402
from golden import GOLDEN_DIR, GOLDEN_MODELS, golden_case, golden_path  # noqa: E402


def main(names):
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    for name in names or GOLDEN_MODELS:
        model, x = golden_case(name)
        logits = model.predict(x, verbose=0)
        # Atomic write: a temporary file in the same folder, then rename.
        fd, tmp = tempfile.mkstemp(dir=GOLDEN_DIR, suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, input=x, logits=logits)
        os.replace(tmp, golden_path(name))
        print(f"{name}: logits {logits.shape}, |max| {np.abs(logits).max():.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
