"""Inception-v3: what the registry-driven tests do not cover.

keras.applications' layout against torchvision's (BatchNorm scale, average pools), the auxiliary
classifier (exactly timm's from 299 px, zero-padded below), weights files with it, and ``fit``
training with it and saving the inference model without it."""

import json
import zipfile

import keras
import numpy as np
import pytest
from inference import infer
from reference_diffs import record_reference_diff
from torch_reference import import_reference, randomize_batchnorm
from training_probe import SeesTheTrainedModel

import keras_lightnets as kl
from keras_lightnets.data import dataset_info
from keras_lightnets.deploy import export_tflite, inspect_tflite, predict_tflite
from keras_lightnets.models.describe import auxiliary_outputs, without_auxiliary_outputs
from keras_lightnets.models.inception_v3 import TORCH_KEY_MAP_WITH_AUX
from keras_lightnets.training import fit, get_recipe
from keras_lightnets.training.plan import make_plan
from keras_lightnets.weights import load_torch_weights

# torchvision's AuxLogits: conv0 (768 -> 128, 1x1) + BN, conv1 (128 -> 768, 5x5) + BN, fc (768 -> 1000).
AUX_PARAMS = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
AUX_BN_CHANNELS = 128 + 768


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception_v3_tfds")
    dataset_info(data_dir=str(path))
    return str(path)


