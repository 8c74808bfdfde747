"""The tf_keras twin of a Keras 3 model: same graph, same layer names, same weights.

tensorflow-model-optimization (tfmot) quantizes only tf_keras (Keras 2) models. Rather
than asking model code to know about tf_keras, the twin is rebuilt here from the Keras 3
model's own config, layer by layer:

- each layer's config is cleaned of what tf_keras does not know (Keras 3 dtype policies,
  initializers — the weights are copied anyway —, ``quantization_config``, LoRA fields,
  ...) by keeping only the arguments the tf_keras class accepts;
- each layer keeps its ``trainable`` flag, so what transfer learning froze stays frozen in
  quantization-aware training; the in-graph ``input_normalization`` is always frozen;
- the graph is re-wired from the config's ``inbound_nodes``;
- our custom layers map to their tf_keras twins (:mod:`.twin_layers`) through the table
  :data:`keras_lightnets.layers.custom_layers.CUSTOM_LAYERS`;
- ``Activation`` layers whose Keras 3 activation tf_keras lacks or defines otherwise
  (``hard_swish``; ``hard_sigmoid``, which tf_keras computes as ``clip(0.2 x + 0.5, 0, 1)``) map to
  twin layers with Keras 3's math;
- weights are copied layer by layer, with shapes checked.

A layer class with no tf_keras counterpart raises :class:`UnsupportedLayerError` naming the
layer, before anything is built.
"""

import inspect

import numpy as np
import tf_keras

from keras_lightnets.deploy import twin_layers
from keras_lightnets.layers.custom_layers import CUSTOM_LAYERS, custom_layer
from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER

__all__ = ["UnsupportedLayerError", "to_tf_keras"]

# Arguments every tf_keras layer takes through ``**kwargs`` (base ``Layer.__init__``).
_BASE_LAYER_ARGS = {"name", "trainable", "dtype"}
# Config keys never carried over: initializers only matter for fresh weights (ours are
# copied), Keras 3-only features have no tf_keras meaning.
_DROPPED_SUFFIXES = ("_initializer",)


class UnsupportedLayerError(ValueError):
    """A layer that the tf_keras twin or quantization-aware training cannot handle."""


def _tf_keras_class(class_name, layer_name):
    entry = custom_layer(class_name)
    if entry is not None:
        return entry.twin_class()
    cls = getattr(tf_keras.layers, class_name, None)
    if cls is None or not isinstance(cls, type):
        raise UnsupportedLayerError(
            f"layer {layer_name!r} ({class_name}) has no tf_keras counterpart, so it cannot be quantized "
            f"with tensorflow-model-optimization; supported: standard Keras layers and "
            f"{', '.join(sorted(entry.name for entry in CUSTOM_LAYERS))}"
        )
    return cls


# Keras 3 activations that tf_keras lacks or defines otherwise (its ``hard_sigmoid`` is
# ``clip(0.2 x + 0.5, 0, 1)``): an ``Activation`` layer with one becomes the named twin layer.
_ACTIVATION_TWINS = {
    "hard_sigmoid": "TwinHardSigmoid",
    "hard_silu": "TwinHardSwish",
    "hard_swish": "TwinHardSwish",
}


def _activation_twin(class_name, config):
    """The twin class of a Keras 3 ``Activation`` whose activation tf_keras lacks or defines otherwise, or None."""
    if class_name != "Activation" or not isinstance(config.get("activation"), str):
        return None
    twin = _ACTIVATION_TWINS.get(config["activation"])
    return None if twin is None else getattr(twin_layers, twin)


def _accepted_arguments(cls):
    accepted = set(_BASE_LAYER_ARGS)
    for klass in cls.__mro__:
        if klass is tf_keras.layers.Layer:
            break
        accepted |= set(inspect.signature(klass.__init__).parameters)
    return accepted - {"self", "kwargs", "args"}


def _convert_value(key, value, layer_name):
    if key == "dtype":
        # Keras 3 stores a DTypePolicy dict; tf_keras wants the policy's name.
        return value["config"]["name"] if isinstance(value, dict) else value
    if isinstance(value, dict) and "class_name" in value and key.endswith(("_regularizer", "_constraint")):
        getter = tf_keras.regularizers.get if key.endswith("_regularizer") else tf_keras.constraints.get
        try:
            return getter({"class_name": value["class_name"], "config": value["config"]})
        except (ValueError, TypeError) as error:
            raise UnsupportedLayerError(f"layer {layer_name!r}: cannot translate {key}={value!r}: {error}") from None
    return value


def _tf_keras_config(cls, config, layer_name):
    accepted = _accepted_arguments(cls)
    return {
        key: _convert_value(key, value, layer_name)
        for key, value in config.items()
        if key in accepted and not key.endswith(_DROPPED_SUFFIXES)
    }


