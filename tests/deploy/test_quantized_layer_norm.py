"""LayerNorm through QAT to a fully integer INT8 file: the twin's LayerNorm as TFLite's primitive ops,
each intermediate tensor with a learned int8 range, equal to tf_keras' LayerNorm before rounding."""

import keras
import numpy as np
import tensorflow as tf
import tf_keras

from keras_lightnets.deploy import calibrate_ranges, export_tflite, predict_tflite, quantize_aware
from keras_lightnets.deploy.quantized_layer_norm import STEPS, TwinQuantizedLayerNorm, layer_norm_steps


def test_primitive_steps_equal_tf_keras_layer_norm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 7, 16)).astype("float32") * 3 + 1
    gamma, beta = rng.random(16).astype("float32") + 0.5, rng.standard_normal(16).astype("float32")
    seen = []
    steps = layer_norm_steps(x, gamma, beta, 1e-6, lambda step, t: seen.append(step) or t).numpy()
    reference = tf_keras.layers.LayerNormalization(epsilon=1e-6)
    reference.build(x.shape)
    reference.set_weights([gamma, beta])
    np.testing.assert_allclose(steps, reference(tf.constant(x)).numpy(), atol=1e-5, rtol=0)
    assert tuple(seen) == STEPS  # every intermediate tensor passes a quantizer


def test_layer_norms_become_int8_kernels_with_no_float_op_inside(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(x)  # over channels of a map
    x = keras.layers.Activation("gelu", name="gelu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="head_norm")(x)  # over a vector
    model = keras.Model(inputs, keras.layers.Dense(4, name="fc")(x))
    rng = np.random.default_rng(0)
    for name in ("norm", "head_norm"):  # gamma 1 and beta 0 would be folded away by the converter
        layer = model.get_layer(name)
        layer.set_weights([rng.random(w.shape).astype("float32") + 0.5 for w in layer.get_weights()])
    qat = quantize_aware(model)
    assert len(qat.trainable_weights) == len(model.trainable_weights)  # the ranges do not train
    images = rng.random((8, 16, 16, 3), dtype=np.float32)
    calibrate_ranges(qat, [images], steps=1)
    exported = export_tflite(qat, tmp_path / "norm.tflite", quantization="int8")
    assert exported.float_operator_count == 0 and exported.summary.float_tensors_inside == ()
    operators = exported.summary.operators
    assert operators.count("RSQRT") == 2 and operators.count("MEAN") == 5  # 2 per LayerNorm + the pooling
    # The INT8 file computes what the QAT model simulates, up to the int8 rounding where the converter's
    # kernels and the fake-quant round a step apart (the layers are initialized unseeded: over ~85
    # initializations the largest difference was 1.6 % of the output scale, most are ~1e-7).
    outputs, simulated = predict_tflite(exported.path, images), qat(images, training=False).numpy()
    assert np.abs(outputs - simulated).max() <= 0.025 * np.abs(simulated).max()


def test_a_variance_that_rounds_to_zero_keeps_training_finite():
    # A position whose channels are nearly equal has a variance far below the range's step: its int8
    # value is 0, and RSQRT(0) made the loss NaN on ConvNeXt's first QAT step. In training the rounded
    # variance is kept at least epsilon; the gradient stays finite everywhere.
    layer = TwinQuantizedLayerNorm(epsilon=1e-6)
    x = np.zeros((2, 4, 4, 8), np.float32)
    x[0] = np.linspace(-3, 3, 8)  # sets a wide range: step 6 / 255 for the variance
    x[1] = np.linspace(0, 1e-3, 8)  # variance ~1e-7, rounds to 0
    x = tf.constant(x)
    layer.build(x.shape)
    for _ in range(3):  # the moving-average ranges move towards the batch's
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * y)
        gradients = tape.gradient(loss, [x, layer.gamma, layer.beta])
        assert np.isfinite(y.numpy()).all() and np.isfinite(loss.numpy())
        assert all(np.isfinite(g.numpy()).all() for g in gradients)


def test_a_variance_below_the_int8_grid_keeps_layer_norm_bounded():
    # The square and its mean have a far coarser int8 grid than `centered`: a position whose channels
    # differ by a few steps of `centered` has a variance that rounds to 0. In training it stands for half
    # a step of the variance's grid, not epsilon: RSQRT(1e-6) = 1000 scaled such positions a
    # thousandfold and stretched the `inverse` range to 1000 (ConvNeXt's LayerNorms reached 1e4, the
    # next stages were 0 everywhere: a QAT loss of exactly ln 10 with no gradient, or NaN).
    x = np.zeros((2, 8), np.float32)
    x[0] = np.linspace(-3, 3, 8)  # variance 3.86: the variance grid's step is 3.86 / 255
    x[1] = np.linspace(-0.1, 0.1, 8)  # variance 0.0048 rounds to 0; centered, +-4 steps of 6 / 255, does not
    inputs = tf_keras.Input((8,))
    model = tf_keras.Model(inputs, TwinQuantizedLayerNorm(epsilon=1e-6, name="norm")(inputs))
    calibrate_ranges(model, [x], steps=1)
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(y * tf.range(8, dtype=tf.float32))
    (inverse_max,) = [w for w in model.get_layer("norm").weights if "inverse_max" in w.name]
    assert float(inverse_max) < 20  # RSQRT(3.86 / 510) = 11.5, where epsilon gave 1000
    assert np.abs(y.numpy()).max() <= np.sqrt(8)  # LayerNorm's bound, |x - mean| / std <= sqrt(channels - 1)
    gamma_gradient = tape.gradient(loss, model.get_layer("norm").gamma)
    assert np.count_nonzero(gamma_gradient.numpy()) >= 7


def test_the_int8_file_computes_what_training_simulates_where_a_variance_rounds_to_zero(tmp_path):
    # Training's half step is the `inverse` range's largest value, and TFLite's int8 RSQRT maps 0 there.
    inputs = keras.Input((4, 4, 8))
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, name="fc")(x))
    model.get_layer("norm").set_weights([np.linspace(0.5, 1.5, 8, dtype="float32"), np.linspace(-0.2, 0.2, 8)])
    qat = quantize_aware(model)
    images = np.random.default_rng(0).standard_normal((4, 4, 4, 8)).astype("float32") * 2
    images[:, 0, 0] = np.linspace(-0.05, 0.05, 8)  # variance 0.001, under half a step of the variance's grid
    calibrate_ranges(qat, [images], steps=1)
    trained = qat(images, training=True).numpy()
    exported = export_tflite(qat, tmp_path / "norm.tflite", quantization="int8")
    assert exported.summary.float_tensors_inside == ()
    np.testing.assert_allclose(predict_tflite(exported.path, images), trained, atol=1e-5, rtol=0)
