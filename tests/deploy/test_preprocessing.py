"""The on-device model: normalization inside, softmax at the end, same numbers as the original."""

import numpy as np
import pytest
from deploy_helpers import randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy.preprocessing import has_input_normalization, with_input_normalization


def test_normalization_inside_equals_normalization_outside():
    model = randomize_batchnorm(
        kl.create_model("mobilenetv2_035", input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    )
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    wrapped = with_input_normalization(model, mean, std)
    pixels = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    logits = np.asarray(model((pixels - np.array(mean)) / np.array(std)))
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(wrapped(pixels)), expected, atol=1e-5)
    assert has_input_normalization(wrapped) and not has_input_normalization(model)
    assert wrapped.count_params() == model.count_params() + 6  # 3 scales + 3 offsets, frozen
    assert not wrapped.get_layer("input_normalization").trainable


def test_bad_normalization_arguments():
    model = kl.create_model("squeezenet1_1", input_shape=(32, 32, 3), classes=10)
    with pytest.raises(ValueError, match="`std` must be > 0"):
        with_input_normalization(model, 0.5, 0.0)
    with pytest.raises(ValueError, match="`mean` needs 1 or 3 values"):
        with_input_normalization(model, (0.5, 0.5), 0.5)
    with pytest.raises(TypeError, match="Keras 3 model"):
        with_input_normalization("squeezenet1_1", 0.5, 0.5)
