"""Complexity of a built model, read from its graph: params, MACs, activations, depth."""

import math
from dataclasses import asdict, dataclass

import keras

from keras_lightnets.layers.custom_layers import find_custom_layer

__all__ = ["Profile", "profile"]

_CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


@dataclass(frozen=True)
class Profile:
    """``params``: trainable parameters (what PyTorch counts; BN statistics excluded).
    ``macs``: multiply-accumulates of conv and dense layers for one image, plus each custom
    layer's by the rule of its entry in :data:`keras_lightnets.layers.custom_layers.CUSTOM_LAYERS`.
    ``activations``: sum of conv output sizes for one image (RegNet paper).
    ``depth``: conv/dense layers on the longest input-to-output path (ParNet paper).
    """

    params: int
    macs: int
    activations: int
    depth: int

    def as_dict(self):
        return asdict(self)


def _per_sample(shape):
    return math.prod(shape[1:])


def _check_static(layer):
    output_shape = layer.output.shape
    if any(dim is None for dim in output_shape[1:]):
        raise ValueError(
            f"profile() needs static shapes; layer {layer.name!r} has output shape {output_shape}. "
            "Build the model with a fixed input_shape such as (224, 224, 3)."
        )


def _layer_macs(layer):
    _check_static(layer)
    output_shape = layer.output.shape
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _per_sample(output_shape) * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        in_channels = layer.input.shape[-1]
        return _per_sample(output_shape) * kh * kw * in_channels // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return _per_sample(output_shape) * layer.input.shape[-1]
    return 0


def _inbound_layers(layer):
    for node in layer._inbound_nodes:
        for tensor in node.input_tensors:
            yield tensor._keras_history.operation


def profile(model):
    """Returns the :class:`Profile` of a built Keras model (batch size excluded)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"profile() takes a keras.Model, got {type(model).__name__}")
    params = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    macs = activations = 0
    depth_at = {}
    for layer in model.layers:  # topological order
        counts = isinstance(layer, (*_CONV_TYPES, keras.layers.Dense))
        if counts:
            macs += _layer_macs(layer)
        elif (entry := find_custom_layer(layer)) is not None:
            _check_static(layer)
            macs += entry.macs(layer)
        if isinstance(layer, _CONV_TYPES):
            activations += _per_sample(layer.output.shape)
        parents = [depth_at.get(id(parent), 0) for parent in _inbound_layers(layer)]
        depth_at[id(layer)] = max(parents, default=0) + int(counts)
    return Profile(int(params), int(macs), int(activations), max(depth_at.values(), default=0))
