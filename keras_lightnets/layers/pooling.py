"""PyTorch ``MaxPool2d(ceil_mode=True)``: standard Keras layers when the size is known, else :class:`CeilMaxPool2D`."""

import keras
import ml_dtypes
import numpy as np
from keras import layers, ops

__all__ = ["CeilMaxPool2D", "max_pool_ceil", "max_pool_symmetric"]


def _pair(value, argument):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{argument} must be a positive int or a pair of them, got {value!r}")
    return pair


def _lowest(dtype):
    """The lowest value of ``dtype`` (bfloat16 included), the padding a max never picks."""
    dtype = keras.backend.standardize_dtype(dtype)
    if "int" in dtype:
        return int(np.iinfo(dtype).min)
    return float(ml_dtypes.finfo(dtype).min)


@keras.saving.register_keras_serializable(package="keras_lightnets")
class CeilMaxPool2D(keras.layers.Layer):
    """Max pooling with PyTorch's ``ceil_mode=True`` (no padding), for any input size, NHWC.

    Ceil mode keeps one more window per axis when the last stride leaves a partial window at
    the end; PyTorch drops a window that would start past the input. Per axis of size ``n``,
    kernel ``k`` and stride ``s`` that is the windows starting at ``i * s`` with
    ``i * s <= s * ceil((n - k) / s)`` (``k >= s``) or ``i * s <= n - 1`` (``k < s``). A
    "valid" pool over the input padded at the end with ``p = min(k, s) - 1`` rows of the
    dtype's lowest value has exactly these windows (its last start is ``s * floor((n + p - k) / s)``,
    and ``floor((a + s - 1) / s) = ceil(a / s)``), each window holds at least one input
    element, so the padding never wins the max. ``p`` does not depend on ``n``: the layer works
    on inputs of unknown size (``input_shape=(None, None, 3)``).
    """

    def __init__(self, pool_size=3, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides")

    @property
    def end_padding(self):
        """Rows, columns of lowest values appended at the bottom, right: ``min(k, s) - 1`` per axis."""
        return tuple(min(k, s) - 1 for k, s in zip(self.pool_size, self.strides, strict=True))

    def call(self, inputs):
        pad_h, pad_w = self.end_padding
        if pad_h or pad_w:
            inputs = ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], constant_values=_lowest(inputs.dtype))
        return ops.max_pool(inputs, self.pool_size, self.strides, padding="valid", data_format="channels_last")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        sizes = [
            None if n is None else (n + p - k) // s + 1
            for n, k, s, p in zip((height, width), self.pool_size, self.strides, self.end_padding, strict=True)
        ]
        return (batch, *sizes, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


def _axis_padding(size, pool, stride):
    """The standard Keras padding that gives ceil mode's windows on an axis of static ``size``, or ``None``."""
    # Ceil mode keeps one more window when the last stride leaves a partial window.
    # TensorFlow's "same" then gives the same windows when it pads one row at the
    # end only (padding is ignored by the max): true for the 3/2 and 2/2 pools.
    if (size - pool) % stride == 0:
        return "valid"
    same_out = -(-size // stride)
    ceil_out = -(-(size - pool) // stride) + 1
    same_total_pad = (same_out - 1) * stride + pool - size
    if same_out != ceil_out or same_total_pad != 1:
        return None
    return "same"


def max_pool_ceil(x, pool_size=3, strides=2, *, name):
    """Max pooling with PyTorch's ``ceil_mode=True`` output size and windows.

    With static spatial dimensions: standard ``MaxPooling2D`` layers ("valid" or "same" per
    axis; when height and width need different rules, a (k, 1) then a (1, k) pool: max
    pooling is separable, so the result is identical). With an unknown size, or a static size
    no standard padding reproduces: one :class:`CeilMaxPool2D`.
    """
    height, width = x.shape[1], x.shape[2]
    rule_h = None if height is None else _axis_padding(height, pool_size, strides)
    rule_w = None if width is None else _axis_padding(width, pool_size, strides)
    if rule_h is None or rule_w is None:
        return CeilMaxPool2D(pool_size, strides, name=name)(x)
    if rule_h == rule_w:
        return layers.MaxPooling2D(pool_size, strides, padding=rule_h, name=name)(x)
    x = layers.MaxPooling2D((pool_size, 1), (strides, 1), padding=rule_h, name=f"{name}_h")(x)
    return layers.MaxPooling2D((1, pool_size), (1, strides), padding=rule_w, name=name)(x)


def max_pool_symmetric(x, pool_size=3, strides=2, *, name):
    """PyTorch's ``MaxPool2d(k, s, padding=k // 2)`` (odd ``k``) on any input, with standard layers.

    PyTorch pads ``k // 2`` on every side with -inf, so output ``j`` is the max over rows
    ``s * j - k // 2 ... s * j + k // 2`` that exist. TensorFlow's "same" pads the odd extra row at
    the bottom instead (other windows at even sizes), and a zero padding layer differs where the
    input is negative (the pool does not follow a ReLU: timm's Xception blocks, ResNetV2's stem).
    A ``k``/1 "same" pool (``k // 2`` on each side, padding ignored) gives every such window at
    every position; a 1x1 pool of stride ``s`` keeps positions ``0, s, 2s, ...``: the same
    ``floor((n - 1) / s) + 1`` outputs as PyTorch, for any ``n``, known or not. Layers:
    ``{name}_window``, ``{name}``.
    """
    if pool_size % 2 != 1:
        raise ValueError(f"pool_size must be odd for a symmetric padding of pool_size // 2, got {pool_size!r}")
    x = layers.MaxPooling2D(pool_size, 1, padding="same", name=f"{name}_window")(x)
    return layers.MaxPooling2D(1, strides, name=name)(x)
