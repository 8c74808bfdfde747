"""recalibrate_batchnorm: moving statistics replaced by the average batch statistics, nothing else touched."""

import importlib
import json

import keras
import numpy as np
import pytest

from keras_lightnets.training import fit, inputs, recalibrate_batchnorm
from keras_lightnets.training.precise_bn import DEFAULT_PRECISE_BN_STEPS

fit_module = importlib.import_module("keras_lightnets.training.fit")  # the module; the package's `fit` is the function


def _conv_bn(momentum=0.999):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x))


def test_moving_statistics_become_the_average_of_the_batch_statistics(rng):
    model = _conv_bn()
    batches = [rng.normal(3.0, 2.0, (16, 8, 8, 3)).astype("float32") for _ in range(5)]
    before = {v.path: v.numpy() for v in model.variables}
    conv_model = keras.Model(model.input, model.get_layer("conv").output)
    outputs = [conv_model(batch).numpy() for batch in batches]
    expected_mean = np.mean([out.mean(axis=(0, 1, 2)) for out in outputs], axis=0)
    expected_variance = np.mean([out.var(axis=(0, 1, 2)) for out in outputs], axis=0)

    assert recalibrate_batchnorm(model, iter(batches), steps=10) == 5  # stops with the data
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), expected_variance, rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.999  # restored
    for variable in model.variables:
        if "moving" not in variable.path:
            np.testing.assert_array_equal(variable.numpy(), before[variable.path])


def test_a_slow_momentum_left_after_short_training_is_fixed(rng):
    # After a few steps with momentum 0.999 the moving statistics still say mean 0 / variance 1.
    model = _conv_bn()
    images = rng.normal(3.0, 2.0, (32, 8, 8, 3)).astype("float32")
    stale = model(images, training=False).numpy()
    recalibrate_batchnorm(model, [(images, None)], steps=1)  # (images, labels) pairs are accepted
    np.testing.assert_allclose(model(images, training=False).numpy(), model(images, training=True).numpy(), atol=1e-4)
    assert not np.allclose(stale, model(images, training=False).numpy(), atol=1e-2)


@pytest.mark.parametrize("steps, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_steps_must_be_a_positive_integer(steps, error):
    with pytest.raises(error, match="`steps` must be an integer >= 1"):
        recalibrate_batchnorm(_conv_bn(), [], steps=steps)


def test_empty_data_is_an_error():
    with pytest.raises(ValueError, match="yielded no batch"):
        recalibrate_batchnorm(_conv_bn(), [], steps=3)


def test_a_model_without_batchnorm_is_left_alone():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert recalibrate_batchnorm(model, [np.ones((2, 4), "float32")]) == 0


def _fit_conv_bn(momentum, tmp_path, monkeypatch):
    """``(fit result, the batches fit recalibrated with or None)`` of 30 steps of ``_conv_bn(momentum)``."""
    calls = []
    real = fit_module.recalibrate_batchnorm

    def spy(model, batches, *, steps):
        calls.append(steps)
        return real(model, batches, steps=steps)

    monkeypatch.setattr(fit_module, "recalibrate_batchnorm", spy)
    keras.utils.set_random_seed(0)
    images = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(images)
    x = keras.layers.BatchNormalization(momentum=momentum, name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    model = keras.Model(images, keras.layers.Dense(10, name="head")(x))
    messages = []
    result = fit(
        model, image_size=32, epochs=1, steps_per_epoch=30, batch_size=16, seed=0, verbose=0,
        output_dir=tmp_path, log=messages.append,
    )  # fmt: skip
    return result, calls, messages


def test_fit_recalibrates_a_batchnorm_left_stale_by_a_short_run(tmp_path, monkeypatch):
    # 0.999 ** 30 = 0.97 of the moving averages is still the initial mean 0 / variance 1.
    result, calls, messages = _fit_conv_bn(0.999, tmp_path, monkeypatch)
    assert calls == [DEFAULT_PRECISE_BN_STEPS]
    assert result.run_info["precise_bn"] == {"batches": DEFAULT_PRECISE_BN_STEPS, "batchnorm_memory": 0.9704}
    assert json.loads((tmp_path / "run.json").read_text())["precise_bn"] == result.run_info["precise_bn"]
    assert any(message.startswith("BatchNorm moving statistics recomputed") for message in messages)
    bn = result.model.get_layer("bn")
    after = [bn.moving_mean.numpy(), bn.moving_variance.numpy()]
    # They are the average batch statistics of the final weights: recalibrating again changes nothing.
    train = inputs.eval_dataset("train", batch_size=16, **result.plan.pipeline_arguments())
    recalibrate_batchnorm(result.model, train, steps=DEFAULT_PRECISE_BN_STEPS)
    np.testing.assert_allclose(bn.moving_mean.numpy(), after[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), after[1], rtol=1e-5, atol=1e-6)
    saved = keras.models.load_model(tmp_path / "final.keras").get_layer("bn")
    np.testing.assert_array_equal(saved.moving_mean.numpy(), after[0])  # final.keras holds them too


def test_fit_leaves_a_batchnorm_that_forgot_its_initial_values_alone(tmp_path, monkeypatch):
    result, calls, messages = _fit_conv_bn(0.9, tmp_path, monkeypatch)  # 0.9 ** 30 = 0.04 < 0.05
    assert calls == [] and result.run_info["precise_bn"] is None
    assert not any("BatchNorm" in message for message in messages)
