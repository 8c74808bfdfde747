"""Activation names → standard Keras layers (quantizable, serializable)."""

from keras import layers

__all__ = ["ACTIVATIONS", "activation_layer"]

# Only names whose Keras layer matches the PyTorch/TF reference op exactly.
ACTIVATIONS = ("relu", "relu6", "silu", "swish", "sigmoid", "hard_sigmoid", "hard_swish", "elu", "gelu")


def activation_layer(activation, *, name):
    """A Keras layer for ``activation``: ``ReLU`` layers for relu/relu6, ``Activation`` otherwise."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if activation == "relu":
        return layers.ReLU(name=name)
    if activation == "relu6":
        return layers.ReLU(6.0, name=name)
    if activation == "swish":
        activation = "silu"
    return layers.Activation(activation, name=name)
