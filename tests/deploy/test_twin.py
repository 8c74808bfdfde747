"""The tf_keras twin of every family: same layer names, same weights, logits equal to 1e-5 of their scale."""

import json

import keras
import numpy as np
import pytest
import tf_keras
from deploy_helpers import ARCHITECTURE_OVERRIDES, FAMILY_VARIANTS, TEST_SIZE, input_size_for, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy import UnsupportedLayerError, quantize_aware, to_tf_keras
from keras_lightnets.layers.model_card import ModelCard, find_model_card


@pytest.mark.parametrize("name", FAMILY_VARIANTS)
def test_twin_outputs_equal_the_keras3_model(name):
    overrides = {"drop_path_rate": 0.1} if name.startswith("rexnet") else dict(ARCHITECTURE_OVERRIDES.get(name, {}))
    size = input_size_for(name)
    # Logits, not softmax: random BatchNorm statistics give deep plain nets (RepVGG) logits in the
    # hundreds, and a saturated softmax turns float32 reordering noise into a large absolute error.
    model = randomize_batchnorm(
        kl.create_model(name, input_shape=(size, size, 3), classes=10, classifier_activation=None, **overrides)
    )
    twin = to_tf_keras(model)
    images = np.random.default_rng(1).random((4, size, size, 3), dtype=np.float32)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    assert twin.count_params() == model.count_params()
    expected = np.asarray(model(images))
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(twin(images, training=False).numpy(), expected, atol=1e-5 * scale, rtol=0)


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
    # GroupNorm: a tf_keras twin, no tfmot 8-bit config, none of ours (LayerNorm has one since ConvNeXt).
    x = keras.layers.GroupNormalization(groups=2, name="odd_norm")(x)
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


def test_model_card_travels_into_the_twin_and_the_qat_model():
    card = ModelCard(
        "rexnet",
        variant=None,
        architecture={"constructor": "ReXNet", "args": {"width": 0.5, "se_ratio": 1 / 12}},
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        input_size=(224, 224, 3),
    )
    inputs = keras.Input((TEST_SIZE, TEST_SIZE, 3))
    x = card(inputs)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.ReLU(name="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(keras.layers.GlobalAveragePooling2D()(x)))
    expected = json.loads(json.dumps(card.get_config()))
    base_keys = set(keras.layers.Layer.get_config(card))
    for converted in (to_tf_keras(model), quantize_aware(model)):
        found = find_model_card(converted)
        assert found is not None and found.name == "model_card"
        config = json.loads(json.dumps(found.get_config()))
        assert {key: config[key] for key in expected if key not in base_keys} == {
            key: value for key, value in expected.items() if key not in base_keys
        }
        assert found.family == "rexnet" and found.architecture["args"]["width"] == 0.5
        assert list(found.preprocessing.mean) == [0.485, 0.456, 0.406]  # a 0.1.0 card's loose mean, read in


def _drop_path_probe(twin, block):
    drop = twin.get_layer(f"{block}_drop_path")
    return drop.input, drop.output


def test_twin_carries_trainable_flags_and_a_frozen_drop_path_does_not_drop():
    # EfficientNet-Lite0, drop connect 0.5, from-back:3: block6c (drops 41 %) frozen, block6d (44 %) trains.
    model = kl.create_model("efficientnet_lite0", input_shape=(32, 32, 3), classes=10, drop_connect_rate=0.5)
    assert kl.transfer.freeze(model, "from-back:3").trainable_blocks == ("block6d", "block7a", "top")
    twin = to_tf_keras(model)
    assert {layer.name: layer.trainable for layer in twin.layers[1:]} == {
        layer.name: layer.trainable for layer in model.layers[1:]
    }
    probe = tf_keras.Model(twin.input, [*_drop_path_probe(twin, "block6c"), *_drop_path_probe(twin, "block6d")])
    tf_keras.utils.set_random_seed(0)
    images = np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32)
    frozen_in, frozen_out, unfrozen_in, unfrozen_out = (t.numpy() for t in probe(images, training=True))
    np.testing.assert_array_equal(frozen_out, frozen_in)
    dropped = np.all(unfrozen_out == 0, axis=(1, 2, 3))
    assert 0 < dropped.sum() < len(images)  # a batch of 16 keeps all with probability 1e-4
    np.testing.assert_allclose(
        unfrozen_out[~dropped], unfrozen_in[~dropped] / (1 - twin.get_layer("block6d_drop_path").rate), rtol=1e-6
    )


def test_twin_input_normalization_is_always_frozen():
    model = kl.create_model("mobilenetv2_035", input_shape=(TEST_SIZE, TEST_SIZE, 3), include_preprocessing=True)
    model.get_layer("input_normalization").trainable = True  # a user's mistake: its values are the card's
    twin = to_tf_keras(model)
    assert not twin.get_layer("input_normalization").trainable
    assert twin.get_layer("stem_conv").trainable
