"""Explicit padding rules, so a Keras graph pads exactly like its reference.

PyTorch pads ``k // 2`` on every side; TensorFlow's ``"same"`` puts the odd
extra row/column at the bottom/right. At stride 1 with an odd kernel both are
the same, at stride 2 they are not, and outputs differ from the first layer on.
"""

import keras
from keras import layers, ops

__all__ = ["PADDING_MODES", "SamePadding2D", "pad_for_conv", "pad_same", "same_padding"]

PADDING_MODES = ("symmetric", "same", "bottom_right", "valid")


def _as_pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def _positive_pair(value, argument):
    pair = _as_pair(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{argument} must be a positive int or a pair of them, got {value!r}")
    return pair


def same_padding(size, kernel_size, strides):
    """``(before, after)``: the zeros TensorFlow's "same" puts around an axis of ``size`` for a
    window of ``kernel_size`` and ``strides`` (the odd one at the end). ``size`` is an int or, in a
    graph of unknown size, a scalar tensor (the result is then tensors too).

    "same" keeps ``ceil(n / s)`` windows: ``k - s + ((-n) mod s)`` zeros in all, at least none.
    """
    total = kernel_size - strides + (-size) % strides
    total = max(total, 0) if isinstance(total, int) else ops.maximum(total, 0)
    return total // 2, total - total // 2


def pad_for_conv(x, kernel_size, strides, padding, *, name):
    """Returns ``(x, conv_padding)``: ``x`` padded where the rule needs an explicit layer.

    ``conv_padding`` is what the following convolution or pooling layer uses.
    """
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    kh, kw = _as_pair(kernel_size)
    sh, sw = _as_pair(strides)
    if padding == "valid":
        return x, "valid"
    if padding == "same":
        return x, "same"
    if padding == "bottom_right":
        if (sh, sw) == (1, 1):
            return x, "same"
        return layers.ZeroPadding2D(((0, 1), (0, 1)), name=name)(x), "valid"
    # symmetric
    if (sh, sw) == (1, 1) and kh % 2 == 1 and kw % 2 == 1:
        return x, "same"  # identical to k // 2 on each side, without an extra layer
    if kh // 2 == 0 and kw // 2 == 0:
        return x, "valid"
    return layers.ZeroPadding2D((kh // 2, kw // 2), name=name)(x), "valid"


@keras.saving.register_keras_serializable(package="keras_lightnets")
class SamePadding2D(keras.layers.Layer):
    """Zero padding as TensorFlow's "same" pads for a ``kernel_size`` / ``strides`` window, for any
    input size, NHWC: a "valid" convolution or pooling after it sees TF "same"'s windows, the zeros
    included (an average pool counts them, a max pool sees them: keras.applications' NASNet).

    At stride 2 the padding depends on the parity of the size (one row less at the top of an even
    map), so no ``ZeroPadding2D`` does it for a size known only at run time. :func:`pad_same` uses
    ``ZeroPadding2D`` where the size is known and this layer where it is not.
    """

    def __init__(self, kernel_size=3, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = _positive_pair(kernel_size, "kernel_size")
        self.strides = _positive_pair(strides, "strides")

    def call(self, inputs):
        shape = ops.shape(inputs)
        rows, cols = (
            same_padding(size, k, s) for size, k, s in zip(shape[1:3], self.kernel_size, self.strides, strict=True)
        )
        return ops.pad(inputs, [[0, 0], list(rows), list(cols), [0, 0]])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        sizes = [
            None if n is None else n + sum(same_padding(n, k, s))
            for n, k, s in zip((height, width), self.kernel_size, self.strides, strict=True)
        ]
        return (batch, *sizes, channels)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides}


def pad_same(x, kernel_size, strides=2, *, name):
    """``x`` zero-padded as TF's "same" pads it for a ``kernel_size`` / ``strides`` window, for a
    "valid" layer after it: a ``ZeroPadding2D`` where the size is known (keras.applications'
    ``correct_pad``), a :class:`SamePadding2D` where it is not. Layer: ``{name}``."""
    kernel_size, strides = _positive_pair(kernel_size, "kernel_size"), _positive_pair(strides, "strides")
    height, width = x.shape[1:3]
    if height is None or width is None:
        return SamePadding2D(kernel_size, strides, name=name)(x)
    padding = tuple(same_padding(n, k, s) for n, k, s in zip((height, width), kernel_size, strides, strict=True))
    return layers.ZeroPadding2D(padding, name=name)(x)
