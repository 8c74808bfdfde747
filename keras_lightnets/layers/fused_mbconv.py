"""Fused-MBConv (EfficientNetV2, Tan & Le 2021): MBConv's 1x1 expansion and kxk depthwise
convolution fused into one regular kxk convolution."""

from keras_lightnets.layers.channel_pad_add import residual_add
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.stochastic_depth import StochasticDepth

__all__ = ["fused_mbconv"]


def fused_mbconv(
    x,
    filters,
    strides=1,
    *,
    expansion=4,
    kernel_size=3,
    activation="silu",
    se=None,
    drop_path_rate=0.0,
    bn_epsilon=1e-3,
    bn_momentum=0.9,
    padding="same",
    kernel_initializer="glorot_uniform",
    anti_aliasing=None,
    name,
):
    """kxk conv (expand, strided) → BN → act → [SE] → 1x1 conv (project, linear) → BN → [+ shortcut].

    With ``expansion=1`` there is nothing to project: one kxk strided conv → BN → act, named
    ``{name}_project_*`` as keras.applications names it (timm's ``ConvBnAct``, torchvision's
    one-layer ``FusedMBConv``).

    Args:
        filters: output channels.
        expansion: the expanded width is ``input channels * expansion``.
        se: ``se(x, *, name) -> x`` applied to the expanded map, or ``None`` (every published
            EfficientNetV2 has none in its fused stages; keras.applications allows one).
        drop_path_rate: stochastic depth on the residual branch, which exists when the stride
            is 1 and the channels are unchanged.
        padding: of the kxk convolution: ``"same"`` (TensorFlow) or ``"symmetric"`` (PyTorch).
        anti_aliasing: ``None``, ``"avg"`` or ``"blur"``: the strided kxk convolution runs at stride 1
            and a low-pass pool after its activation takes the stride (:func:`conv_bn_act`).

    Layers: ``{name}_expand_*``, ``{name}_se*``, ``{name}_project_*``, ``{name}_drop_path``,
    ``{name}_add``.
    """
    conv_args = {"bn_epsilon": bn_epsilon, "bn_momentum": bn_momentum, "kernel_initializer": kernel_initializer}
    shortcut = x
    in_channels = x.shape[-1]
    if expansion != 1:
        x = conv_bn_act(
            x,
            in_channels * expansion,
            kernel_size,
            strides,
            activation=activation,
            padding=padding,
            anti_aliasing=anti_aliasing,
            name=f"{name}_expand",
            **conv_args,
        )
    if se is not None:
        x = se(x, name=f"{name}_se")
    if expansion != 1:
        x = conv_bn_act(x, filters, 1, activation=None, padding="valid", name=f"{name}_project", **conv_args)
    else:
        x = conv_bn_act(
            x,
            filters,
            kernel_size,
            strides,
            activation=activation,
            padding=padding,
            anti_aliasing=anti_aliasing,
            name=f"{name}_project",
            **conv_args,
        )
    if strides != 1 or in_channels != filters:
        return x
    if drop_path_rate > 0.0:
        x = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(x)
    return residual_add(x, shortcut, name=f"{name}_add")