def _twin_layer_config(cls, config, layer_name):
    """The tf_keras ``cls``'s arguments for the Keras 3 layer ``config``, with its ``trainable`` flag.

    The flag is what a frozen layer (transfer learning's body) keeps frozen through quantization-aware
    training. The in-graph input normalization is frozen whatever its flag says: its values come
    from the model card, never from training.
    """
    arguments = _tf_keras_config(cls, config, layer_name)
    arguments["trainable"] = bool(config.get("trainable", True)) and layer_name != INPUT_NORMALIZATION_LAYER
    return arguments


def _resolve(structure, tensors):
    """Replaces serialized Keras 3 tensors in ``structure`` by the twin's tensors."""
    if isinstance(structure, dict) and structure.get("class_name") == "__keras_tensor__":
        layer_name, node_index, tensor_index = structure["config"]["keras_history"]
        return tensors[(layer_name, node_index, tensor_index)]
    if isinstance(structure, dict):
        return {key: _resolve(value, tensors) for key, value in structure.items()}
    if isinstance(structure, list | tuple):
        return [_resolve(value, tensors) for value in structure]
    return structure


def _call_ready_nodes(pending, tensors):
    """Makes every pending call whose inputs exist (repeatedly: one call's outputs can complete
    another's inputs) and returns those still waiting. A layer shared by several calls (PolyNet's
    convolutions, once per order) is listed once in the config, where its first call is; its later
    calls wait for inputs that layers further down the list compute."""
    progress = True
    while pending and progress:
        progress, waiting = False, []
        for layer, name, node_index, node in pending:
            try:
                args = _resolve(node["args"], tensors)
                kwargs = {key: value for key, value in _resolve(node["kwargs"], tensors).items() if value is not None}
            except KeyError:
                waiting.append((layer, name, node_index, node))
                continue
            outputs = layer(*args, **kwargs)
            for tensor_index, output in enumerate(outputs if isinstance(outputs, list | tuple) else [outputs]):
                tensors[(name, node_index, tensor_index)] = output
            progress = True
        pending = waiting
    return pending


def _check_supported(model):
    if not hasattr(model, "get_config") or not isinstance(getattr(model, "layers", None), list):
        raise TypeError(f"model must be a Keras 3 functional model, got {type(model).__name__}")
    for layer in model.layers:
        class_name = type(layer).__name__
        if class_name in ("Functional", "Sequential", "Model"):
            raise UnsupportedLayerError(
                f"layer {layer.name!r} is a nested model ({class_name}); flatten it first "
                "(keras_lightnets models are single flat graphs)"
            )
        if class_name in ("Lambda", "TFOpLambda"):
            raise UnsupportedLayerError(
                f"layer {layer.name!r} is a {class_name}: its Python code cannot be carried to tf_keras or "
                "quantized; write it as a registered custom layer or with standard Keras layers"
            )
        if class_name != "InputLayer":
            _tf_keras_class(class_name, layer.name)


def to_tf_keras(model):
    """The tf_keras twin of the Keras 3 functional ``model`` with its weights copied.

    Same layer names and graph; in float32 its outputs equal ``model``'s (the test suite
    checks every registered family to 1e-5). Raises :class:`UnsupportedLayerError` for a
    layer with no tf_keras counterpart (a ``Lambda``, a nested model, a foreign custom layer).
    """
    _check_supported(model)
    config = model.get_config()
    tensors = {}
    twin_layers = {}
    pending = []  # (twin layer, name, node index, node): calls whose inputs are not built yet
    for layer_config in config["layers"]:
        class_name, name = layer_config["class_name"], layer_config["name"]
        layer_args = layer_config["config"]
        if class_name == "InputLayer":
            dtype = _convert_value("dtype", layer_args.get("dtype", "float32"), name)
            tensors[(name, 0, 0)] = tf_keras.Input(batch_shape=layer_args["batch_shape"], dtype=dtype, name=name)
            continue
        cls = _activation_twin(class_name, layer_args) or _tf_keras_class(class_name, name)
        layer = cls(**_twin_layer_config(cls, layer_args, name))
        twin_layers[name] = layer
        pending += [(layer, name, index, node) for index, node in enumerate(layer_config["inbound_nodes"])]
        pending = _call_ready_nodes(pending, tensors)
    if pending:
        waiting = ", ".join(sorted({name for _, name, _, _ in pending}))
        raise UnsupportedLayerError(f"cannot rebuild the graph: the inputs of {waiting} are never computed")

    def pick(specs):
        # One input/output is stored as ["name", 0, 0], several as a list of those.
        if specs and isinstance(specs[0], str):
            specs = [specs]
        return [tensors[tuple(spec)] for spec in specs]

    inputs, outputs = pick(config["input_layers"]), pick(config["output_layers"])
    twin = tf_keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=model.name,
    )
    _copy_weights(model, twin_layers)
    return twin


def _copy_weights(model, twin_layers):
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        twin = twin_layers[layer.name]
        expected = [w.shape for w in twin.get_weights()]
        actual = [w.shape for w in weights]
        if expected != actual:
            raise UnsupportedLayerError(
                f"layer {layer.name!r}: weight shapes differ between Keras 3 {actual} and tf_keras {expected}"
            )
        twin.set_weights([np.asarray(w) for w in weights])
