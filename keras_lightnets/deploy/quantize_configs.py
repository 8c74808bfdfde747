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
- Keras 3's hard swish (:class:`TwinHardSwish`): output quantized, so the converter fuses the
  layer's ``x * relu6(x + 3) / 6`` into one int8 HARD_SWISH; its hard sigmoid (MobileNetV3's
  squeeze-excite gate, :class:`TwinQuantizedHardSigmoid` in QAT): ``relu6(x + 3)`` quantized to its
  fixed range [0, 6] inside the layer and the output to [0, 1]
  (:class:`HardSigmoidOutputQuantizeConfig`), the INT8 ADD (fused RELU6) and MUL.
- sigmoid (squeeze-excite gates) and the sigmoid inside SiLU (:class:`TwinQuantizedSiLU`):
  fake-quantized to TFLite's fixed LOGISTIC output grid (:class:`LogisticOutputQuantizeConfig`),
  so QAT trains with the rounding the INT8 kernel applies. Softmax keeps no quantizer (the
  model's last op, dequantized straight away).

Every layer of a QAT model is wrapped in :class:`FrozenAwareQuantizeWrapper`, tfmot's wrapper
that leaves a frozen layer's weights frozen.
"""

import tensorflow_model_optimization as tfmot
import tf_keras

from keras_lightnets.deploy.quantized_layer_norm import LayerNormQuantizeConfig, TwinQuantizedLayerNorm
from keras_lightnets.deploy.twin_layers import (
    TwinHardSigmoid,
    TwinHardSwish,
    TwinPartialResidualAdd,
    TwinQuantizedHardSigmoid,
    TwinQuantizedSiLU,
)
from keras_lightnets.layers.custom_layers import CUSTOM_LAYERS

__all__ = [
    "ACTIVATIONS_WITH_FIXED_RANGE",
    "FrozenAwareQuantizeWrapper",
    "HardSigmoidOutputQuantizeConfig",
    "LOGISTIC_MAX",
    "LayerScaleQuantizeConfig",
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


class LayerScaleQuantizeConfig(OutputQuantizeConfig):
    """Layer scale ``x * gamma``: ``gamma`` fake-quantized as a weight (8 bits, per tensor, symmetric,
    last value), so the INT8 file's MUL reads an int8 constant; the output gets its own learned range."""

    def get_weights_and_quantizers(self, layer):
        quantizer = _quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)
        return [(layer.gamma, quantizer)]

    def set_quantize_weights(self, layer, quantize_weights):
        (layer.gamma,) = quantize_weights


class HardSigmoidOutputQuantizeConfig(OutputQuantizeConfig):
    """Output fake-quantized to the hard sigmoid's fixed range [0, 1] (scale 1/255): the int8 values
    of ``relu6(x + 3)`` on [0, 6] carried over unchanged by TFLite's MUL by 1/6."""

    def get_output_quantizers(self, layer):
        return [_quantizers.FixedQuantizer(num_bits=8, init_min=0.0, init_max=1.0, narrow_range=False)]


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
            HardSigmoidOutputQuantizeConfig,
            LayerScaleQuantizeConfig,
            NoOpQuantizeConfig,
            LayerNormQuantizeConfig,
            TwinQuantizedLayerNorm,
            FrozenAwareQuantizeWrapper,
            TwinQuantizedSiLU,
            TwinHardSigmoid,
            TwinHardSwish,
            TwinQuantizedHardSigmoid,
            TwinPartialResidualAdd,  # deprecated name of TwinChannelPadAdd: QAT models saved with it
        )
    }
    for entry in CUSTOM_LAYERS:
        for cls in (entry.twin_class(), entry.quantize_config_class()):
            objects[cls.__name__] = cls
    return objects
