"""Files written by an earlier release keep loading and evaluating the same.

tests/fixtures/release_0_1_0 was written by keras_lightnets 0.1.0 (commit 42a4e33, before the
model card carried one Preprocessing object) and is never regenerated:

- ``mobilenetv2_035_preprocessing.keras``: ``create_model("mobilenetv2_035", input_shape=(32, 32, 3),
  classes=10, include_preprocessing=True)`` after ``keras.utils.set_random_seed(0)``, with its outputs
  on ``inputs.npy`` (``mobilenetv2_035_preprocessing.outputs.npy``);
- ``run_mobilenetv2_035``: ``run.json``, ``final.keras`` and ``history.csv`` of
  ``fit("mobilenetv2_035", epochs=3, batch_size=32, steps_per_epoch=15, label_smoothing=0.0, seed=0,
  learning_rate=0.01, warmup_epochs=0)`` on the bundled digits, and what ``evaluate`` returned
  for it then (``run_evaluation.json``).
"""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_lightnets.models.describe import model_preprocessing
from keras_lightnets.training import evaluate

FIXTURES = Path(__file__).parent / "fixtures" / "release_0_1_0"


def test_a_keras_file_of_the_previous_release_loads_with_its_outputs_and_preprocessing():
    model = keras.saving.load_model(FIXTURES / "mobilenetv2_035_preprocessing.keras", compile=False)
    x = np.load(FIXTURES / "inputs.npy")
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), np.load(FIXTURES / "mobilenetv2_035_preprocessing.outputs.npy"), atol=1e-6
    )
    preprocessing = model_preprocessing(model)  # it normalizes inside: it takes pixel / 255
    assert (preprocessing.mean, preprocessing.std, preprocessing.pixel_max) == ((0.0,) * 3, (1.0,) * 3, 1.0)
    assert (preprocessing.crop_pct, preprocessing.interpolation) == (0.875, "bilinear")


def test_a_run_folder_of_the_previous_release_evaluates_the_same(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run_mobilenetv2_035", run)
    expected = json.loads((FIXTURES / "run_evaluation.json").read_text())
    found = evaluate(str(run))
    assert found["num_examples"] == expected["num_examples"] and found["split"] == expected["split"]
    for name in ("loss", "accuracy", "top5"):
        assert found[name] == pytest.approx(expected[name], rel=1e-5), name
    final = keras.saving.load_model(run / "final.keras", compile=False)
    preprocessing = model_preprocessing(final)
    assert (preprocessing.mean, preprocessing.std) == ((0.5,) * 3, (0.5,) * 3)  # MobileNetV2's, from its card
