"""What a model is and what it expects, carried inside its graph.

Users rename models (``create_model("mobilenetv2_100", name="mine")``), save and reload them
and hand them to training and deployment code. Everything that code needs to know -- the
family (its training recipes), the registered variant if the model is one, the architecture
arguments it was built with and the normalization its inputs must have -- travels in the
config of one weightless layer, so it survives renaming, ``.keras`` files and graph rewiring
(``float32_outputs``, the deploy wrappers, the tf_keras twin), and nothing downstream has to
guess from ``model.name``.
"""

import dataclasses

import keras

from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER
from keras_lightnets.layers.preprocessing import Preprocessing

__all__ = ["LEGACY_PREPROCESSING_KEYS", "MODEL_CARD_LAYER", "ModelCard", "find_model_card", "recorded_preprocessing"]

MODEL_CARD_LAYER = "model_card"
# The loose fields cards of release 0.1.0 stored instead of one ``preprocessing`` entry.
LEGACY_PREPROCESSING_KEYS = ("mean", "std", "input_size", "crop_pct", "interpolation", "pixel_max")


def card_preprocessing(preprocessing, legacy):
    """The card's :class:`Preprocessing` from its ``preprocessing`` entry (a Preprocessing or its
    config), or from the loose fields of a 0.1.0 card (``legacy``). Returns ``(preprocessing,
    in_graph_known)``: a 0.1.0 card did not record whether the graph normalizes its input."""
    if isinstance(preprocessing, Preprocessing):
        return preprocessing, True
    if isinstance(preprocessing, dict):
        return Preprocessing.from_config(preprocessing), True
    if legacy.get("mean") is None:
        return None, False
    # 0.1.0 set pixel_max only when the scaffold put the normalization into the graph; the deploy
    # wrapper did not record it, so a reader must still look for the layer (find_model_card's users).
    fields = {key: legacy.get(key) for key in LEGACY_PREPROCESSING_KEYS}
    fields["in_graph"] = fields["pixel_max"] is not None
    return Preprocessing.from_config(fields), fields["in_graph"]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class ModelCard(keras.layers.Layer):
    """The identity; its config records what the model is.

    Args:
        family: the family module's name (``"rexnet"``), which selects training recipes.
        variant: the registered name when the architecture is exactly a registered variant
            (``"rexnet_100"``), else ``None``.
        architecture: the constructor and the arguments that define the architecture,
            ``{"constructor": "ReXNet", "args": {"width": 1.0, ...}}``.
        preprocessing: the :class:`~keras_lightnets.layers.preprocessing.Preprocessing` the model's
            input needs (or its config dict): mean/std, the evaluation resize and crop, the
            default input size, and ``in_graph``: whether the model's first layers apply the
            normalization themselves (``include_preprocessing=True``, the deploy wrapper).
        features: ``[[stride, layer name], ...]``: the last feature map at each stride, so the
            feature pyramid can be read out of any built model (``features_only`` uses the same).
        **kwargs: Keras layer arguments; a 0.1.0 card's loose ``mean``, ``std``, ``input_size``,
            ``crop_pct``, ``interpolation`` and ``pixel_max`` are read into ``preprocessing``.
    """

    def __init__(self, family, variant=None, architecture=None, preprocessing=None, features=None, **kwargs):
        legacy = {key: kwargs.pop(key) for key in LEGACY_PREPROCESSING_KEYS if key in kwargs}
        kwargs.setdefault("name", MODEL_CARD_LAYER)
        super().__init__(**kwargs)
        self.family = family
        self.variant = variant
        self.architecture = architecture
        self.preprocessing, self.in_graph_recorded = card_preprocessing(preprocessing, legacy)
        self.features = None if features is None else [[int(stride), str(name)] for stride, name in features]

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "family": self.family,
            "variant": self.variant,
            "architecture": self.architecture,
            "preprocessing": None if self.preprocessing is None else self.preprocessing.to_config(),
            "features": self.features,
        }


def find_model_card(model):
    """The model card of a model (Keras 3, its tf_keras twin or a QAT model), or ``None``.

    Works on any object with ``.layers``; a QAT wrapper's inner layer counts.
    """
    for layer in getattr(model, "layers", ()):
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__.endswith("ModelCard") or inner.name == MODEL_CARD_LAYER:
            if hasattr(inner, "family"):
                return inner
    return None


def _has_normalization_layer(model):
    names = {getattr(layer, "layer", layer).name for layer in getattr(model, "layers", ())}
    return INPUT_NORMALIZATION_LAYER in names or f"quant_{INPUT_NORMALIZATION_LAYER}" in names


def recorded_preprocessing(model):
    """The :class:`Preprocessing` ``model``'s card records (Keras 3, tf_keras twin or QAT model),
    or ``None``. Callers use :func:`keras_lightnets.preprocessing.resolve_preprocessing`."""
    card = find_model_card(model)
    preprocessing = getattr(card, "preprocessing", None)
    if preprocessing is not None and getattr(card, "in_graph_recorded", True):
        return preprocessing
    # A card of release 0.1.0 did not say whether a deploy wrapper had put the normalization into
    # the graph: there (only there) its layer is the record. Such a wrapper takes pixel / 255.
    if _has_normalization_layer(model):
        return dataclasses.replace(preprocessing or Preprocessing(), in_graph=True, pixel_max=1.0)
    return preprocessing
