"""What a built model says about itself: its family, variant, architecture and preprocessing.

Training and deployment code asks these functions, never ``model.name`` (users rename
models). They read the :class:`~keras_lightnets.layers.ModelCard` in the graph and whether
the graph starts with an in-graph normalization (``include_preprocessing=True`` or the
deploy wrapper), and work on Keras 3 models, their tf_keras twins and QAT models alike.
"""

import dataclasses

import keras

from keras_lightnets.layers.model_card import find_model_card
from keras_lightnets.models.scaffold import INPUT_NORMALIZATION_LAYER
from keras_lightnets.models.variant import Preprocessing

__all__ = [
    "AUXILIARY_PREFIX",
    "auxiliary_outputs",
    "has_input_normalization",
    "input_pixel_max",
    "model_family",
    "model_identity",
    "model_preprocessing",
    "without_auxiliary_outputs",
]

# The layers that end auxiliary classifiers are named ``aux1_predictions``, ``aux2_...`` (GoogLeNet).
AUXILIARY_PREFIX = "aux"


def has_input_normalization(model):
    """Whether ``model`` normalizes its pixels itself through an ``input_normalization`` layer."""
    names = {getattr(layer, "layer", layer).name for layer in model.layers} | {layer.name for layer in model.layers}
    return INPUT_NORMALIZATION_LAYER in names or f"quant_{INPUT_NORMALIZATION_LAYER}" in names


def input_pixel_max(model):
    """The brightest pixel value a model that normalizes inside takes: 1.0 (``pixel / 255``, the
    deploy wrapper and most families) or 255.0 (raw pixels: EfficientNet built with
    ``include_preprocessing=True``); ``None`` for a model that does not normalize inside."""
    if not has_input_normalization(model):
        return None
    card = find_model_card(model)
    return float(getattr(card, "pixel_max", None) or 1.0)


def model_family(model):
    """The family name recorded in ``model`` (``"rexnet"``), or ``None`` for a foreign model."""
    card = find_model_card(model)
    return None if card is None else card.family


def model_identity(model):
    """``{"family", "variant", "architecture"}`` as recorded in ``model`` (all ``None`` for a foreign model)."""
    card = find_model_card(model)
    if card is None:
        return {"family": None, "variant": None, "architecture": None}
    return {"family": card.family, "variant": card.variant, "architecture": card.architecture}


def model_preprocessing(model):
    """The :class:`Preprocessing` that feeds ``model``, or ``None`` when it records none.

    A model that normalizes inside takes ``pixel / 255`` (mean 0 and std 1) or raw pixels
    (mean 0 and std 1/255), with the recorded resize settings.
    """
    card = find_model_card(model)
    preprocessing = None
    if card is not None and card.mean is not None:
        preprocessing = Preprocessing(
            input_size=tuple(card.input_size or Preprocessing.input_size),
            mean=card.mean,
            std=card.std,
            crop_pct=card.crop_pct if card.crop_pct is not None else Preprocessing.crop_pct,
            interpolation=card.interpolation or Preprocessing.interpolation,
        )
    if has_input_normalization(model):
        channels = model.input_shape[-1]
        preprocessing = dataclasses.replace(
            preprocessing or Preprocessing(), mean=(0.0,) * channels, std=(1.0 / input_pixel_max(model),) * channels
        )
    return preprocessing


def auxiliary_outputs(model):
    """The names of ``model``'s auxiliary classifier outputs (GoogLeNet built with ``aux_logits=True``:
    ``["aux1_predictions", "aux2_predictions"]``): outputs after the first whose layer is named
    ``aux...``. Empty for every other model."""
    names = list(getattr(model, "output_names", None) or [])
    return [name for name in names[1:] if name.startswith(AUXILIARY_PREFIX)]


def without_auxiliary_outputs(model):
    """``model`` without its auxiliary classifiers (the main output only, every layer shared), or
    ``model`` itself when it has none: what inference, evaluation and export use."""
    if not auxiliary_outputs(model):
        return model
    return keras.Model(model.input, model.outputs[0], name=model.name)
