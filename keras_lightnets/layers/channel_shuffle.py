"""Channel shuffle (ShuffleNet; ParNet's grouped blocks): mix the channels of ``groups`` groups.

Channel ``k * C/g + i`` (group ``k``, position ``i``) moves to ``i * g + k``: the channels are
read group-major and written position-major, so the next grouped convolution sees every
group. Shuffling ``concat([a, b])`` with ``groups=2`` interleaves the two inputs
``[a0, b0, a1, b1, ...]``, which is ParNet's fusion of two streams.
"""

import keras
from keras import ops

__all__ = ["ChannelShuffle"]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class ChannelShuffle(keras.layers.Layer):
    """``(B, H, W, C) -> (B, H, W, C)`` with the channels of ``groups`` groups interleaved.

    Three ops (RESHAPE, TRANSPOSE, RESHAPE) that TFLite runs natively, in INT8 too; a pure
    permutation, so the output keeps the input's quantization range.
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"`groups` must be a positive integer, got {groups!r}")
        self.groups = groups

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"{type(self).__name__} needs a channel count divisible by groups={self.groups}, got {channels}"
            )

    def call(self, inputs):
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        x = ops.reshape(inputs, (-1, shape[1], shape[2], self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
