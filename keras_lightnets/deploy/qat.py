"""Quantization-aware training (QAT) for Keras 3 models, through tensorflow-model-optimization.

    qat_model = quantize_aware(model)           # a tf_keras model with fake-quant nodes
    fit_quantize_aware(qat_model, epochs=2)     # fine-tune with the model family's recipe
    export_tflite(qat_model, "model.tflite", quantization="int8")   # no representative data

tfmot accepts only tf_keras models, so :func:`quantize_aware` builds the model's tf_keras
twin (:func:`~keras_lightnets.deploy.twin.to_tf_keras`: same layer names, weights copied,
equal outputs), annotates every layer — with tfmot's default 8-bit configs where tfmot has
one, with ours (:mod:`.quantize_configs`) for squeeze-excite ``Multiply``, our custom
layers (the config their entry in :data:`keras_lightnets.layers.custom_layers.CUSTOM_LAYERS`
names) and the activations tfmot refuses — and applies tfmot's default 8-bit scheme
(BatchNorm folded into the convolutions, per-channel weights, fused ReLU/ReLU6). Where the
converter fuses a ReLU into the ``MUL``/``ADD`` before it, that op's output is not rounded on
its own, so the QAT model rounds exactly where the INT8 file does.

A layer that is frozen in the Keras 3 model (``trainable = False``: a body frozen by
:func:`keras_lightnets.transfer.freeze`, the in-graph input normalization) stays frozen in the
QAT model: its weights do not train (:class:`~.quantize_configs.FrozenAwareQuantizeWrapper`),
its BatchNorm keeps its statistics and its stochastic depth does not drop; its activation
ranges are still learned, as the INT8 file needs them.
"""

import keras
import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras

from keras_lightnets.deploy.quantize_configs import (
    ACTIVATIONS_WITH_FIXED_RANGE,
    FrozenAwareQuantizeWrapper,
    HardSigmoidOutputQuantizeConfig,
    LogisticOutputQuantizeConfig,
    NoOpQuantizeConfig,
    OutputQuantizeConfig,
    custom_objects,
)
from keras_lightnets.deploy.quantized_layer_norm import LayerNormQuantizeConfig, TwinQuantizedLayerNorm
from keras_lightnets.deploy.twin import UnsupportedLayerError, to_tf_keras
from keras_lightnets.deploy.twin_layers import (
    TwinHardSigmoid,
    TwinHardSwish,
    TwinQuantizedHardSigmoid,
    TwinQuantizedSiLU,
)
from keras_lightnets.layers.custom_layers import CUSTOM_LAYERS, float_only_layers, float_only_message
from keras_lightnets.models.describe import without_auxiliary_outputs
from keras_lightnets.reparameterize import fusable_blocks

__all__ = ["is_quantize_aware", "is_tf_keras_model", "quantize_aware", "quantize_scope"]

_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
_REGISTRY = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
# Activations tfmot's own Activation config handles (tf_keras names silu "swish").
_TFMOT_ACTIVATIONS = ("relu", "swish", *ACTIVATIONS_WITH_FIXED_RANGE)


def quantize_scope():
    """tfmot's ``quantize_scope`` with our configs and twin layers (needed to load a saved QAT model)."""
    return tfmot.quantization.keras.quantize_scope(custom_objects())


def _activation_name(layer):
    return getattr(layer.activation, "__name__", str(layer.activation))


def _is_relu(layer):
    if isinstance(layer, tf_keras.layers.ReLU):
        return layer.negative_slope == 0 and layer.threshold == 0 and layer.max_value in (None, 6.0)
    return isinstance(layer, tf_keras.layers.Activation) and _activation_name(layer) in ("relu", "relu6")


def _custom_entry(layer):
    """The custom-layer table entry whose twin ``layer`` is, or ``None``."""
    for entry in CUSTOM_LAYERS:
        if isinstance(layer, entry.twin_class()):
            return entry
    return None


