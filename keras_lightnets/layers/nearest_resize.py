"""Nearest-neighbour resize to the size of another tensor, PyTorch's ``F.interpolate(mode="nearest")``.

GhostNetV2's DFC attention (and GhostNetV3's shortcut gate) computes its gate on a 2x2
average-pooled map and brings it back with ``F.interpolate(gate, size=out.shape[-2:],
mode="nearest")``: output row ``i`` reads input row ``floor(i · H_in / H_out)``. For even sizes
that is ``UpSampling2D(2)``; for odd ones (7 → 3 → 7 at 224 pixels) it repeats the first row
three times, which neither ``UpSampling2D`` nor ``keras.ops.image.resize`` (half-pixel centres)
computes, so this layer does the arithmetic itself (integer division: exact, and equal to
PyTorch's float formula wherever H_in = floor(H_out / 2)).
"""

import keras
from keras import ops

__all__ = ["NearestResize", "nearest_indices"]


def nearest_indices(size_in, size_out):
    """``floor(i · size_in / size_out)`` for ``i < size_out`` (PyTorch's legacy nearest)."""
    return ops.minimum(ops.floor_divide(ops.arange(size_out) * size_in, size_out), size_in - 1)


def _size(tensor, axis):
    return tensor.shape[axis] if tensor.shape[axis] is not None else ops.shape(tensor)[axis]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class NearestResize(keras.layers.Layer):
    """``[x, reference] -> x`` resized to ``reference``'s height and width, nearest neighbour with
    PyTorch's (and TensorFlow's legacy, ``half_pixel_centers=False``) index rule.

    ``reference`` only lends its spatial size, so the layer works on inputs of unknown size. In
    TFLite (the tf_keras twin) it is one ``RESIZE_NEAREST_NEIGHBOR``, which has an INT8 kernel that
    keeps its input's scale and zero point.
    """

    def call(self, inputs):
        x, reference = inputs
        rows = nearest_indices(_size(x, 1), _size(reference, 1))
        x = ops.take(x, rows, axis=1)
        columns = nearest_indices(_size(x, 2), _size(reference, 2))
        return ops.take(x, columns, axis=2)

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])
