"""Squeeze-and-excitation (Hu et al., 2018)."""

from keras import layers

from keras_lightnets.layers.activations import activation_layer

__all__ = ["squeeze_excite"]


def squeeze_excite(
    x,
    ratio=0.25,
    *,
    hidden=None,
    activation="relu",
    gate="sigmoid",
    use_bn=False,
    bn_epsilon=1e-5,
    bn_momentum=0.9,
    kernel_initializer="glorot_uniform",
    name,
):
    """Squeeze-and-excitation: ``x * gate(W2 · act([BN] W1 · GAP(x)))``.

    Args:
        ratio: hidden width as a fraction of the input channels
            (``max(1, int(channels * ratio))``); ignored when ``hidden`` is given.
        hidden: explicit hidden width, for families whose rule is not a plain ratio
            (ReXNet: ``channels // 12``).
        use_bn: BatchNorm after the reduce conv (ReXNet's ``SEWithNorm``).
        kernel_initializer: of both convolutions.

    Both 1x1 convolutions have a bias. Layers: ``{name}_pool``, ``{name}_reduce``,
    ``{name}_bn``, ``{name}_act``, ``{name}_expand``, ``{name}_gate`` and the
    ``Multiply`` named ``name``.
    """
    channels = x.shape[-1]
    hidden = hidden or max(1, int(channels * ratio))
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(hidden, 1, kernel_initializer=kernel_initializer, name=f"{name}_reduce")(s)
    if use_bn:
        s = layers.BatchNormalization(epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_bn")(s)
    s = activation_layer(activation, name=f"{name}_act")(s)
    s = layers.Conv2D(channels, 1, kernel_initializer=kernel_initializer, name=f"{name}_expand")(s)
    s = activation_layer(gate, name=f"{name}_gate")(s)
    return layers.Multiply(name=name)([x, s])
