"""Load PyTorch weights (timm / torchvision layouts) into our Keras models, by name.

The state dict's keys are grouped by module prefix (``features.3.conv_dw.bn.running_var`` →
``features.3.conv_dw.bn``; ``num_batches_tracked`` is ignored), a family's *key map* names the
Keras layer of each prefix, and each tensor is converted by that layer's type:

- ``Conv2D`` kernel (kh, kw, I/g, O) ← conv weight (O, I/g, kh, kw), or a Linear (O, I) for a 1x1 conv;
- ``DepthwiseConv2D`` kernel (kh, kw, C, m) ← conv weight (C·m, 1, kh, kw);
- ``Dense`` kernel (in, out) ← Linear (out, in), or a 1x1 conv (out, in, 1, 1);
- biases as they are; ``BatchNormalization`` gamma, beta, moving_mean, moving_variance ←
  weight, bias, running_mean, running_var.

A key map is data: an ordered sequence of ``(pattern, template)`` pairs. ``pattern`` is a
regular expression that must match the whole torch module prefix; the first rule that matches
wins. ``template`` names the Keras layer: a string, expanded like ``re.sub``'s replacement
(``r"stem_\\1"``; a string without backreferences is the name itself), a callable taking the
``re.Match`` for index arithmetic (``lambda m: f"block{int(m[1]) + 1}_dw_conv"``), or ``None``
to skip that module on purpose. Key maps only need ``re``; each family keeps its own.

A template may also name several Keras layers: a tuple of strings (each expanded), or a callable
returning a tuple. The module's tensors are then cut along their first (output) axis into
consecutive parts, one per layer, each as wide as that layer's outputs: one PyTorch convolution
whose output the reference slices (DPN's ``c1x1_c``: residual channels, then dense ones) loads
into the two convolutions the Keras graph computes instead (same function, no slicing layer).

A rule may carry a third element, a *transform* ``(suffix, array) -> array`` applied to each of
the module's torch tensors (``suffix``: ``"weight"``, ``"bias"``, ...) before they are converted,
for a layout difference that the layer types alone do not show. The one this package needs is
:func:`keras_lightnets.models.variant.nchw_flatten_rows` (next to the variant tables, which build
key maps without importing this package): a Linear after PyTorch's ``flatten`` of an NCHW map
(the first classifier layer of AlexNet and VGG) reads its inputs in (C, H, W) order, a Keras
``Dense`` after ``Flatten`` of an NHWC map in (H, W, C) order.

Nothing is written into the model before every tensor has been mapped and its shape checked,
so a failed load leaves the model as it was.
"""

import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.weight_files._layers import layer_weights, weighted_layers

KeyMap = Sequence[tuple[str, str | tuple[str, ...] | Callable[[re.Match], str | tuple[str, ...]] | None]]

# Keras weight role → suffix of the torch key holding it.
TORCH_SUFFIXES = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
IGNORED_SUFFIXES = ("num_batches_tracked",)
# A layer scale's gain: timm's ``<block>.gamma`` (or ``<block>.ls.gamma``), torchvision's ``<block>.layer_scale``.
LAYER_SCALE_SUFFIXES = ("gamma", "layer_scale")
# A checkpoint of another width mismatches every tensor: the first few say what happened.
SHOWN_PER_SECTION = 8


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def torch_state_dict(source):
    """``{key: numpy array}`` of a torch ``nn.Module`` or of a state dict (torch tensors or arrays)."""
    if isinstance(source, Mapping):
        items = source.items()
    elif callable(getattr(source, "state_dict", None)):
        items = source.state_dict().items()
    else:
        raise TypeError(f"source must be a torch nn.Module or a state dict, got {type(source).__name__}")
    return {str(key): _to_numpy(value) for key, value in items}


def compile_key_map(key_map):
    """Checks ``key_map`` and returns its rules as ``[(compiled pattern, template, transform or None), ...]``."""
    if isinstance(key_map, str | bytes | Mapping):
        raise TypeError(f"key_map must be a sequence of (pattern, template) pairs, got {type(key_map).__name__}")
    rules = []
    for index, rule in enumerate(key_map):
        if not (isinstance(rule, tuple | list) and len(rule) in (2, 3)):
            raise TypeError(
                f"key_map rule {index} must be a (pattern, template) pair or a (pattern, template, transform) "
                f"triple, got {rule!r}"
            )
        pattern, template, transform = (*rule, None)[:3]
        if transform is not None and not callable(transform):
            raise TypeError(f"key_map rule {index} ({pattern!r}): transform must be a callable (suffix, array)")
        several = isinstance(template, tuple) and template and all(isinstance(t, str) for t in template)
        if not (template is None or isinstance(template, str) or several or callable(template)):
            raise TypeError(
                f"key_map rule {index} ({pattern!r}): template must be a str, a tuple of str, a callable or None"
            )
        rules.append((re.compile(pattern), template, transform))
    return rules


