"""MobileNetV3 Large / Small (+ minimalistic): what the registry-wide tests do not check.

Parameters against keras.applications itself, keras.applications' raw-pixel input, the three
layouts (keras / torchvision / timm) and what tells them apart, the keras-layout variant against
timm's TF port (``tf_mobilenetv3_*``, the keras layout's second weight source), Keras 3's hard
sigmoid carried into the tf_keras twin, a keras.applications weights file (Keras 2 ``.h5``) through
``weights=`` and ``load_checkpoint``, and the argument checks. Outputs against keras.applications,
torchvision and timm are in test_keras_reference.py / test_torch_reference.py.
"""

import dataclasses
import hashlib
import io

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from golden import seeded_weights
from inference import infer
from keras.src.legacy.saving import legacy_h5_format
from publisher import Publisher
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets import registry
from keras_lightnets.deploy import to_tf_keras
from keras_lightnets.deploy.twin_layers import TwinHardSigmoid, TwinHardSwish
from keras_lightnets.models.describe import input_pixel_max, model_preprocessing
from keras_lightnets.models.mobilenetv3 import TIMM_KEY_MAPS, block_plan
from keras_lightnets.training.recipes import get_recipe
from keras_lightnets.weights import load_torch_weights
from keras_lightnets.weights.download import MIRROR_ENV

INPUT_SHAPE = (97, 130, 3)  # odd and non-square: TF "same" and symmetric padding differ


def _keras_reference(size, **kwargs):
    constructor = getattr(keras.applications, f"MobileNetV3{size.capitalize()}")
    return constructor(weights=None, **kwargs)


@pytest.mark.parametrize(
    ("size", "alpha", "minimalistic"),
    [("large", 0.75, False), ("large", 0.75, True), ("small", 0.75, True), ("small", 1.0, True)],
)
def test_parameters_and_weighted_layers_equal_keras_applications(size, alpha, minimalistic):
    # The compared variants' outputs are in test_keras_reference.py; these are the others.
    with keras.StatelessScope(initialize_variables=False):
        reference = _keras_reference(size, alpha=alpha, minimalistic=minimalistic, input_shape=(64, 64, 3))
        ours = kl.MobileNetV3(size, alpha, minimalistic=minimalistic, input_shape=(64, 64, 3))
    trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
    assert kl.profile(ours).params == trainable
    shapes = [[tuple(w.shape) for w in layer.weights] for layer in reference.layers if layer.weights]
    ours_shapes = [
        [tuple(w.shape) for w in layer.weights]
        for layer in ours.layers
        if layer.weights and layer.name != "input_normalization"
    ]
    # Dense for keras' 1x1 conv_2 / logits: (1, 1, in, out) against (in, out), in the same order
    assert [[s[-2:] if len(s) == 4 and s[:2] == (1, 1) else s for s in layer] for layer in shapes] == [
        [s[-2:] if len(s) == 4 and s[:2] == (1, 1) else s for s in layer] for layer in ours_shapes
    ]


def test_keras_layout_takes_raw_pixels_and_pytorch_layouts_normalized_inputs():
    keras_layout = kl.create_model("mobilenetv3_small_100", input_shape=(32, 32, 3), classes=2)  # weights set
    with keras.StatelessScope(initialize_variables=False):
        torchvision = kl.create_model("mobilenetv3_small_100_tv", input_shape=(64, 64, 3))
        timm = kl.create_model("mobilenetv3_small_050_timm", input_shape=(64, 64, 3), include_preprocessing=True)
    assert input_pixel_max(keras_layout) == 255.0 and model_preprocessing(keras_layout).std == pytest.approx(
        (1 / 255,) * 3
    )
    normalization = keras_layout.get_layer("input_normalization").get_weights()
    np.testing.assert_allclose(normalization[0].ravel(), 1 / 127.5, rtol=1e-6)  # keras' Rescaling(1/127.5, -1)
    np.testing.assert_allclose(normalization[1], -1.0)
    assert input_pixel_max(torchvision) is None  # its default: normalized inputs, like torchvision
    assert input_pixel_max(timm) == 1.0  # asked for: pixel / 255, this package's convention
    assert kl.get_entry("mobilenetv3_large_100_timm").preprocessing.interpolation == "bicubic"


