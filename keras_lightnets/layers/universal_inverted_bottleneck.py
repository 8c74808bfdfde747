"""Universal inverted bottleneck (MobileNetV4, Qin et al. 2024, arXiv 2404.10518): the inverted
residual with an optional depthwise convolution before the expansion and one in the middle, which
gives the four blocks the paper's search chooses from:

====================  =====================  ==============================
block                 start depthwise        middle depthwise
====================  =====================  ==============================
ExtraDW               yes                    yes
IB (MobileNetV2's)    no                     yes
ConvNeXt-like         yes                    no
FFN                   no                     no
====================  =====================  ==============================
"""

from keras_lightnets.layers.channel_pad_add import residual_add
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.layers.stochastic_depth import StochasticDepth

__all__ = ["universal_inverted_bottleneck"]


def universal_inverted_bottleneck(
    x,
    filters,
    strides=1,
    *,
    expanded,
    start_kernel_size=0,
    mid_kernel_size=3,
    activation="relu",
    layer_scale=None,
    drop_path_rate=0.0,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    padding="symmetric",
    anti_aliasing=None,
    name,
):
    """[depthwise kxk → BN] → expand 1x1 → BN → act → [depthwise kxk → BN → act] → project 1x1 → BN →
    [layer scale] → [+ shortcut] (timm's ``UniversalInvertedResidual``).

    Args:
        filters: output channels.
        expanded: channels after the 1x1 expansion.
        start_kernel_size: kernel of the depthwise convolution before the expansion (linear), 0 for none;
            it takes the stride when there is no middle one.
        mid_kernel_size: kernel of the depthwise convolution after the expansion, 0 for none.
        layer_scale: initial per-channel gain of the branch (MobileNetV4 hybrids: 1e-5), ``None`` for none.
        drop_path_rate: stochastic depth on the branch, where a shortcut exists (stride 1, same width).
        anti_aliasing: ``None``, ``"avg"`` or ``"blur"``: the strided depthwise convolution runs at stride 1
            and a low-pass pool after its BN (and activation) takes the stride (:func:`conv_bn_act`).

    Layers: ``{name}_dw_start_*``, ``{name}_expand_*``, ``{name}_dw_*``, ``{name}_project_*``,
    ``{name}_layer_scale``, ``{name}_drop_path``, ``{name}_add``.
    """
    if strides != 1 and not (start_kernel_size or mid_kernel_size):
        raise ValueError(f"a strided universal inverted bottleneck needs a depthwise convolution, block {name!r}")
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": bn_momentum}
    shortcut, in_channels = x, x.shape[-1]
    if start_kernel_size:
        start_strides = 1 if mid_kernel_size else strides
        x = conv_bn_act(
            x, None, start_kernel_size, start_strides, depthwise=True, activation=None, padding=padding,
            anti_aliasing=anti_aliasing, name=f"{name}_dw_start", **norm,
        )  # fmt: skip
    x = conv_bn_act(x, expanded, 1, activation=activation, padding="valid", name=f"{name}_expand", **norm)
    if mid_kernel_size:
        x = conv_bn_act(
            x, None, mid_kernel_size, strides, depthwise=True, activation=activation, padding=padding,
            anti_aliasing=anti_aliasing, name=f"{name}_dw", **norm,
        )  # fmt: skip
    x = conv_bn_act(x, filters, 1, activation=None, padding="valid", name=f"{name}_project", **norm)
    if layer_scale is not None:
        x = LayerScale(layer_scale, name=f"{name}_layer_scale")(x)
    if strides != 1 or in_channels != filters:
        return x
    if drop_path_rate > 0.0:
        x = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(x)
    return residual_add(x, shortcut, name=f"{name}_add")