def _fuses_following_relu(layer):
    """Whether the converter fuses a ReLU that consumes ``layer`` into it: ``Multiply`` (MUL) and the
    custom layers whose entry says so (ChannelPadAdd's ADD)."""
    if isinstance(layer, tf_keras.layers.Multiply):
        return True
    entry = _custom_entry(layer)
    return entry is not None and entry.fuses_following_relu


def _feeds_only_a_relu(layer):
    """Whether ``layer``'s output goes to nothing but one ReLU / ReLU6 layer.

    The converter fuses such a ReLU into the int8 MUL / ADD before it, which then writes its
    output straight in the ReLU's range: the element-wise op's own output is never rounded.
    """
    consumers = [node.outbound_layer for node in layer._outbound_nodes]
    return len(consumers) == 1 and _is_relu(consumers[0])


def _is_standalone_batchnorm(layer):
    """A BatchNormalization that tfmot cannot fold: its input is no convolution's only output."""
    if not isinstance(layer, tf_keras.layers.BatchNormalization):
        return False
    producers = [node.inbound_layers for node in layer._inbound_nodes]
    if len(producers) != 1 or isinstance(producers[0], list):
        return True
    producer = producers[0]
    foldable = (tf_keras.layers.Conv2D, tf_keras.layers.DepthwiseConv2D, tf_keras.layers.Dense)
    return not isinstance(producer, foldable) or len(producer._outbound_nodes) != 1


def _batchnorm_as_depthwise(layer):
    """``[kernel (1, 1, C, 1), bias (C,)]``: a BN layer's inference-mode affine map ``x * scale + shift``."""
    mean, variance = (np.asarray(w) for w in (layer.moving_mean, layer.moving_variance))
    gamma = np.asarray(layer.gamma) if layer.scale else np.ones_like(mean)
    beta = np.asarray(layer.beta) if layer.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(variance + layer.epsilon)
    return [scale.reshape(1, 1, -1, 1).astype(np.float32), (beta - mean * scale).astype(np.float32)]


def _twin_weights_for(annotated, twin):
    """The twin's weights in ``annotated``'s layer order, standalone BNs as depthwise affine maps; a
    layer that annotation replaced by one with more weights (a LayerNorm's
    :class:`TwinQuantizedLayerNorm`: ``gamma``, ``beta``, then its ranges) keeps its own extra ones."""
    weights = []
    for layer, clone in zip(twin.layers, annotated.layers, strict=True):
        if _is_standalone_batchnorm(layer):
            weights.extend(_batchnorm_as_depthwise(layer))
            continue
        own = layer.get_weights()
        weights.extend(own)
        weights.extend(clone.get_weights()[len(own) :])
    return weights


def _is_plain_layer_norm(layer):
    """A tf_keras LayerNormalization over the last axis, with ``gamma`` and ``beta``."""
    if not isinstance(layer, tf_keras.layers.LayerNormalization) or not (layer.center and layer.scale):
        return False
    axis = list(layer.axis) if isinstance(layer.axis, list | tuple) else [layer.axis]
    return axis in ([-1], [len(layer.input_shape) - 1])


def _make_annotate(twin):
    """The ``clone_model`` function that annotates each twin layer, with our config where tfmot has none."""
    # Element-wise ops whose ReLU the converter fuses: quantizing their output too would round
    # twice where the INT8 file rounds once (measured: 1 step off on ~23 % of ReXNet's SE
    # outputs, the main cause of QAT-vs-TFLite disagreement).
    fused_into_relu = {
        layer.name for layer in twin.layers if _fuses_following_relu(layer) and _feeds_only_a_relu(layer)
    }
    standalone_bn = {layer.name for layer in twin.layers if _is_standalone_batchnorm(layer)}

    def annotate(layer):
        if layer.name in fused_into_relu:
            return _annotate_layer(layer, NoOpQuantizeConfig())
        if layer.name in standalone_bn:
            # A BN of a block's input (RepVGG's identity branch, ParNet's SSE and fusion inputs) has no
            # convolution to fold into; as FusedBatchNorm it would stay float in the INT8 file. Its
            # inference-mode affine map is a 1x1 depthwise convolution with bias, which tfmot
            # quantizes per channel and TFLite runs as one int8 DEPTHWISE_CONV_2D.
            return _annotate_layer(
                tf_keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=layer.trainable, name=layer.name)
            )
        return _annotate(layer)

    return annotate


