"""Per-channel input normalization moved inside the model, for on-device use.

Our models take ``(pixel / 255 - mean) / std`` with per-channel ImageNet statistics.
MediaPipe Tasks (the Android API) normalizes inputs itself from the file's metadata but
accepts only one mean and one std for all channels ("Per-channel image normalization is not
available"). So the deployed model takes ``pixel / 255`` (metadata: mean 0, std 255) and
starts with a frozen 1x1 ``DepthwiseConv2D`` named ``input_normalization`` whose kernel is
``1 / std`` and bias ``-mean / std`` per channel: the same numbers as the normalization.

The layer is :mod:`keras_lightnets.layers.input_normalization`'s (why a depthwise convolution:
see there), and the copy's model card records it (``preprocessing.in_graph``).
"""

import copy
import dataclasses

import keras

from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER, input_normalization_weights
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.models.describe import has_input_normalization
from keras_lightnets.training.modeling import outputs_probabilities as _outputs_probabilities

__all__ = ["INPUT_NORMALIZATION_LAYER", "UNIT_RANGE_METADATA", "has_input_normalization", "with_input_normalization"]

# What the metadata of such a model says: the app feeds (pixel - 0) / 255.
UNIT_RANGE_METADATA = {"mean": (0.0,), "std": (255.0,)}


def _channel_values(name, values, channels):
    values = tuple(float(v) for v in (values if isinstance(values, list | tuple) else [values]))
    if len(values) == 1:
        values *= channels
    if len(values) != channels:
        raise ValueError(f"`{name}` needs 1 or {channels} values (the input's channels), got {len(values)}")
    return values


def _record_in_card(config, mean, std):
    """The copy's model card says what its first layer now does: it normalizes with ``mean`` /
    ``std`` and takes ``pixel / 255`` (the copy gets a card of its own; the original's is unchanged)."""
    for layer in config["layers"]:
        if layer["class_name"].endswith("ModelCard"):
            recorded = layer["config"].get("preprocessing")
            base = Preprocessing.from_config(recorded) if recorded else Preprocessing()
            updated = dataclasses.replace(base, mean=tuple(mean), std=tuple(std), in_graph=True, pixel_max=1.0)
            layer["config"]["preprocessing"] = updated.to_config()


def _layer_entry(layer, source, shape):
    """The functional-config entry of ``layer`` (a standard Keras layer) called on ``source``'s first
    output, a tensor of ``shape``."""
    tensor = {
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": "float32", "keras_history": [source, 0, 0]},
    }
    return {
        "module": "keras.layers",
        "class_name": type(layer).__name__,
        "config": layer.get_config(),
        "registered_name": None,
        "name": layer.name,
        "inbound_nodes": [{"args": [tensor], "kwargs": {}}],
    }


def _first_name(spec):
    """The layer name of a config's ``input_layers`` / ``output_layers``: ``["name", 0, 0]`` or a list of those."""
    return spec[0] if isinstance(spec[0], str) else spec[0][0]


def _rewire(structure, input_name):
    """Points every tensor of ``structure`` (a layer's ``inbound_nodes``) that is ``input_name``'s output
    at the normalization layer's output instead."""
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            history = structure.get("config", {}).get("keras_history")
            if history and history[0] == input_name:
                structure["config"]["keras_history"] = [INPUT_NORMALIZATION_LAYER, 0, 0]
        for value in structure.values():
            _rewire(value, input_name)
    elif isinstance(structure, list | tuple):
        for value in structure:
            _rewire(value, input_name)


def _insert_normalization(config, shape):
    """Inserts the frozen normalization layer right after the input of the functional ``config``."""
    input_name = _first_name(config["input_layers"])
    for layer in config["layers"]:
        _rewire(layer["inbound_nodes"], input_name)
    input_index = next(i for i, layer in enumerate(config["layers"]) if layer["name"] == input_name)
    normalization = keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=False, name=INPUT_NORMALIZATION_LAYER)
    config["layers"].insert(input_index + 1, _layer_entry(normalization, input_name, shape))


def _append_probabilities(config, shape):
    """Appends a ``Softmax`` named ``probabilities`` to the functional ``config``'s output (of ``shape``)."""
    output_name = _first_name(config["output_layers"])
    config["layers"].append(_layer_entry(keras.layers.Softmax(name="probabilities"), output_name, shape))
    config["output_layers"] = ["probabilities", 0, 0]


def _checked_statistics(model, mean, std):
    """``(mean, std)`` with one value per input channel, after checking ``model`` can take the layer."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a Keras 3 model, got {type(model).__name__}")
    if has_input_normalization(model):
        raise ValueError(f"`model` {model.name!r} already starts with an {INPUT_NORMALIZATION_LAYER!r} layer")
    if len(model.inputs) != 1 or len(model.input_shape) != 4:
        raise ValueError(f"`model` must have one image input (None, H, W, C), got {model.input_shape}")
    channels = model.input_shape[-1]
    mean, std = _channel_values("mean", mean, channels), _channel_values("std", std, channels)
    if any(s <= 0 for s in std):
        raise ValueError(f"`std` must be > 0, got {std}")
    return mean, std


def with_input_normalization(model, mean, std, *, probabilities=True):
    """A flat copy of the Keras 3 ``model`` that takes ``pixel / 255`` and normalizes it inside.

    ``mean`` and ``std`` are the model's normalization in ``[0, 1]`` units (the registry's
    ``preprocessing.mean``/``std``). The copy has the same layers, names and weights, plus a
    first frozen normalization layer; its output for ``x`` equals ``model((x - mean) / std)``.
    With ``probabilities`` a model that outputs logits (as ``fit`` trains them) gets a final
    ``Softmax`` layer named ``probabilities``, so apps read class probabilities as scores.
    """
    mean, std = _checked_statistics(model, mean, std)
    config = copy.deepcopy(model.get_config())
    _insert_normalization(config, list(model.input_shape))
    _record_in_card(config, mean, std)
    if probabilities and not _outputs_probabilities(model):
        _append_probabilities(config, list(model.output_shape))
    wrapped = keras.Model.from_config(config)
    wrapped.get_layer(INPUT_NORMALIZATION_LAYER).set_weights(
        input_normalization_weights(Preprocessing(mean=mean, std=std), model.input_shape[-1])
    )
    for layer in model.layers:
        if layer.weights:
            wrapped.get_layer(layer.name).set_weights(layer.get_weights())
    return wrapped
