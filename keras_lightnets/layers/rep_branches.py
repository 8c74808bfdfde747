"""The training form of a structurally reparameterizable block (RepVGG, ParNet).

A RepVGG block (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021) trains
with parallel linear branches of one input ``x``::

    kxk conv -> BN   +   1x1 conv -> BN   [+ BN(x) when in = out and stride 1]

and, because every branch is linear in ``x``, infers with a single kxk convolution with bias:
:func:`keras_lightnets.reparameterize` folds each BN into its convolution, centre-pads the 1x1
kernel, writes the identity BN as a kernel (group-aware) and sums them. ParNet (Goyal et al.,
"Non-deep Networks") downsamples its 1x1 branch with a 2x2 average pool instead of a stride,
which fuses into the same kernel as ``nearest_upsample(w) / 4`` at taps 1..2.

These are plain Keras layers, so ``.keras`` files, tfmot and the tf_keras twin need nothing
new; :func:`keras_lightnets.reparameterize` recognises the pattern from the graph (the layer
types and connections below), not from layer names.
"""

from keras import layers

from keras_lightnets.layers.conv_bn_act import conv_bn_act

__all__ = ["rep_branch_sum", "rep_branches"]


def rep_branches(
    x,
    filters,
    strides=1,
    *,
    groups=1,
    kernel_size=3,
    identity=None,
    avg_pool_shortcut=False,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    name,
):
    """The linear branches of a RepVGG block, before they are summed.

    Returns ``(kxk, one_by_one, identity)``: ``kxk`` is ``{name}_conv_kxk`` (pad, conv, BN),
    ``one_by_one`` is ``{name}_conv_1x1`` (conv, BN; with ``avg_pool_shortcut`` and stride 2,
    ``{name}_conv_1x1_pool`` 2x2 average pooling first and a stride-1 conv), ``identity`` is the
    BN ``{name}_identity`` of ``x`` or ``None``.

    Args:
        filters: output channels.
        strides: 1 or 2.
        groups: groups of both convolutions (the identity kernel is group-aware when fused).
        kernel_size: odd size of the large kernel (3 in RepVGG and ParNet).
        identity: add the identity BN; ``None``: where it is defined (``in == out``, stride 1).
        avg_pool_shortcut: ParNet's stride-2 1x1 branch (average pool, then a 1x1 conv).
        bn_epsilon, bn_momentum: PyTorch's 1e-5 and 0.1 (0.9 in Keras's convention).
    """
    in_channels = x.shape[-1]
    can_have_identity = in_channels == filters and strides == 1
    if identity is None:
        identity = can_have_identity
    elif identity and not can_have_identity:
        raise ValueError(
            f"{name}: an identity branch needs in == out channels and stride 1, got {in_channels} -> {filters}, "
            f"stride {strides}"
        )
    common = {"activation": None, "bn_epsilon": bn_epsilon, "bn_momentum": bn_momentum, "groups": groups}
    kxk = conv_bn_act(x, filters, kernel_size, strides, name=f"{name}_conv_kxk", **common)
    if avg_pool_shortcut and strides == 2:
        # One zero row/column at the bottom/right makes the pool's grid the 3x3 stride-2 conv's
        # for odd sizes too (ceil(H / 2) outputs); at even sizes it is never read, so the branch
        # is PyTorch's AvgPool2d(2, 2) there. Pad and pool then fuse into one 3x3 kernel exactly.
        pooled = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_conv_1x1_pool_pad")(x)
        pooled = layers.AveragePooling2D(2, name=f"{name}_conv_1x1_pool")(pooled)
        one_by_one = conv_bn_act(pooled, filters, 1, 1, name=f"{name}_conv_1x1", **common)
    else:
        one_by_one = conv_bn_act(x, filters, 1, strides, name=f"{name}_conv_1x1", **common)
    skip = None
    if identity:
        skip = layers.BatchNormalization(epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_identity")(x)
    return kxk, one_by_one, skip


def rep_branch_sum(
    x,
    filters,
    kernel_size,
    strides=1,
    *,
    num_branches,
    depthwise,
    scale,
    skip,
    bn_epsilon=1e-5,
    zero_init_branches=False,
    name,
):
    """MobileOne's over-parameterized convolution (also GhostNetV3's), summed, before its activation.

    ``num_branches`` kxk conv + BN (``{name}_conv_kxk_{i}_conv/_bn``; at stride 2 they read one
    ``{name}_pad`` of ``k // 2`` zeros, PyTorch's padding), a 1x1 conv + BN (``{name}_conv_scale_conv/_bn``)
    when ``scale``, an identity BN (``{name}_identity``) when ``skip``, summed by ``{name}_add`` (a single
    branch is returned as it is). ``depthwise``: ``DepthwiseConv2D`` branches (``filters`` ignored).
    :func:`keras_lightnets.reparameterize` folds the sum into one convolution with bias.

    ``zero_init_branches``: where there is an identity branch, the convolution branches' BN scales start
    at zero, so the sum starts as ``BN(x)`` (the "zero gamma" start of residual branches, Goyal et al.
    2017); without one it changes nothing (a sum of zeros would be a dead block).
    """
    gamma = "zeros" if zero_init_branches and skip else "ones"
    common = {"depthwise": depthwise, "bn_epsilon": bn_epsilon, "activation": None, "bn_gamma_initializer": gamma}
    padded, padding = x, "symmetric"
    if strides > 1 and kernel_size > 1:  # one pad layer read by every kxk branch
        padded = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    branches = [
        conv_bn_act(padded, filters, kernel_size, strides, padding=padding, name=f"{name}_conv_kxk_{i}", **common)
        for i in range(num_branches)
    ]
    if scale:
        branches.append(conv_bn_act(x, filters, 1, strides, name=f"{name}_conv_scale", **common))
    if skip:
        branches.append(layers.BatchNormalization(epsilon=bn_epsilon, momentum=0.9, name=f"{name}_identity")(x))
    return layers.Add(name=f"{name}_add")(branches) if len(branches) > 1 else branches[0]