def rule_transform(rules, prefix):
    """The transform of the first rule matching the torch module ``prefix``, or ``None``."""
    for pattern, _, transform in rules:
        if pattern.fullmatch(prefix):
            return transform
    return None


def map_key(rules, prefix):
    """The Keras layer name for the torch module ``prefix``: ``(name, why)``.

    ``name`` is a tuple of names where the rule names several layers (the module's tensors are
    split across them). ``name`` is None when no layer is named, and ``why`` then says why: ``"skipped"``
    (the rule's template is None), no rule matches, or the rule's callable found no
    layer for the prefix (it raised ``LookupError``, e.g. an index out of its table).
    """
    for pattern, template, _ in rules:
        match = pattern.fullmatch(prefix)
        if match is None:
            continue
        if template is None:
            return None, "skipped"
        if isinstance(template, tuple):
            return tuple(match.expand(part) for part in template), None
        if not callable(template):
            return match.expand(template), None
        try:
            return template(match), None
        except LookupError as error:
            return None, f"key-map rule {pattern.pattern!r} has no layer for {prefix!r} ({error!r})"
    return None, f"no key-map rule matches {prefix!r}"


def _torch_suffix(layer, role, tensors):
    """The suffix of the torch key holding ``layer``'s ``role``: :data:`TORCH_SUFFIXES`', or for a
    :class:`LayerScale` the first of :data:`LAYER_SCALE_SUFFIXES` among ``tensors``."""
    if isinstance(layer, LayerScale):
        return next((suffix for suffix in LAYER_SCALE_SUFFIXES if suffix in tensors), LAYER_SCALE_SUFFIXES[0])
    return TORCH_SUFFIXES[role]


def _layouts(layer, role, shape):
    """The torch shapes accepted for the Keras variable ``role`` of ``shape``, each with its conversion."""
    if isinstance(layer, LayerScale):  # torchvision: (C, 1, 1)
        return {shape: lambda v: v, (*shape, 1, 1): lambda v: v.reshape(shape)}
    if role != "kernel":
        return {shape: lambda v: v}
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw, channels, multiplier = shape
        return {
            (channels * multiplier, 1, kh, kw): lambda v: v.reshape(channels, multiplier, kh, kw).transpose(2, 3, 0, 1)
        }
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, fan_in, fan_out = shape
        layouts = {(fan_out, fan_in, kh, kw): lambda v: v.transpose(2, 3, 1, 0)}
        if kh == kw == 1:
            layouts[(fan_out, fan_in)] = lambda v: v.T.reshape(shape)  # a Linear as a 1x1 conv
        return layouts
    fan_in, fan_out = shape  # Dense
    return {(fan_out, fan_in): lambda v: v.T, (fan_out, fan_in, 1, 1): lambda v: v.reshape(fan_out, fan_in).T}


def _shape(shape):
    return str(tuple(int(d) for d in shape))


def _plan(model, state, rules):
    """Maps and converts every tensor; returns ``(assignments, unexpected, missing, errors)`` as lists."""
    groups = {}
    for key, value in state.items():
        prefix, _, suffix = key.rpartition(".")
        if suffix in IGNORED_SUFFIXES:
            continue
        groups.setdefault(prefix, {})[suffix] = (key, value)

    layers = {layer.name: layer for layer in weighted_layers(model)}
    loaded_from = {}  # Keras layer name → torch prefix
    assignments, unexpected, missing, errors = [], [], [], []
    for prefix, tensors in groups.items():
        mapped, why = map_key(rules, prefix)
        if why == "skipped":
            continue
        names = (mapped,) if isinstance(mapped, str) or mapped is None else tuple(mapped)
        absent = [name for name in names if name is not None and name not in layers]
        if absent:
            why = f"{prefix!r} maps to {absent[0]!r}, not a weighted layer of the model"
        if why is not None:
            unexpected += [f"{key} {_shape(value.shape)}: {why}" for key, value in tensors.values()]
            continue
        transform = rule_transform(rules, prefix)
        if transform is not None:
            try:
                tensors = {suffix: (key, transform(suffix, value)) for suffix, (key, value) in tensors.items()}
            except ValueError as error:
                shapes = ", ".join(f"{key} {_shape(value.shape)}" for key, value in tensors.values())
                errors.append(f"{shapes} → {names}: {error}")
                continue
        parts = [(names[0], tensors)]
        if len(names) > 1:
            parts, error = _split_outputs(prefix, tensors, [layers[name] for name in names])
            if error:
                errors.append(error)
                continue
        for name, part in parts:
            _plan_layer(prefix, name, layers[name], part, loaded_from, assignments, unexpected, missing, errors)
    for name, layer in layers.items():
        if name not in loaded_from:
            shapes = ", ".join(f"{role} {_shape(v.shape)}" for role, v in layer_weights(layer).items())
            missing.append(f"{name} ({type(layer).__name__}: {shapes}): no torch module maps to it")
    return assignments, unexpected, missing, errors


