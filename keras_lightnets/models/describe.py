"""What a built model says about itself: its family, variant, architecture and preprocessing.

Training and deployment code asks these functions, never ``model.name`` (users rename
models). They read the :class:`~keras_lightnets.layers.ModelCard` in the graph (which also records
whether the model normalizes its input itself), and work on Keras 3 models, their tf_keras twins
and QAT models alike.
"""

import dataclasses

import keras

from keras_lightnets.layers.model_card import find_model_card, recorded_preprocessing

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
    """Whether ``model`` normalizes its pixels itself (its card says so)."""
    preprocessing = recorded_preprocessing(model)
    return bool(preprocessing is not None and preprocessing.in_graph)


def input_pixel_max(model):
    """The brightest pixel value a model that normalizes inside takes: 1.0 (``pixel / 255``, the
    deploy wrapper and most families) or 255.0 (raw pixels: EfficientNet built with
    ``include_preprocessing=True``); ``None`` for a model that does not normalize inside."""
    preprocessing = recorded_preprocessing(model)
    return float(preprocessing.pixel_max) if preprocessing is not None and preprocessing.in_graph else None


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
    """The :class:`Preprocessing` that feeds ``model`` from outside, or ``None`` when it records
    none: a model that normalizes inside takes ``pixel / 255`` (mean 0 and std 1) or raw pixels
    (mean 0 and std 1/255). Kept from 0.1.0; :func:`keras_lightnets.preprocessing.resolve_preprocessing`
    gives the card's own record (with ``in_graph``)."""
    preprocessing = recorded_preprocessing(model)
    if preprocessing is None:
        return None
    mean, std = preprocessing.fed()
    return dataclasses.replace(preprocessing, mean=mean, std=std, in_graph=False)


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
