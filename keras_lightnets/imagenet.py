"""ImageNet-1k class names, shipped with the package (no download), and the two helpers every
applications package has: ``decode_predictions`` and ``preprocess_input``.

The classes are in label order (sorted WordNet ids, as TFDS ``imagenet2012`` and every published
checkpoint's classifier have them); ``imagenet_classes.tsv`` is written by
``scripts/make_imagenet_classes.py``.
"""

from functools import lru_cache
from importlib.resources import files

import numpy as np

from keras_lightnets.preprocessing import resolve_preprocessing

__all__ = ["decode_predictions", "imagenet_classes", "preprocess_input"]

NUM_CLASSES = 1000


@lru_cache(maxsize=1)
def imagenet_classes():
    """``((wnid, name), ...)`` of the 1000 classes in label order; ``name`` is WordNet's first lemma
    (``"tabby"`` for ``n02123045`` "tabby, tabby cat")."""
    rows = []
    for line in (files("keras_lightnets") / "imagenet_classes.tsv").read_text(encoding="utf-8").splitlines():
        wnid, lemmas = line.split("\t")
        rows.append((wnid, lemmas.split(",")[0].strip()))
    return tuple(rows)


def decode_predictions(preds, top=5):
    """The ``top`` classes of each row of ``preds`` (N, 1000): ``[[(wnid, name, score), ...], ...]``,
    best first, as ``keras.applications.*.decode_predictions`` returns them (without a download)."""
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_CLASSES:
        raise ValueError(f"`preds` must have shape (batch, {NUM_CLASSES}) (ImageNet-1k scores), got {preds.shape}")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"`top` must be an integer in [1, {NUM_CLASSES}], got {top!r}")
    classes = imagenet_classes()
    decoded = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        decoded.append([(classes[i][0], classes[i][1], float(row[i])) for i in best])
    return decoded


def preprocess_input(images, model):
    """``images`` (RGB pixels in [0, 255], any shape ending in channels) as ``model`` takes them:
    ``(pixel / 255 - mean) / std`` with the :class:`~keras_lightnets.layers.preprocessing.Preprocessing`
    the model records (:func:`~keras_lightnets.preprocessing.resolve_preprocessing`: a built model,
    a registered name or a Preprocessing), unchanged scaling for a model that normalizes inside
    (``pixel / 255``, or raw pixels for EfficientNet built with ``include_preprocessing=True``):
    :meth:`Preprocessing.fed`. Resizing is the caller's (or the input pipeline's) job."""
    preprocessing = resolve_preprocessing(model)
    if preprocessing is None:
        raise ValueError(
            f"`model` {getattr(model, 'name', model)!r} records no preprocessing (it has no keras_lightnets "
            "model card): normalize its inputs yourself"
        )
    mean, std = preprocessing.fed()
    images = np.asarray(images, dtype=np.float32)
    channels = images.shape[-1]
    mean = np.resize(np.asarray(mean, np.float32), channels)
    std = np.resize(np.asarray(std, np.float32), channels)
    return (images / 255.0 - mean) / std
