"""keras.applications' weight files (the Keras 2 ``.h5`` layout) → our models, in graph order.

A keras.applications file holds one group per layer, listed in the root's ``layer_names``
attribute in the model's layer order, each with its variables' names in ``weight_names``.
Our models that equal a keras.applications model (``equals="keras:..."``, and EfficientNet
B0–B7) have the same weighted layers in the same order, so the file's layers are paired with
ours one by one; every shape is checked before anything is written.

The input ``Normalization`` layer of keras.applications' EfficientNet stores a mean, variance and
count; this package's in-graph normalization is set from the model card instead, so those are
skipped (and must be the only variables skipped).

A ``SeparableConv2D`` of the file (keras.applications' Xception, NASNet) is two layers of ours, a
``DepthwiseConv2D`` and a 1x1 ``Conv2D``: its group is paired with them as ``<layer>/depthwise``
(its depthwise kernel), then ``<layer>/pointwise`` (its pointwise kernel and bias, if any). A nested
``Sequential`` group (keras.applications' ConvNeXt stem and downsampling blocks) is one layer of ours
per inner layer it holds.
"""

import math

from keras_lightnets.weight_files._layers import layer_weights, weighted_layers_in_keras_order
from keras_lightnets.weight_files.errors import CheckpointError
from keras_lightnets.weight_files.hdf5_reader import inspect_hdf5, read_hdf5_datasets

__all__ = ["is_keras_h5", "keras_h5_layers", "load_keras_h5"]

# The last part of a Keras variable's name for each role our converters know.
ROLE_NAMES = {
    "kernel": "kernel",
    "depthwise_kernel": "kernel",
    "pointwise_kernel": "kernel",
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


def _layers_group(structure):
    """The group holding ``layer_names``: the root, or ``/model_weights`` in a whole-model file."""
    for group in ("/", "/model_weights"):
        if "layer_names" in structure.attributes.get(group, {}):
            return group
    return None


def is_keras_h5(structure):
    """Whether an inspected HDF5 file (:func:`~keras_lightnets.weight_files.hdf5_reader.inspect_hdf5`)
    is in keras.applications' (Keras 2) weights layout."""
    return _layers_group(structure) is not None


def keras_h5_layers(path, structure):
    """``[(layer name, {variable name: HDF5Dataset})]`` of a keras.applications weights file, in
    the file's layer order, layers without variables left out; nothing is read."""
    group = _layers_group(structure)
    if group is None:
        raise CheckpointError(path, "not a Keras weights file: no 'layer_names' attribute at its root")
    prefix = group.rstrip("/")
    layers = []
    for layer in structure.attributes[group]["layer_names"]:
        names = structure.attributes.get(f"{prefix}/{layer}", {}).get("weight_names", [])
        for sublayer, datasets in _sublayers(path, structure, f"{prefix}/{layer}", layer, names):
            if "pointwise_kernel" in datasets and "depthwise_kernel" in datasets:
                depthwise = {"depthwise_kernel": datasets.pop("depthwise_kernel")}
                layers += [(f"{sublayer}/depthwise", depthwise), (f"{sublayer}/pointwise", datasets)]
            elif datasets:
                layers.append((sublayer, datasets))
    return layers


def _sublayers(path, structure, group, layer, names):
    """``[(layer name, {variable name: HDF5Dataset})]`` of one file group: one layer, or, for a nested
    ``Sequential`` (keras.applications' ConvNeXt stem and downsampling: a conv and a LayerNorm), one per
    inner layer, told apart by the part of the weight names before the variable's, in the file's order."""
    sublayers = {}
    for name in names:
        dataset = structure.datasets.get(f"{group}/{name}")
        if dataset is None:
            raise CheckpointError(path, "listed in 'weight_names' but not in the file", key=f"{layer}/{name}")
        owner = name.rsplit("/", 1)[0] if "/" in name else layer
        sublayers.setdefault(owner, {})[_name(name)] = dataset
    if len(sublayers) == 1:  # a plain layer, whatever its weights' prefix
        return [(layer, next(iter(sublayers.values())))]
    return [(f"{layer}/{owner}", datasets) for owner, datasets in sublayers.items()]


def _check_shape(path, dataset, shape, target):
    """A dataset loads into a variable of ``shape`` as it is or reshaped (a 1x1 conv classifier
    into a Dense, or back); anything else is refused before it is read."""
    if dataset.shape != shape and dataset.size != math.prod(shape):
        raise CheckpointError(path, f"declares shape {dataset.shape}, {target} expects {shape}", key=dataset.path)


def _plan(path, model, structure):
    """``[(variable, dataset, flip_input_channels)]`` pairing the file's layers with the model's in
    graph order, every declared shape checked; raises naming the first pair that does not match."""
    source = [
        (layer, datasets)
        for layer, datasets in keras_h5_layers(path, structure)
        if not set(datasets) <= PREPROCESSING_NAMES  # keras.applications' input Normalization
    ]
    targets = weighted_layers_in_keras_order(model)
    if len(source) != len(targets):
        raise CheckpointError(
            path,
            f"holds {len(source)} weighted layers, {model.name!r} has {len(targets)}: the file is for another "
            f"architecture (its first layers: {[name for name, _ in source[:3]]})",
        )
    plan = []
    for (layer, datasets), target in zip(source, targets, strict=True):
        variables = layer_weights(target)
        by_role = {ROLE_NAMES.get(name, name): dataset for name, dataset in datasets.items()}
        if set(by_role) != set(variables):
            raise CheckpointError(
                path,
                f"file layer {layer!r} holds {sorted(datasets)}, model layer {target.name!r} expects "
                f"{sorted(variables)}",
            )
        for role, variable in variables.items():
            shape = tuple(int(d) for d in variable.shape)
            _check_shape(path, by_role[role], shape, f"{target.name}/{role}")
            plan.append((variable, by_role[role], not plan and role == "kernel"))
    return plan


def load_keras_h5(model, path, *, bgr_input=False, structure=None):
    """Loads a keras.applications weights file into ``model`` layer by layer in graph order;
    returns ``model``. :class:`CheckpointError` naming the first pair of layers that do not match;
    every shape is checked against the file's declarations before anything is read, and nothing
    is written into the model before everything is read and converted.

    ``bgr_input``: the file's network takes BGR pixels (keras.applications' "caffe" mode, its
    ResNet v1): the first convolution's input channels are reversed, so ``model`` takes RGB.
    ``structure``: the file's :func:`inspect_hdf5` result, when the caller has it already.
    """
    structure = structure or inspect_hdf5(path)
    plan = _plan(path, model, structure)
    arrays = read_hdf5_datasets(path, [dataset for _, dataset, _ in plan])
    assignments = []
    for variable, dataset, first_kernel in plan:
        value = arrays[dataset.path].reshape(tuple(int(d) for d in variable.shape))
        if bgr_input and first_kernel:
            value = value[:, :, ::-1, :]
        assignments.append((variable, value.astype(variable.dtype)))
    for variable, value in assignments:
        variable.assign(value)
    return model