def test_the_three_layouts_differ_in_padding_and_epsilon_only():
    with keras.StatelessScope(initialize_variables=False):
        models = {name: kl.create_model(name, input_shape=(64, 64, 3)) for name in
                  ("mobilenetv3_large_100", "mobilenetv3_large_100_tv", "mobilenetv3_large_100_timm")}  # fmt: skip
    epsilons = {name: {layer.epsilon for layer in m.layers if "_bn" in layer.name} for name, m in models.items()}
    assert epsilons == {
        "mobilenetv3_large_100": {1e-3},
        "mobilenetv3_large_100_tv": {1e-3},
        "mobilenetv3_large_100_timm": {1e-5},
    }
    pads = {name: [layer.name for layer in m.layers if layer.name.endswith("_pad")] for name, m in models.items()}
    assert pads["mobilenetv3_large_100"] == []  # TF "same" in the convolutions
    # stem and the four stride-2 depthwise convolutions pad k // 2 on every side
    assert len(pads["mobilenetv3_large_100_tv"]) == len(pads["mobilenetv3_large_100_timm"]) == 5
    weighted = [[(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in m.layers] for m in models.values()]
    assert (
        weighted[1] == weighted[2]
        and len([layer for layer in weighted[0] if layer[1]]) == len([layer for layer in weighted[1] if layer[1]]) + 1
    )  # + the keras layout's input normalization


def test_minimalistic_has_no_squeeze_excite_hard_swish_or_5x5():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.MobileNetV3("large", minimalistic=True, input_shape=(64, 64, 3))
    activations = {layer.get_config().get("activation") for layer in model.layers}
    assert not {"hard_silu", "hard_sigmoid"} & activations
    assert not [layer for layer in model.layers if "_se" in layer.name]
    assert {layer.kernel_size for layer in model.layers if isinstance(layer, keras.layers.DepthwiseConv2D)} - {
        (1, 1)
    } == {(3, 3)}
    assert all(kernel == 3 for stage in block_plan("large", True) for kernel, *_ in stage)
    assert model.name == "mobilenetv3_large_minimal_100"


def test_keras_layout_equals_timms_tf_port():
    # timm's tf_mobilenetv3_* pad like TF ("same") with epsilon 1e-3: the keras layout, through timm's key map.
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("tf_mobilenetv3_small_075").eval()
    randomize_batchnorm(torch, reference)
    ours = kl.create_model(
        "mobilenetv3_small_075", input_shape=INPUT_SHAPE, classifier_activation=None, include_preprocessing=False
    )
    load_torch_weights(ours, reference, TIMM_KEY_MAPS["small"])
    x = np.random.default_rng(0).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(infer(ours, x) - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_the_twin_computes_keras3s_hard_sigmoid_not_tf_keras():
    inputs = keras.Input((4,))
    outputs = [keras.layers.Activation(a, name=a)(inputs) for a in ("hard_sigmoid", "hard_swish")]
    twin = to_tf_keras(keras.Model(inputs, outputs))
    assert isinstance(twin.get_layer("hard_sigmoid"), TwinHardSigmoid)
    assert isinstance(twin.get_layer("hard_swish"), TwinHardSwish)
    x = np.linspace(-4.0, 4.0, 8, dtype=np.float32).reshape(2, 4)
    sigmoid, swish = (t.numpy() for t in twin(x))
    expected = np.clip(x + 3.0, 0.0, 6.0) / 6.0
    np.testing.assert_allclose(sigmoid, expected, atol=1e-7)
    np.testing.assert_allclose(swish, x * expected, atol=1e-6)
    keras2 = tf_keras.activations.hard_sigmoid(tf.constant(x)).numpy()  # clip(0.2 x + 0.5, 0, 1)
    assert np.abs(keras2 - expected).max() > 0.05


def _keras_h5(reference):
    """``reference``'s weights in keras.applications' file layout (Keras 2 ``.h5``), as bytes."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)
    return buffer.getvalue()


@pytest.fixture
def publisher(tmp_path, monkeypatch):
    host = Publisher(tmp_path / "host")
    monkeypatch.setenv(MIRROR_ENV, host.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    yield host
    host.close()


def test_a_keras_applications_file_equals_keras_applications(publisher, monkeypatch, tmp_path):
    # keras.applications' MobileNetV3Small with random weights (BN statistics included), its weights
    # file in keras.applications' Keras 2 .h5 layout, and the model taking raw 0-255 pixels on both sides.
    shape = INPUT_SHAPE
    reference = _keras_reference("small", input_shape=shape, classifier_activation=None)
    seeded_weights(reference)
    content = _keras_h5(reference)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, *shape)).astype("float32")
    expected = infer(reference, pixels)
    tolerance = 1e-5 * max(1.0, np.abs(expected).max())

    # the published file, through weights="keras_in1k" (its MD5 pinned as keras.applications' source pins it)
    entry = registry.get_entry("mobilenetv3_small_100")
    real = next(source for source in entry.weights if source.tag == "keras_in1k")
    assert real.hash_algorithm == "md5" and real.file_hash == "8768d4c2e7dee89b9d02b2d03d65d862"
    source = dataclasses.replace(real, file_hash=hashlib.md5(content).hexdigest())
    monkeypatch.setitem(entry.__dict__, "weights", (source, *entry.weights[1:]))
    publisher.publish(source.url, content)
    model = kl.create_model(
        "mobilenetv3_small_100", weights="keras_in1k", input_shape=shape, classifier_activation=None
    )
    assert np.abs(infer(model, pixels) - expected).max() <= tolerance

    # a user's copy of the file, through load_checkpoint
    path = tmp_path / "weights_mobilenet_v3_small_224_1.0_float.h5"
    path.write_bytes(content)
    loaded = kl.weights.load_checkpoint(kl.MobileNetV3("small", input_shape=shape, classifier_activation=None), path)
    assert np.abs(infer(loaded, pixels) - expected).max() <= tolerance


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": "medium"}, "`size` must be one of"),
        ({"minimalistic": "yes"}, "`minimalistic` must be True or False"),
        ({"padding": "valid"}, "`padding` must be one of"),
        ({"bn_epsilon": 0.0}, "`bn_epsilon`"),
        ({"alpha": -1.0}, "`alpha`"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        kl.MobileNetV3(**kwargs)


def test_paper_recipe_holds_the_published_numbers():
    recipe = get_recipe("mobilenetv3", "paper")
    assert (recipe.optimizer, recipe.momentum, recipe.learning_rate, recipe.batch_size) == ("rmsprop", 0.9, 0.1, 4096)
    assert (recipe.weight_decay, recipe.ema, recipe.dropout_rate) == (1e-5, 0.9999, 0.2)
    assert (recipe.schedule, recipe.decay_rate, recipe.decay_epochs) == ("exponential", 0.99, 3.0)
    # the small-data default is the shared one at 64 px (at 32 px the last map is 1x1: 68 % against 97.7 %)
    default, shared = get_recipe("mobilenetv3", "default"), get_recipe(None, "default")
    assert default.image_size == 64 and dataclasses.replace(
        default, family="*", source="", image_size=None, notes=""
    ) == (dataclasses.replace(shared, source="", notes=""))
