"""GoogLeNet's auxiliary classifiers: equal to torchvision's in inference, trained by ``fit`` with the
paper's 0.3 loss weights, dropped for evaluation and export; weights files with and without them;
bad arguments (``aux_logits`` where there are no auxiliary classifiers).

The main network is compared with torchvision's ``googlenet`` (test_torch_reference.py) and
``googlenet_original`` with its golden tensor (test_golden.py); parameters and MACs with and without
the auxiliary classifiers are checked here and in test_variants.py."""

import json
import zipfile

import keras
import numpy as np
import pytest
from inference import infer
from reference_diffs import record_reference_diff
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.models.describe import auxiliary_outputs, without_auxiliary_outputs
from keras_lightnets.models.googlenet import TORCH_KEY_MAP_WITH_AUX
from keras_lightnets.weights import load_torch_weights

AUX_OUTPUTS = ["predictions", "aux1_predictions", "aux2_predictions"]


@pytest.mark.reference
def test_auxiliary_classifiers_equal_torchvisions():
    # 97x130: inception 4a / 4d are 7x9 maps, which torchvision's adaptive pool cuts into 4x4
    # windows of unequal starts: keras' AdaptiveAveragePooling2D must cut them the same way.
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(aux_logits=True, init_weights=True).eval()
    randomize_batchnorm(torch, reference)
    taps = {}
    reference.inception4a.register_forward_hook(lambda module, args, output: taps.setdefault("4a", output))
    reference.inception4d.register_forward_hook(lambda module, args, output: taps.setdefault("4d", output))
    input_shape = (97, 130, 3)
    x = np.random.default_rng(0).standard_normal((2, *input_shape)).astype("float32")
    with torch.no_grad():
        main = reference(torch.from_numpy(x.transpose(0, 3, 1, 2)))  # eval(): the main logits only
        expected = [t.numpy() for t in (main, reference.aux1(taps["4a"]), reference.aux2(taps["4d"]))]

    ours = kl.create_model("googlenet", aux_logits=True, input_shape=input_shape, classifier_activation=None)
    assert ours.output_names == AUX_OUTPUTS and auxiliary_outputs(ours) == AUX_OUTPUTS[1:]
    assert kl.profile(ours).params == 13_004_888
    load_torch_weights(ours, reference, TORCH_KEY_MAP_WITH_AUX)
    outputs = infer(ours, x)
    for name, value, want in zip(AUX_OUTPUTS, outputs, expected, strict=True):
        diff = np.abs(value - want).max()
        record_reference_diff(f"googlenet {name} (aux_logits=True)", "torchvision googlenet", diff)
        assert diff <= 1e-4 * max(1.0, np.abs(want).max()), name
    # Without its auxiliary classifiers: the inference model, every layer shared.
    inference = without_auxiliary_outputs(ours)
    assert inference.output_shape == (None, 1000) and inference.name == "googlenet"
    np.testing.assert_array_equal(infer(inference, x), outputs[0])


def test_parameters_and_macs_with_the_auxiliary_classifiers():
    with keras.StatelessScope(initialize_variables=False):
        original = kl.profile(kl.create_model("googlenet_original", aux_logits=True))
        torchvision = kl.profile(kl.create_model("googlenet", aux_logits=True))
    assert original.params == 13_378_280 and original.macs / 1e6 == pytest.approx(1591.0, rel=1e-3)
    assert torchvision.params == 13_004_888 and torchvision.macs / 1e6 == pytest.approx(1506.7, rel=1e-3)


def _tiny_model_with_an_auxiliary_classifier(classes=10):
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    main = keras.layers.Dense(classes, name="predictions")(pooled)
    aux = keras.layers.Dense(classes, name="aux1_predictions")(keras.layers.Flatten(name="aux1_flatten")(features))
    return keras.Model(inputs, [main, aux], name="with_aux")


