"""Which Keras layers carry the weights that converters copy, in graph order."""

import keras

WEIGHTED_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.BatchNormalization,
    keras.layers.Dense,
)


def weighted_layers(model):
    """Conv, depthwise, BatchNorm and Dense layers of ``model`` in topological order."""
    found = [layer for layer in model.layers if layer.weights]
    unknown = [layer.name for layer in found if not isinstance(layer, WEIGHTED_TYPES)]
    if unknown:
        raise ValueError(f"cannot convert weights of layers {unknown}: only conv, depthwise, BN and dense are mapped")
    return found
