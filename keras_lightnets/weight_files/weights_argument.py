"""The ``weights=`` argument of every constructor: ``None``, a Keras weights file of the user's,
or ``"imagenet"`` / a tag (``"tv_in1k"``) of the published checkpoints of the variant being built.

The build scaffold checks the argument with :func:`parse_weights_argument` before a layer is
built, picks the published source with :func:`published_source` once it knows the variant, and
gets the file to load from :func:`~keras_lightnets.weight_files.download.pretrained_weights_file`.
"""

import os
from dataclasses import dataclass

from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES, check_keras_file, check_weights_h5

__all__ = ["PUBLISHED_CLASSES", "WeightsArgument", "parse_weights_argument", "published_source"]

# Every published classifier is an ImageNet-1k one.
PUBLISHED_CLASSES = 1000


@dataclass(frozen=True)
class WeightsArgument:
    """A checked ``weights=``: a ``path`` to a Keras weights file, or a published ``tag``."""

    path: str | None = None
    tag: str | None = None

    @property
    def published(self):
        return self.tag is not None


def parse_weights_argument(weights):
    """``None`` or the :class:`WeightsArgument` of ``weights``; a file must exist and be of its type."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"`weights` must be None, 'imagenet', a published tag or the path to a Keras weights file, got {weights!r}"
        )
    path = os.fspath(weights)
    is_file_name = path.endswith(KERAS_WEIGHTS_SUFFIXES)
    if isinstance(weights, str) and not is_file_name and path.replace("_", "").isalnum():
        return WeightsArgument(tag=path.lower())
    if not is_file_name:
        raise ValueError(
            f"`weights` must be None, 'imagenet', a published tag or a '.weights.h5' / '.keras' file, got {path!r} "
            "(for a .pth / .safetensors checkpoint use keras_lightnets.weights.load_checkpoint)"
        )
    if not os.path.isfile(path):
        raise ValueError(f"`weights` file does not exist: {path!r}")
    (check_keras_file if path.endswith(".keras") else check_weights_h5)(path, "weights")
    return WeightsArgument(path=path)


def published_source(variant, tag, *, include_top, classes, families):
    """The :class:`~keras_lightnets.models.variant.WeightSource` of ``variant``'s published
    checkpoint ``tag`` (``"imagenet"``: its first). ``variant``: the registered variant being built,
    ``None`` for an architecture that is none; ``families``: every family, whose variants with
    published weights the error lists when ``variant`` has none."""
    if variant is None or not variant.weights:
        with_weights = sorted(v.name for family in families for v in family.variants if v.weights)
        what = "this architecture is no registered variant" if variant is None else f"{variant.name!r} has none yet"
        raise ValueError(
            f"`weights={tag!r}`: no published weights ({what}); variants with published weights: "
            f"{', '.join(with_weights) or 'none'}"
        )
    tags = [source.tag for source in variant.weights]
    source = variant.weights[0] if tag == "imagenet" else next((s for s in variant.weights if s.tag == tag), None)
    if source is None:
        raise ValueError(
            f"`weights={tag!r}`: {variant.name!r} publishes {', '.join(repr(t) for t in tags)} "
            f"('imagenet' is {tags[0]!r})"
        )
    if include_top and classes != PUBLISHED_CLASSES:
        raise ValueError(
            f"`weights={tag!r}` with `include_top=True` needs classes={PUBLISHED_CLASSES} (the published "
            f"classifier), got classes={classes}; use include_top=False for a new head"
        )
    return source