def _annotate(layer):
    """Annotates one twin layer for quantization, with our config where tfmot has none."""
    if isinstance(layer, tf_keras.layers.InputLayer):
        return layer
    if isinstance(layer, (tf_keras.layers.Multiply, tf_keras.layers.Rescaling, tf_keras.layers.Dot)):
        # Rescaling: ParNet's doubled SE gate, MobileNetV4's attention scale (a MUL by a constant in TFLite).
        # Dot: the attention products (one int8 BATCH_MATMUL each), their outputs with learned ranges.
        return _annotate_layer(layer, OutputQuantizeConfig())
    if isinstance(layer, tf_keras.layers.Softmax):
        # Attention weights inside the graph: TFLite's int8 SOFTMAX writes the fixed [0, 255/256] grid of
        # LOGISTIC; simulated in QAT so that the next BATCH_MATMUL reads what the INT8 file computes.
        return _annotate_layer(layer, LogisticOutputQuantizeConfig())
    if isinstance(layer, tf_keras.layers.AveragePooling2D):
        # TFLite's int8 AVERAGE_POOL_2D keeps its input's scale (the converter refuses another), so its
        # output gets no quantizer of its own (tfmot's default adds one): DenseNet's transitions.
        return _annotate_layer(layer, NoOpQuantizeConfig())
    if _is_plain_layer_norm(layer):
        # TFLite has no LayerNorm op: the primitive ops it lowers to, each with its own int8 range.
        quantized = TwinQuantizedLayerNorm(epsilon=layer.epsilon, name=layer.name, trainable=layer.trainable)
        return _annotate_layer(quantized, LayerNormQuantizeConfig())
    if isinstance(layer, TwinHardSwish):  # one int8 HARD_SWISH: only its output is rounded
        return _annotate_layer(layer, OutputQuantizeConfig())
    if isinstance(layer, TwinHardSigmoid):
        quantized = TwinQuantizedHardSigmoid(name=layer.name, trainable=layer.trainable)
        return _annotate_layer(quantized, HardSigmoidOutputQuantizeConfig())
    entry = _custom_entry(layer)
    if entry is not None:
        return _annotate_layer(layer, entry.quantize_config_class()())
    if isinstance(layer, tf_keras.layers.Activation):
        name = _activation_name(layer)
        if name == "sigmoid":
            return _annotate_layer(layer, LogisticOutputQuantizeConfig())
        if name == "swish":  # tf_keras's name for SiLU
            return _annotate_layer(TwinQuantizedSiLU(name=layer.name), OutputQuantizeConfig())
        if name in _TFMOT_ACTIVATIONS:
            return _annotate_layer(layer)
        return _annotate_layer(layer, OutputQuantizeConfig())
    # BatchNormalization has no config of its own: tfmot's transforms fold it into the
    # convolution before it (a BN elsewhere fails in quantize_apply, reported below).
    if not isinstance(layer, tf_keras.layers.BatchNormalization) and not _REGISTRY.supports(layer):
        raise UnsupportedLayerError(
            f"layer {layer.name!r} ({type(layer).__name__}) is not supported by quantization-aware training: "
            "tensorflow-model-optimization has no 8-bit config for it and keras_lightnets supplies configs only "
            f"for Multiply, Rescaling, Dot, Softmax, Activation and {', '.join(known.name for known in CUSTOM_LAYERS)}"
        )
    return _annotate_layer(layer)


def _refuse_training_form(model):
    """A RepVGG / ParNet in its training form is refused: the deploy form is what ships."""
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        return
    blocks = fusable_blocks(model)
    if blocks:
        first = blocks[0]
        raise ValueError(
            f"model {model.name!r} is in its training form ({len(blocks)} reparameterizable blocks, the first "
            f"{first!r}): quantization-aware training fine-tunes the model that ships, the fused one. Call "
            "`keras_lightnets.reparameterize(model)` first (`lightnets export` does it for you)."
        )