def _output_channels(layer):
    """How many outputs a weighted layer has (the width of its part of a split torch tensor)."""
    weights = layer_weights(layer)
    if "kernel" not in weights:  # BatchNorm
        return int(weights["gamma"].shape[0])
    shape = weights["kernel"].shape
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(shape[2]) * int(shape[3])
    return int(shape[-1])


def _split_outputs(prefix, tensors, layers):
    """``([(layer name, tensors part)], error)``: a torch module's tensors cut along their first
    (output) axis into consecutive parts, one per Keras layer, as wide as the layer's outputs."""
    widths = [_output_channels(layer) for layer in layers]
    bounds = [sum(widths[:index]) for index in range(len(widths) + 1)]
    for key, value in tensors.values():
        if value.ndim == 0 or value.shape[0] != bounds[-1]:
            names = ", ".join(f"{layer.name!r} ({width})" for layer, width in zip(layers, widths, strict=True))
            return [], (
                f"{key} {_shape(value.shape)} → {names}: expected {bounds[-1]} outputs along the first axis "
                f"(split {prefix!r} across the layers)"
            )
    parts = []
    for index, layer in enumerate(layers):
        start, stop = bounds[index], bounds[index + 1]
        part = {suffix: (f"{key}[{start}:{stop}]", value[start:stop]) for suffix, (key, value) in tensors.items()}
        parts.append((layer.name, part))
    return parts, None


def _plan_layer(prefix, name, layer, tensors, loaded_from, assignments, unexpected, missing, errors):
    """Converts the torch tensors of module ``prefix`` (``{suffix: (key, array)}``) into Keras layer ``name``."""
    if name in loaded_from:
        errors.append(f"{prefix!r} and {loaded_from[name]!r} both map to Keras layer {name!r}")
        return
    loaded_from[name] = prefix
    remaining = dict(tensors)
    for role, variable in layer_weights(layer).items():
        target = f"{name}.{role} {_shape(variable.shape)}"
        suffix = _torch_suffix(layer, role, remaining)
        if suffix not in remaining:
            missing.append(f"{target}: no torch key {prefix}.{suffix}")
            continue
        key, value = remaining.pop(suffix)
        layouts = _layouts(layer, role, tuple(int(d) for d in variable.shape))
        if value.shape not in layouts:
            accepted = " or ".join(_shape(s) for s in layouts)
            errors.append(f"{key} {_shape(value.shape)} → {target}: expected torch shape {accepted}")
            continue
        assignments.append((variable, layouts[value.shape](value).astype(variable.dtype)))
    kind = type(layer).__name__
    unexpected.extend(
        f"{key} {_shape(value.shape)}: Keras {kind} {name!r} has no weight for it" for key, value in remaining.values()
    )


def load_torch_weights(model, source, key_map, *, strict=True):
    """Copies PyTorch weights into the Keras ``model`` by name through ``key_map``; returns ``model``.

    Args:
        model: a Keras model whose weighted layers are conv, depthwise, BatchNorm and Dense.
        source: a torch ``nn.Module``, or a state dict ``{key: tensor or numpy array}``
            (e.g. read from a checkpoint with NumPy, without torch).
        key_map: ``[(pattern, template), ...]`` naming each torch module's Keras layer
            (see the module docstring).
        strict: when False, torch keys that map to no layer and Keras weights that
            nothing loads are tolerated (and listed in a warning); shape mismatches and two
            modules mapped to one layer still fail.

    Raises ``ValueError`` listing every unexpected torch key, every Keras weight nothing was
    loaded into and every shape mismatch (torch key and shape, Keras layer and the torch shape
    it expects). Nothing is written into the model unless everything checks.
    """
    rules = compile_key_map(key_map)
    state = torch_state_dict(source)
    assignments, unexpected, missing, errors = _plan(model, state, rules)
    sections = [("shape mismatches and conflicts", errors)]
    if strict:
        sections += [
            ("unexpected torch keys (no layer to load them into)", unexpected),
            ("missing (Keras weights nothing was loaded into)", missing),
        ]
    problems = sum(len(entries) for _, entries in sections)
    if problems:
        plural = "s" if problems > 1 else ""
        lines = [f"cannot load torch weights into {model.name!r}, nothing was loaded ({problems} problem{plural}):"]
        for title, entries in sections:
            if entries:
                lines.append(f"{title}:")
                lines += [f"  {entry}" for entry in entries[:SHOWN_PER_SECTION]]
                if len(entries) > SHOWN_PER_SECTION:
                    lines.append(f"  ... and {len(entries) - SHOWN_PER_SECTION} more")
        raise ValueError("\n".join(lines))
    if unexpected or missing:
        warnings.warn(
            f"load_torch_weights(strict=False) into {model.name!r} skipped: " + "; ".join(unexpected + missing),
            stacklevel=2,
        )
    for variable, value in assignments:
        variable.assign(value)
    return model
