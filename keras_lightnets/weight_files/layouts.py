"""The key layouts a variant's checkpoints come in, and which one a checkpoint is in.

A variant's layouts are in its registry row: its reference's key map (``Variant.key_map``,
under the reference's kind: ``"timm"``, ``"torchvision"``) and ``Variant.layouts``
(``"efficientnet_pytorch"``, ...). A checkpoint's layout is the one whose key map names a layer
for every module of the file.
"""

from keras_lightnets.weight_files.torch_port import IGNORED_SUFFIXES, compile_key_map, map_key

__all__ = ["KERAS_LAYOUT", "WRAPPER_PREFIXES", "checkpoint_layouts", "detect_layout", "in_graph_order"]

KERAS_LAYOUT = "keras"
# Prefixes that wrappers add to every key: DataParallel / DistributedDataParallel, EMA copies,
# torch.compile, Lightning modules.
WRAPPER_PREFIXES = ("module.", "ema.", "model_ema.", "_orig_mod.", "model.")


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


def in_graph_order(key_map):
    """Whether a layout is read in graph order (keras.applications' ``.h5``) rather than by key."""
    return key_map is None or isinstance(key_map, str)


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
        if in_graph_order(key_map):
            continue  # never recognised from keys
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
