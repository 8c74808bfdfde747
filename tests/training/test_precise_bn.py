"""recalibrate_batchnorm: moving statistics replaced by the average batch statistics, nothing else touched."""

import keras
import numpy as np
import pytest

from keras_lightnets.training import recalibrate_batchnorm


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
