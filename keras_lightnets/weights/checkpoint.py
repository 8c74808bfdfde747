"""Load a checkpoint file into a registered model: read it without torch, recognise its layout
from its keys, convert by name.

    model = kl.create_model("efficientnet_lite0")
    kl.weights.load_checkpoint(model, "efficientnet-lite0.pth")  # efficientnet_pytorch names

Readers: ``.safetensors`` (safetensors' NumPy API), ``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt``
(:mod:`keras_lightnets.weights.torch_pickle`: an allow-list unpickler, never torch, never code
from the file), and our own ``.weights.h5`` / ``.keras`` files (``model.load_weights``).

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
from keras_lightnets.weights.keras_h5 import is_keras_h5, load_keras_h5
from keras_lightnets.weights.torch_pickle import read_torch_checkpoint
from keras_lightnets.weights.torch_port import IGNORED_SUFFIXES, compile_key_map, load_torch_weights, map_key

__all__ = ["checkpoint_layouts", "detect_layout", "load_checkpoint", "read_checkpoint"]

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
KERAS_LAYOUT = "keras"


def read_checkpoint(path):
    """``{key: numpy array}`` of a ``.safetensors`` or PyTorch checkpoint, without torch."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint file does not exist: {path!r}")
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return dict(load_file(path))
    if path.endswith(TORCH_SUFFIXES):
        return read_torch_checkpoint(path)
    raise ValueError(
        f"unknown checkpoint type {Path(path).name!r}: expected .safetensors, {', '.join(TORCH_SUFFIXES)} "
        f"or a Keras {' / '.join(KERAS_SUFFIXES)} file"
    )


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
    raise ValueError(f"the checkpoint's keys (first: {prefixes[:3]}) match no known layout of this model ({tried})")


def load_checkpoint(model, path, *, layout=None):
    """Loads the checkpoint at ``path`` into ``model`` (a registered variant) and returns ``model``.

    Args:
        model: built by this package; its model card names the variant whose layouts apply.
        path: ``.safetensors``, ``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt``, a keras.applications
            ``.h5`` weights file (loaded in graph order), or our own ``.weights.h5`` / ``.keras``.
        layout: force a layout name (see :func:`checkpoint_layouts`); default: recognised from
            the keys.

    Raises ``ValueError`` naming the first module no layout maps, or listing every missing and
    unexpected key and every shape mismatch (a checkpoint of another variant names the first
    mismatching tensor); nothing is written into the model then.
    """
    path = os.fspath(path)
    if path.endswith(KERAS_SUFFIXES):
        if not os.path.isfile(path):
            raise ValueError(f"checkpoint file does not exist: {path!r}")
        model.load_weights(path)
        return model
    if path.endswith(".h5"):
        if not os.path.isfile(path):
            raise ValueError(f"checkpoint file does not exist: {path!r}")
        if not is_keras_h5(path):
            raise ValueError(f"{path!r} is not a Keras weights file (an HDF5 file with 'layer_names' at its root)")
        variant = model_identity(model)["variant"]
        keras_layout = checkpoint_layouts(get_entry(variant)).get(KERAS_LAYOUT) if variant else None
        return load_keras_h5(model, path, bgr_input=keras_layout == "bgr_input")
    variant = model_identity(model)["variant"]
    if variant is None:
        raise ValueError(
            f"`model` {model.name!r} is not a registered variant (its model card says so), so no checkpoint "
            "layout is known for it: use keras_lightnets.weights.load_torch_weights(model, read_checkpoint(path), "
            "key_map) with your own key map"
        )
    layouts = checkpoint_layouts(get_entry(variant))
    if layout is not None and layout not in layouts:
        raise ValueError(f"`layout` must be one of {sorted(layouts)} for {variant!r}, got {layout!r}")
    if layout is not None and (layouts[layout] is None or isinstance(layouts[layout], str)):
        raise ValueError(f"`layout={layout!r}` is read from a keras.applications .h5 file, got {path!r}")
    state = read_checkpoint(path)
    name = layout or detect_layout(state, layouts)
    return load_torch_weights(model, state, layouts[name])
