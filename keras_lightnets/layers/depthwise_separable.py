"""Depthwise separable convolution (MobileNetV1's block)."""

from keras_lightnets.layers.conv_bn_act import conv_bn_act

__all__ = ["depthwise_separable"]


def depthwise_separable(
    x,
    filters,
    strides=1,
    *,
    kernel_size=3,
    depth_multiplier=1,
    activation="relu6",
    bn_epsilon=1e-3,
    bn_momentum=0.99,
    padding="same",
    name,
):
    """Depthwise kxk conv → BN → act → pointwise 1x1 conv → BN → act.

    Layers: ``{name}_dw_*`` and ``{name}_pw_*`` (see :func:`conv_bn_act`).
    The padding rule applies to the depthwise conv; the pointwise conv never pads.
    """
    norm = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)
    x = conv_bn_act(
        x,
        None,
        kernel_size,
        strides,
        depthwise=True,
        depth_multiplier=depth_multiplier,
        activation=activation,
        padding=padding,
        name=f"{name}_dw",
        **norm,
    )
    return conv_bn_act(x, filters, 1, activation=activation, padding="valid", name=f"{name}_pw", **norm)
