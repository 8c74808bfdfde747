"""QuantizeConfigs for the layers tensorflow-model-optimization's 8-bit scheme lacks.

tfmot's default registry knows convolutions, BatchNorm folding, ReLU, ``Add``,
``Concatenate`` and pooling, but refuses ``Multiply`` (every squeeze-excite block, tfmot
issue 733) and any custom layer. For those, the twin's layers are annotated with the
configs below. They follow tfmot's own conventions for element-wise ops
(``Default8BitOutputQuantizeConfig``): no weights, and the output is fake-quantized with a
``MovingAverageQuantizer`` (8 bits, per tensor, asymmetric) so the TFLite converter finds a
learned range for the op's int8 output.

- ``Multiply`` (SE gating ``x * sigmoid(s)``): output quantized, like tfmot's ``Add``.
- our custom layers: the config named by their entry in
  :data:`keras_lightnets.layers.custom_layers.CUSTOM_LAYERS` (``ChannelPadAdd``, ReXNet's
  ``y + pad(x)``: output quantized; ``StochasticDepth``, ``ModelCard``: the identity at
  inference, ``CeilMaxPool2D``: a max pool, so nothing to quantize: the output keeps the
  range of the input).
- ``Activation`` layers with an activation tfmot's config refuses (``hard_sigmoid``,
  ``gelu``, ``elu``, ``hard_swish``): output quantized.
- sigmoid (squeeze-excite gates) and the sigmoid inside SiLU (:class:`TwinQuantizedSiLU`):
  fake-quantized to TFLite's fixed LOGISTIC output grid (:class:`LogisticOutputQuantizeConfig`),
  so QAT trains with the rounding the INT8 kernel applies. Softmax keeps no quantizer (the
  model's last op, dequantized straight away).

Every layer of a QAT model is wrapped in :class:`FrozenAwareQuantizeWrapper`, tfmot's wrapper
that leaves a frozen layer's weights frozen.
"""

import tensorflow_model_optimization as tfmot
import tf_keras

from keras_lightnets.deploy.twin_layers import TwinPartialResidualAdd, TwinQuantizedSiLU
from keras_lightnets.layers.custom_layers import CUSTOM_LAYERS

__all__ = [
    "ACTIVATIONS_WITH_FIXED_RANGE",
    "FrozenAwareQuantizeWrapper",
    "LOGISTIC_MAX",
    "LogisticOutputQuantizeConfig",
    "NoOpQuantizeConfig",
    "OutputQuantizeConfig",
    "custom_objects",
]

_quantizers = tfmot.quantization.keras.quantizers

# TFLite fixes the int8 output range of these ops (LOGISTIC: [0, 1), SOFTMAX: [0, 1)).
ACTIVATIONS_WITH_FIXED_RANGE = ("sigmoid", "softmax", "linear")
# The largest value of TFLite's int8 LOGISTIC output (scale 1/256, zero point -128).
LOGISTIC_MAX = 255.0 / 256.0


class OutputQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """No weights to quantize; the layer's output fake-quantized to 8 bits (per tensor, asymmetric)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}


class LogisticOutputQuantizeConfig(OutputQuantizeConfig):
    """Output fake-quantized to TFLite's fixed int8 LOGISTIC range: scale 1/256, zero point -128.

    TFLite's int8 LOGISTIC kernel always writes ``[0, 255/256]`` in steps of 1/256. Leaving a
    sigmoid unquantized in the QAT model (tfmot's default) hides that rounding from training,
    and in a network with a sigmoid in every block (squeeze-excite gates, SiLU) the INT8 file
    then drifts away from the QAT Keras model; simulating it keeps the two in agreement.
    """

    def get_output_quantizers(self, layer):
        return [_quantizers.FixedQuantizer(num_bits=8, init_min=0.0, init_max=LOGISTIC_MAX, narrow_range=False)]


class NoOpQuantizeConfig(OutputQuantizeConfig):
    """Nothing quantized: for layers that are the identity at inference (stochastic depth), and
    element-wise ops whose ReLU the converter fuses into them (the ReLU's quantizer rounds once)."""

    def get_output_quantizers(self, layer):
        return []


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class FrozenAwareQuantizeWrapper(tfmot.quantization.keras.QuantizeWrapperV2):
    """tfmot's ``QuantizeWrapperV2`` in which a layer with ``trainable = False`` has no trainable weights.

    tfmot's wrapper lists every weight it fake-quantizes (a convolution's kernel) among its
    trainable weights whatever the wrapped layer's flag says, so quantization-aware training
    would retrain the kernels of a body frozen for transfer learning and of the in-graph input
    normalization. Here a frozen layer's weights, quantized ones included, are all
    non-trainable, as Keras's own ``Layer.trainable_weights`` promises; the fake-quant ranges
    (non-trainable) are unchanged.
    """

    @property
    def trainable_weights(self):
        return super().trainable_weights if self.layer.trainable else []

    @property
    def non_trainable_weights(self):
        if self.layer.trainable:
            return super().non_trainable_weights
        # The quantized weights first: the wrapped layer stops listing them once the wrapper has called
        # it (tfmot sets the attribute to the fake-quantized tensor), so this order stays the same.
        return self._dedup_weights(self._trainable_weights + self.layer.weights + self._non_trainable_weights)


def custom_objects():
    """The names ``tfmot.quantization.keras.quantize_scope`` needs to rebuild an annotated twin or a
    QAT model: our QuantizeConfigs and wrapper, and the twin and QuantizeConfig of every custom
    layer in the table."""
    objects = {
        cls.__name__: cls
        for cls in (
            OutputQuantizeConfig,
            LogisticOutputQuantizeConfig,
            NoOpQuantizeConfig,
            FrozenAwareQuantizeWrapper,
            TwinQuantizedSiLU,
            TwinPartialResidualAdd,  # deprecated name of TwinChannelPadAdd: QAT models saved with it
        )
    }
    for entry in CUSTOM_LAYERS:
        for cls in (entry.twin_class(), entry.quantize_config_class()):
            objects[cls.__name__] = cls
    return objects
