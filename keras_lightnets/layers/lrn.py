"""Local response normalization across channels (AlexNet, Krizhevsky et al. 2012; GoogLeNet's paper net).

PyTorch's ``nn.LocalResponseNorm(size, alpha, beta, k)`` and Caffe's ``LRN`` (``ACROSS_CHANNELS``)::

    y[..., c] = x[..., c] / (k + alpha / size * sum_{j in window(c)} x[..., j] ** 2) ** beta

with ``window(c) = c - size // 2 .. c + (size - 1) // 2``, clipped to the channels (the
channels past the edges count as zeros, but ``alpha`` is still divided by the full ``size``).
TensorFlow's ``tf.nn.local_response_normalization`` and TFLite's ``LOCAL_RESPONSE_NORMALIZATION``
do not divide ``alpha`` by the window size: for an odd ``size`` they compute the same thing with
``depth_radius = size // 2``, ``bias = k``, ``alpha = alpha / size``.
"""

import math

import keras
from keras import ops

__all__ = ["LocalResponseNormalization"]


def _check_number(value, argument, *, low, strict):
    allowed = f"a finite number {'>' if strict else '>='} {low}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"`{argument}` must be {allowed}, got {value!r}")
    if value < low or (strict and value == low):
        raise ValueError(f"`{argument}` must be {allowed}, got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="keras_lightnets")
class LocalResponseNormalization(keras.layers.Layer):
    """``(B, H, W, C) -> (B, H, W, C)``: each channel divided by ``(k + alpha/size * sum x**2)**beta``
    over a window of ``size`` neighbouring channels (zero-padded at the edges), as PyTorch's
    ``nn.LocalResponseNorm`` (channels last here).

    Args:
        size: the number of channels in the window, a positive integer (PyTorch accepts even
            sizes: the window then reaches one channel further back than forward).
        alpha: the scale, ``>= 0``; divided by ``size`` as in PyTorch and Caffe.
        beta: the exponent, ``> 0``.
        k: the bias, ``> 0`` (so the divisor is never zero).

    Written with ``keras.ops`` (PAD, ``size`` slices summed, POW, DIV). TFLite runs it in float
    only: neither its ``LOCAL_RESPONSE_NORMALIZATION`` nor POW has an INT8 kernel, so a model
    with this layer cannot be exported fully integer (``export_tflite`` says so and refuses).
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"`size` must be a positive integer (the channels in the window), got {size!r}")
        alpha = _check_number(alpha, "alpha", low=0.0, strict=False)
        beta = _check_number(beta, "beta", low=0.0, strict=True)
        k = _check_number(k, "k", low=0.0, strict=True)
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, inputs):
        channels = inputs.shape[-1]
        squares = ops.square(inputs)
        before, after = self.size // 2, (self.size - 1) // 2
        if before or after:
            rank = len(inputs.shape)
            squares = ops.pad(squares, [[0, 0]] * (rank - 1) + [[before, after]])
        total = squares[..., :channels]
        for offset in range(1, self.size):
            total = total + squares[..., offset : offset + channels]
        divisor = ops.power(self.k + (self.alpha / self.size) * total, self.beta)
        return inputs / divisor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}
