"""Complexity of a built model, read from its graph: params, MACs, activations, depth."""

import math
from dataclasses import asdict, dataclass

import keras
from keras.src.models.functional import Functional  # no public name; keras.Model(...) returns one

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


def _graph_nodes(model):
    """The ids of the calls (nodes) that make ``model``'s graph, or ``None`` when it keeps no such index."""
    by_depth = getattr(model, "_nodes_by_depth", None)
    return None if by_depth is None else {id(node) for nodes in by_depth.values() for node in nodes}


def _calls(layer, nodes=None):
    """``(input shape, output shape)`` of every call of ``layer`` in the graph (``nodes``): a layer
    shared by several calls (PolyNet's convolutions, one per order of a poly-3 module) computes once
    per call."""
    return [
        (node.input_tensors[0].shape, node.output_tensors[0].shape)
        for node in layer._inbound_nodes
        if nodes is None or id(node) in nodes
    ]


def _layer_macs(layer, nodes=None):
    _check_static(layer)
    total = 0
    for input_shape, output_shape in _calls(layer, nodes):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += _per_sample(output_shape) * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            total += _per_sample(output_shape) * kh * kw * input_shape[-1] // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += _per_sample(output_shape) * input_shape[-1]
        elif isinstance(layer, keras.layers.Dot):
            # A batched matrix product (attention's scores and context): each output element sums
            # over the contracted axis of the first input.
            axis = layer.axes if isinstance(layer.axes, int) else layer.axes[0]
            total += _per_sample(output_shape) * input_shape[axis]
    return total


def _inbound_layers(layer):
    for node in layer._inbound_nodes:
        for tensor in node.input_tensors:
            yield tensor._keras_history.operation


def _check_graph(model):
    """Refuses a model without a layer graph to read, before any layer is asked for its output
    (Keras's "has never been called" AttributeError): a subclassed model (its ``call`` is Python
    code, not a graph) or a Sequential model that was never given an input shape."""
    if isinstance(model, Functional):  # keras.Model(inputs, outputs), and a built Sequential's inner graph
        return
    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is not None:  # built: it keeps a Functional graph
            return
        raise ValueError(
            f"profile() needs a built model, but the Sequential model {model.name!r} has no input shape yet: start it "
            "with keras.Input(shape=(224, 224, 3)), or call model.build((None, 224, 224, 3)) first"
        )
    raise TypeError(
        f"profile() reads the layer graph of a Functional model, but {model.name!r} is a subclassed model "
        f"({type(model).__name__}), whose call() is code and not a graph: build it with the functional API "
        "(keras.Model(inputs, outputs)), or use a registered model (keras_lightnets.create_model(name))"
    )


def profile(model):
    """Returns the :class:`Profile` of a built Keras model (batch size excluded).

    The model must be Functional (``keras.Model(inputs, outputs)``, every model of this package)
    or a Sequential model with an input shape; a subclassed model raises ``TypeError`` and an
    unbuilt Sequential one ``ValueError``, before any counting.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"profile() takes a keras.Model, got {type(model).__name__}")
    _check_graph(model)
    params = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    macs = activations = 0
    depth_at = {}
    nodes = _graph_nodes(model)
    for layer in model.layers:  # topological order
        parents = [depth_at.get(id(parent), 0) for parent in _inbound_layers(layer)]
        if isinstance(layer, keras.Model):
            # A model used as a layer (one of ours wrapped in a user's model): its own graph.
            inner = profile(layer)
            macs, activations = macs + inner.macs, activations + inner.activations
            depth_at[id(layer)] = max(parents, default=0) + inner.depth
            continue
        counts = isinstance(layer, (*_CONV_TYPES, keras.layers.Dense))
        if counts or isinstance(layer, keras.layers.Dot):
            macs += _layer_macs(layer, nodes)
        elif (entry := find_custom_layer(layer)) is not None:
            _check_static(layer)
            macs += entry.macs(layer)
        if isinstance(layer, _CONV_TYPES):
            activations += sum(_per_sample(output_shape) for _, output_shape in _calls(layer, nodes))
        depth_at[id(layer)] = max(parents, default=0) + int(counts)
    return Profile(int(params), int(macs), int(activations), max(depth_at.values(), default=0))
