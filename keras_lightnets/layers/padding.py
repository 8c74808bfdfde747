"""Explicit padding rules, so a Keras graph pads exactly like its reference.

PyTorch pads ``k // 2`` on every side; TensorFlow's ``"same"`` puts the odd
extra row/column at the bottom/right. At stride 1 with an odd kernel both are
the same, at stride 2 they are not, and outputs differ from the first layer on.
"""

from keras import layers

__all__ = ["PADDING_MODES", "pad_for_conv"]

PADDING_MODES = ("symmetric", "same", "bottom_right", "valid")


def _as_pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


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
