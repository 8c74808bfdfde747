"""Load a checkpoint file into a model by the name of its variant: the model's card names the
variant, the registry gives the layouts its weights come in, and
:func:`~keras_lightnets.weight_files.convert.load_weights_file` reads and converts the file.

    model = kl.create_model("efficientnet_lite0")
    kl.weights.load_checkpoint(model, "efficientnet-lite0.pth")  # efficientnet_pytorch names

The readers, layouts and converters themselves know no registry (the build scaffold uses them
while the families are imported): they live in :mod:`keras_lightnets.weight_files`, and their
names are re-exported here (``read_checkpoint``, ``checkpoint_layouts``, ``detect_layout``).
"""

import os

from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES
from keras_lightnets.models.describe import model_identity
from keras_lightnets.registry import get_entry
from keras_lightnets.weight_files.checkpoint_reader import TORCH_SUFFIXES, read_checkpoint
from keras_lightnets.weight_files.convert import load_weights_file
from keras_lightnets.weight_files.layouts import KERAS_LAYOUT, WRAPPER_PREFIXES, checkpoint_layouts, detect_layout

__all__ = [
    "KERAS_LAYOUT",
    "TORCH_SUFFIXES",
    "WRAPPER_PREFIXES",
    "checkpoint_layouts",
    "detect_layout",
    "load_checkpoint",
    "read_checkpoint",
]


def load_checkpoint(model, path, *, layout=None, strip_prefix=None):
    """Loads the checkpoint at ``path`` into ``model`` (a registered variant) and returns ``model``.

    Args:
        model: built by this package; its model card names the variant whose layouts apply.
        path: ``.safetensors``, ``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt``, a keras.applications
            ``.h5`` weights file (loaded in graph order), or our own ``.weights.h5`` / ``.keras``.
        layout: force a layout name (see :func:`checkpoint_layouts`); default: recognised from
            the keys.
        strip_prefix: a prefix every key of a PyTorch / safetensors checkpoint starts with and
            that the layouts do not (``"module."`` from DataParallel, ``"ema."``); the error for
            such a file says which to pass.

    A model built with ``include_preprocessing=True`` loads a checkpoint of the same network
    without it: its input normalization is set from the model card, never from a file.

    Raises :class:`~keras_lightnets.weight_files.errors.CheckpointError` (a ``ValueError``) naming
    the file and what is wrong: a damaged or hostile file, the first module no layout maps, or
    every missing and unexpected key and shape mismatch (a checkpoint of another variant names the
    first mismatching tensor). Nothing is written into the model then: it is bit-identical.
    """
    variant = model_identity(model)["variant"]
    # Our own Keras files name their layers: no layout, so no registry row, is needed for them.
    needs_layouts = variant is not None and not os.fspath(path).endswith(KERAS_WEIGHTS_SUFFIXES)
    entry = get_entry(variant) if needs_layouts else None
    return load_weights_file(model, path, entry, layout=layout, strip_prefix=strip_prefix)
