"""LayerNormalization for quantization-aware training: the same LayerNorm, built from the primitive
ops TFLite has int8 kernels for, with a learned int8 range on every intermediate tensor.

tfmot has no 8-bit config for ``LayerNormalization``, and an output quantizer alone is not enough:
TFLite has no LayerNorm operator, the converter lowers it to MEAN, SQUARED_DIFFERENCE, ADD, RSQRT,
MUL, SUB, and with no range for those intermediate tensors it keeps them in float between a
DEQUANTIZE and a QUANTIZE (ConvNeXt: 17 float islands, the INT8 file 5x slower than the FP32 one).
:func:`~keras_lightnets.deploy.quantize_aware` replaces each tf_keras ``LayerNormalization`` of the
twin by :class:`TwinQuantizedLayerNorm` (same name, same ``gamma`` / ``beta``), which computes

    mean = MEAN(x)            centered = x - mean          square = centered * centered
    variance = MEAN(square)   shifted = variance + eps     inverse = RSQRT(shifted)
    normalized = centered * inverse    scaled = normalized * gamma    y = scaled + beta

fake-quantizing each of ``mean`` ... ``scaled`` with tfmot's moving-average 8-bit quantizer
(per tensor, asymmetric: the ranges :func:`~keras_lightnets.deploy.calibrate_ranges` sets and
training moves), ``gamma`` and ``beta`` as int8 constants (:class:`LayerNormQuantizeConfig`) and the
output with a learned range: the converter then emits int8 MEAN / SUB / MUL / ADD / RSQRT kernels
and nothing float. The Keras 3 model and the float twin keep a plain LayerNorm.
"""

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

__all__ = ["LayerNormQuantizeConfig", "TwinQuantizedLayerNorm", "layer_norm_steps"]

_quantizers = tfmot.quantization.keras.quantizers
# The intermediate tensors that get their own int8 range, in computation order.
STEPS = ("mean", "centered", "square", "variance", "shifted", "inverse", "normalized", "scaled")


def _moving_average_quantizer():
    return _quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)


def layer_norm_steps(x, gamma, beta, epsilon, quantize, *, axis=-1):
    """LayerNorm of ``x`` over ``axis`` as TFLite's primitive ops, ``quantize(name, tensor)`` applied to each
    intermediate tensor named in :data:`STEPS` (the identity gives tf_keras' LayerNormalization)."""
    mean = quantize("mean", tf.reduce_mean(x, axis=axis, keepdims=True))
    centered = quantize("centered", x - mean)
    square = quantize("square", centered * centered)
    variance = quantize("variance", tf.reduce_mean(square, axis=axis, keepdims=True))
    shifted = quantize("shifted", variance + epsilon)
    inverse = quantize("inverse", tf.math.rsqrt(shifted))
    normalized = quantize("normalized", centered * inverse)
    return quantize("scaled", normalized * gamma) + beta


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinQuantizedLayerNorm(tf_keras.layers.Layer):
    """tf_keras ``LayerNormalization`` over the last axis (with ``gamma`` and ``beta``) for QAT, each
    intermediate tensor fake-quantized (see the module docstring). Weights: ``gamma``, ``beta``, then a
    ``<step>_min`` / ``<step>_max`` range pair per step (non-trainable, [-6, 6] at first, as tfmot's).

    In training, a ``shifted`` variance that rounds to 0 counts as half its int8 step (at least
    ``epsilon``): the int8 square and its mean have a far coarser grid than ``centered`` (the square of
    a value 20 steps of ``centered`` high is under one step of ``square``), so positions whose channels
    still differ get a variance of 0, and ``RSQRT(epsilon)`` (1000 at ConvNeXt's 1e-6) stretched the
    ``inverse`` range to 1000: every other position's inverse rounded to a multiple of 3.9, LayerNorm outputs
    reached 1e4 and whole stages became 0 (the loss exactly ln 10, or NaN). Half a step bounds the
    inverse by the data's scale, and the ``inverse`` range learns ``RSQRT(step / 2)`` as its largest
    value, which is what the INT8 file computes: the graph the converter reads (inference) has no
    such op, TFLite's int8 RSQRT maps 0 to its largest output, as the fake-quant clamps it here.
    """

    def __init__(self, axis=-1, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, [-1], (-1,)):
            raise ValueError(f"TwinQuantizedLayerNorm normalizes over the last axis only, got axis={axis!r}")
        self.axis = -1
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        quantizer = _moving_average_quantizer()
        self._ranges = {step: quantizer.build(None, step, self) for step in STEPS}
        self._quantizer = quantizer
        super().build(input_shape)

    def _steps(self, inputs, training):
        def quantize(step, tensor):
            quantized = self._quantizer(tensor, training, self._ranges[step])
            if training and step == "shifted":
                # After the rounding, not before: a small variance in a layer whose range is wide rounds
                # to 0, and RSQRT(0) = inf made the loss NaN on the first step (ConvNeXt at 32 px).
                quantized = tf.maximum(quantized, self._rounded_to_zero())
            return quantized

        return layer_norm_steps(inputs, self.gamma, self.beta, self.epsilon, quantize)

    def _rounded_to_zero(self):
        """What a ``shifted`` variance rounded to 0 stands for in training: half the int8 step of its range
        (as the quantizer has just updated it), at least ``epsilon``; only zeros are raised to it."""
        ranges = self._ranges["shifted"]
        half_step = tf.stop_gradient(ranges["max_var"] - ranges["min_var"]) / (2.0 * 255.0)
        return tf.maximum(half_step, self.epsilon)

    def call(self, inputs, training=None):
        if training is None:
            training = tf_keras.backend.learning_phase()
        if isinstance(training, bool | int):
            return self._steps(inputs, bool(training))
        return tf.cond(
            tf.cast(training, tf.bool), lambda: self._steps(inputs, True), lambda: self._steps(inputs, False)
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class LayerNormQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """:class:`TwinQuantizedLayerNorm`: ``gamma`` and ``beta`` fake-quantized as int8 constants (per
    tensor, last value; the MUL's and the ADD's constant operands in the INT8 file), the output with a
    learned range (the ADD's int8 output); the intermediate tensors are quantized inside the layer."""

    def get_weights_and_quantizers(self, layer):
        gamma = _quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)
        beta = _quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)
        return [(layer.gamma, gamma), (layer.beta, beta)]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.gamma, layer.beta = quantize_weights

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_moving_average_quantizer()]

    def get_config(self):
        return {}
