"""The tf_keras twin of every family: same layer names, same weights, outputs equal to 1e-5."""

import keras
import numpy as np
import pytest
from deploy_helpers import FAMILY_VARIANTS, TEST_SIZE, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy import UnsupportedLayerError, quantize_aware, to_tf_keras


@pytest.mark.parametrize("name", FAMILY_VARIANTS)
def test_twin_outputs_equal_the_keras3_model(name):
    overrides = {"drop_path_rate": 0.1} if name.startswith("rexnet") else {}
    model = randomize_batchnorm(kl.create_model(name, input_shape=(TEST_SIZE, TEST_SIZE, 3), classes=10, **overrides))
    twin = to_tf_keras(model)
    images = np.random.default_rng(1).random((4, TEST_SIZE, TEST_SIZE, 3), dtype=np.float32)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    assert twin.count_params() == model.count_params()
    np.testing.assert_allclose(twin(images, training=False).numpy(), np.asarray(model(images)), atol=1e-5, rtol=0)


def test_unsupported_layer_is_named_before_any_work():
    inputs = keras.Input((TEST_SIZE, TEST_SIZE, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="doubling_lambda")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(UnsupportedLayerError, match="doubling_lambda"):
        quantize_aware(model)


def test_layer_without_8bit_config_is_named():
    inputs = keras.Input((TEST_SIZE, TEST_SIZE, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="odd_norm")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(UnsupportedLayerError, match="odd_norm"):
        quantize_aware(model)


def test_nested_model_is_refused():
    inner = kl.create_model("squeezenet1_1", input_shape=(TEST_SIZE, TEST_SIZE, 3), classes=10)
    inputs = keras.Input((TEST_SIZE, TEST_SIZE, 3))
    outer = keras.Model(inputs, inner(inputs))
    with pytest.raises(UnsupportedLayerError, match="nested model"):
        to_tf_keras(outer)


def test_twin_refuses_non_models():
    with pytest.raises(TypeError, match="Keras 3 functional model"):
        to_tf_keras("rexnet_100")
