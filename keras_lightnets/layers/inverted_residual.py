"""Inverted residual (MobileNetV2), with ReXNet's SE placement and partial residual."""

from keras_lightnets.layers.activations import activation_layer
from keras_lightnets.layers.channel_pad_add import residual_add
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.stochastic_depth import StochasticDepth

__all__ = ["inverted_residual"]


def inverted_residual(
    x,
    filters,
    strides=1,
    *,
    expanded=None,
    kernel_size=3,
    activation="relu6",
    dw_activation="relu6",
    se=None,
    dw_activation_after_se=False,
    residual="full",
    drop_path_rate=0.0,
    bn_epsilon=1e-3,
    bn_momentum=0.999,
    padding="same",
    kernel_initializer="glorot_uniform",
    name,
):
    """Expand 1x1 → depthwise kxk → [SE] → project 1x1 (linear) → [+ shortcut].

    Args:
        filters: output channels.
        expanded: channels after the 1x1 expansion; ``None`` or equal to the
            input channels means no expansion conv (MobileNetV2's first block).
        activation: after the expansion conv.
        dw_activation: after the depthwise conv.
        se: ``se(x, *, name) -> x``, a squeeze-excite applied to the depthwise output, or
            ``None``. A callable rather than flags because families differ in more than
            the width (ReXNet: BN inside, hidden ``channels // 12``; EfficientNet: SiLU,
            hidden from the block input; MnasNet: ReLU), e.g.
            ``functools.partial(squeeze_excite, hidden=16, activation="silu")``.
        dw_activation_after_se: ReXNet order, ``dw → BN → SE → act``; otherwise
            ``dw → BN → act → SE`` (MobileNetV3 / EfficientNet order).
        residual: ``"full"`` adds the shortcut when stride is 1 and channels
            match (MobileNetV2); ``"partial"`` also when the input is narrower,
            adding it to the first input-many channels (ReXNet); ``None`` never.
        drop_path_rate: stochastic depth on the residual branch (only where a
            shortcut exists).
        kernel_initializer: of the three convolutions (keras.applications' EfficientNet
            draws them fan-out truncated normal; Keras's default otherwise).

    Layers: ``{name}_expand_*``, ``{name}_dw_*``, ``{name}_se*``, ``{name}_project_*``,
    ``{name}_drop_path``, ``{name}_add``.
    """
    if residual not in ("full", "partial", None):
        raise ValueError(f"residual must be 'full', 'partial' or None, got {residual!r}")
    conv_args = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, kernel_initializer=kernel_initializer)
    shortcut = x
    in_channels = x.shape[-1]
    if expanded is not None and expanded != in_channels:
        x = conv_bn_act(x, expanded, 1, activation=activation, padding="valid", name=f"{name}_expand", **conv_args)
    x = conv_bn_act(
        x,
        None,
        kernel_size,
        strides,
        depthwise=True,
        activation=None if dw_activation_after_se else dw_activation,
        padding=padding,
        name=f"{name}_dw",
        **conv_args,
    )
    if se is not None:
        x = se(x, name=f"{name}_se")
    if dw_activation_after_se:
        x = activation_layer(dw_activation, name=f"{name}_dw_act")(x)
    x = conv_bn_act(x, filters, 1, activation=None, padding="valid", name=f"{name}_project", **conv_args)

    has_shortcut = strides == 1 and (
        (residual == "full" and in_channels == filters) or (residual == "partial" and in_channels <= filters)
    )
    if not has_shortcut:
        return x
    if drop_path_rate > 0.0:
        x = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(x)
    return residual_add(x, shortcut, name=f"{name}_add")
