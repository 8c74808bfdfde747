"""Every custom Keras layer of keras_lightnets, with what the rest of the package must know about it.

Adding a custom layer means adding one :class:`CustomLayer` here (and its tf_keras twin in
:mod:`keras_lightnets.deploy.twin_layers`). The twin builder, quantization-aware training,
``custom_objects`` for tfmot, ``profile()`` and the tests read this table; none keeps its own
list. Twins and QuantizeConfigs are named by import string and imported only when deploy code
asks for them, so model code never imports tf_keras or tensorflow-model-optimization.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import keras

from keras_lightnets.layers.channel_pad_add import ChannelPadAdd, PartialResidualAdd
from keras_lightnets.layers.channel_shuffle import ChannelShuffle
from keras_lightnets.layers.interp import AlignedBilinearResize
from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.layers.lrn import LocalResponseNormalization
from keras_lightnets.layers.model_card import ModelCard
from keras_lightnets.layers.nearest_resize import NearestResize
from keras_lightnets.layers.padding import SamePadding2D
from keras_lightnets.layers.pooling import CeilMaxPool2D
from keras_lightnets.layers.stochastic_depth import StochasticDepth

__all__ = [
    "CUSTOM_LAYERS",
    "CustomLayer",
    "custom_layer",
    "find_custom_layer",
    "float_only_layers",
    "float_only_message",
    "keras_classes",
    "resolve",
]

_TWINS = "keras_lightnets.deploy.twin_layers"
_CONFIGS = "keras_lightnets.deploy.quantize_configs"


def resolve(import_string):
    """``"package.module:Name"`` -> the object (imports the module)."""
    module, _, attribute = import_string.partition(":")
    if not module or not attribute:
        raise ValueError(f"import string must look like 'package.module:Name', got {import_string!r}")
    return getattr(importlib.import_module(module), attribute)


def no_macs(layer):
    """The MAC rule of a layer that multiplies nothing (element-wise, pooling, identity)."""
    return 0


@dataclass(frozen=True)
class CustomLayer:
    """What the package knows about one custom Keras 3 layer.

    Args:
        keras_class: the Keras 3 layer (``keras.ops`` only, registered serializable).
        twin: import string of its tf_keras twin (same math, same config keys), which
            :func:`~keras_lightnets.deploy.to_tf_keras` builds in its place.
        quantize_config: import string of the tfmot ``QuantizeConfig`` class that
            :func:`~keras_lightnets.deploy.quantize_aware` annotates the twin with.
        macs: ``layer -> int``, the multiply-accumulates :func:`~keras_lightnets.profile`
            counts for one image (the layer is built, its shapes are static).
        weight_port: how converted checkpoints reach the layer's weights: an import string of a
            ``(layer, arrays) -> None`` function of :mod:`keras_lightnets.weights`; ``None`` means
            the layer has no weights (the tests check it) and weight converters skip it.
        fuses_following_relu: the layer is an element-wise op (ADD) into which the TFLite
            converter fuses a ReLU / ReLU6 that is its only consumer; its output is then never
            rounded on its own, so QAT leaves it unquantized there (NoOpQuantizeConfig) and the
            ReLU's quantizer rounds once, as the INT8 file does.
        aliases: deprecated classes (subclasses registered under old names) that load old
            ``.keras`` files and are treated as ``keras_class``.
        float_only: why TFLite cannot run the layer in INT8 (no integer kernel for its ops), or
            ``None`` when it can. :func:`~keras_lightnets.deploy.export_tflite` (``"int8"``) and
            :func:`~keras_lightnets.deploy.quantize_aware` refuse a model with such a layer before
            any work, naming the layers and this reason.
    """

    keras_class: type
    twin: str
    quantize_config: str
    macs: Callable = no_macs
    weight_port: str | None = None
    fuses_following_relu: bool = False
    aliases: tuple[type, ...] = field(default=())
    float_only: str | None = None

    @property
    def name(self):
        return self.keras_class.__name__

    @property
    def class_names(self):
        """The class names a Keras 3 config may carry for this layer (``keras_class``'s, then aliases')."""
        return (self.name, *(alias.__name__ for alias in self.aliases))

    def twin_class(self):
        """The tf_keras twin class (imports tf_keras)."""
        return resolve(self.twin)

    def quantize_config_class(self):
        """The tfmot QuantizeConfig class (imports tensorflow-model-optimization)."""
        return resolve(self.quantize_config)


CUSTOM_LAYERS = (
    CustomLayer(
        keras_class=StochasticDepth,
        twin=f"{_TWINS}:TwinStochasticDepth",
        # The identity at inference: its output keeps its input's range.
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
    CustomLayer(
        keras_class=ChannelPadAdd,
        twin=f"{_TWINS}:TwinChannelPadAdd",
        # Like tfmot's Add: the output gets its own learned range.
        quantize_config=f"{_CONFIGS}:OutputQuantizeConfig",
        fuses_following_relu=True,
        aliases=(PartialResidualAdd,),
    ),
    CustomLayer(
        keras_class=CeilMaxPool2D,
        twin=f"{_TWINS}:TwinCeilMaxPool2D",
        # Max pooling keeps its input's range (TFLite's MAX_POOL_2D needs equal scales), as
        # tfmot's own MaxPooling2D config does.
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
    CustomLayer(
        keras_class=SamePadding2D,
        twin=f"{_TWINS}:TwinSamePadding2D",
        # Zero padding keeps its input's range (TFLite's PAD needs equal scales), as tfmot's own
        # ZeroPadding2D config does. Only in graphs of unknown input size (NASNet's poolings).
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
    CustomLayer(
        keras_class=ChannelShuffle,
        twin=f"{_TWINS}:TwinChannelShuffle",
        # A permutation of channels: the output keeps its input's range.
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
    CustomLayer(
        keras_class=LocalResponseNormalization,
        twin=f"{_TWINS}:TwinLocalResponseNormalization",
        # What QAT would annotate it with (element-wise, no weights: its own learned output range,
        # like tfmot's Add); quantize_aware refuses the layer first, see float_only.
        quantize_config=f"{_CONFIGS}:OutputQuantizeConfig",
        # MACs: 0 (the default), as the published AlexNet / GoogLeNet figures count only conv and FC layers.
        float_only=(
            "TFLite has no INT8 kernel for local response normalization (its LOCAL_RESPONSE_NORMALIZATION "
            "and POW ops are float only)"
        ),
    ),
    CustomLayer(
        keras_class=AlignedBilinearResize,
        twin=f"{_TWINS}:TwinAlignedBilinearResize",
        # TFLite's RESIZE_BILINEAR (align_corners=True) has an INT8 kernel that keeps its input's
        # scale and zero point, like max pooling: nothing to quantize. MACs: 0, as the published
        # figures (the Residual Attention Network's) count only conv and FC layers.
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
    CustomLayer(
        keras_class=NearestResize,
        twin=f"{_TWINS}:TwinNearestResize",
        # TFLite's RESIZE_NEAREST_NEIGHBOR copies values: its INT8 kernel keeps the input's scale and
        # zero point, nothing to quantize. MACs: 0 (GhostNetV2's DFC attention gate).
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
    CustomLayer(
        keras_class=LayerScale,
        twin=f"{_TWINS}:TwinLayerScale",
        # One MUL by a per-channel constant: gamma quantized like a weight (per tensor, symmetric),
        # the output gets its own learned range. MACs: 0, as the published ConvNeXt FLOPs count
        # only convolutions and linear layers.
        quantize_config=f"{_CONFIGS}:LayerScaleQuantizeConfig",
        weight_port="keras_lightnets.layers.layer_scale:load_layer_scale",
    ),
    CustomLayer(
        keras_class=ModelCard,
        twin=f"{_TWINS}:TwinModelCard",
        quantize_config=f"{_CONFIGS}:NoOpQuantizeConfig",
    ),
)

_BY_CLASS_NAME = {class_name: entry for entry in CUSTOM_LAYERS for class_name in entry.class_names}


def custom_layer(class_name):
    """The :class:`CustomLayer` for a Keras 3 config's ``class_name`` (aliases included), or ``None``."""
    return _BY_CLASS_NAME.get(class_name)


