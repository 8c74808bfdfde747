"""Load PyTorch module weights (timm / torchvision layouts) into our Keras models.

The mapping is by order: PyTorch registers modules in forward order in the
families we port, and our graphs are built in the same order. Every pair is
checked by kind and shape, so a mismatch fails loudly instead of producing a
silently wrong model. Layout changes: conv (O, I/g, kh, kw) → (kh, kw, I/g, O);
depthwise (C·m, 1, kh, kw) → (kh, kw, C, m); linear (out, in) → (in, out);
BatchNorm (weight, bias, running_mean, running_var) → (gamma, beta, mean, variance).
"""

import keras
import numpy as np

from keras_lightnets.weights._layers import weighted_layers


def _torch_layers(module):
    """Conv, Linear and BatchNorm modules (timm's BatchNormAct2d included), in registration order."""
    from torch import nn  # imported here: torch is only needed to convert

    kinds = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)
    return [(name, child) for name, child in module.named_modules() if isinstance(child, kinds)]


def _numpy(tensor):
    return tensor.detach().cpu().numpy()


def _convert(name, child, layer):
    kind = type(child).__name__
    if isinstance(layer, keras.layers.BatchNormalization):
        if not hasattr(child, "running_var"):
            raise ValueError(f"torch {name!r} ({kind}) does not match Keras BatchNormalization {layer.name!r}")
        values = [child.weight, child.bias, child.running_mean, child.running_var]
        return [_numpy(v) for v in values]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if kind != "Conv2d" or child.groups != child.in_channels:
            raise ValueError(f"torch {name!r} is not a depthwise conv, Keras {layer.name!r} is")
        weight = _numpy(child.weight)  # (C*m, 1, kh, kw)
        channels = child.in_channels
        weight = weight.reshape(channels, -1, *weight.shape[2:]).transpose(2, 3, 0, 1)
        values = [weight]
    elif kind == "Conv2d":
        values = [_numpy(child.weight).transpose(2, 3, 1, 0)]
    elif kind == "Linear":
        values = [_numpy(child.weight).T]
    else:
        raise ValueError(f"torch {name!r} ({kind}) does not match Keras {type(layer).__name__} {layer.name!r}")
    if child.bias is not None:
        values.append(_numpy(child.bias))
    return values


def load_torch_weights(model, module):
    """Copies the weights of the PyTorch ``module`` into the Keras ``model``; returns ``model``.

    Raises ``ValueError`` naming the first torch module / Keras layer pair whose
    kind or shape differs.
    """
    torch_layers = _torch_layers(module)
    keras_layers = weighted_layers(model)
    if len(torch_layers) != len(keras_layers):
        raise ValueError(
            f"the torch module has {len(torch_layers)} weighted modules, the Keras model {len(keras_layers)}"
        )
    for (name, child), layer in zip(torch_layers, keras_layers, strict=True):
        values = _convert(name, child, layer)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if len(values) != len(expected):
            raise ValueError(f"torch {name!r} has {len(values)} tensors, Keras {layer.name!r} has {len(expected)}")
        for index, (value, shape) in enumerate(zip(values, expected, strict=True)):
            if value.shape != shape:
                if value.size != np.prod(shape):
                    raise ValueError(f"torch {name!r} {value.shape} does not fit Keras {layer.name!r} {shape}")
                values[index] = value.reshape(shape)  # Linear → 1x1 conv and the like
        layer.set_weights(values)
    return model
