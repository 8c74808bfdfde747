"""Quantization-aware training trains only what the Keras 3 model trains: a body frozen for transfer
learning and the in-graph input normalization come out of QAT bit-identical, the head does not."""

import keras
import numpy as np
import pytest
import tf_keras
from deploy_helpers import randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy import fit_quantize_aware, quantize_aware, quantize_scope
from keras_lightnets.deploy.qat_calibration import is_range_variable
from keras_lightnets.deploy.quantize_configs import FrozenAwareQuantizeWrapper
from keras_lightnets.transfer import freeze

SIZE = 32
UNFROZEN = ("block17", "head")  # mobilenetv2_035's last two blocks: from-back:2


@pytest.fixture(scope="module")
def frozen_qat():
    """``(Keras 3 model frozen from-back:2, its QAT model)``."""
    keras.utils.set_random_seed(0)
    model = kl.create_model("mobilenetv2_035", input_shape=(SIZE, SIZE, 3), classes=10, include_preprocessing=True)
    # "Pretrained" statistics: a fresh model's BatchNorms shrink its features to nothing, and no gradient flows.
    randomize_batchnorm(model)
    assert freeze(model, "from-back:2").trainable_blocks == UNFROZEN
    return model, quantize_aware(model)


def _wrappers(qat_model):
    return [layer for layer in qat_model.layers if isinstance(layer, tf_keras.layers.Wrapper)]


def _layer_and_shape(name, variable):
    return name.split("/")[0], tuple(variable.shape)


def _weights(wrapper):
    """``{variable name: value}`` of the wrapped layer's weights (kernels, biases, BatchNorm's four),
    not the wrapper's fake-quant ranges and step counter."""
    return {
        variable.name: variable.numpy()
        for variable in wrapper.weights
        if not is_range_variable(variable) and "optimizer_step" not in variable.name
    }


def test_qat_model_trains_only_the_unfrozen_layers(frozen_qat):
    model, qat_model = frozen_qat
    assert all(isinstance(layer, FrozenAwareQuantizeWrapper) for layer in _wrappers(qat_model))
    for wrapper in _wrappers(qat_model):
        assert wrapper.trainable == model.get_layer(wrapper.layer.name).trainable, wrapper.name
    assert not qat_model.get_layer("quant_input_normalization").trainable
    # The kernels, biases and BatchNorm gamma / beta of the unfrozen layers, nothing else (no fake-quant range).
    expected = sorted(_layer_and_shape(variable.path, variable) for variable in model.trainable_variables)
    assert sorted(_layer_and_shape(variable.name, variable) for variable in qat_model.trainable_variables) == expected


def test_frozen_layers_and_input_normalization_are_bit_identical_after_qat_fit(frozen_qat):
    model, qat_model = frozen_qat
    before = {wrapper.name: _weights(wrapper) for wrapper in _wrappers(qat_model)}
    # The whole path: range calibration, two training steps, precise BatchNorm afterwards.
    fit_quantize_aware(
        qat_model,
        epochs=1,
        steps_per_epoch=2,
        batch_size=8,
        learning_rate=0.1,
        validation_split=None,
        calibration_steps=1,
        precise_bn_steps=2,
        run_eagerly=True,
        seed=0,
        verbose=0,
    )
    frozen, changed = 0, []
    for wrapper in _wrappers(qat_model):
        after = _weights(wrapper)
        assert after.keys() == before[wrapper.name].keys()
        if wrapper.trainable:
            changed += [name for name, value in after.items() if not np.array_equal(value, before[wrapper.name][name])]
            continue
        for name, value in after.items():
            np.testing.assert_array_equal(value, before[wrapper.name][name], err_msg=f"frozen {name} changed in QAT")
            frozen += 1
    # Every weight of stem ... block16 (convolutions, BatchNorm's four) and of the normalization.
    assert frozen == sum(len(layer.weights) for layer in model.layers if not layer.trainable) > 200
    # The normalization still holds the model card's numbers, as in the Keras 3 model.
    kernel, bias = model.get_layer("input_normalization").get_weights()
    np.testing.assert_array_equal(_value(qat_model, "input_normalization/depthwise_kernel:0"), kernel)
    np.testing.assert_array_equal(_value(qat_model, "input_normalization/bias:0"), bias)
    # The unfrozen part trained: the head's convolution, BatchNorm and the classifier, block17's kernels.
    for name in ("block17_project_conv/kernel:0", "head_conv/kernel:0", "head_bn/gamma:0", "predictions/kernel:0"):
        assert name in changed, sorted(changed)


def _value(qat_model, name):
    (value,) = [variable.numpy() for variable in qat_model.variables if variable.name == name]
    return value


def test_reloaded_qat_model_keeps_its_frozen_layers_frozen(frozen_qat):
    model, qat_model = frozen_qat
    with quantize_scope():
        reloaded = tf_keras.Model.from_config(qat_model.get_config())
    assert all(isinstance(layer, FrozenAwareQuantizeWrapper) for layer in _wrappers(reloaded))
    assert [(layer.name, len(layer.trainable_weights)) for layer in reloaded.layers] == [
        (layer.name, len(layer.trainable_weights)) for layer in qat_model.layers
    ]
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)
