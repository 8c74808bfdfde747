"""How a model's input is prepared: one :class:`Preprocessing` object, the only shape this fact has.

A variant's table states it, published weights trained otherwise carry their own, the model
card (:class:`~keras_lightnets.layers.model_card.ModelCard`) records it inside every built model
-- with whether the model normalizes its input itself (``in_graph``) -- and
:func:`keras_lightnets.preprocessing.resolve_preprocessing` hands it to every consumer: input
pipelines, ``fit``, QAT, export, evaluation, metadata, transfer learning.
"""

import dataclasses
from dataclasses import dataclass

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_PREPROCESSING",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_PREPROCESSING",
    "INCEPTION_STD",
    "INTERPOLATIONS",
    "Preprocessing",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Inception / keras.applications MobileNet scaling: x / 127.5 - 1, i.e. [-1, 1].
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


@dataclass(frozen=True)
class Preprocessing:
    """How inputs must be prepared: pixels in [0, 1], then ``(x - mean) / std``; the
    evaluation resize and centre crop (``size / crop_pct``, then ``size``, with
    ``interpolation``) and the default input size.

    ``in_graph``: the model applies ``(x / pixel_max - mean) / std`` itself (it was built with
    ``include_preprocessing=True`` or wrapped for deployment), so it takes pixels in
    ``[0, pixel_max]``: 1.0 (``pixel / 255``, this package's convention) or 255.0 (raw pixels,
    the convention of keras.applications' EfficientNet, which this package's EfficientNet keeps).
    A variant table's ``pixel_max`` says what its ``include_preprocessing=True`` models take.
    """

    input_size: tuple = (224, 224, 3)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    pixel_max: float = 1.0
    in_graph: bool = False

    def fed(self):
        """``(mean, std)`` an input pipeline applies to pixels in [0, 1] before the model: the
        normalization itself, or only the scaling to ``[0, pixel_max]`` when the model does it."""
        channels = len(self.mean)
        if self.in_graph:
            return (0.0,) * channels, (1.0 / self.pixel_max,) * channels
        return tuple(self.mean), tuple(self.std)

    def to_config(self):
        """A JSON-friendly dict (tuples as lists): what ``.keras`` files, the tf_keras twin and
        ``run.json`` store."""
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_config(cls, config):
        """The inverse of :meth:`to_config`; keys it does not know are refused."""
        unknown = set(config) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown preprocessing keys {sorted(unknown)}")
        values = dict(config)
        for key in ("input_size", "mean", "std"):
            if key in values and values[key] is not None:
                values[key] = tuple(values[key])
        for key in ("crop_pct", "pixel_max"):
            if key in values and values[key] is not None:
                values[key] = float(values[key])
        values = {key: value for key, value in values.items() if value is not None}
        if "mean" in values and "std" in values:
            values["mean"] = tuple(float(v) for v in values["mean"])
            values["std"] = tuple(float(v) for v in values["std"])
        return cls(**values)


IMAGENET_PREPROCESSING = Preprocessing()
INCEPTION_PREPROCESSING = Preprocessing(mean=INCEPTION_MEAN, std=INCEPTION_STD)
