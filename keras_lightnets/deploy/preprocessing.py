"""Per-channel input normalization moved inside the model, for on-device use.

Our models take ``(pixel / 255 - mean) / std`` with per-channel ImageNet statistics.
MediaPipe Tasks (the Android API) normalizes inputs itself from the file's metadata but
accepts only one mean and one std for all channels ("Per-channel image normalization is not
available"). So the deployed model takes ``pixel / 255`` (metadata: mean 0, std 255) and
starts with a frozen 1x1 ``DepthwiseConv2D`` named ``input_normalization`` whose kernel is
``1 / std`` and bias ``-mean / std`` per channel: the same numbers as the normalization.

Why a depthwise convolution rather than ``Rescaling``: tfmot quantizes it like any
convolution (per-channel int8 weights -- one weight per channel, so ``1 / std`` is stored
exactly -- and an int32 bias), while a ``Rescaling`` layer's MUL/ADD with constant vectors
stays float in the converted QAT model.
"""

import copy

import keras
import numpy as np

from keras_lightnets.models.describe import has_input_normalization
from keras_lightnets.models.scaffold import INPUT_NORMALIZATION_LAYER
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


def with_input_normalization(model, mean, std, *, probabilities=True):
    """A flat copy of the Keras 3 ``model`` that takes ``pixel / 255`` and normalizes it inside.

    ``mean`` and ``std`` are the model's normalization in ``[0, 1]`` units (the registry's
    ``preprocessing.mean``/``std``). The copy has the same layers, names and weights, plus a
    first frozen normalization layer; its output for ``x`` equals ``model((x - mean) / std)``.
    With ``probabilities`` a model that outputs logits (as ``fit`` trains them) gets a final
    ``Softmax`` layer named ``probabilities``, so apps read class probabilities as scores.
    """
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

    config = copy.deepcopy(model.get_config())
    input_spec = config["input_layers"]
    input_name = input_spec[0] if isinstance(input_spec[0], str) else input_spec[0][0]
    input_index = next(i for i, layer in enumerate(config["layers"]) if layer["name"] == input_name)

    def rewire(structure):
        if isinstance(structure, dict):
            history = (
                structure.get("config", {}).get("keras_history")
                if structure.get("class_name") == "__keras_tensor__"
                else None
            )
            if history and history[0] == input_name:
                structure["config"]["keras_history"] = [INPUT_NORMALIZATION_LAYER, 0, 0]
            for value in structure.values():
                rewire(value)
        elif isinstance(structure, list | tuple):
            for value in structure:
                rewire(value)

    for layer in config["layers"]:
        rewire(layer["inbound_nodes"])
    normalization = keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=False, name=INPUT_NORMALIZATION_LAYER)
    shape = list(model.input_shape)
    config["layers"].insert(
        input_index + 1,
        {
            "module": "keras.layers",
            "class_name": "DepthwiseConv2D",
            "config": normalization.get_config(),
            "registered_name": None,
            "name": INPUT_NORMALIZATION_LAYER,
            "inbound_nodes": [
                {
                    "args": [
                        {
                            "class_name": "__keras_tensor__",
                            "config": {"shape": shape, "dtype": "float32", "keras_history": [input_name, 0, 0]},
                        }
                    ],
                    "kwargs": {},
                }
            ],
        },
    )
    if probabilities and not _outputs_probabilities(model):
        output_spec = config["output_layers"]
        output_name = output_spec[0] if isinstance(output_spec[0], str) else output_spec[0][0]
        config["layers"].append(
            {
                "module": "keras.layers",
                "class_name": "Softmax",
                "config": keras.layers.Softmax(name="probabilities").get_config(),
                "registered_name": None,
                "name": "probabilities",
                "inbound_nodes": [
                    {
                        "args": [
                            {
                                "class_name": "__keras_tensor__",
                                "config": {
                                    "shape": list(model.output_shape),
                                    "dtype": "float32",
                                    "keras_history": [output_name, 0, 0],
                                },
                            }
                        ],
                        "kwargs": {},
                    }
                ],
            }
        )
        config["output_layers"] = ["probabilities", 0, 0]
    wrapped = keras.Model.from_config(config)
    wrapped.get_layer(INPUT_NORMALIZATION_LAYER).set_weights(
        [
            np.array([1.0 / s for s in std], dtype=np.float32).reshape(1, 1, channels, 1),
            np.array([-m / s for m, s in zip(mean, std, strict=True)], dtype=np.float32),
        ]
    )
    for layer in model.layers:
        if layer.weights:
            wrapped.get_layer(layer.name).set_weights(layer.get_weights())
    return wrapped
