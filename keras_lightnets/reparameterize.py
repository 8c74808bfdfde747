"""Structural reparameterization: a trained RepVGG / ParNet / MobileOne model → its fused deploy form.

A RepVGG-style block sums linear branches of one input ``x`` (:func:`~keras_lightnets.layers.rep_branches`):
a kxk convolution + BN, a 1x1 convolution + BN (ParNet: 2x2 average pool, then 1x1 + BN) and an
identity BN. In inference mode each is an affine map of ``x``, so their sum is one kxk
convolution with bias::

    BN(conv(x, W)) = conv(x, W · γ/σ) + β − μ γ/σ        (σ = sqrt(var + ε))
    1x1 kernel     → kxk kernel with the 1x1 at the centre tap
    pool 2x2 → 1x1 → kxk kernel with w/4 at the taps (c, c), (c, c+1), (c+1, c), (c+1, c+1), c = k // 2
    BN(x)          → kxk kernel with 1 at the centre, channel i to channel i (within its group)
    several kxk branches of one size (MobileOne) → the sum of their kernels

A ``DepthwiseConv2D`` branch (MobileOne's depthwise blocks) is a convolution with groups =
channels; a block of them fuses into one ``DepthwiseConv2D`` with bias. A block whose branches
are all 1x1 (MobileOne's pointwise blocks: 1x1 convolutions + BN and an identity BN) fuses into
one 1x1 convolution.

:func:`reparameterize` finds these blocks in the graph of a Functional model — an ``Add`` whose
inputs include at least two BN-terminated branches of one source tensor, at least one of them a
convolution — and rebuilds the model with each block's branches replaced by one ``Conv2D``
(with bias) that keeps the kxk convolution's name. Everything else (SE, SSE, activations,
shuffles, heads, layer names) is cloned as it is. It is the graph, not layer names, that says
what a block is, so a block changed so that fusing would be wrong (an activation between
conv and BN, a dilation, a branch read elsewhere, TensorFlow "same" padding at stride 2)
raises a ``ValueError`` naming it.
"""

import inspect
import warnings

import keras
import numpy as np
from keras.src.backend.common.stateless_scope import in_stateless_scope

__all__ = ["fusable_blocks", "reparameterize"]


class _Branch:
    """One BN-terminated linear branch of a block: ``kind`` is "conv", "pooled" or "identity"."""

    def __init__(self, kind, bn, source, conv=None, pad=None, pool=None, pool_pad=None):
        self.kind, self.bn, self.source = kind, bn, source
        self.conv, self.pad, self.pool, self.pool_pad = conv, pad, pool, pool_pad

    @property
    def layers(self):
        return [layer for layer in (self.bn, self.conv, self.pool, self.pool_pad) if layer is not None]


class _Block:
    def __init__(self, add, branches, others):
        self.add, self.branches, self.others = add, branches, others
        self.kxk = max((b for b in branches if b.kind == "conv"), key=lambda b: b.conv.kernel_size[0])


def _producer(tensor):
    return tensor._keras_history.operation


