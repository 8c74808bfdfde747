"""``y + pad_channels(x)``: a residual add whose shortcut has fewer channels than the block.

ReXNet's partial residual (``y[..., :C_x] += x``) and PyramidNet's zero-padded shortcut are
the same operation: the shortcut gets ``C_y - C_x`` zero channels appended, then is added.
"""

import warnings

import keras
from keras import ops

__all__ = ["ChannelPadAdd", "PartialResidualAdd", "residual_add"]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class ChannelPadAdd(keras.layers.Layer):
    """``[y, x] -> y + pad_channels(x)``, i.e. ``concat(y[..., :C_x] + x, y[..., C_x:])``, for ``C_x <= C_y``.

    Two ops (PAD, ADD) that every TFLite backend runs natively.
    """

    def call(self, inputs):
        y, x = inputs
        extra = y.shape[-1] - x.shape[-1]
        rank = len(x.shape)
        x = ops.pad(x, [[0, 0]] * (rank - 1) + [[0, extra]])
        return y + x

    def build(self, input_shape):
        y_shape, x_shape = input_shape
        if x_shape[-1] > y_shape[-1]:
            raise ValueError(
                f"{type(self).__name__} needs shortcut channels <= block channels, got {x_shape[-1]} > {y_shape[-1]}"
            )

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class PartialResidualAdd(ChannelPadAdd):
    """Deprecated name of :class:`ChannelPadAdd`, kept so that ``.keras`` files saved with it load."""

    def __init__(self, **kwargs):
        warnings.warn(
            "PartialResidualAdd is deprecated: it is ChannelPadAdd under its old name (re-save the model "
            "to store it as ChannelPadAdd)",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(**kwargs)


def residual_add(y, shortcut, *, name):
    """``y + shortcut``; a :class:`ChannelPadAdd` when the shortcut is narrower."""
    if shortcut.shape[-1] == y.shape[-1]:
        return keras.layers.Add(name=name)([y, shortcut])
    return ChannelPadAdd(name=name)([y, shortcut])
