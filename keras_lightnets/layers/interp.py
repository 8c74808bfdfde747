"""Bilinear resize with aligned corners to the size of another tensor (Caffe's ``Interp`` layer).

The Residual Attention Network's mask branch up-samples with the ``Interp`` layer of DeepLab's
Caffe, given two bottoms: the map to resize and a map whose height and width it takes. Its
kernel (``caffe_cpu_interp2``) samples output row ``i`` at input row
``i · (H_in - 1) / (H_out - 1)`` (0 when ``H_out = 1``): the corner pixels of input and output
coincide, TensorFlow's ``align_corners=True``. Keras's ``Resizing`` / ``UpSampling2D`` and
``keras.ops.image.resize`` sample at half-pixel centres instead, which moves every value, so
this layer does the arithmetic itself.
"""

import keras
from keras import ops

__all__ = ["AlignedBilinearResize", "aligned_bilinear_resize"]


def _resize_axis(x, size_in, size_out, axis):
    """Linear interpolation with aligned corners along ``axis`` (1: height, 2: width)."""
    if isinstance(size_in, int) and size_in == size_out:
        return x  # Caffe copies; the formula gives the same values
    size_in_f = ops.cast(size_in, "float32")
    size_out_f = ops.cast(size_out, "float32")
    # The sampling step, in float32 as Caffe computes it; 0 for a single output row.
    step = ops.where(size_out_f > 1.0, (size_in_f - 1.0) / ops.maximum(size_out_f - 1.0, 1.0), 0.0)
    position = ops.cast(ops.arange(size_out), "float32") * step
    low = ops.minimum(ops.cast(ops.floor(position), "int32"), ops.cast(size_in, "int32") - 1)
    high = ops.minimum(low + 1, ops.cast(size_in, "int32") - 1)
    weight = position - ops.cast(low, "float32")
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    weight = ops.cast(ops.reshape(weight, shape), x.dtype)
    first = ops.take(x, low, axis=axis)
    second = ops.take(x, high, axis=axis)
    return first + (second - first) * weight


def aligned_bilinear_resize(x, size):
    """``x`` (NHWC) resized to ``size = (height, width)``, bilinear, corners aligned."""
    x = _resize_axis(x, x.shape[1] if x.shape[1] is not None else ops.shape(x)[1], size[0], 1)
    return _resize_axis(x, x.shape[2] if x.shape[2] is not None else ops.shape(x)[2], size[1], 2)


@keras.saving.register_keras_serializable(package="keras_lightnets")
class AlignedBilinearResize(keras.layers.Layer):
    """``[x, reference] -> x`` resized to ``reference``'s height and width (bilinear, aligned corners).

    Caffe's ``Interp`` with two bottoms (the Residual Attention Network's mask up-sampling).
    ``reference`` only lends its spatial size, so the layer works on inputs of unknown size.
    Separable (rows, then columns), which is the same interpolation as Caffe's 2-D formula.
    In TFLite (the tf_keras twin) it is one ``RESIZE_BILINEAR`` with ``align_corners=True``,
    which has an INT8 kernel: the output keeps the input's quantization range.
    """

    def call(self, inputs):
        x, reference = inputs
        height = reference.shape[1] if reference.shape[1] is not None else ops.shape(reference)[1]
        width = reference.shape[2] if reference.shape[2] is not None else ops.shape(reference)[2]
        return aligned_bilinear_resize(x, (height, width))

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])
