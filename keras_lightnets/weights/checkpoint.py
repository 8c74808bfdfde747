"""Load a checkpoint file into a registered model: read it without torch, recognise its layout
from its keys, convert by name.

    model = kl.create_model("efficientnet_lite0")
    kl.weights.load_checkpoint(model, "efficientnet-lite0.pth")  # efficientnet_pytorch names

Readers: ``.safetensors`` (safetensors' NumPy API: bounds-checked by design),
``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt`` (:mod:`keras_lightnets.weights.torch_pickle`: an
allow-list unpickler, never torch, never code from the file, every tensor checked against its
storage), keras.applications ``.h5`` files (:mod:`~keras_lightnets.weights.keras_h5`) and our own
``.weights.h5`` / ``.keras`` files (:mod:`~keras_lightnets.weights.keras_weights`); the HDF5 ones
are parsed in a child process. Whatever is wrong with a file is a
:class:`~keras_lightnets.weights.errors.CheckpointError`, and a failed load leaves the model
bit-identical: every loader checks everything before it writes.

The layouts a variant's weights come in are in its registry row: its reference's key map
(``Variant.key_map``, under the reference's kind: ``"timm"``, ``"torchvision"``) and
``Variant.layouts`` (``"efficientnet_pytorch"``, ...). The checkpoint's layout is the one whose
key map names a layer for every module of the file; the conversion then checks every shape and
lists every missing or unexpected key before writing anything (:func:`load_torch_weights`).
"""

import os
from pathlib import Path

from keras_lightnets.models.describe import model_identity
from keras_lightnets.models.scaffold import WEIGHTS_FILE_SUFFIXES as KERAS_SUFFIXES
from keras_lightnets.registry import get_entry
from keras_lightnets.weights.errors import CheckpointError, check_checkpoint_file
from keras_lightnets.weights.hdf5_reader import inspect_hdf5
from keras_lightnets.weights.keras_h5 import is_keras_h5, load_keras_h5
from keras_lightnets.weights.keras_weights import load_keras_weights
from keras_lightnets.weights.torch_pickle import read_torch_checkpoint
from keras_lightnets.weights.torch_port import IGNORED_SUFFIXES, compile_key_map, load_torch_weights, map_key

__all__ = ["checkpoint_layouts", "detect_layout", "load_checkpoint", "read_checkpoint"]

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
KERAS_LAYOUT = "keras"
# Prefixes that wrappers add to every key: DataParallel / DistributedDataParallel, EMA copies,
# torch.compile, Lightning modules.
WRAPPER_PREFIXES = ("module.", "ema.", "model_ema.", "_orig_mod.", "model.")


def _read_safetensors(path):
    from safetensors.numpy import load_file

    try:
        return dict(load_file(path))
    except Exception as error:  # noqa: BLE001 - safetensors raises its own SafetensorError, numpy TypeError...
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise CheckpointError(path, f"not a readable .safetensors file ({message})") from None


def read_checkpoint(path):
    """``{key: numpy array}`` of a ``.safetensors`` or PyTorch checkpoint, without torch.

    :class:`~keras_lightnets.weights.errors.CheckpointError` names the file and what is wrong
    with it (a ``ValueError``); a file of another type is a ``ValueError`` naming the types read.
    """
    path = os.fspath(path)
    if not path.endswith((".safetensors", *TORCH_SUFFIXES)):
        raise ValueError(
            f"unknown checkpoint type {Path(path).name!r}: expected .safetensors, {', '.join(TORCH_SUFFIXES)} "
            f"or a Keras {' / '.join(KERAS_SUFFIXES)} file"
        )
    path = check_checkpoint_file(path)
    return _read_safetensors(path) if path.endswith(".safetensors") else read_torch_checkpoint(path)


def checkpoint_layouts(entry):
    """``{layout name: key map}`` of the registry row ``entry`` (its reference's map first).

    ``"keras"`` (keras.applications' ``.h5`` files, loaded in graph order) has no key map: its
    value is ``None``, or ``"bgr_input"`` when the files' networks take BGR pixels; a variant has
    it when it equals a keras.applications model.
    """
    layouts = {}
    kind = entry.reference_call[0]
    if entry.key_map is not None:
        layouts[kind] = entry.key_map
    if kind == KERAS_LAYOUT:
        layouts[KERAS_LAYOUT] = None
    layouts.update(entry.layouts)
    return layouts


