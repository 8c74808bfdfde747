"""What a model is travels with the model, never with its name (issue: a renamed model trained with
the wrong normalization). A MobileNet (v1, 0.25: the fastest to trace of the
[-1, 1]-scaled models) renamed "mine" trains, evaluates and exports with its own
[-1, 1] scaling and its family's recipe, and so does its .keras file reloaded in a fresh process."""

import json
import subprocess
import sys

import numpy as np
from training_helpers import SMALL_RUN, subprocess_env

import keras_lightnets as kl
from keras_lightnets.data import make_dataset
from keras_lightnets.training import evaluate, fit, get_recipe, inputs

MOBILENET_SCALING = (0.5, 0.5, 0.5)  # keras.applications MobileNets: x / 127.5 - 1


def _record_preprocessing(monkeypatch):
    """The ``model=`` (mean/std source) every dataset the training code builds is given."""
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("model"))
        return make_dataset(*args, **kwargs)

    monkeypatch.setattr(inputs, "make_dataset", spy)
    return seen


def test_a_renamed_model_trains_evaluates_and_exports_with_its_own_normalization(tmp_path, data_dir, monkeypatch):
    model = kl.create_model(
        "mobilenetv1_025", name="mine", input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    seen = _record_preprocessing(monkeypatch)
    result = fit(model, output_dir=tmp_path / "run", data_dir=data_dir, **{**SMALL_RUN, "epochs": 1})
    assert seen and all(p.mean == MOBILENET_SCALING and p.std == MOBILENET_SCALING for p in seen)

    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model"] == "mine"
    assert (run["variant"], run["family"]) == ("mobilenetv1_025", "mobilenetv1")
    assert run["architecture"]["args"]["alpha"] == 0.25
    assert run["preprocessing"]["mean"] == list(MOBILENET_SCALING)
    assert run["recipe"] == get_recipe("mobilenetv1", "default").name

    seen.clear()
    metrics = evaluate(result.output_dir, data_dir=data_dir)
    assert seen and seen[-1].mean == MOBILENET_SCALING
    assert metrics["num_examples"] > 0

    # A fresh process knows nothing but the .keras file: its deployable model normalizes with
    # 1 / 0.5 = 2 and -0.5 / 0.5 = -1, i.e. pixel / 255 -> [-1, 1].
    script = (
        "import json, sys\n"
        "from keras_lightnets.deploy.android import load_deployable\n"
        "from keras_lightnets.training.inputs import preprocessing_for\n"
        "import keras\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "kernel, bias = load_deployable(model)[0].get_layer('input_normalization').get_weights()\n"
        "print(json.dumps({'name': model.name, 'mean': preprocessing_for(model).mean,"
        " 'kernel': kernel.ravel().tolist(), 'bias': bias.tolist()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run" / "final.keras")],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert reloaded["name"] == "mine" and tuple(reloaded["mean"]) == MOBILENET_SCALING
    np.testing.assert_allclose(reloaded["kernel"], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(reloaded["bias"], [-1.0, -1.0, -1.0])


def test_a_model_that_normalizes_inside_is_fed_unit_range_pixels(tmp_path, data_dir, monkeypatch):
    model = kl.create_model(
        "mobilenetv1_025", include_preprocessing=True, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    seen = _record_preprocessing(monkeypatch)
    fit(model, output_dir=tmp_path / "run", data_dir=data_dir, **{**SMALL_RUN, "epochs": 1})
    # The pipeline gets the card's own record and feeds what it says: pixel / 255, the model normalizes.
    assert seen and all(p.in_graph and p.fed() == ((0.0,) * 3, (1.0,) * 3) for p in seen)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["preprocessing"]["in_graph"] and run["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
