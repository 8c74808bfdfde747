"""SqueezeNet's Fire module (Iandola et al., 2016)."""

from keras import layers

from keras_lightnets.layers.conv_bn_act import conv_bn_act

__all__ = ["fire"]


def fire(x, squeeze, expand1x1, expand3x3, *, activation="relu", kernel_initializer="glorot_uniform", name):
    """Fire: squeeze 1x1 → ReLU → concat[expand 1x1 → ReLU, expand 3x3 → ReLU].

    All convolutions have a bias and no BatchNorm, as in the paper and
    torchvision. Concatenation order is [1x1, 3x3]. Layers:
    ``{name}_squeeze_*``, ``{name}_expand1x1_*``, ``{name}_expand3x3_*``,
    ``{name}_concat``. ``kernel_initializer`` is every convolution's.
    """
    conv = dict(
        activation=activation,
        use_bias=True,
        use_bn=False,
        padding="symmetric",
        kernel_initializer=kernel_initializer,
    )
    x = conv_bn_act(x, squeeze, 1, name=f"{name}_squeeze", **conv)
    e1 = conv_bn_act(x, expand1x1, 1, name=f"{name}_expand1x1", **conv)
    e3 = conv_bn_act(x, expand3x3, 3, name=f"{name}_expand3x3", **conv)
    return layers.Concatenate(name=f"{name}_concat")([e1, e3])
