"""Copy weights between two Keras models of the same architecture (e.g. from keras.applications)."""

import numpy as np

from keras_lightnets.weight_files._layers import weight_arrays_in_graph_order, weighted_layers_in_keras_order


def copy_keras_weights(source, target):
    """Copies every weight of ``source`` into ``target``, layer by layer in graph order.

    The two models must have the same weighted layers in the same order; a
    1x1 convolution and a Dense layer of the same size are interchangeable
    (keras.applications MobileNet's ``conv_preds`` is a 1x1 conv, ours a Dense), and a
    ``SeparableConv2D`` of ``source`` (keras.applications Xception, NASNet) fills two layers of
    ``target``: a ``DepthwiseConv2D``, then a 1x1 ``Conv2D``.
    Raises ``ValueError`` naming the first pair of layers that do not match.
    """
    source_layers, target_layers = weight_arrays_in_graph_order(source), weighted_layers_in_keras_order(target)
    if len(source_layers) != len(target_layers):
        raise ValueError(
            f"{source.name} has {len(source_layers)} weighted layers, {target.name} has {len(target_layers)}"
        )
    for (src, values), dst in zip(source_layers, target_layers, strict=True):
        expected = [w.shape for w in dst.get_weights()]
        if len(values) != len(expected):
            raise ValueError(f"layer {src!r} has {len(values)} weights, {dst.name!r} has {len(expected)}")
        converted = []
        for value, shape in zip(values, expected, strict=True):
            if value.shape != tuple(shape):
                if value.size != np.prod(shape):
                    raise ValueError(f"cannot map {src!r} {value.shape} onto {dst.name!r} {tuple(shape)}")
                value = value.reshape(shape)
            converted.append(value)
        dst.set_weights(converted)
    return target
