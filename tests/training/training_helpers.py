"""Constants and subprocess helpers shared by the training tests (imported as a plain module)."""

import os
import subprocess
import sys

import pytest

MODEL = "mobilenetv2_035"  # learns a little in a few steps, so that evaluation numbers are not trivial
FAST_MODEL = "squeezenet1_1"  # 26 layers: traces in a third of the time, for tests about files and resumption
# A few steps per epoch, no label smoothing (so that val_loss is the plain cross-entropy that
# evaluate() reports), a fixed seed.
SMALL_RUN = {"epochs": 2, "batch_size": 32, "steps_per_epoch": 4, "label_smoothing": 0.0, "seed": 0, "verbose": 0}


def subprocess_env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def lightnets_command(*args):
    return [sys.executable, "-m", "keras_lightnets", *args]


def run_bounded(command, timeout, **kwargs):
    """``subprocess.run`` with a timeout that kills the child (and fails the test) instead of hanging the suite."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"{' '.join(command)} did not finish in {timeout} s; output so far:\n{error.stdout}\n{error.stderr}"
        )
