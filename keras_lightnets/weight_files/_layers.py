"""Which Keras layers carry the weights that converters copy, and what each weight is."""

import keras

from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER

WEIGHTED_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.BatchNormalization,
    keras.layers.Dense,
)

# The attributes holding each type's variables, in ``layer.weights`` order; an absent one
# (``use_bias=False``, ``scale=False``, ``center=False``) is None on the layer.
WEIGHT_ROLES = (
    (keras.layers.DepthwiseConv2D, ("kernel", "bias")),
    (keras.layers.Conv2D, ("kernel", "bias")),
    (keras.layers.Dense, ("kernel", "bias")),
    (keras.layers.BatchNormalization, ("gamma", "beta", "moving_mean", "moving_variance")),
)


def weighted_layers(model):
    """Conv, depthwise, BatchNorm and Dense layers of ``model`` in topological order.

    The in-graph input normalization (``include_preprocessing=True``) is left out: its values
    come from the model card, never from a checkpoint, whose network starts after it.
    """
    found = [layer for layer in model.layers if layer.weights and layer.name != INPUT_NORMALIZATION_LAYER]
    unknown = [layer.name for layer in found if not isinstance(layer, WEIGHTED_TYPES)]
    if unknown:
        raise ValueError(f"cannot convert weights of layers {unknown}: only conv, depthwise, BN and dense are mapped")
    return found


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
