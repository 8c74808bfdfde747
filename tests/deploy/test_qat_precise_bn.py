"""Precise BatchNorm on quantization-aware models, and fit_quantize_aware applying it after fine-tuning."""

import keras
import numpy as np
import pytest
from deploy_helpers import tiny_classifier

from keras_lightnets.deploy import fit_quantize_aware, quantize_aware
from keras_lightnets.deploy import qat_fit as qat_fit_module
from keras_lightnets.training import recalibrate_batchnorm
from keras_lightnets.training.precise_bn import batchnorm_memory


def _qat_tiny(seed=0):
    keras.utils.set_random_seed(seed)
    return quantize_aware(tiny_classifier())


def _batchnorms(qat_model):
    return [
        layer for layer in qat_model._flatten_layers(include_self=False) if type(layer).__name__ == "BatchNormalization"
    ]


def test_recalibration_sets_a_qat_models_batchnorm_to_the_batch_statistics(rng):
    import tf_keras

    qat_model = _qat_tiny()
    images = rng.uniform(0.0, 1.0, (32, 32, 32, 3)).astype("float32")
    batchnorms = _batchnorms(qat_model)
    assert len(batchnorms) == 3 and all(layer.momentum == 0.99 for layer in batchnorms)
    # The first BatchNorm's input, computed independently in the same (training-mode) pass:
    # a training-mode call also moves the fake-quant ranges, so every variable is put back after it.
    saved = [v.numpy() for v in qat_model.variables]
    conv0 = tf_keras.Model(qat_model.input, qat_model.get_layer("quant_conv0").output)(images, training=True).numpy()
    for variable, value in zip(qat_model.variables, saved, strict=True):
        variable.assign(value)

    assert recalibrate_batchnorm(qat_model, [images], steps=4) == 1
    bn0 = next(layer for layer in batchnorms if layer.name == "bn0")
    np.testing.assert_allclose(bn0.moving_mean.numpy(), conv0.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn0.moving_variance.numpy(), conv0.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    assert all(layer.momentum == 0.99 for layer in batchnorms)


def test_recalibration_leaves_every_other_qat_variable_alone(rng):
    qat_model = _qat_tiny()
    moving = {id(v) for layer in _batchnorms(qat_model) for v in (layer.moving_mean, layer.moving_variance)}
    before = {v.name: v.numpy() for v in qat_model.variables if id(v) not in moving}
    recalibrate_batchnorm(qat_model, [rng.uniform(0.0, 1.0, (16, 32, 32, 3)).astype("float32")])
    after = {v.name: v.numpy() for v in qat_model.variables if id(v) not in moving}
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[name], value) for name, value in before.items())


def test_fit_quantize_aware_recalibrates_batchnorm_after_fine_tuning(monkeypatch):
    calls = []
    real = qat_fit_module.recalibrate_batchnorm

    def spy(model, batches, *, steps):
        calls.append((model, model.optimizer.iterations.numpy(), steps))
        return real(model, batches, steps=steps)

    monkeypatch.setattr(qat_fit_module, "recalibrate_batchnorm", spy)
    qat_model = _qat_tiny()
    fit_quantize_aware(qat_model, epochs=1, steps_per_epoch=2, validation_split=None, precise_bn_steps=3, verbose=0)
    assert len(calls) == 1 and calls[0][0] is qat_model
    assert calls[0][1:] == (2, 3)  # after the two training steps, over three batches
    fit_quantize_aware(qat_model, epochs=1, steps_per_epoch=1, validation_split=None, precise_bn_steps=0, verbose=0)
    assert len(calls) == 1  # 0 switches it off
    for layer in _batchnorms(qat_model):
        layer.momentum = 0.1  # 0.1 ** 2 = 1 %: the averages follow the fine-tuned weights already
    fit_quantize_aware(qat_model, epochs=1, steps_per_epoch=2, validation_split=None, precise_bn_steps=3, verbose=0)
    assert len(calls) == 1


def test_batchnorm_memory_is_what_the_moving_averages_keep_of_before():
    qat_model = _qat_tiny()  # Keras's default momentum 0.99
    assert batchnorm_memory(qat_model, 90) == pytest.approx(0.99**90)
    assert batchnorm_memory(tiny_classifier(), 0) == 1.0
    inputs = keras.Input((4,))
    assert batchnorm_memory(keras.Model(inputs, keras.layers.Dense(2)(inputs)), 10) == 0.0


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_precise_bn_steps_must_be_a_non_negative_integer(bad, error):
    with pytest.raises(error, match="`precise_bn_steps` must be an integer >= 0"):
        fit_quantize_aware(_qat_tiny(), precise_bn_steps=bad)


def test_run_eagerly_must_be_a_bool():
    with pytest.raises(TypeError, match="`run_eagerly` must be True or False, got 1"):
        fit_quantize_aware(_qat_tiny(), run_eagerly=1)
