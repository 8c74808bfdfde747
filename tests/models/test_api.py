"""The keras.applications contract for every family: heads, pooling, shapes, channels,
feature pyramids, stochastic depth, weight files and `.keras` round trips."""

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.layers import StochasticDepth

# One representative per family, and the (stride, channels) of its feature pyramid.
FAMILIES = {
    "rexnet": (kl.ReXNet, {"width": 1.0}, {2: 16, 4: 38, 8: 61, 16: 128, 32: 185}),
    "rexnet_lite": (kl.ReXNetLite, {"width": 1.0}, {2: 16, 4: 40, 8: 64, 16: 128, 32: 184}),
    "squeezenet": (kl.SqueezeNet, {"version": "1.1"}, {2: 64, 4: 128, 8: 256, 16: 512}),
    "squeezenet_bypass": (kl.SqueezeNet, {"version": "1.0", "bypass": "complex"}, {2: 96, 4: 256, 8: 512, 16: 512}),
    "mobilenet": (kl.MobileNet, {"alpha": 0.25}, {2: 16, 4: 32, 8: 64, 16: 128, 32: 256}),
    "mobilenetv2": (kl.MobileNetV2, {"alpha": 0.35}, {2: 8, 4: 8, 8: 16, 16: 32, 32: 112}),
}
# Channels of the last feature map (what include_top=False returns).
LAST_CHANNELS = {
    "rexnet": 1280,
    "rexnet_lite": 1280,
    "squeezenet": 512,
    "squeezenet_bypass": 512,
    "mobilenet": 256,
    "mobilenetv2": 1280,
}
SHAPE = (96, 128, 3)  # non-square, small enough to be fast


def build(family, **kwargs):
    builder, family_kwargs, _ = FAMILIES[family]
    return builder(**family_kwargs, **kwargs)


@pytest.mark.parametrize("family", FAMILIES)
def test_classifier_on_non_square_input(family, rng):
    model = build(family, input_shape=(160, 192, 3), classes=7)
    probabilities = model.predict(rng.standard_normal((2, 160, 192, 3)).astype("float32"), verbose=0)
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_include_top_false_pooling(family, pooling, rng):
    model = build(family, include_top=False, pooling=pooling, input_shape=SHAPE)
    channels = LAST_CHANNELS[family]
    x = rng.standard_normal((1, *SHAPE)).astype("float32")
    features = model.predict(x, verbose=0)
    if pooling is None:
        assert features.ndim == 4 and features.shape[-1] == channels
    else:
        assert features.shape == (1, channels)
        unpooled = build(family, include_top=False, input_shape=SHAPE)
        unpooled.set_weights(model.get_weights())
        spatial = unpooled.predict(x, verbose=0)
        reduce = np.mean if pooling == "avg" else np.max
        np.testing.assert_allclose(features, reduce(spatial, axis=(1, 2)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_channel_input(family, rng):
    model = build(family, input_shape=(64, 64, 1), classes=10, classifier_activation=None)
    assert model.get_layer(model.layers[1].name).input.shape[-1] == 1
    assert model.predict(rng.standard_normal((1, 64, 64, 1)).astype("float32"), verbose=0).shape == (1, 10)


@pytest.mark.parametrize("family", FAMILIES)
def test_features_only_strides_and_channels(family, rng):
    _, _, expected = FAMILIES[family]
    model = build(family, features_only=True, input_shape=(160, 192, 3))
    predicted = model.predict(rng.standard_normal((1, 160, 192, 3)).astype("float32"), verbose=0)
    assert model.output_names == [f"stride{s}" for s in sorted(expected)]  # stride order
    outputs = dict(zip(model.output_names, predicted, strict=True))
    for stride, channels in expected.items():
        height, width = outputs[f"stride{stride}"].shape[1:3]
        # SqueezeNet's unpadded 7x7 conv1 and ceil-mode pools lose a few pixels (77 at stride 2)
        assert abs(height - 160 / stride) <= 3 and abs(width - 192 / stride) <= 3, (stride, height, width)
        assert outputs[f"stride{stride}"].shape[-1] == channels


def test_features_only_is_the_backbone_of_the_classifier(rng):
    # The stride-32 map of features_only is the input of the head in the classifier.
    x = rng.standard_normal((1, 96, 96, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    features = kl.ReXNet(1.0, features_only=True, input_shape=(96, 96, 3))
    keras.utils.set_random_seed(0)
    classifier = kl.ReXNet(1.0, input_shape=(96, 96, 3))
    tapped = keras.Model(classifier.inputs, classifier.get_layer("block16_project_bn").output)
    np.testing.assert_allclose(features.predict(x, verbose=0)[-1], tapped.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_keras_file_round_trip(family, tmp_path, rng):
    kwargs = {"drop_path_rate": 0.1} if family != "mobilenet" else {}
    model = build(family, input_shape=SHAPE, classes=5, **kwargs)
    x = rng.standard_normal((2, *SHAPE)).astype("float32")
    expected = model.predict(x, verbose=0)
    path = tmp_path / f"{family}.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), expected)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]


def test_weights_argument_loads_a_weights_file(tmp_path, rng):
    model = kl.MobileNetV2(0.35, input_shape=SHAPE, classes=3)
    path = tmp_path / "mnv2.weights.h5"
    model.save_weights(path)
    x = rng.standard_normal((1, *SHAPE)).astype("float32")
    loaded = kl.MobileNetV2(0.35, input_shape=SHAPE, classes=3, weights=str(path))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_input_tensor_is_used(rng):
    inputs = keras.Input((64, 64, 3))
    model = kl.ReXNet(0.9, input_tensor=inputs, include_top=False, pooling="avg")
    assert model.inputs[0] is inputs
    assert model.output_shape == (None, 1152)


def test_dynamic_spatial_size(rng):
    model = kl.MobileNetV2(0.5, input_shape=(None, None, 3), include_top=False, pooling="avg")
    for size in (64, 96):
        assert model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0).shape == (1, 1280)


def test_stochastic_depth_rises_linearly_and_only_drops_in_training(rng):
    model = kl.ReXNet(1.0, input_shape=(64, 64, 3), drop_path_rate=0.2, classifier_activation=None)
    rates = [layer.rate for layer in model.layers if isinstance(layer, StochasticDepth)]
    # only blocks with a shortcut get the layer; block i (0-based) drops with rate 0.2 * i / 15
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.2) and rates[0] > 0
    x = rng.standard_normal((4, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_no_drop_path_layers_by_default():
    assert not any(isinstance(layer, StochasticDepth) for layer in kl.ReXNet(1.0).layers)


def test_partial_residual_uses_plain_add_when_widths_match():
    model = kl.ReXNet(1.0)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers if layer.name.endswith("_add")}
    # width 1.0: blocks 2..16 with stride 1 widen (partial), none keeps its width
    assert kinds and set(kinds.values()) <= {"PartialResidualAdd", "Add"}
    assert "block1_add" not in kinds  # 32 -> 16 channels: no shortcut
