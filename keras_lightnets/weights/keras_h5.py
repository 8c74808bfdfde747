"""keras.applications' weight files (the Keras 2 ``.h5`` layout) → our models, in graph order.

A keras.applications file holds one group per layer, listed in the root's ``layer_names``
attribute in the model's layer order, each with its variables' names in ``weight_names``.
Our models that equal a keras.applications model (``equals="keras:..."``, and EfficientNet
B0–B7) have the same weighted layers in the same order, so the file's layers are paired with
ours one by one; every shape is checked before anything is written.

The input ``Normalization`` layer of keras.applications' EfficientNet stores a mean, variance and
count; this package's in-graph normalization is set from the model card instead, so those are
skipped (and must be the only variables skipped).
"""

import numpy as np

from keras_lightnets.weights._layers import layer_weights, weighted_layers

__all__ = ["is_keras_h5", "load_keras_h5", "read_keras_h5"]

# The last part of a Keras variable's name for each role our converters know.
ROLE_NAMES = {
    "kernel": "kernel",
    "depthwise_kernel": "kernel",
    "bias": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}
PREPROCESSING_NAMES = {"mean", "variance", "count"}


def _name(weight_name):
    """``"block1a_dwconv/depthwise_kernel:0"`` → ``"depthwise_kernel"``."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def is_keras_h5(path):
    """Whether ``path`` is an HDF5 file in keras.applications' (Keras 2) weights layout."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            return "layer_names" in file.attrs
    except OSError:
        return False


def read_keras_h5(path):
    """``[(layer name, {variable name: array})]`` of a keras.applications weights file, in the
    file's layer order, layers without variables left out."""
    import h5py

    layers = []
    with h5py.File(path, "r") as file:
        group = file["model_weights"] if "model_weights" in file else file  # a whole-model .h5 too
        if "layer_names" not in group.attrs:
            raise ValueError(f"{path!r} is not a Keras weights file: no 'layer_names' attribute at its root")
        for raw in group.attrs["layer_names"]:
            layer = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in group[layer].attrs["weight_names"]]
            if names:
                layers.append((layer, {_name(n): np.asarray(group[layer][n]) for n in names}))
    return layers


def _converted(value, shape, where):
    if value.shape == shape:
        return value
    if value.size == int(np.prod(shape)):  # a 1x1 conv classifier into a Dense, or back
        return value.reshape(shape)
    raise ValueError(f"{where}: file shape {value.shape}, model expects {shape}")


def load_keras_h5(model, path, *, bgr_input=False):
    """Loads a keras.applications weights file into ``model`` layer by layer in graph order;
    returns ``model``. ``ValueError`` naming the first pair of layers that do not match (nothing
    is written then).

    ``bgr_input``: the file's network takes BGR pixels (keras.applications' "caffe" mode, its
    ResNet v1): the first convolution's input channels are reversed, so ``model`` takes RGB.
    """
    source = [
        (layer, values)
        for layer, values in read_keras_h5(path)
        if not set(values) <= PREPROCESSING_NAMES  # keras.applications' input Normalization
    ]
    targets = weighted_layers(model)
    if len(source) != len(targets):
        raise ValueError(
            f"{path!r} holds {len(source)} weighted layers, {model.name!r} has {len(targets)}: the file is for "
            f"another architecture (its first layers: {[name for name, _ in source[:3]]})"
        )
    assignments = []
    for (layer, values), target in zip(source, targets, strict=True):
        variables = layer_weights(target)
        by_role = {ROLE_NAMES.get(name, name): value for name, value in values.items()}
        if set(by_role) != set(variables):
            raise ValueError(
                f"file layer {layer!r} holds {sorted(values)}, model layer {target.name!r} expects {sorted(variables)}"
            )
        for role, variable in variables.items():
            shape = tuple(int(d) for d in variable.shape)
            value = _converted(by_role[role], shape, f"{layer}/{role} → {target.name}")
            if bgr_input and not assignments and role == "kernel":  # the first convolution
                value = value[:, :, ::-1, :]
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return model