def _single_input(layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        return None
    return nodes[0].input_tensors[0]


def _branch_of(tensor):
    """The :class:`_Branch` ending in ``tensor``, or ``None`` when it is no BN-terminated branch."""
    bn = _producer(tensor)
    if not isinstance(bn, keras.layers.BatchNormalization):
        return None
    bn_input = _single_input(bn)
    if bn_input is None:
        return None
    conv = _producer(bn_input)
    if type(conv) not in (keras.layers.Conv2D, keras.layers.DepthwiseConv2D):
        return _Branch("identity", bn, bn_input)
    conv_input = _single_input(conv)
    if conv_input is None:
        return None
    before = _producer(conv_input)
    if isinstance(before, keras.layers.ZeroPadding2D):
        return _Branch("conv", bn, _single_input(before), conv=conv, pad=before)
    if isinstance(before, keras.layers.AveragePooling2D):
        pool_input = _single_input(before)
        pool_pad = _producer(pool_input)
        if isinstance(pool_pad, keras.layers.ZeroPadding2D):
            return _Branch("pooled", bn, _single_input(pool_pad), conv=conv, pool=before, pool_pad=pool_pad)
        return _Branch("pooled", bn, pool_input, conv=conv, pool=before)
    return _Branch("conv", bn, conv_input, conv=conv)


def _find_blocks(model):
    """Every fusable block of ``model``'s own graph, keyed by its ``Add`` layer's id."""
    blocks = {}
    for layer in model.layers:
        if type(layer) is not keras.layers.Add or len(layer._inbound_nodes) != 1:
            continue
        inputs = layer._inbound_nodes[0].input_tensors
        by_source = {}
        for tensor in inputs:
            branch = _branch_of(tensor)
            if branch is not None and branch.source is not None:
                by_source.setdefault(id(branch.source), []).append(branch)
        for branches in by_source.values():
            has_conv = any(b.kind == "conv" for b in branches)
            if has_conv and len(branches) >= 2:
                fused = {id(b.bn) for b in branches}
                others = [tensor for tensor in inputs if id(_producer(tensor)) not in fused]
                blocks[id(layer)] = _Block(layer, branches, others)
                break
    return blocks


def fusable_blocks(model):
    """Names of the ``Add`` layers of ``model``'s reparameterizable blocks (empty once fused)."""
    return [block.add.name for block in _find_blocks(model).values()]


# ---------------------------------------------------------------------------------------
# Checks: what makes fusing a block wrong


def _consumers(layer):
    return [node.operation for node in layer._outbound_nodes]


def _is_depthwise(conv):
    return type(conv) is keras.layers.DepthwiseConv2D


def _groups(conv):
    """A convolution's groups; a ``DepthwiseConv2D``'s are its input channels."""
    return _single_input(conv).shape[-1] if _is_depthwise(conv) else conv.groups


def _filters(conv):
    return _single_input(conv).shape[-1] * conv.depth_multiplier if _is_depthwise(conv) else conv.filters


def _check_block(block):
    add = block.add.name
    kxk = block.kxk.conv
    k = kxk.kernel_size[0]
    stride = kxk.strides
    groups = _groups(kxk)

    def fail(reason):
        raise ValueError(
            f"block {add!r} cannot be reparameterized: {reason}. Fusing it would change the model's outputs; "
            "rebuild the block from keras_lightnets.layers.rep_branches or leave it out."
        )

    if kxk.kernel_size[0] != kxk.kernel_size[1] or k % 2 == 0:
        fail(f"its large kernel {kxk.kernel_size} is not square and odd")
    if stride[0] != stride[1] or stride[0] not in (1, 2):
        fail(f"its stride {stride} is not 1 or 2")
    for branch in block.branches:
        for layer in branch.layers:
            if len(layer._inbound_nodes) != 1 or len(_consumers(layer)) != 1:
                fail(f"layer {layer.name!r} is shared or read outside the block")
        bn = branch.bn
        if bn.axis not in (-1, 3, [-1], [3]) or getattr(bn, "renorm", False):
            fail(f"BatchNormalization {bn.name!r} does not normalize the channels (axis {bn.axis})")
        if branch.kind == "identity":
            if stride != (1, 1) or branch.source.shape[-1] != _filters(kxk):
                fail(f"identity branch {bn.name!r} needs stride 1 and in == out channels")
            continue
        conv = branch.conv
        if conv.activation not in (None, keras.activations.linear):
            fail(f"convolution {conv.name!r} has an activation ({conv.activation.__name__}) before its BN")
        if conv.dilation_rate != (1, 1):
            fail(f"convolution {conv.name!r} is dilated ({conv.dilation_rate})")
        if _is_depthwise(conv) and conv.depth_multiplier != 1:
            fail(f"depthwise convolution {conv.name!r} has depth_multiplier {conv.depth_multiplier}, not 1")
        if _groups(conv) != groups:
            fail(f"convolution {conv.name!r} has {_groups(conv)} groups, the kxk convolution {groups}")
        if _filters(conv) != _filters(kxk):
            fail(f"convolution {conv.name!r} has {_filters(conv)} filters, the kxk convolution {_filters(kxk)}")
        size = conv.kernel_size
        if branch.kind == "pooled":
            pool_ok = branch.pool.pool_size == (2, 2) and branch.pool.strides == (2, 2)
            pool_ok = pool_ok and branch.pool.padding == "valid" and size == (1, 1) and conv.strides == (1, 1)
            pad_ok = branch.pool_pad is None or tuple(map(tuple, branch.pool_pad.padding)) == ((0, 1), (0, 1))
            if not (pool_ok and pad_ok and stride == (2, 2) and k >= 3):
                fail(f"average-pool branch {branch.pool.name!r} is not a 2x2/2 pool, then a stride-1 1x1 convolution")
            continue
        if size[0] != size[1] or size[0] % 2 == 0 or size[0] > k:
            fail(f"convolution {conv.name!r} has kernel {size}, not square, odd and at most {k}")
        if conv.strides != stride:
            fail(f"convolution {conv.name!r} has strides {conv.strides}, the kxk convolution {stride}")
        _check_centred(branch, fail)


def _check_centred(branch, fail):
    """The branch's kernel centre must read the output pixel's own input pixel (PyTorch's k // 2 padding)."""
    conv = branch.conv
    half = conv.kernel_size[0] // 2
    if half == 0:
        if conv.padding not in ("valid", "same") or branch.pad is not None:
            fail(f"1x1 convolution {conv.name!r} is padded")
        return
    if branch.pad is not None:
        symmetric = tuple(map(tuple, branch.pad.padding)) == ((half, half), (half, half))
        if conv.padding != "valid" or not symmetric:
            fail(f"convolution {conv.name!r} is not padded {half} on every side")
    elif conv.padding != "same" or conv.strides != (1, 1):
        fail(
            f"convolution {conv.name!r} uses {conv.padding!r} padding at stride {conv.strides}: TensorFlow's 'same' "
            "pads bottom/right only at stride 2, which moves the kernel centre off the 1x1 branch's pixel"
        )


# ---------------------------------------------------------------------------------------
# The fused kernel


def _bn_affine(bn):
    """``(scale, shift)`` of a BN layer in inference mode."""
    weights = {w.path.split("/")[-1]: np.asarray(w.numpy(), np.float64) for w in bn.weights}
    channels = weights["moving_mean"].shape[0]
    gamma = weights.get("gamma", np.ones(channels))
    beta = weights.get("beta", np.zeros(channels))
    scale = gamma / np.sqrt(weights["moving_variance"] + bn.epsilon)
    return scale, beta - weights["moving_mean"] * scale


def _branch_kernel(branch, k, groups, out_channels):
    """``(kernel (k, k, in/g, out), bias (out,))`` of one branch, BN folded."""
    scale, shift = _bn_affine(branch.bn)
    kernel = np.zeros((k, k, branch.source.shape[-1] // groups, out_channels))
    c = k // 2
    if branch.kind == "identity":
        per_group = kernel.shape[2]
        for channel in range(out_channels):
            kernel[c, c, channel % per_group, channel] = 1.0
        return kernel * scale, shift
    weights = branch.conv.get_weights()
    own = np.asarray(weights[0], np.float64)
    if _is_depthwise(branch.conv):  # (k, k, channels, 1) → the grouped Conv2D form (k, k, 1, channels)
        own = own.transpose(0, 1, 3, 2)
    bias = shift + (np.asarray(weights[1], np.float64) * scale if branch.conv.use_bias else 0.0)
    if branch.kind == "pooled":
        for dy in (0, 1):
            for dx in (0, 1):
                kernel[c + dy, c + dx] = own[0, 0] / 4.0
    else:
        half = own.shape[0] // 2
        kernel[c - half : c + half + 1, c - half : c + half + 1] = own
    return kernel * scale, bias


def _fused_conv(block):
    """The fused ``Conv2D`` and its weights (``None`` in a ``keras.StatelessScope``, where weights
    have no values: the structure, parameter count and MACs of the deploy form, cheaply)."""
    kxk = block.kxk.conv
    config = kxk.get_config()
    config.update(use_bias=True, bias_initializer="zeros", activation=None)
    conv = type(kxk).from_config(config)
    if in_stateless_scope():
        return conv, None
    k = kxk.kernel_size[0]
    groups, filters = _groups(kxk), _filters(kxk)
    kernel = np.zeros((k, k, block.kxk.source.shape[-1] // groups, filters))
    bias = np.zeros(filters)
    for branch in block.branches:
        branch_kernel, branch_bias = _branch_kernel(branch, k, groups, filters)
        kernel += branch_kernel
        bias += branch_bias
    if _is_depthwise(kxk):
        kernel = kernel.transpose(0, 1, 3, 2)
    return conv, [kernel.astype("float32"), bias.astype("float32")]


# ---------------------------------------------------------------------------------------
# The rebuild


def _clone(layer):
    if isinstance(layer, keras.Model):
        return reparameterize(layer, _nested=True)
    return layer.__class__.from_config(layer.get_config())


def _rebuild_functional(model):
    blocks = _find_blocks(model)
    for block in blocks.values():
        _check_block(block)
    skipped = {id(layer) for block in blocks.values() for branch in block.branches for layer in branch.layers}
    fused_source = {id(block.add): block.kxk.conv._inbound_nodes[0].input_tensors[0] for block in blocks.values()}

    new_inputs = [
        keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=_producer(tensor).name)
        for tensor in model.inputs
    ]
    tensors = {id(old): new for old, new in zip(model.inputs, new_inputs, strict=True)}
    clones, pending_weights = {}, []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if node.is_input or layer is None or id(layer) in skipped:
                continue
            if id(layer) in blocks:
                block = blocks[id(layer)]
                conv, weights = _fused_conv(block)
                x = conv(tensors[id(fused_source[id(layer)])])
                if weights is not None:
                    conv.set_weights(weights)
                rest = [tensors[id(tensor)] for tensor in block.others]
                if rest:
                    x = _clone_of(layer, clones)([x, *rest])
                tensors[id(node.outputs[0])] = x
                continue
            if any(id(tensor) not in tensors for tensor in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            new_layer = _clone_of(layer, clones)
            outputs = new_layer(*args, **kwargs)
            pending_weights.append((new_layer, layer))
            for old, new in zip(node.outputs, keras.tree.flatten(outputs), strict=True):
                tensors[id(old)] = new
    for new_layer, layer in pending_weights:
        if not isinstance(layer, keras.Model) and layer.weights and not in_stateless_scope():
            new_layer.set_weights(layer.get_weights())
    outputs = keras.tree.pack_sequence_as(model._outputs_struct, [tensors[id(t)] for t in model.outputs])
    inputs = keras.tree.pack_sequence_as(model._inputs_struct, new_inputs)
    return keras.Model(inputs, outputs, name=model.name), len(blocks)


def _clone_of(layer, clones):
    if id(layer) not in clones:
        clones[id(layer)] = _clone(layer)
    return clones[id(layer)]


def _being_trained(model):
    """Whether a ``fit`` of ``model`` is on the call stack (a callback calling us mid-training)."""
    for frame_info in inspect.stack(context=0):
        if frame_info.function == "fit" and frame_info.frame.f_locals.get("self") is model:
            return True
    return False


def _count_blocks(model):
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += _count_blocks(layer)
    if isinstance(model, keras.Sequential):
        return total
    return total + len(_find_blocks(model))


def reparameterize(model, *, _nested=False):
    """The deploy form of a trained model: every RepVGG / ParNet / MobileOne block's linear branches
    fused into one kxk ``Conv2D`` (``DepthwiseConv2D`` for a depthwise block) with bias, in a new
    Functional model.

    BN is folded as in inference mode (moving statistics), so the fused model equals the
    training form's inference outputs (to float rounding). SE, SSE, shuffles, the head and
    every other layer and its name are kept; the fused convolution takes the kxk convolution's
    name. Works on any Functional or Sequential model, nested models included (a fine-tuned
    classifier around a backbone); a model with nothing to fuse, or already fused, comes back
    as an equal copy, with a warning that says so. The result is not compiled.

    Raises:
        TypeError: ``model`` is not a Keras Functional or Sequential model.
        ValueError: ``model`` is being trained (called from its ``fit``), or a block was changed
            so that fusing it would change the outputs (the message names the block).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"reparameterize() takes a Keras model (Functional or Sequential), got {type(model).__name__}")
    readable = isinstance(model, keras.Sequential) or hasattr(model, "_nodes_by_depth")
    if not readable or not model.built:
        raise TypeError(
            f"reparameterize() needs a built Functional or Sequential model whose graph it can read; "
            f"{model.name!r} is a {'subclassed ' if not readable else 'not yet built '}{type(model).__name__}"
        )
    if not _nested and _being_trained(model):
        raise ValueError(
            f"model {model.name!r} is being trained (reparameterize was called from inside its fit): BatchNorm "
            "statistics are still moving and the fused weights would be stale. Call it after fit returns."
        )
    if isinstance(model, keras.Sequential):
        fused = keras.Sequential([_clone(layer) for layer in model.layers], name=model.name)
        fused.build(model.inputs[0].shape)
        for new_layer, layer in zip(fused.layers, model.layers, strict=True):
            if not isinstance(layer, keras.Model) and layer.weights and not in_stateless_scope():
                new_layer.set_weights(layer.get_weights())
    else:
        fused, _ = _rebuild_functional(model)
    count = _count_blocks(model)
    if not _nested and count == 0:
        warnings.warn(
            f"model {model.name!r} has no RepVGG-style block to fuse (already fused, or none was built): "
            "returning an equal copy",
            stacklevel=2,
        )
    return fused
