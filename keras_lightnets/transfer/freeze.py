"""Which layers train when a pretrained classifier learns a new task: the head only, or the head and
the body's last blocks.

    plan = freeze(model, "head")            # only the classifier trains
    plan = freeze(model, "from-back:3")     # the classifier and the last 3 blocks
    plan = freeze(model, "from-back", "block6a")   # everything from block (or layer) block6a on
    plan.body_variables                     # what trains outside the head: give it a lower rate

Frozen layers get ``trainable = False``. In Keras 3 a BatchNormalization layer that is not
trainable also runs in inference mode, in ``fit`` too: it normalizes with its (pretrained)
moving statistics and never updates them, so the frozen blocks compute exactly what they
computed for the pretrained task. Likewise a frozen block's stochastic depth (drop path,
EfficientNet's drop connect) does not drop in training. BatchNorm and drop path in the unfrozen
blocks train as usual. The frozen in-graph normalization (``include_preprocessing=True``) never
trains. Quantization-aware training keeps all of this: :func:`~keras_lightnets.deploy.quantize_aware`
carries each layer's flag into the QAT model, whose frozen layers' weights do not train.
"""

from dataclasses import dataclass

from keras_lightnets.layers.model_card import find_model_card
from keras_lightnets.transfer.structure import model_structure

__all__ = ["METHODS", "TransferPlan", "freeze", "parse_transfer"]

METHODS = ("head", "from-back")


@dataclass(frozen=True)
class TransferPlan:
    """What :func:`freeze` did.

    ``method``: ``"head"`` or ``"from-back"``; ``blocks``: how the unfrozen part was asked for
    (a count, a block or layer name, or ``None``: the last stage); ``trainable_blocks``: the
    names of the body's blocks that train, input to output; ``head``: the classifier's layer
    names; ``body_variables``: the paths of the trainable variables outside the head
    (``variable.path``), which :class:`~keras_lightnets.transfer.BodyRateAdamW` and its siblings
    train at a lower rate; ``total_blocks``: how many blocks the body has.
    """

    method: str
    blocks: object
    trainable_blocks: tuple
    head: tuple
    body_variables: tuple
    total_blocks: int

    def describe(self):
        if self.method == "head":
            return f"head only ({', '.join(self.head)}); {self.total_blocks} body blocks frozen"
        return (
            f"head and the last {len(self.trainable_blocks)} of {self.total_blocks} blocks "
            f"({', '.join(self.trainable_blocks)})"
        )


def parse_transfer(transfer, blocks=None):
    """``(method, blocks)`` from ``"head"``, ``"from-back"``, ``"from-back:N"`` or ``"from-back:NAME"``.

    ``blocks`` (a count or a block/layer name) may be given separately instead of after the colon.
    Raises ``TypeError`` / ``ValueError`` before any model is touched.
    """
    if not isinstance(transfer, str):
        raise TypeError(f"`transfer` must be one of 'head', 'from-back', 'from-back:N', got {transfer!r}")
    method, colon, rest = transfer.partition(":")
    if method not in METHODS:
        raise ValueError(
            f"`transfer` must be 'head' (train the classifier only) or 'from-back[:N]' (the classifier and "
            f"the last N blocks, or every block from a block or layer name on), got {transfer!r}"
        )
    if colon:
        if blocks is not None:
            raise ValueError(f"`transfer={transfer!r}` already says which blocks; `blocks` must be None")
        if not rest:
            raise ValueError(f"`transfer={transfer!r}`: after 'from-back:' comes a block count or a layer name")
        blocks = int(rest) if rest.lstrip("+-").isdigit() else rest
    if method == "head" and blocks is not None:
        raise ValueError(f"`transfer='head'` trains the classifier only and takes no blocks, got {blocks!r}")
    if isinstance(blocks, bool) or not (blocks is None or isinstance(blocks, int | str)):
        raise TypeError(f"`blocks` must be a block count, a block or layer name, or None, got {blocks!r}")
    if isinstance(blocks, int) and blocks < 1:
        raise ValueError(f"`from-back` needs at least 1 block, got {blocks}")
    return method, blocks


def _last_stage(structure, model):
    """How many blocks follow the feature map of the second-largest stride: the last stage."""
    card = find_model_card(model)
    taps = sorted(card.features or [])
    if len(taps) < 2:
        return 1
    tap = taps[-2][1]
    for index, block in enumerate(structure.blocks):
        if tap in block.layer_names:
            return max(1, len(structure.blocks) - index - 1)
    return 1


def _first_trainable(structure, blocks, model):
    """The index in ``structure.layers`` of the first layer that trains."""
    layers = list(structure.layers)
    position = {id(layer): index for index, layer in enumerate(layers)}
    total = len(structure.blocks)
    if isinstance(blocks, str):
        if blocks in structure.block_names:
            return position[id(structure.blocks[structure.block_names.index(blocks)].layers[0])]
        names = [layer.name for layer in layers]
        if blocks not in names or layers[names.index(blocks)] in structure.fixed:
            raise ValueError(
                f"`from-back:{blocks}`: {model.name!r} has no block or layer of that name; its "
                f"{structure.describe_blocks()}"
            )
        return names.index(blocks)
    count = _last_stage(structure, model) if blocks is None else blocks
    if count > total:
        raise ValueError(f"`from-back:{blocks}`: {model.name!r} has only {structure.describe_blocks()}")
    return position[id(structure.blocks[total - count].layers[0])]


def freeze(model, transfer="head", blocks=None):
    """Freezes ``model`` (in place) for transfer learning and returns a :class:`TransferPlan`.

    Args:
        model: a classifier built by this package, with the head of the new task
            (:func:`~keras_lightnets.transfer.new_head`).
        transfer: ``"head"``: only the head trains; ``"from-back"`` (or ``"from-back:N"`` /
            ``"from-back:NAME"``): the head and the body's last blocks train, the rest is frozen.
        blocks: for ``"from-back"``: a count of blocks from the back (``1`` ... the number of
            blocks), or the name of a block (``"block6a"``) or layer from which on everything trains;
            ``None``: the last stage (the blocks after the feature map of the second-largest
            stride: EfficientNet-Lite0's ``block6a`` ... ``top``, ResNet's ``s4_*``). Blocks are
            read from the graph (:mod:`keras_lightnets.transfer.structure`).

    Every layer gets ``trainable`` set, so calling it again re-plans from scratch. Compile the
    model afterwards (``fit`` does).
    """
    method, blocks = parse_transfer(transfer, blocks)
    structure = model_structure(model)
    if not any(layer.weights for layer in structure.head):
        raise ValueError(
            f"`model` {model.name!r} has no classifier head to train: give it one with "
            "keras_lightnets.transfer.new_head(model, classes)"
        )
    layers = list(structure.layers)
    first = layers.index(structure.head[0]) if method == "head" else _first_trainable(structure, blocks, model)
    fixed = {id(layer) for layer in structure.fixed}
    for index, layer in enumerate(layers):
        layer.trainable = index >= first and id(layer) not in fixed
    head = {id(layer) for layer in structure.head}
    return TransferPlan(
        method=method,
        blocks=blocks,
        trainable_blocks=tuple(
            block.name for block in structure.blocks if any(layer.trainable for layer in block.layers)
        ),
        head=structure.head_names,
        body_variables=tuple(
            variable.path for layer in layers if id(layer) not in head for variable in layer.trainable_variables
        ),
        total_blocks=len(structure.blocks),
    )
