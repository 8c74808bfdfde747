"""The Ghost module (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020) and
its V2 / V3 forms.

A Ghost module makes half its output channels with a 1x1 convolution and the other half from
those with a cheap depthwise convolution::

    x1 = act(BN(conv1x1(x)))          (the "primary" features, ceil(out / 2) channels)
    x2 = act(BN(dw3x3(x1)))           (the "ghost" features)
    out = concat(x1, x2)

GhostNetV2 (Tang et al., NeurIPS 2022) multiplies it by a DFC attention gate computed at half
resolution: ``sigmoid(BN(dw5x1(BN(dw1x5(BN(conv1x1(avgpool2x2(x))))))))``, nearest-upsampled.
GhostNetV3 (Liu et al., 2024) trains each convolution as re-parameterizable parallel branches
(three 1x1 + BN for the primary conv; three depthwise 3x3 + BN, a depthwise 1x1 + BN and an
identity BN for the cheap one), all linear in one input, summed by an ``Add`` and then activated:
:func:`keras_lightnets.reparameterize` fuses each sum into one convolution with bias.
"""

from keras import layers

from keras_lightnets.layers.activations import activation_layer
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.nearest_resize import NearestResize
from keras_lightnets.layers.rep_branches import rep_branch_sum

__all__ = ["dfc_attention", "ghost_module", "rep_ghost_module"]

REP_BRANCHES = 3  # GhostNetV3's parallel kxk branches per convolution


def dfc_attention(x, filters, *, bn_epsilon=1e-5, name):
    """The DFC attention gate of ``x`` (GhostNetV2's ``short_conv``): 2x2/2 average pool → 1x1 conv → BN →
    depthwise 1x5 → BN → depthwise 5x1 → BN → sigmoid. Layers ``{name}_pool``, ``{name}_conv/bn``,
    ``{name}_h_conv/bn``, ``{name}_v_conv/bn``, ``{name}_gate``; the gate is at half resolution."""
    norm = {"bn_epsilon": bn_epsilon, "activation": None}
    g = layers.AveragePooling2D(2, name=f"{name}_pool")(x)
    g = conv_bn_act(g, filters, 1, name=name, **norm)
    g = conv_bn_act(g, filters, (1, 5), depthwise=True, name=f"{name}_h", **norm)
    g = conv_bn_act(g, filters, (5, 1), depthwise=True, name=f"{name}_v", **norm)
    return layers.Activation("sigmoid", name=f"{name}_gate")(g)


def _gated(x, out, filters, attention, bn_epsilon, name):
    if not attention:
        return out
    gate = dfc_attention(x, filters, bn_epsilon=bn_epsilon, name=f"{name}_attn")
    gate = NearestResize(name=f"{name}_attn_resize")([gate, out])
    return layers.Multiply(name=f"{name}_attn_mul")([out, gate])


def _check_even(filters, name):
    if filters % 2:
        raise ValueError(f"{name}: a Ghost module's output channels must be even (ratio 2), got {filters}")


def ghost_module(x, filters, *, activation="relu", attention=False, dw_size=3, bn_epsilon=1e-5, name):
    """GhostNet's (V1) Ghost module, with GhostNetV2's DFC attention gate when ``attention``.

    Layers ``{name}_primary_conv/bn/act``, ``{name}_cheap_conv/bn/act``, ``{name}_concat``
    (and ``{name}_attn_*``). ``activation=None``: linear (the second module of a bottleneck).
    """
    _check_even(filters, name)
    norm = {"bn_epsilon": bn_epsilon, "activation": activation}
    x1 = conv_bn_act(x, filters // 2, 1, name=f"{name}_primary", **norm)
    x2 = conv_bn_act(x1, filters // 2, dw_size, depthwise=True, name=f"{name}_cheap", **norm)
    out = layers.Concatenate(name=f"{name}_concat")([x1, x2])
    return _gated(x, out, filters, attention, bn_epsilon, name)


def rep_ghost_module(x, filters, *, activation="relu", attention=False, dw_size=3, bn_epsilon=1e-5, name):
    """GhostNetV3's Ghost module in its training form (``{name}_primary_*``: three 1x1 branches;
    ``{name}_cheap_*``: three depthwise ``dw_size`` branches, a depthwise 1x1 and an identity BN), with
    the DFC gate when ``attention`` (V3's "shortcut" mode)."""
    _check_even(filters, name)
    branches = {"num_branches": REP_BRANCHES, "bn_epsilon": bn_epsilon}
    x1 = rep_branch_sum(
        x, filters // 2, 1, depthwise=False, scale=False, skip=False, name=f"{name}_primary", **branches
    )
    if activation is not None:
        x1 = activation_layer(activation, name=f"{name}_primary_act")(x1)
    x2 = rep_branch_sum(
        x1, filters // 2, dw_size, depthwise=True, scale=True, skip=True, name=f"{name}_cheap", **branches
    )
    if activation is not None:
        x2 = activation_layer(activation, name=f"{name}_cheap_act")(x2)
    out = layers.Concatenate(name=f"{name}_concat")([x1, x2])
    return _gated(x, out, filters, attention, bn_epsilon, name)