def _params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_the_layouts_differ_where_keras_and_torchvision_do():
    with keras.StatelessScope(initialize_variables=False):
        keras_layout = kl.create_model("inception_v3", input_shape=(75, 75, 3))
        torch_layout = kl.create_model("inception_v3_tv", input_shape=(75, 75, 3))
    bns = [layer for layer in keras_layout.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # keras.applications' BatchNormalization(scale=False): exactly the gammas fewer.
    assert not any(bn.scale for bn in bns) and all(bn.epsilon == 1e-3 for bn in bns)
    assert _params(torch_layout) - _params(keras_layout) == sum(bn.beta.shape[0] for bn in bns) == 17_216
    # PyTorch's average pools count the padding: an explicit zero pad and a valid pool.
    pads = {layer.name for layer in torch_layout.layers if isinstance(layer, keras.layers.ZeroPadding2D)}
    pools = [layer for layer in keras_layout.layers if isinstance(layer, keras.layers.AveragePooling2D)]
    assert pads == {f"{pool.name}_pad" for pool in pools} and {pool.padding for pool in pools} == {"same"}
    assert len(pools) == 9  # every module but the reductions mixed3 and mixed8
    # The same layer names otherwise, keras.applications' block names included (users' feature taps).
    names = {layer.name for layer in keras_layout.layers}
    assert names <= {layer.name for layer in torch_layout.layers}
    assert {f"mixed{i}" for i in range(11)} <= names and "mixed9_branch3x3_2b_conv" in names
    assert [layer.name for layer in keras_layout.layers if isinstance(layer, keras.layers.Dropout)] == []
    assert torch_layout.get_layer("dropout").rate == 0.5


def test_the_auxiliary_classifier_matches_timm_from_299_pixels(rng):
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("inception_v3", aux_logits=True).eval()
    for module in reference.modules():  # PyTorch's default init: timm's std-0.1 one overflows float32 scales
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            module.reset_parameters()
    randomize_batchnorm(torch, reference, 0)
    shape = (299, 311, 3)  # mixed7 is 17x18: the head's own 5x5/3 pool, no padding
    ours = kl.create_model("inception_v3_tv", aux_logits=True, input_shape=shape, classifier_activation=None)
    assert "aux_pad" not in {layer.name for layer in ours.layers}
    load_torch_weights(ours, reference, TORCH_KEY_MAP_WITH_AUX)
    x = rng.standard_normal((1, *shape)).astype("float32")
    with torch.no_grad():
        expected = [y.numpy() for y in reference(torch.from_numpy(x.transpose(0, 3, 1, 2)))]
    for name, want, got in zip(("main", "aux"), expected, infer(ours, x), strict=True):
        diff = float(np.abs(want - got).max())
        record_reference_diff(f"inception_v3_tv {name} 299x311", "timm inception_v3(aux_logits=True)", diff)
        assert diff <= 1e-4 * max(1.0, float(np.abs(want).max())), (name, diff)


@pytest.mark.parametrize("version", ["keras", "torchvision"])
def test_below_299_pixels_the_auxiliary_classifier_zero_pads_mixed7_to_17x17(version):
    with keras.StatelessScope(initialize_variables=False):
        model = kl.InceptionV3(version=version, aux_logits=True, classes=10, input_shape=(96, 101, 3))
        inference = kl.InceptionV3(version=version, classes=10, input_shape=(96, 101, 3))
    assert model.get_layer("mixed7").output.shape[1:3] == (4, 4)
    assert model.get_layer("aux_pad").padding == ((6, 7), (6, 7))  # centred on the 17x17 grid
    assert model.get_layer("aux_conv1_act").output.shape[1:3] == (1, 1)
    assert model.output_names == ["predictions", "aux_predictions"] and auxiliary_outputs(model) == ["aux_predictions"]
    aux_params = AUX_PARAMS - 1000 * 768 - 1000 + 10 * 768 + 10 - (AUX_BN_CHANNELS if version == "keras" else 0)
    assert _params(model) - _params(inference) == aux_params
    # Every layer of the inference model is shared: dropping the head gives it back.
    dropped = without_auxiliary_outputs(model)
    assert len(dropped.outputs) == 1 and {v.path for v in dropped.weights} == {v.path for v in inference.weights}


def test_auxiliary_arguments_are_checked():
    with pytest.raises(ValueError, match=r"`aux_logits=True` adds a classifier.*include_top=False"):
        kl.InceptionV3(aux_logits=True, include_top=False)
    with pytest.raises(ValueError, match=r"features_only=True"):
        kl.InceptionV3(aux_logits=True, features_only=True)
    with pytest.raises(ValueError, match=r"static input height.*pads a map smaller than 17x17"):
        kl.InceptionV3(aux_logits=True, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"`version`.*'tf'"):
        kl.InceptionV3(version="tf")
    with pytest.raises(ValueError, match=r"at least 75 pixels"):
        kl.InceptionV3(include_top=False, input_shape=(74, 90, 3))


def test_a_weights_file_with_the_auxiliary_classifier_loads_into_both_models(tmp_path, rng):
    shape = (75, 75, 3)
    trained = kl.InceptionV3(aux_logits=True, classes=4, input_shape=shape, classifier_activation=None)
    path = tmp_path / "aux.weights.h5"
    trained.save_weights(path)
    x = rng.standard_normal((1, *shape)).astype("float32")
    loaded = kl.InceptionV3(aux_logits=True, classes=4, input_shape=shape, classifier_activation=None, weights=path)
    for want, got in zip(infer(trained, x), infer(loaded, x), strict=True):
        np.testing.assert_array_equal(want, got)
    # The inference model of the same run (fit saves it so) loads into a model with a new head.
    inference_path = tmp_path / "inference.weights.h5"
    without_auxiliary_outputs(trained).save_weights(inference_path)
    fresh = kl.InceptionV3(
        aux_logits=True, classes=4, input_shape=shape, classifier_activation=None, weights=inference_path
    )
    np.testing.assert_array_equal(infer(fresh, x)[0], infer(trained, x)[0])


def test_the_recipes_train_it_with_its_auxiliary_classifier_weighted_0_4(data_dir):
    paper = get_recipe("inception_v3", "paper")
    assert (paper.optimizer, paper.rho, paper.epsilon, paper.learning_rate, paper.batch_size) == (
        "rmsprop", 0.9, 1.0, 0.045, 32
    )  # fmt: skip
    assert (paper.decay_rate, paper.decay_epochs, paper.clip_norm, paper.label_smoothing) == (0.94, 2.0, 2.0, 0.1)
    assert (paper.auxiliary_loss_weight, paper.image_size, paper.epochs) == (0.4, 299, 100)
    plan = make_plan("inception_v3", data_dir=data_dir)
    assert plan.recipe == get_recipe("inception_v3", "default") and plan.image_size == 96
    assert plan.auxiliary_loss_weight == 0.4 and plan.build_overrides() == {"aux_logits": True}
    # New auxiliary heads on a frozen pretrained body would only push random gradients into it.
    assert make_plan("inception_v3", weights="imagenet", transfer="head", data_dir=data_dir).build_overrides() == {}


def test_fit_trains_the_auxiliary_classifier_and_saves_the_inference_model(tmp_path, data_dir):
    probe = SeesTheTrainedModel()
    run = tmp_path / "run"
    result = fit(
        "inception_v3",
        image_size=75,  # the smallest it builds at (the recipe's 96 costs 1.6x)
        epochs=1,
        batch_size=2,
        steps_per_epoch=1,
        validation_split=None,
        seed=0,
        verbose=0,
        output_dir=run,
        data_dir=data_dir,
        callbacks=[probe],
    )
    assert len(probe.outputs) == 2 and probe.loss_weights == [1.0, 0.4]
    assert json.loads((run / "run.json").read_text())["hyperparameters"]["auxiliary_loss_weight"] == 0.4
    assert len(result.model.outputs) == 1 and result.model.output_shape == (None, 10)
    # The saved files hold the inference graph (read from their config, cheaper than loading them).
    for saved in ("final.keras", "best.keras"):
        with zipfile.ZipFile(run / saved) as archive:
            config = json.loads(archive.read("config.json"))["config"]
        assert config["output_layers"] == ["predictions", 0, 0]  # one output
        assert not any(layer["name"].startswith("aux") for layer in config["layers"])


def test_the_exported_file_has_no_auxiliary_classifier(tmp_path):
    # A model built with its auxiliary classifier (as fit trains it) exports the inference graph only.
    model = kl.InceptionV3(aux_logits=True, input_shape=(75, 75, 3), classes=10, classifier_activation=None)
    assert len(model.outputs) == 2
    exported = export_tflite(model, tmp_path / "inception_v3.tflite")
    summary = inspect_tflite(exported.path)
    assert len(summary.outputs) == 1 and tuple(summary.outputs[0].shape) == (1, 10)
    images = np.random.default_rng(0).random((2, 75, 75, 3), dtype=np.float32)
    expected = infer(without_auxiliary_outputs(model), images)
    assert np.abs(predict_tflite(exported.path, images) - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