def _refuse_float_only_layers(model):
    """A layer TFLite runs in float only (local response normalization) can never be in the INT8 file
    that quantization-aware training is for: refused before any work."""
    found = float_only_layers(model)
    if found:
        raise UnsupportedLayerError(
            f"model {model.name!r} cannot become a fully integer INT8 model, which quantization-aware training "
            f"prepares: {float_only_message(found)}. Export it with export_tflite(model, path, "
            "quantization='dynamic') (int8 weights, float activations), 'float16' or None instead"
        )


def is_quantize_aware(model):
    """Whether ``model`` is a tf_keras model made by :func:`quantize_aware` (it holds fake-quant wrappers)."""
    return isinstance(model, tf_keras.Model) and any(
        isinstance(layer, tfmot.quantization.keras.QuantizeWrapper)  # QuantizeWrapperV2 derives from it
        for layer in model.layers
    )


def quantize_aware(model):
    """A trainable quantization-aware (fake-quantized INT8) tf_keras model of the Keras 3 ``model``.

    The result has ``model``'s weights and layer names (wrapped as ``quant_<name>``), and
    trains with :func:`~keras_lightnets.deploy.fit_quantize_aware` (or any tf_keras
    ``compile``/``fit``). Convert it with ``export_tflite(qat_model, path,
    quantization="int8")``: the ranges learned in training replace representative data.

    Raises:
        TypeError: ``model`` is not a Keras 3 functional model.
        ValueError: ``model`` is a RepVGG / ParNet in its training form (fuse it with
            :func:`keras_lightnets.reparameterize` first).
        UnsupportedLayerError: a layer has no tf_keras twin or no 8-bit config, or TFLite runs it in
            float only (local response normalization): its name is in the message, before any
            quantization work.
    """
    if is_quantize_aware(model):
        raise ValueError(
            f"`model` {model.name!r} is already quantize-aware: train it with fit_quantize_aware or export it with "
            "export_tflite(model, path, quantization='int8')"
        )
    if isinstance(model, keras.Sequential):
        raise TypeError(
            f"`model` {model.name!r} is a keras.Sequential; quantize_aware takes a functional model: pass "
            "keras.Model(model.inputs, model.outputs) (every registered model is functional already)"
        )
    if isinstance(model, keras.Model):
        model = without_auxiliary_outputs(model)  # GoogLeNet's auxiliary classifiers are for training only
    _refuse_float_only_layers(model)
    _refuse_training_form(model)
    twin = to_tf_keras(model)
    annotated = tf_keras.models.clone_model(twin, clone_function=_make_annotate(twin))
    # clone_model re-creates layers: the weights come back from the twin by layer order.
    annotated.set_weights(_twin_weights_for(annotated, twin))
    with quantize_scope():
        try:
            qat_model = tfmot.quantization.keras.quantize_apply(annotated)
        except (ValueError, RuntimeError) as error:
            raise UnsupportedLayerError(f"quantization-aware training cannot handle this model: {error}") from error
    return _keep_frozen_layers_frozen(qat_model)


def _keep_frozen_layers_frozen(qat_model):
    """``qat_model`` with each of tfmot's wrappers made a :class:`FrozenAwareQuantizeWrapper`.

    tfmot's ``quantize_apply`` builds its own ``QuantizeWrapperV2`` and takes no wrapper class;
    changing the class of the built wrappers keeps their variables as they are (a clone would
    build them again). The subclass only redefines which weights are trainable, and saves under
    its own name, so a reloaded QAT model keeps its frozen layers frozen too.
    """
    for layer in qat_model.layers:
        if type(layer) is tfmot.quantization.keras.QuantizeWrapperV2:
            layer.__class__ = FrozenAwareQuantizeWrapper
    return qat_model


def is_tf_keras_model(model):
    """Whether ``model`` is a tf_keras (Keras 2) model, such as the twin or a QAT model."""
    return isinstance(model, tf_keras.Model)
