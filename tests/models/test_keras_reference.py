"""MobileNet and MobileNetV2 reproduce keras.applications exactly: weights copied across,
random BatchNorm statistics, a non-square input, max abs difference <= 1e-5."""

import keras
import numpy as np
import pytest
from conftest import record_reference_diff

import keras_lightnets as kl
from keras_lightnets.weights import copy_keras_weights

INPUT_SHAPE = (160, 192, 3)


def randomize(model, seed=0):
    """Random weights everywhere, including BatchNorm moving statistics."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape = tuple(weight.shape)
            if weight.path.endswith("moving_variance") or weight.path.endswith("gamma"):
                values.append(rng.uniform(0.5, 1.5, shape))
            elif len(shape) > 1:  # kernels: keep activations O(1)
                fan_in = np.prod(shape[:-1]) if not isinstance(layer, keras.layers.DepthwiseConv2D) else np.prod(shape[:2])
                values.append(rng.standard_normal(shape) / np.sqrt(fan_in))
            else:
                values.append(rng.standard_normal(shape) * 0.1)
        if values:
            layer.set_weights([v.astype("float32") for v in values])


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75, 1.0])
def test_mobilenet_matches_keras_applications(alpha, rng):
    reference = keras.applications.MobileNet(
        input_shape=INPUT_SHAPE, alpha=alpha, weights=None, classifier_activation=None
    )
    ours = kl.MobileNet(alpha, input_shape=INPUT_SHAPE, classifier_activation=None)
    randomize(reference)
    copy_keras_weights(reference, ours)
    x = rng.standard_normal((2, *INPUT_SHAPE)).astype("float32")
    diff = np.abs(reference.predict(x, verbose=0) - ours.predict(x, verbose=0)).max()
    record_reference_diff(f"MobileNet({alpha})", "keras.applications.MobileNet", diff)
    assert diff <= 1e-5


@pytest.mark.parametrize("alpha", [0.35, 0.5, 0.75, 1.0, 1.3, 1.4])
def test_mobilenetv2_matches_keras_applications(alpha, rng):
    reference = keras.applications.MobileNetV2(
        input_shape=INPUT_SHAPE, alpha=alpha, weights=None, classifier_activation=None
    )
    ours = kl.MobileNetV2(alpha, input_shape=INPUT_SHAPE, classifier_activation=None)
    randomize(reference)
    copy_keras_weights(reference, ours)
    x = rng.standard_normal((2, *INPUT_SHAPE)).astype("float32")
    diff = np.abs(reference.predict(x, verbose=0) - ours.predict(x, verbose=0)).max()
    record_reference_diff(f"MobileNetV2({alpha})", "keras.applications.MobileNetV2", diff)
    assert diff <= 1e-5


def test_copy_refuses_a_different_architecture():
    with pytest.raises(ValueError, match="weighted layers"):
        copy_keras_weights(kl.MobileNet(0.25), kl.MobileNetV2(0.35))
