import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))  # tests/ helpers: torch_reference, golden

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from reference_diffs import REFERENCE_DIFFS  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if not REFERENCE_DIFFS:
        return
    terminalreporter.section("max abs difference to reference implementations")
    for name, reference, diff in sorted(REFERENCE_DIFFS):
        terminalreporter.write_line(f"{name:34s} vs {reference:40s} {diff:.2e}")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
