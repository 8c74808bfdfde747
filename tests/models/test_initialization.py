"""Initialization that training depends on: SqueezeNet (no BatchNorm) uses torchvision's."""

import keras
import numpy as np
import pytest

import keras_lightnets as kl


def _convolutions(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


@pytest.mark.parametrize("version, bypass", [("1.0", None), ("1.1", None), ("1.0", "complex")])
def test_squeezenet_initializes_like_torchvision(version, bypass):
    keras.utils.set_random_seed(0)
    model = kl.SqueezeNet(version, bypass=bypass, input_shape=(64, 64, 3), classes=10)
    for layer in _convolutions(model):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.bias), 0.0)
        if layer.name == "conv10_conv":  # init.normal_(std=0.01)
            assert kernel.std() == pytest.approx(0.01, rel=0.05), layer.name
            continue
        # kaiming_uniform_: U(-b, b), b = sqrt(6 / fan_in), so the standard deviation is sqrt(2 / fan_in).
        fan_in = np.prod(kernel.shape[:-1])
        assert np.abs(kernel).max() <= np.sqrt(6 / fan_in), layer.name
        assert kernel.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.1), layer.name


def test_squeezenet_keeps_its_signal_through_the_fire_modules_at_init():
    # Under Keras's default Glorot init fire9's output was 1/4000 of conv1's and training stalled at chance.
    keras.utils.set_random_seed(0)
    model = kl.SqueezeNet("1.1", input_shape=(64, 64, 3), classes=10)
    probe = keras.Model(model.input, [model.get_layer(name).output for name in ("conv1_act", "fire9_concat")])
    images = np.random.default_rng(0).normal(size=(8, 64, 64, 3)).astype("float32")
    conv1, fire9 = (np.sqrt(np.mean(keras.ops.convert_to_numpy(output) ** 2)) for output in probe(images))
    assert 0.1 < fire9 / conv1 < 10
