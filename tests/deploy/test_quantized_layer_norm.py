"""LayerNorm through QAT to a fully integer INT8 file: the twin's LayerNorm as TFLite's primitive ops,
each intermediate tensor with a learned int8 range, equal to tf_keras' LayerNorm before rounding."""

import keras
import numpy as np
import tensorflow as tf
import tf_keras

from keras_lightnets.deploy import calibrate_ranges, export_tflite, predict_tflite, quantize_aware
from keras_lightnets.deploy.quantized_layer_norm import STEPS, layer_norm_steps


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
    # The INT8 file computes what the QAT model simulates (measured: equal to 3e-7).
    outputs, simulated = predict_tflite(exported.path, images), qat(images, training=False).numpy()
    assert np.abs(outputs - simulated).max() <= 0.01 * np.abs(simulated).max()