def find_custom_layer(layer):
    """The :class:`CustomLayer` whose class (or alias) ``layer`` is an instance of, or ``None``."""
    if not isinstance(layer, keras.layers.Layer):
        return None
    for entry in CUSTOM_LAYERS:
        if isinstance(layer, (entry.keras_class, *entry.aliases)):
            return entry
    return None


def float_only_layers(model):
    """``[(layer name, CustomLayer)]``: the layers of ``model`` that TFLite cannot run in INT8 (their
    entry's ``float_only``), found in a Keras 3 model, its tf_keras twin or a quantization-aware
    model (by the twin's class name, so this module still imports no tf_keras)."""
    twins = {entry.twin.rpartition(":")[2]: entry for entry in CUSTOM_LAYERS}
    found = []
    for layer in getattr(model, "layers", ()):
        inner = getattr(layer, "layer", layer)  # tfmot's QuantizeWrapper holds the layer it wraps
        entry = find_custom_layer(inner) or twins.get(type(inner).__name__)
        if entry is not None and entry.float_only:
            found.append((layer.name, entry))
    return found


def float_only_message(found):
    """``"lrn1, lrn2 (LocalResponseNormalization): <why>"`` for :func:`float_only_layers`' answer."""
    by_entry = {}
    for name, entry in found:
        by_entry.setdefault(entry, []).append(name)
    return "; ".join(f"{', '.join(names)} ({entry.name}): {entry.float_only}" for entry, names in by_entry.items())


def keras_classes():
    """Every custom Keras 3 layer class, aliases included."""
    return tuple(cls for entry in CUSTOM_LAYERS for cls in (entry.keras_class, *entry.aliases))
