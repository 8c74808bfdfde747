"""ReXNet's partial residual: add the shortcut to the first ``C_in`` channels only."""

import keras
from keras import ops

__all__ = ["PartialResidualAdd", "residual_add"]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class PartialResidualAdd(keras.layers.Layer):
    """``[y, x] -> concat(y[..., :C_x] + x, y[..., C_x:])`` for ``C_x <= C_y``.

    Written as ``y + pad(x)`` (zero channels appended to the shortcut): the
    same numbers, and two ops (PAD, ADD) that every TFLite backend runs natively.
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
                f"PartialResidualAdd needs shortcut channels <= block channels, got {x_shape[-1]} > {y_shape[-1]}"
            )

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def residual_add(y, shortcut, *, name):
    """``y + shortcut``; a :class:`PartialResidualAdd` when the shortcut is narrower."""
    if shortcut.shape[-1] == y.shape[-1]:
        return keras.layers.Add(name=name)([y, shortcut])
    return PartialResidualAdd(name=name)([y, shortcut])