def test_fit_trains_auxiliary_classifiers_and_saves_the_inference_model(tmp_path, monkeypatch):
    # What fit does with auxiliary classifiers does not depend on the network: a small model with
    # one (named like GoogLeNet's) traces in seconds where GoogLeNet's three heads take a minute.
    from keras_lightnets.training import fit

    model = _tiny_model_with_an_auxiliary_classifier()
    compiled = {}
    original_compile = keras.Model.compile

    def spy(self, *args, **kwargs):
        compiled.update(kwargs)
        return original_compile(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", spy)
    aux_before = np.array(model.get_layer("aux1_predictions").kernel)
    result = fit(
        model, output_dir=tmp_path, epochs=1, batch_size=8, steps_per_epoch=2, label_smoothing=0.0, seed=0, verbose=0
    )
    assert compiled["loss_weights"] == [1.0, 0.3]
    row = result.history[-1]
    # The metrics keep their names (they are the main output's); every output's loss is logged.
    assert {"accuracy", "top5", "val_accuracy", "predictions_loss", "aux1_predictions_loss"} <= set(row)
    assert row["loss"] == pytest.approx(row["predictions_loss"] + 0.3 * row["aux1_predictions_loss"], rel=1e-4)
    assert not np.array_equal(aux_before, np.array(model.get_layer("aux1_predictions").kernel))  # the aux head trained
    # final.keras, best.keras and the returned model are the inference model: the auxiliary classifier
    # only exists for training (resuming reads the backup, which keeps it).
    assert result.model.output_shape == (None, 10)
    assert _saved_outputs(tmp_path / "final.keras") == ["predictions"]
    assert _saved_outputs(tmp_path / "best.keras") == ["predictions"]
    assert result.metrics["accuracy"] == pytest.approx(row["val_accuracy"])


def _saved_outputs(path):
    """The output layers a .keras file declares (read from its config, without building the model)."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    outputs = config["config"]["output_layers"]
    return [outputs[0]] if isinstance(outputs[0], str) else [layer for layer, _, _ in outputs]


def test_evaluation_export_and_qat_use_the_main_output(tmp_path):
    from keras_lightnets.deploy import export_tflite, inspect_tflite, quantize_aware
    from keras_lightnets.training import evaluate

    model = _tiny_model_with_an_auxiliary_classifier()
    inference = without_auxiliary_outputs(model)
    assert inference.output_shape == (None, 10) and "aux1_predictions" not in [layer.name for layer in inference.layers]
    scores = evaluate(model, batch_size=128)
    assert scores == evaluate(inference, batch_size=128) and scores["num_examples"] == 355
    summary = inspect_tflite(export_tflite(model, tmp_path / "model.tflite").path)
    assert len(summary.outputs) == 1 and tuple(summary.outputs[0].shape) == (1, 10)
    assert len(quantize_aware(model).outputs) == 1
    # Only outputs named aux... are auxiliary classifiers.
    other = keras.Model(model.input, [model.outputs[0], keras.layers.Dense(2, name="extra")(model.outputs[0])])
    assert auxiliary_outputs(other) == [] and without_auxiliary_outputs(other) is other


def test_a_weights_file_loads_with_or_without_the_auxiliary_classifiers(tmp_path):
    shape = (64, 64, 3)
    trained = kl.create_model("googlenet", aux_logits=True, input_shape=shape)
    for weight in trained.weights:
        weight.assign(np.random.default_rng(len(weight.path)).standard_normal(weight.shape).astype("float32") * 0.1)
    trained.save_weights(tmp_path / "aux.weights.h5")
    without_auxiliary_outputs(trained).save_weights(tmp_path / "main.weights.h5")
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype("float32")

    again = kl.create_model("googlenet", aux_logits=True, input_shape=shape, weights=tmp_path / "aux.weights.h5")
    for ours, theirs in zip(infer(again, x), infer(trained, x), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # A file of the inference model: the network loads, the auxiliary classifiers stay new.
    partial = kl.create_model("googlenet", aux_logits=True, input_shape=shape, weights=tmp_path / "main.weights.h5")
    np.testing.assert_array_equal(infer(partial, x)[0], infer(trained, x)[0])


# (variant, arguments, error, what the message says); one test: each case builds nothing or fails early.
BAD_ARGUMENTS = [
    ("resnet18", {"aux_logits": True}, ValueError, "`aux_logits` is not an argument of ResNet; "
     "the families that take it: googlenet"),
    ("densenet121", {"aux_logits": False}, ValueError, "`aux_logits` is not an argument of DenseNet"),
    ("rexnet_100", {"alpha": 1.0}, TypeError, "`alpha` is not an argument of ReXNet"),
    ("googlenet", {"aux_logits": 1}, TypeError, "`aux_logits` must be True or False, got 1"),
    ("googlenet", {"aux_logits": True, "include_top": False}, ValueError,
     "`aux_logits=True` adds classifiers, so it needs include_top=True and features_only=False"),
    ("googlenet", {"aux_logits": True, "features_only": True}, ValueError, "features_only=False; got"),
    ("googlenet", {"aux_logits": True, "input_shape": (None, None, 3)}, ValueError,
     "this model needs a static input height here: pass e.g. input_shape=(224, 224, 3) (the auxiliary "
     "classifiers flatten a pooled map)"),
    ("googlenet_original", {"aux_logits": True, "input_shape": (64, 96, 3)}, ValueError,
     "the auxiliary classifiers' 5x5 average pool needs inception 4a's map to be at least 5x5, which takes an "
     "input of at least 79 pixels; got a 4x6 map"),
    ("googlenet", {"version": "caffe"}, ValueError, "`version` must be one of ('torchvision', 'paper')"),
    ("googlenet", {"aux_dropout_rate": 1.0}, ValueError, "`aux_dropout_rate` must be in [0, 1)"),
]  # fmt: skip


def test_bad_arguments_are_named():
    for name, kwargs, error, message in BAD_ARGUMENTS:
        with pytest.raises(error) as raised:
            kl.create_model(name, **kwargs)
        assert message in str(raised.value), (name, kwargs)


def test_googlenet_original_with_auxiliary_classifiers_at_the_smallest_input():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("googlenet_original", aux_logits=True, input_shape=(79, 79, 3))
    assert [tuple(shape) for shape in model.output_shape] == [(None, 1000)] * 3
    assert model.get_layer("aux1_pool").output.shape[1:3] == (1, 1)