def _module_prefixes(state):
    prefixes = []
    for key in state:
        prefix, _, suffix = key.rpartition(".")
        if suffix not in IGNORED_SUFFIXES and prefix not in prefixes:
            prefixes.append(prefix)
    return prefixes


def _wrapper_prefix(state):
    """The prefix a wrapper put on every key (``module.`` from DataParallel, ``ema.``...), or None."""
    keys = list(state)
    return next((p for p in WRAPPER_PREFIXES if keys and all(k.startswith(p) for k in keys)), None)


def detect_layout(state, layouts):
    """The name of the layout in ``layouts`` whose key map names a layer for every module of
    ``state``; ``ValueError`` with each layout's first unmapped module otherwise."""
    prefixes = _module_prefixes(state)
    reasons = {}
    for name, key_map in layouts.items():
        if key_map is None or isinstance(key_map, str):
            continue  # a layout in graph order (keras.applications' .h5): never recognised from keys
        rules = compile_key_map(key_map)
        mapped = {prefix: map_key(rules, prefix) for prefix in prefixes}
        unmapped = next((p for p, (layer, why) in mapped.items() if layer is None and why != "skipped"), None)
        if unmapped is None:
            return name
        reasons[name] = unmapped
    tried = "; ".join(f"{name}: no layer for {prefix!r}" for name, prefix in reasons.items()) or "none registered"
    message = f"the checkpoint's keys (first: {prefixes[:3]}) match no known layout of this model ({tried})"
    wrapper = _wrapper_prefix(state)
    if wrapper:
        message += (
            f"; every key starts with {wrapper!r} (saved through a wrapper such as DataParallel or an EMA copy): "
            f"pass strip_prefix={wrapper!r}"
        )
    raise ValueError(message)


def _registered_variant(model):
    variant = model_identity(model)["variant"]
    if variant is None:
        raise ValueError(
            f"`model` {model.name!r} is not a registered variant (its model card says so), so no checkpoint "
            "layout is known for it: use keras_lightnets.weights.load_torch_weights(model, read_checkpoint(path), "
            "key_map) with your own key map"
        )
    return variant


def _load_keras_applications_h5(model, path):
    structure = inspect_hdf5(path)
    if not is_keras_h5(structure):
        raise CheckpointError(path, "is not a Keras weights file (an HDF5 file with 'layer_names' at its root)")
    variant = model_identity(model)["variant"]
    keras_layout = checkpoint_layouts(get_entry(variant)).get(KERAS_LAYOUT) if variant else None
    return load_keras_h5(model, path, bgr_input=keras_layout == "bgr_input", structure=structure)


def _strip(state, prefix, path):
    if not prefix:
        return state
    if not all(key.startswith(prefix) for key in state):
        missing = next(key for key in state if not key.startswith(prefix))
        raise CheckpointError(path, f"does not start with strip_prefix={prefix!r}", key=missing)
    return {key.removeprefix(prefix): value for key, value in state.items()}


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

    Raises :class:`~keras_lightnets.weights.errors.CheckpointError` (a ``ValueError``) naming the
    file and what is wrong: a damaged or hostile file, the first module no layout maps, or every
    missing and unexpected key and shape mismatch (a checkpoint of another variant names the first
    mismatching tensor). Nothing is written into the model then: it is bit-identical.
    """
    path = os.fspath(path)
    if strip_prefix is not None and not isinstance(strip_prefix, str):
        raise TypeError(f"`strip_prefix` must be a string such as 'module.', got {strip_prefix!r}")
    if path.endswith(KERAS_SUFFIXES):
        return load_keras_weights(model, path)
    if path.endswith(".h5"):
        return _load_keras_applications_h5(model, check_checkpoint_file(path))
    layouts = checkpoint_layouts(get_entry(_registered_variant(model)))
    if layout is not None and layout not in layouts:
        raise ValueError(
            f"`layout` must be one of {sorted(layouts)} for {model_identity(model)['variant']!r}, got {layout!r}"
        )
    if layout is not None and (layouts[layout] is None or isinstance(layouts[layout], str)):
        raise ValueError(f"`layout={layout!r}` is read from a keras.applications .h5 file, got {path!r}")
    state = _strip(read_checkpoint(path), strip_prefix, path)
    try:
        return load_torch_weights(model, state, layouts[layout or detect_layout(state, layouts)])
    except CheckpointError:
        raise
    except ValueError as error:  # the keys or shapes do not fit this model
        raise CheckpointError(path, str(error)) from None
