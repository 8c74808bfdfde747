"""Convolution → BatchNorm → activation, the unit every family is made of."""

from keras import layers

from keras_lightnets.layers.activations import activation_layer
from keras_lightnets.layers.anti_aliasing import anti_aliased_downsample
from keras_lightnets.layers.padding import pad_for_conv

__all__ = ["conv_bn_act"]


def conv_bn_act(
    x,
    filters,
    kernel_size=1,
    strides=1,
    *,
    groups=1,
    depthwise=False,
    depth_multiplier=1,
    activation="relu",
    use_bias=False,
    use_bn=True,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    padding="symmetric",
    kernel_initializer="glorot_uniform",
    bn_gamma_initializer="ones",
    anti_aliasing=None,
    name,
):
    """Conv2D (or DepthwiseConv2D) → BatchNormalization → activation.

    Layers are named ``{name}_conv``, ``{name}_bn`` and ``{name}_act`` (plus
    ``{name}_pad`` when explicit padding is needed), so weight converters and
    quantization can address them.

    Args:
        x: input tensor (NHWC).
        filters: output channels (ignored for depthwise, which keeps
            ``in_channels * depth_multiplier``).
        kernel_size, strides: as in ``keras.layers.Conv2D``.
        groups: grouped convolution (``1`` = dense).
        depthwise: use ``DepthwiseConv2D``.
        activation: name understood by :func:`activation_layer`, or ``None``
            for a linear output.
        use_bn: add the BatchNormalization layer (SqueezeNet has none).
        bn_epsilon: 1e-5 follows PyTorch references, 1e-3 follows Keras/TF ones.
        bn_momentum: Keras convention (PyTorch ``momentum=0.1`` is ``0.9`` here).
        padding: ``"symmetric"`` (PyTorch: ``k // 2`` on every side),
            ``"same"`` (TensorFlow: extra row/column at the bottom/right),
            ``"bottom_right"`` (keras.applications MobileNet's stride-2
            depthwise padding) or ``"valid"``.
        kernel_initializer: the convolution's (Keras's default unless the
            reference initializes otherwise and training depends on it).
        bn_gamma_initializer: ``"zeros"`` on a residual branch's last BN starts the block
            as the identity (torchvision ``zero_init_residual``, pycls).
        anti_aliasing: ``None``, or ``"avg"`` / ``"blur"``: a strided convolution runs at stride 1
            and :func:`~keras_lightnets.layers.anti_aliasing.anti_aliased_downsample` takes the
            stride after the activation (``{name}_aa``; timm's ``aa_layer``).
    """
    aliased = anti_aliasing is not None and strides != 1
    conv_strides = 1 if aliased else strides
    x, conv_padding = pad_for_conv(x, kernel_size, conv_strides, padding, name=f"{name}_pad")
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel_size,
            strides=conv_strides,
            padding=conv_padding,
            depth_multiplier=depth_multiplier,
            use_bias=use_bias,
            depthwise_initializer=kernel_initializer,
            name=f"{name}_conv",
        )(x)
    else:
        x = layers.Conv2D(
            filters,
            kernel_size,
            strides=conv_strides,
            padding=conv_padding,
            groups=groups,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            name=f"{name}_conv",
        )(x)
    if use_bn:
        x = layers.BatchNormalization(
            epsilon=bn_epsilon, momentum=bn_momentum, gamma_initializer=bn_gamma_initializer, name=f"{name}_bn"
        )(x)
    if activation is not None:
        x = activation_layer(activation, name=f"{name}_act")(x)
    if aliased:
        x = anti_aliased_downsample(x, anti_aliasing, strides, name=f"{name}_aa")
    return x
