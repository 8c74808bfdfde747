"""The in-graph input normalization: ``(x / pixel_max - mean) / std`` as a frozen depthwise 1x1
convolution named ``input_normalization``.

Why a depthwise convolution rather than ``Rescaling``: tfmot quantizes it like any convolution
(per-channel int8 weights -- one weight per channel, so ``1 / std`` is stored exactly -- and an
int32 bias), while a ``Rescaling`` layer's MUL/ADD with constant vectors stays float in the
converted QAT model. Its values come from the model card's
:class:`~keras_lightnets.layers.preprocessing.Preprocessing`, never from a checkpoint.
"""

import numpy as np
from keras import layers

__all__ = ["INPUT_NORMALIZATION_LAYER", "input_normalization", "input_normalization_weights", "set_input_normalization"]

INPUT_NORMALIZATION_LAYER = "input_normalization"


def input_normalization(x):
    """Adds the (frozen, not yet set) normalization layer after ``x``."""
    return layers.DepthwiseConv2D(1, use_bias=True, trainable=False, name=INPUT_NORMALIZATION_LAYER)(x)


def input_normalization_weights(preprocessing, channels):
    """``[kernel, bias]`` of the layer for ``preprocessing`` (mean/std recycled to ``channels``)."""
    mean = np.resize(np.asarray(preprocessing.mean, np.float32), channels)
    std = np.resize(np.asarray(preprocessing.std, np.float32), channels)
    kernel = (1.0 / (std * preprocessing.pixel_max)).reshape(1, 1, channels, 1)
    return [kernel.astype(np.float32), (-mean / std).astype(np.float32)]


def set_input_normalization(model, preprocessing):
    """Sets ``model``'s ``input_normalization`` layer from ``preprocessing``."""
    layer = model.get_layer(INPUT_NORMALIZATION_LAYER)
    layer.set_weights(input_normalization_weights(preprocessing, layer.input.shape[-1]))
