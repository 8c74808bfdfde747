"""Layer scale (Touvron et al. 2021, CaiT, arXiv 2103.17239): a learned per-channel gain on a
residual branch, ``x * gamma``, initialized small (ConvNeXt: 1e-6) so that each block starts near
the identity."""

import keras
from keras import ops

__all__ = ["LayerScale", "load_layer_scale"]


@keras.saving.register_keras_serializable(package="keras_lightnets")
class LayerScale(keras.layers.Layer):
    """``x * gamma`` with one trainable ``gamma`` per channel (the last axis), ``init_value`` at first.

    keras.applications' ConvNeXt has its own ``LayerScale`` (weight ``gamma``, shape ``(C,)``), timm
    keeps it in ``gamma`` / ``ls.gamma``, torchvision in ``layer_scale`` (shape ``(C, 1, 1)``): all
    load into this one. No Keras layer does it (``Multiply`` needs a tensor, ``Rescaling`` one scale).
    In TFLite it is one MUL by a constant vector, in INT8 too.
    """

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        if isinstance(init_value, bool) or not isinstance(init_value, int | float) or not init_value > 0:
            raise ValueError(f"`init_value` must be a positive number, got {init_value!r}")
        self.init_value = float(init_value)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{type(self).__name__} needs a known number of channels, got shape {input_shape}")
        self.gamma = self.add_weight(
            name="gamma", shape=(channels,), initializer=keras.initializers.Constant(self.init_value)
        )

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


def load_layer_scale(layer, arrays):
    """Sets ``layer``'s ``gamma`` from ``[gamma]`` in any published shape: ``(C,)`` (keras.applications,
    timm) or torchvision's ``(C, 1, 1)``; ``ValueError`` for another size."""
    (gamma,) = arrays
    channels = int(layer.gamma.shape[0])
    if gamma.size != channels:
        raise ValueError(f"layer {layer.name!r} takes {channels} layer-scale values, got shape {tuple(gamma.shape)}")
    layer.gamma.assign(gamma.reshape(channels).astype(layer.gamma.dtype))
