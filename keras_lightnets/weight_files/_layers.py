"""Which Keras layers carry the weights that converters copy, and what each weight is."""

import keras

from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER
from keras_lightnets.layers.layer_scale import LayerScale

WEIGHTED_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.BatchNormalization,
    keras.layers.Dense,
    keras.layers.LayerNormalization,
    LayerScale,
)

# The attributes holding each type's variables, in ``layer.weights`` order; an absent one
# (``use_bias=False``, ``scale=False``, ``center=False``) is None on the layer.
WEIGHT_ROLES = (
    (keras.layers.DepthwiseConv2D, ("kernel", "bias")),
    (keras.layers.Conv2D, ("kernel", "bias")),
    (keras.layers.Dense, ("kernel", "bias")),
    (keras.layers.BatchNormalization, ("gamma", "beta", "moving_mean", "moving_variance")),
    (keras.layers.LayerNormalization, ("gamma", "beta")),
    (LayerScale, ("gamma",)),
)


def _flat_layers(model):
    """``model.layers`` with each nested model's layers in its place (keras.applications' ConvNeXt
    builds its stem and downsampling blocks as ``Sequential`` models)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _is_foreign_layer_scale(layer):
    """keras.applications ConvNeXt's own ``LayerScale`` (one weight, ``gamma``), as a source of weights."""
    return type(layer).__name__ == "LayerScale" and len(layer.weights) == 1 and hasattr(layer, "gamma")


def weighted_layers(model, *, separable=False):
    """Conv, depthwise, BatchNorm and Dense layers of ``model`` in topological order
    (``separable``: ``SeparableConv2D`` layers too, which only a source of weights may hold).

    The in-graph input normalization (``include_preprocessing=True``) is left out: its values
    come from the model card, never from a checkpoint, whose network starts after it.
    """
    found = [layer for layer in _flat_layers(model) if layer.weights and layer.name != INPUT_NORMALIZATION_LAYER]
    known = (*WEIGHTED_TYPES, keras.layers.SeparableConv2D) if separable else WEIGHTED_TYPES
    unknown = [layer.name for layer in found if not isinstance(layer, known) and not _is_foreign_layer_scale(layer)]
    if unknown:
        raise ValueError(f"cannot convert weights of layers {unknown}: only conv, depthwise, BN and dense are mapped")
    return found


def weight_arrays_in_graph_order(model):
    """``[(name, [arrays])]`` of ``model``'s weighted layers in topological order, as
    :func:`weighted_layers` lists them, except that a ``SeparableConv2D`` (keras.applications'
    Xception and NASNet) counts as the two layers this package builds for it:
    ``"<name>/depthwise"`` with its depthwise kernel (a ``DepthwiseConv2D``), then
    ``"<name>/pointwise"`` with its pointwise kernel and its bias, if any (a 1x1 ``Conv2D``).
    What a model's weights are copied from."""
    arrays = []
    for layer in weighted_layers(model, separable=True):
        if isinstance(layer, keras.layers.SeparableConv2D):
            depthwise, pointwise, *bias = layer.get_weights()
            arrays += [(f"{layer.name}/depthwise", [depthwise]), (f"{layer.name}/pointwise", [pointwise, *bias])]
        else:
            arrays.append((layer.name, layer.get_weights()))
    return arrays


def layer_weights(layer):
    """``{role: variable}`` of a weighted layer: ``kernel``/``bias``, or BN's ``gamma``/``beta``/``moving_*``.

    Raises ``ValueError`` when the layer's type is not convertible or it holds
    variables beyond these (a LoRA or quantized Dense, say).
    """
    for kind, roles in WEIGHT_ROLES:
        if isinstance(layer, kind):
            found = {role: getattr(layer, role, None) for role in roles}
            found = {role: variable for role, variable in found.items() if variable is not None}
            if len(found) != len(layer.weights):
                extra = sorted({w.path for w in layer.weights} - {v.path for v in found.values()})
                raise ValueError(f"layer {layer.name!r} holds weights no converter knows: {extra}")
            return found
    raise ValueError(
        f"cannot convert weights of layer {layer.name!r} ({type(layer).__name__}): "
        "only conv, depthwise, BN and dense are mapped"
    )


# --- keras.applications' order of a graph whose separable convolutions are two layers ----------


def _separable_pairs(model):
    """``{pointwise conv: depthwise conv}`` for each bias-free ``DepthwiseConv2D`` whose output feeds
    one 1x1 ``Conv2D`` and nothing else: the two halves of a ``SeparableConv2D``."""
    consumers = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                consumers.setdefault(id(tensor._keras_history.operation), []).append(layer)
    pairs = {}
    for layer in model.layers:
        after = consumers.get(id(layer), [])
        if (
            isinstance(layer, keras.layers.DepthwiseConv2D)
            and not layer.use_bias
            and len(after) == 1
            and type(after[0]) is keras.layers.Conv2D
            and tuple(after[0].kernel_size) == (1, 1)
            and tuple(after[0].strides) == (1, 1)
        ):
            pairs[after[0]] = layer
    return pairs


def weighted_layers_in_keras_order(model):
    """:func:`weighted_layers` of ``model`` in the order Keras lists the layers of the same graph
    with each depthwise-then-1x1 pair (:func:`_separable_pairs`) as one ``SeparableConv2D``: the
    order of keras.applications' NASNet and Xception files, whose ``SeparableConv2D`` layers are
    two of ours (each pair listed depthwise first, as the file's layer is read).

    Keras orders a graph's layers by their depth (the longest path to the outputs), deepest first,
    then by a depth-first walk from the outputs (``keras.src.ops.function.map_graph``); the extra
    layer of each pair lengthens some paths, not others, and so changes that order. This is the
    same computation with each pair counted once. A model without such pairs is listed as
    :func:`weighted_layers` lists it.
    """
    pairs = _separable_pairs(model)
    if not pairs:
        return weighted_layers(model)

    def parents(layer):
        source = pairs.get(layer, layer)
        return [tensor._keras_history.operation for node in source._inbound_nodes for tensor in node.input_tensors]

    index, finished, postorder = {}, set(), []

    def visit(layer):  # keras' _build_map_helper: numbered on the way down, listed on the way up
        if layer in finished:
            return
        index.setdefault(layer, len(index))
        for parent in parents(layer):
            visit(parent)
        finished.add(layer)
        postorder.append(layer)

    for output in model.outputs:
        visit(output._keras_history.operation)
    depth = {}
    for layer in reversed(postorder):
        here = depth.setdefault(layer, 0)
        for parent in parents(layer):
            depth[parent] = max(depth.get(parent, 0), here + 1)
    ordered = sorted(postorder, key=lambda layer: (-depth[layer], index[layer]))
    weighted = set(weighted_layers(model))
    listed = [part for layer in ordered for part in ((pairs[layer], layer) if layer in pairs else (layer,))]
    return [layer for layer in listed if layer in weighted]
