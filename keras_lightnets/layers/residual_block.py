"""The ResNet residual block (He et al. 2016), basic and bottleneck, as ResNet, ResNeXt and RegNet use it.

How each reference maps onto :func:`residual_block` (``filters`` is always the block's output width):

- torchvision ResNet v1.5 ``BasicBlock(inplanes, planes, stride)``: ``kind="basic"``,
  ``filters=planes``. ``Bottleneck(inplanes, planes, stride, groups, base_width)``:
  ``kind="bottleneck"``, ``filters=planes * 4``,
  ``bottleneck_width=int(planes * base_width / 64) * groups``, ``groups=groups``; the defaults
  (stride on the 3x3, ``padding="symmetric"``, BN epsilon 1e-5, no bias) are torchvision's;
  ``zero_init_residual=True`` is ``zero_init_last_bn=True``.
- ResNeXt (torchvision ``resnext50_32x4d``: ``groups=32, width_per_group=4``): as above,
  ``bottleneck_width=int(planes * 4 / 64) * 32``, ``groups=32`` (or ``group_width=4 * planes // 64``).
- keras.applications ResNet v1 ``residual_block_v1(x, filters, stride)``: ``filters=4 * filters``,
  ``bottleneck_width=filters``, ``stride_on="1x1"``, ``use_bias=True``, ``bn_epsilon=1.001e-5``,
  ``bn_momentum=0.99``, ``padding="same"``.
- pycls RegNetX / RegNetY ``ResBottleneckBlock(w_in, w_out, stride, bot_mul, group_w, se_r)``:
  ``filters=w_out``, ``bottleneck_width=int(round(w_out * bot_mul))`` (RegNet: ``bot_mul=1``),
  ``group_width=group_w``, and for Y
  ``se=functools.partial(squeeze_excite, hidden=int(round(se_r * w_in)))`` (SE width from the
  block *input*, ``se_r=0.25``). pycls ``ResBasicBlock`` (AnyNet) is ``kind="basic"``.
  ``cfg.BN.ZERO_INIT_FINAL_GAMMA`` is ``zero_init_last_bn``.
- ResNet-D / timm ``avg_down=True``: ``avg_down=True`` (2x2/2 average pool, then a stride-1
  1x1 projection).
"""

from numbers import Integral

from keras import layers

from keras_lightnets.layers.activations import ACTIVATIONS, activation_layer
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.padding import PADDING_MODES
from keras_lightnets.layers.stochastic_depth import StochasticDepth

__all__ = ["residual_block"]

KINDS = ("basic", "bottleneck")
STRIDE_ON = ("3x3", "1x1")


def _positive_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 1


