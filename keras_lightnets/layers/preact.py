"""Pre-activation unit BatchNorm → activation → convolution (He et al. 2016, "Identity Mappings").

DenseNet's layers and transitions, DPN's blocks and PyramidNet's units are made of it:

- DenseNet (torchvision): ``bn_act_conv(x, 4 * k, 1)`` then ``bn_act_conv(x, k, 3)``;
  transition ``bn_act_conv(x, c // 2, 1)`` + 2x2 average pool. keras.applications DenseNet:
  the same with ``bn_epsilon=1.001e-5, bn_momentum=0.99, padding="same"``.
- DPN (timm ``BnActConv2d``): ``bn_epsilon=1e-3``, ``groups=G`` on the 3x3.
- PyramidNet: its first unit has no activation (``activation=None``: BN → conv); the BN after
  the unit's last convolution is not part of this unit.
"""

from keras import layers

from keras_lightnets.layers.activations import ACTIVATIONS, activation_layer
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.padding import PADDING_MODES

__all__ = ["bn_act_conv"]


def bn_act_conv(
    x,
    filters,
    kernel_size=1,
    strides=1,
    *,
    groups=1,
    activation="relu",
    use_bias=False,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    padding="symmetric",
    kernel_initializer="glorot_uniform",
    name,
):
    """BatchNormalization → activation → Conv2D, the pre-activation order.

    Layers are named ``{name}_bn``, ``{name}_act``, ``{name}_pad`` (when explicit padding is
    needed) and ``{name}_conv``.

    Args:
        x: input tensor (NHWC).
        filters: output channels.
        kernel_size, strides: as in ``keras.layers.Conv2D``.
        groups: grouped convolution (``1`` = dense).
        activation: name understood by :func:`activation_layer`, or ``None`` for BN → conv.
        use_bias: bias on the convolution.
        bn_epsilon: 1e-5 follows PyTorch references, 1.001e-5 Keras DenseNet, 1e-3 DPN.
        bn_momentum: Keras convention (PyTorch ``momentum=0.1`` is ``0.9`` here).
        padding: see :func:`~keras_lightnets.layers.pad_for_conv` (``"symmetric"``: PyTorch).
        kernel_initializer: the convolution's.
    """
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS} or None, got {activation!r}")
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    if not isinstance(groups, int) or groups < 1 or x.shape[-1] % groups or filters % groups:
        raise ValueError(
            f"groups must be a positive divisor of the input ({x.shape[-1]}) and output ({filters}) channels, "
            f"got {groups!r}"
        )
    x = layers.BatchNormalization(epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_bn")(x)
    if activation is not None:
        x = activation_layer(activation, name=f"{name}_act")(x)
    # The convolution alone (no BN, no activation after it): conv_bn_act's naming and padding.
    return conv_bn_act(
        x,
        filters,
        kernel_size,
        strides,
        groups=groups,
        activation=None,
        use_bias=use_bias,
        use_bn=False,
        padding=padding,
        kernel_initializer=kernel_initializer,
        name=name,
    )
