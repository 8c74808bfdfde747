"""tf_keras versions of keras_lightnets' two custom layers, for the quantization-aware twin.

tensorflow-model-optimization only works on tf_keras (Keras 2) models, so the twin of a
Keras 3 model needs tf_keras classes with the same math as
:class:`~keras_lightnets.layers.StochasticDepth` and
:class:`~keras_lightnets.layers.PartialResidualAdd`. They live here, on the deploy side,
so model code never imports tf_keras. Both are registered under ``keras_lightnets>`` in
tf_keras's own registry, so a QAT model saved with tf_keras loads back.
"""

import tensorflow as tf
import tf_keras

__all__ = ["TwinPartialResidualAdd", "TwinQuantizedSiLU", "TwinStochasticDepth"]

# The largest value of TFLite's int8 LOGISTIC output (scale 1/256, zero point -128).
_LOGISTIC_MAX = 255.0 / 256.0


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinStochasticDepth(tf_keras.layers.Layer):
    """Drop path with rate ``rate`` in training (timm's ``DropPath``), identity at inference."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = tf.concat([tf.shape(inputs)[:1], tf.ones([inputs.shape.rank - 1], tf.int32)], axis=0)
        mask = tf.floor(tf.random.uniform(shape, dtype=inputs.dtype, seed=self.seed) + keep)
        return inputs * mask / keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinPartialResidualAdd(tf_keras.layers.Layer):
    """``[y, x] -> y + pad(x)``: the shortcut added to the first ``C_x`` channels (TFLite PAD + ADD)."""

    def call(self, inputs):
        y, x = inputs
        extra = y.shape[-1] - x.shape[-1]
        paddings = [[0, 0]] * (x.shape.rank - 1) + [[0, extra]]
        return y + tf.pad(x, paddings)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinQuantizedSiLU(tf_keras.layers.Layer):
    """SiLU ``x * sigmoid(x)`` for QAT, with the sigmoid rounded as TFLite's int8 LOGISTIC does.

    TFLite runs an int8 SiLU as LOGISTIC (fixed output grid: steps of 1/256 in [0, 255/256])
    then MUL. Only :func:`~keras_lightnets.deploy.quantize_aware` puts this layer in place of
    ``Activation("silu")`` (same name); the float twin keeps the exact activation.
    """

    def call(self, inputs):
        gate = tf.quantization.fake_quant_with_min_max_args(
            tf.sigmoid(inputs), min=0.0, max=_LOGISTIC_MAX, num_bits=8, narrow_range=False
        )
        return inputs * gate

    def compute_output_shape(self, input_shape):
        return input_shape