def _width_and_groups(kind, filters, bottleneck_width, groups, group_width, stride_on):
    """Validates the bottleneck-only options; returns ``(width, groups)`` of the (first) 3x3 convolution."""
    if kind == "basic":
        for option, value, allowed in (
            ("bottleneck_width", bottleneck_width, (None,)),
            ("groups", groups, (None, 1)),
            ("group_width", group_width, (None,)),
            ("stride_on", stride_on, ("3x3",)),
        ):
            if value not in allowed:
                raise ValueError(
                    f"{option} applies to kind='bottleneck' only, got {option}={value!r} with kind='basic'"
                )
        return int(filters), 1
    width = filters // 4 if bottleneck_width is None else bottleneck_width
    if not _positive_int(width):
        raise ValueError(f"bottleneck_width must be a positive integer, got {bottleneck_width!r}")
    if groups is not None and group_width is not None:
        raise ValueError(f"give groups or group_width, not both (got groups={groups!r}, group_width={group_width!r})")
    if group_width is not None:
        if not _positive_int(group_width) or width % group_width:
            raise ValueError(
                f"group_width must be a positive divisor of the bottleneck width {width}, got {group_width!r}"
            )
        return int(width), int(width // group_width)
    groups = 1 if groups is None else groups
    if not _positive_int(groups) or width % groups:
        raise ValueError(f"groups must be a positive divisor of the bottleneck width {width}, got {groups!r}")
    return int(width), int(groups)


def residual_block(
    x,
    filters,
    strides=1,
    *,
    kind="bottleneck",
    bottleneck_width=None,
    groups=None,
    group_width=None,
    se=None,
    stride_on="3x3",
    avg_down=False,
    zero_init_last_bn=False,
    use_bias=False,
    activation="relu",
    final_activation=True,
    drop_path_rate=0.0,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    padding="symmetric",
    kernel_initializer="glorot_uniform",
    name,
):
    """Residual block: ``act(F(x) + shortcut(x))``, ``F`` basic (3x3 → 3x3) or bottleneck (1x1 → 3x3 → 1x1).

    ``F`` is made of conv → BN → activation units; the last unit has no activation.
    Bottleneck: ``1x1(w) → 3x3(w, groups, stride) → [se] → 1x1(filters)``;
    basic: ``3x3(filters, stride) → 3x3(filters) → [se]``. The shortcut is the identity when
    ``strides == 1`` and the input has ``filters`` channels, otherwise a projection
    ``1x1 conv(stride) → BN`` (``avg_down``: ``AvgPool 2x2/2 → 1x1 conv → BN``).
    See the module docstring for how torchvision, Keras, ResNeXt, pycls RegNet and ResNet-D map
    onto the options.

    Args:
        filters: output channels of the block.
        strides: 1 or 2.
        kind: ``"basic"`` or ``"bottleneck"``.
        bottleneck_width: width ``w`` of the bottleneck's 1x1 and 3x3 convolutions;
            ``None`` is ``filters // 4`` (ResNet's expansion 4). Bottleneck only.
        groups: groups of the 3x3 convolution (ResNeXt cardinality). Bottleneck only.
        group_width: channels per group instead (pycls: ``groups = w // group_width``).
        se: ``se(x, name=...)`` applied to the 3x3 unit's output (the last unit's output in a
            basic block), e.g. ``functools.partial(squeeze_excite, hidden=...)``; ``None`` for none.
        stride_on: ``"3x3"`` (torchvision ResNet v1.5, pycls) or ``"1x1"`` (the first 1x1, as in
            the original ResNet and keras.applications ResNet v1). Bottleneck only.
        avg_down: ResNet-D projection shortcut: the stride moves to a 2x2 average pool
            (PyTorch's ``ceil_mode=True, count_include_pad=False``) before a stride-1 1x1 conv.
        zero_init_last_bn: the last BN's gamma starts at zero, so the block starts as
            ``act(shortcut(x))`` (torchvision ``zero_init_residual``, timm ``zero_init_last``).
        use_bias: biases on every convolution (keras.applications ResNet v1).
        activation: of the inner units and after the add.
        final_activation: apply ``activation`` after the add (every reference here); ``False``
            leaves the sum linear (timm RegNet ``linear_out``).
        drop_path_rate: stochastic depth on the residual branch.
        bn_epsilon, bn_momentum: every BatchNorm's (Keras momentum: PyTorch 0.1 is 0.9).
        padding: of the 3x3 convolutions, see :func:`~keras_lightnets.layers.pad_for_conv`
            (``"symmetric"``: PyTorch; ``"same"``: TensorFlow). 1x1 convolutions never pad.
        kernel_initializer: of every convolution.

    Layers: ``{name}_conv1_*``, ``{name}_conv2_*`` (``_pad``, ``_conv``, ``_bn``, ``_act``),
    ``{name}_conv3_*`` (bottleneck), ``{name}_se``, ``{name}_shortcut_pool``,
    ``{name}_shortcut_conv``, ``{name}_shortcut_bn``, ``{name}_drop_path``, ``{name}_add``
    and ``{name}_out`` (the final activation).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not _positive_int(filters):
        raise ValueError(f"filters must be a positive integer, got {filters!r}")
    if strides not in (1, 2):
        raise ValueError(f"strides must be 1 or 2, got {strides!r}")
    if stride_on not in STRIDE_ON:
        raise ValueError(f"stride_on must be one of {STRIDE_ON}, got {stride_on!r}")
    if se is not None and not callable(se):
        raise ValueError(f"se must be a callable se(x, name=...) or None, got {se!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    if not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
    width, groups = _width_and_groups(kind, filters, bottleneck_width, groups, group_width, stride_on)
    filters = int(filters)
    norm = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)
    conv = dict(use_bias=use_bias, kernel_initializer=kernel_initializer)
    # The branch's last conv → BN has no activation (it comes after the add).
    last = dict(activation=None, bn_gamma_initializer="zeros" if zero_init_last_bn else "ones", **norm, **conv)
    shortcut = x

    if kind == "basic":
        x = conv_bn_act(
            x, filters, 3, strides, activation=activation, padding=padding, name=f"{name}_conv1", **norm, **conv
        )
        x = conv_bn_act(x, filters, 3, 1, padding=padding, name=f"{name}_conv2", **last)
        if se is not None:
            x = se(x, name=f"{name}_se")
    else:
        stride_1x1, stride_3x3 = (strides, 1) if stride_on == "1x1" else (1, strides)
        x = conv_bn_act(
            x, width, 1, stride_1x1, activation=activation, padding="valid", name=f"{name}_conv1", **norm, **conv
        )
        x = conv_bn_act(
            x,
            width,
            3,
            stride_3x3,
            groups=groups,
            activation=activation,
            padding=padding,
            name=f"{name}_conv2",
            **norm,
            **conv,
        )
        if se is not None:
            x = se(x, name=f"{name}_se")
        x = conv_bn_act(x, filters, 1, 1, padding="valid", name=f"{name}_conv3", **last)

    if strides != 1 or shortcut.shape[-1] != filters:
        projection_stride = strides
        if avg_down and strides != 1:
            # TensorFlow's "same" average pool pads the odd last row/column and leaves the padding out
            # of the mean: the windows and divisors of PyTorch's ceil_mode=True, count_include_pad=False.
            shortcut = layers.AveragePooling2D(2, strides, padding="same", name=f"{name}_shortcut_pool")(shortcut)
            projection_stride = 1
        shortcut = conv_bn_act(
            shortcut,
            filters,
            1,
            projection_stride,
            activation=None,
            padding="valid",
            name=f"{name}_shortcut",
            **norm,
            **conv,
        )
    if drop_path_rate > 0.0:
        x = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(x)
    # Shortcut first, as keras.applications adds them: Keras orders layers of equal depth by the
    # Add's input order, so the weighted layers then come in the same order and Keras
    # checkpoints copy across layer by layer.
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    if final_activation:
        x = activation_layer(activation, name=f"{name}_out")(x)
    return x
