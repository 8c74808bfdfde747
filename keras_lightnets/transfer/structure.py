"""Where a built classifier's head starts and what its blocks are, read from the model itself.

Transfer learning needs two facts about a model: which layers are the classifier (the head a
new task replaces) and how the body divides into blocks (what "unfreeze the last N blocks"
counts). Both come from the graph and the :class:`~keras_lightnets.layers.ModelCard`, never
from ``model.name``:

- **Head.** The card records the architecture, so the same network is rebuilt without its
  classifier (``include_top=False, pooling=None``, in a ``keras.StatelessScope``: no weights are
  made). Its output layer is the body's last layer; every layer of ``model`` downstream of it is
  the head: the family's own classifier (GAP → Dropout → Dense for most; SqueezeNet's Dropout →
  ``conv10`` → ReLU → GAP; ReXNet-lite's pooled 1x1 convolutions), and anything appended after it.
- **Blocks.** In a topological order of the graph a layer is a *cut* when no connection jumps
  over it: every path from the input to the output goes through it. The body between two
  consecutive cuts is one *unit*: a residual block with its shortcut, a squeeze-excite branch, a
  Fire module's two expand branches, or a single layer of a plain chain. Consecutive units whose
  names share a prefix are one block: a unit's prefix is the ``_``-separated part its layer names
  have in common (the first part for a one-layer unit), and a unit joins the block before it when
  one prefix starts the other. So ``stem_conv``, ``stem_bn``, ``stem_act`` are the block ``stem``;
  ``block2a_expand_conv`` ... ``block2a_project_bn`` are ``block2a`` (EfficientNet, MnasNet: the
  names of :func:`keras_lightnets.models.scaffold.stage_block_name`); ``s3_b2_*`` is ``s3_b2``
  (ResNet, RegNet); ``fire4_*`` is ``fire4``. Blocks without weights (SqueezeNet's max pools) are
  not counted. A network of parallel streams (ParNet) has few cuts, hence few blocks.
"""

from dataclasses import dataclass

import keras

from keras_lightnets import models
from keras_lightnets.layers.model_card import find_model_card
from keras_lightnets.models.describe import has_input_normalization
from keras_lightnets.registry import create_model

__all__ = ["Block", "ModelStructure", "model_structure"]


@dataclass(frozen=True)
class Block:
    """One block of the body: its name (the layer-name prefix) and its layers, in graph order."""

    name: str
    layers: tuple

    @property
    def layer_names(self):
        return tuple(layer.name for layer in self.layers)


@dataclass(frozen=True)
class ModelStructure:
    """``body_output``: the body's last layer; ``head``: the layers after it; ``blocks``: the body's
    blocks with weights, input to output; ``layers``: every layer in graph order; ``fixed``: layers that
    never train (the input, the model card, the frozen in-graph normalization)."""

    body_output: str
    head: tuple
    blocks: tuple
    layers: tuple
    fixed: tuple

    @property
    def head_names(self):
        return tuple(layer.name for layer in self.head)

    @property
    def block_names(self):
        return tuple(block.name for block in self.blocks)

    def describe_blocks(self):
        return f"{len(self.blocks)} blocks ({', '.join(self.block_names)})"


def _card(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model built by keras_lightnets, got {type(model).__name__}")
    card = find_model_card(model)
    if card is None or not card.architecture:
        raise ValueError(
            f"`model` {model.name!r} has no keras_lightnets model card, so its head and blocks are unknown: "
            "build it with keras_lightnets.create_model (or a family constructor)"
        )
    return card


def rebuild(model, **arguments):
    """The architecture recorded in ``model``'s card, built again with the keras.applications ``arguments``.

    A registered variant is rebuilt by name; another architecture by its constructor and the
    arguments the card records. Non-architecture arguments (dropout, drop path) take their defaults.
    """
    card = _card(model)
    arguments.setdefault("include_preprocessing", has_input_normalization(model))
    if card.variant is not None:
        return create_model(card.variant, **arguments)
    constructor = getattr(models, card.architecture.get("constructor", ""), None)
    if constructor is None:
        raise ValueError(f"`model` {model.name!r}: its card names no known constructor ({card.architecture!r})")
    try:
        return constructor(**card.architecture["args"], **arguments)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`model` {model.name!r}: its architecture cannot be rebuilt from its card ({error}), so its head "
            "is unknown"
        ) from error


def _graph(model):
    """``(layers in topological order, {id(layer): [parent layers]})`` of ``model``'s own graph."""
    nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True) for node in model._nodes_by_depth[depth]]
    order = [node.operation for node in nodes]
    parents = {id(node.operation): [parent.operation for parent in node.parent_nodes] for node in nodes}
    return order, parents


def _cuts(order, parents):
    """For each layer of ``order``, whether no connection of the graph jumps over it."""
    position = {id(layer): index for index, layer in enumerate(order)}
    reach = list(range(len(order)))  # the furthest layer each layer feeds
    for index, layer in enumerate(order):
        for parent in parents[id(layer)]:
            reach[position[id(parent)]] = max(reach[position[id(parent)]], index)
    cuts, furthest = [], -1
    for index in range(len(order)):
        cuts.append(furthest <= index)
        furthest = max(furthest, reach[index])
    return cuts


def _common_prefix(layers):
    """The ``_``-separated name parts all ``layers`` share, as a tuple."""
    common = []
    for tokens in zip(*(layer.name.split("_") for layer in layers), strict=False):
        if len(set(tokens)) > 1:
            break
        common.append(tokens[0])
    return tuple(common)


def _prefix(unit):
    return tuple(unit[0].name.split("_")[:1]) if len(unit) == 1 else _common_prefix(unit)


def _related(a, b):
    shorter = min(len(a), len(b))
    return shorter > 0 and a[:shorter] == b[:shorter]


def _blocks(units):
    groups = []  # [prefix, layers]
    for unit in units:
        prefix = _prefix(unit)
        if groups and _related(groups[-1][0], prefix):
            groups[-1][0] = max(groups[-1][0], prefix, key=len)
            groups[-1][1].extend(unit)
        else:
            groups.append([prefix, list(unit)])
    return tuple(
        Block("_".join(_common_prefix(layers)) or layers[-1].name, tuple(layers))
        for _, layers in groups
        if any(layer.weights for layer in layers)
    )


def model_structure(model):
    """The :class:`ModelStructure` of ``model``, a classifier (or body) built by this package."""
    card = _card(model)
    with keras.StatelessScope():
        headless = rebuild(model, include_top=False, pooling=None, input_shape=tuple(model.input_shape[1:]))
    body_output = headless.output._keras_history.operation.name
    order, parents = _graph(model)
    names = [layer.name for layer in order]
    if body_output not in names:
        raise ValueError(
            f"`model` {model.name!r} has no layer {body_output!r}, the last layer of its architecture's body: "
            "it is not a whole classifier or body of the architecture its card records"
        )
    end = names.index(body_output)
    start = names.index(card.name) + 1

    cuts = _cuts(order, parents)
    units, unit = [], []
    for index in range(start, end + 1):
        unit.append(order[index])
        if cuts[index]:
            units.append(unit)
            unit = []
    return ModelStructure(
        body_output=body_output,
        head=tuple(order[end + 1 :]),
        blocks=_blocks(units),
        layers=tuple(order),
        fixed=tuple(order[:start]),  # the input, the in-graph normalization, the model card
    )
