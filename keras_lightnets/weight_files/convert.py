"""Any weights file into a model of a known variant: the loader behind
:func:`keras_lightnets.weights.load_checkpoint` and the conversion of published checkpoints.

The file's type picks the reader: our own ``.weights.h5`` / ``.keras`` files
(:mod:`~keras_lightnets.weight_files.keras_weights`), keras.applications ``.h5`` files in graph
order (:mod:`~keras_lightnets.weight_files.keras_h5`), ``.safetensors`` and PyTorch files by key
map (:mod:`~keras_lightnets.weight_files.torch_port`), the map being the variant's layout that
names a layer for every module of the file. Whatever is wrong with a file is a
:class:`~keras_lightnets.weight_files.errors.CheckpointError`, and a failed load leaves the model
bit-identical: every loader checks everything before it writes.
"""

import os

from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES
from keras_lightnets.weight_files.checkpoint_reader import read_checkpoint
from keras_lightnets.weight_files.errors import CheckpointError, check_checkpoint_file
from keras_lightnets.weight_files.hdf5_reader import inspect_hdf5
from keras_lightnets.weight_files.keras_h5 import is_keras_h5, load_keras_h5
from keras_lightnets.weight_files.keras_weights import load_keras_weights
from keras_lightnets.weight_files.layouts import KERAS_LAYOUT, checkpoint_layouts, detect_layout, in_graph_order
from keras_lightnets.weight_files.torch_port import load_torch_weights

__all__ = ["load_weights_file"]


def _load_keras_applications_h5(model, path, layouts):
    structure = inspect_hdf5(path)
    if not is_keras_h5(structure):
        raise CheckpointError(path, "is not a Keras weights file (an HDF5 file with 'layer_names' at its root)")
    return load_keras_h5(model, path, bgr_input=layouts.get(KERAS_LAYOUT) == "bgr_input", structure=structure)


def _strip(state, prefix, path):
    if not prefix:
        return state
    if not all(key.startswith(prefix) for key in state):
        missing = next(key for key in state if not key.startswith(prefix))
        raise CheckpointError(path, f"does not start with strip_prefix={prefix!r}", key=missing)
    return {key.removeprefix(prefix): value for key, value in state.items()}


def _key_map(model, entry, layout, path):
    """The variant's layouts, and the one ``layout`` names (checked) or ``None`` to recognise it."""
    if entry is None:
        raise ValueError(
            f"`model` {model.name!r} is not a registered variant (its model card says so), so no checkpoint "
            "layout is known for it: use keras_lightnets.weights.load_torch_weights(model, read_checkpoint(path), "
            "key_map) with your own key map"
        )
    layouts = checkpoint_layouts(entry)
    if layout is not None and layout not in layouts:
        raise ValueError(f"`layout` must be one of {sorted(layouts)} for {entry.name!r}, got {layout!r}")
    if layout is not None and in_graph_order(layouts[layout]):
        raise ValueError(f"`layout={layout!r}` is read from a keras.applications .h5 file, got {path!r}")
    return layouts


def load_weights_file(model, path, entry, *, layout=None, strip_prefix=None):
    """Loads the weights file at ``path`` into ``model``, built as the registry row ``entry`` (a
    :class:`~keras_lightnets.models.variant.Variant`, or ``None`` for an architecture that is no
    registered variant: then only Keras files load), and returns ``model``.

    ``layout`` forces one of the entry's layouts (default: recognised from the keys);
    ``strip_prefix``: a prefix every key of a PyTorch / safetensors checkpoint starts with and that
    the layouts do not (``"module."``). See :func:`keras_lightnets.weights.load_checkpoint`.
    """
    path = os.fspath(path)
    if strip_prefix is not None and not isinstance(strip_prefix, str):
        raise TypeError(f"`strip_prefix` must be a string such as 'module.', got {strip_prefix!r}")
    if path.endswith(KERAS_WEIGHTS_SUFFIXES):
        return load_keras_weights(model, path)
    if path.endswith(".h5"):
        layouts = {} if entry is None else checkpoint_layouts(entry)
        return _load_keras_applications_h5(model, check_checkpoint_file(path), layouts)
    layouts = _key_map(model, entry, layout, path)
    state = _strip(read_checkpoint(path), strip_prefix, path)
    try:
        return load_torch_weights(model, state, layouts[layout or detect_layout(state, layouts)])
    except CheckpointError:
        raise
    except ValueError as error:  # the keys or shapes do not fit this model
        raise CheckpointError(path, str(error)) from None
