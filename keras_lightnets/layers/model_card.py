"""What a model is and what it expects, carried inside its graph.

Users rename models (``create_model("mobilenetv2_100", name="mine")``), save and reload them
and hand them to training and deployment code. Everything that code needs to know -- the
family (its training recipes), the registered variant if the model is one, the architecture
arguments it was built with and the normalization its inputs must have -- travels in the
config of one weightless layer, so it survives renaming, ``.keras`` files and graph rewiring
(``float32_outputs``, the deploy wrappers, the tf_keras twin), and nothing downstream has to
guess from ``model.name``.
"""

import keras

__all__ = ["MODEL_CARD_LAYER", "ModelCard", "find_model_card"]

MODEL_CARD_LAYER = "model_card"


@keras.saving.register_keras_serializable(package="keras_lightnets")
class ModelCard(keras.layers.Layer):
    """The identity; its config records what the model is.

    Args:
        family: the family module's name (``"rexnet"``), which selects training recipes.
        variant: the registered name when the architecture is exactly a registered variant
            (``"rexnet_100"``), else ``None``.
        architecture: the constructor and the arguments that define the architecture,
            ``{"constructor": "ReXNet", "args": {"width": 1.0, ...}}``.
        mean, std: per-channel normalization of the model's input, on pixels in ``[0, 1]``
            (``(pixel / 255 - mean) / std``). A model built with ``include_preprocessing=True``
            records the normalization its first layers apply; it takes ``pixel / 255`` itself.
        input_size: the variant's default ``(height, width, channels)``.
        crop_pct, interpolation: the evaluation resize (``size / crop_pct``, then a centre crop).
        features: ``[[stride, layer name], ...]``: the last feature map at each stride, so the
            feature pyramid can be read out of any built model (``features_only`` uses the same).
        pixel_max: set when the model normalizes inside: the brightest pixel value it takes,
            1.0 (``pixel / 255``, this package's convention) or 255.0 (raw pixels, as
            keras.applications' EfficientNet takes them).
    """

    def __init__(
        self,
        family,
        variant=None,
        architecture=None,
        mean=None,
        std=None,
        input_size=None,
        crop_pct=None,
        interpolation=None,
        features=None,
        pixel_max=None,
        **kwargs,
    ):
        kwargs.setdefault("name", MODEL_CARD_LAYER)
        super().__init__(**kwargs)
        self.family = family
        self.variant = variant
        self.architecture = architecture
        self.mean = None if mean is None else tuple(float(value) for value in mean)
        self.std = None if std is None else tuple(float(value) for value in std)
        self.input_size = None if input_size is None else tuple(input_size)
        self.crop_pct = None if crop_pct is None else float(crop_pct)
        self.interpolation = interpolation
        self.features = None if features is None else [[int(stride), str(name)] for stride, name in features]
        self.pixel_max = None if pixel_max is None else float(pixel_max)

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
            "mean": self.mean,
            "std": self.std,
            "input_size": self.input_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "features": self.features,
            "pixel_max": self.pixel_max,
        }


def find_model_card(model):
    """The :class:`ModelCard` of a model (Keras 3, its tf_keras twin or a QAT model), or ``None``.

    Works on any object with ``.layers``; a QAT wrapper's inner layer counts.
    """
    for layer in getattr(model, "layers", ()):
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__.endswith("ModelCard") or inner.name == MODEL_CARD_LAYER:
            if hasattr(inner, "family"):
                return inner
    return None
