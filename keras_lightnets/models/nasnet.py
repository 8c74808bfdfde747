"""NASNet-A (Zoph, Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable Image
Recognition", CVPR 2018, arXiv 1707.07012).

The network is a stack of two searched cells, stated once below as data (:data:`NORMAL_CELL`,
:data:`REDUCTION_CELL`: Fig. 4 of the paper, TF-slim's ``nasnet_utils`` tables) and turned into
layers by one function (:func:`cell`). A cell reads two hidden states: ``"h"``, its input after
ReLU-1x1 conv-BN, and ``"p"``, the previous cell's output *adjusted* to this cell's size and width
(:func:`adjust`: a factorized reduction where the previous state is twice as large, a ReLU-1x1
conv-BN projection where only its width differs). Each of its five blocks sums two operations
on hidden states (``h``, ``p`` or an earlier block's output); the cell outputs the concatenation of
the states no block reads. Operations: separable blocks (:func:`separable_block`: ReLU-separable
conv-BN twice, 3x3, 5x5 or 7x7), 3x3 average or max pooling, identity. In a reduction cell
every operation on ``h`` or ``p`` has stride 2, the others stride 1.

``NASNet (N @ P)``: ``N`` normal cells per stack (``num_blocks``), ``P`` filters in the
penultimate layer (``penultimate_filters`` = 24 x the last stack's cell width). ImageNet layout:
3x3/2 stem conv (valid) -> BN, two reduction cells as the stem (widths ``P / 24 / m^2`` and
``P / 24 / m``), then ``N`` normal cells, a reduction cell, ``N`` normal cells, a reduction cell,
``N`` normal cells (widths ``P / 24``, ``m P / 24``, ``m^2 P / 24``, ``m = filter_multiplier``),
ReLU, global average pool, fully connected. ``skip_reduction`` (NASNet-A Large): the cell after a
reduction cell takes the state *before* the reduction as its previous state, not the reduction
cell's input.

References (outputs equal, weights copied):

- keras.applications ``NASNetMobile`` (4 @ 1056) and ``NASNetLarge`` (6 @ 4032): TF "same"
  padding written as explicit zero padding, BatchNorm epsilon 1e-3, momentum 0.9997. Our
  weighted layers are keras.applications' in its order (its ``.h5`` files load in graph order);
  its separable convolutions are ``SeparableConv2D`` layers, ours a ``DepthwiseConv2D`` and a 1x1
  ``Conv2D`` (the same function; what profiles, converters and QAT know).
- timm ``nasnetalarge`` (Cadene's port of TF-slim's checkpoint): the same network, except that
  its stride-2 max poolings ignore the padding (TF-slim's ``SAME`` max pooling, ``-inf``
  padding) where keras.applications max-pools a zero-padded map: ``max_pool_padding="same"``.
"""

import re
from dataclasses import dataclass
from functools import partial

from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_int, check_rate
from keras_lightnets.layers.padding import pad_same
from keras_lightnets.layers.stochastic_depth import StochasticDepth
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
)

__all__ = ["NORMAL_CELL", "REDUCTION_CELL", "TIMM_KEY_MAP", "NASNet", "adjust", "cell", "separable_block"]


@dataclass(frozen=True)
class Cell:
    """A searched cell as data.

    Attributes:
        blocks: five ``(left input, left op, right input, right op)`` rows, each block the sum
            ``left op(left input) + right op(right input)``. Inputs: ``"h"``, ``"p"`` or the
            1-based number of an earlier block. Ops: ``"sep3"``, ``"sep5"``, ``"sep7"``
            (:func:`separable_block`), ``"avg3"``, ``"max3"`` (3x3 pooling), ``"identity"``.
        outputs: the states concatenated into the cell's output, in order.
        reduction: the cell halves the map (ops on ``h`` and ``p`` have stride 2).
    """

    blocks: tuple
    outputs: tuple
    reduction: bool


# NASNet-A, Fig. 4 of the paper; the block order and each sum's operand order are TF-slim's
# (nasnet_utils.NasNetANormalCell / NasNetAReductionCell), which keras.applications follows.
NORMAL_CELL = Cell(
    blocks=(
        ("h", "sep5", "p", "sep3"),
        ("p", "sep5", "p", "sep3"),
        ("h", "avg3", "p", "identity"),
        ("p", "avg3", "p", "avg3"),
        ("h", "sep3", "h", "identity"),
    ),
    outputs=("p", 1, 2, 3, 4, 5),
    reduction=False,
)
REDUCTION_CELL = Cell(
    blocks=(
        ("h", "sep5", "p", "sep7"),
        ("h", "max3", "p", "sep7"),
        ("h", "avg3", "p", "sep5"),
        (2, "identity", 1, "avg3"),
        (1, "sep3", "h", "max3"),
    ),
    outputs=(2, 3, 4, 5),
    reduction=True,
)
OPS = ("sep3", "sep5", "sep7", "avg3", "max3", "identity")
MAX_POOL_PADDINGS = ("zeros", "same")
# keras.applications' (TF-slim's) BatchNorm: epsilon 1e-3, decay 0.9997.
BN = {"epsilon": 1e-3, "momentum": 0.9997}
INITIALIZER = "he_normal"  # keras.applications' 1x1 convolutions


def separable_block(x, filters, kernel_size, strides=1, *, name):
    """ReLU -> separable conv (``strides``) -> BN -> ReLU -> separable conv -> BN.

    Each separable convolution is a ``kernel_size`` depthwise convolution and a 1x1 convolution to
    ``filters``, without biases; a stride-2 one pads its input as TF's "same" does, explicitly
    (keras.applications' ``correct_pad``: one row/column less at the top/left of an even-sized map;
    :func:`~keras_lightnets.layers.padding.pad_same`, for any input size).
    """
    for index in (1, 2):
        x = layers.ReLU(name=f"{name}_relu{index}")(x)
        padding = "same"
        if index == 1 and strides == 2:
            x = pad_same(x, kernel_size, 2, name=f"{name}_pad")
            padding = "valid"
        x = layers.DepthwiseConv2D(
            kernel_size,
            strides=strides if index == 1 else 1,
            padding=padding,
            use_bias=False,
            name=f"{name}_sep{index}_dw",
        )(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_sep{index}_pw")(x)
        x = layers.BatchNormalization(**BN, name=f"{name}_sep{index}_bn")(x)
    return x


def _conv_bn(x, filters, *, name):
    """ReLU -> 1x1 conv -> BN."""
    x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=INITIALIZER, name=f"{name}_conv")(x)
    return layers.BatchNormalization(**BN, name=f"{name}_bn")(x)


def adjust(p, filters, *, reduce, name):
    """The previous hidden state ``p`` made to fit this cell's input (keras.applications'
    ``_adjust_block``, TF-slim's ``_reduce_prev_layer``).

    - ``reduce`` (a reduction cell lies between ``p`` and the cell's input, so ``p`` is twice as
      large): a factorized reduction. ReLU, then two paths of 1x1 stride-2 sampling and a 1x1 conv
      to ``filters / 2``, the second path shifted by one pixel (the map zero-padded at the
      bottom/right and cropped by one at the top/left), concatenated, BN.
    - ``p`` as large as the input but of another width: ReLU -> 1x1 conv -> BN.
    - otherwise ``p`` as it is.

    keras.applications compares the two maps' sizes; the cell plan tells it here, so the graph
    is the same at any input size, known or not.
    """
    if reduce:
        p = layers.ReLU(name=f"{name}_relu")(p)
        path1 = layers.AveragePooling2D(1, strides=2, name=f"{name}_pool1")(p)
        path1 = layers.Conv2D(filters // 2, 1, use_bias=False, kernel_initializer=INITIALIZER, name=f"{name}_conv1")(
            path1
        )
        path2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(p)
        path2 = layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_crop")(path2)
        path2 = layers.AveragePooling2D(1, strides=2, name=f"{name}_pool2")(path2)
        path2 = layers.Conv2D(filters // 2, 1, use_bias=False, kernel_initializer=INITIALIZER, name=f"{name}_conv2")(
            path2
        )
        p = layers.Concatenate(name=f"{name}_concat")([path1, path2])
        return layers.BatchNormalization(**BN, name=f"{name}_bn")(p)
    if p.shape[-1] != filters:
        return _conv_bn(p, filters, name=name)
    return p


def _operation(x, op, strides, *, filters, padded, max_pool_padding, drop_path_rate, name):
    """One of a block's two operations; ``padded()`` gives the cell's zero-padded ``h`` that
    keras.applications' stride-2 poolings share."""
    if op == "identity":
        if strides != 1:
            raise ValueError(f"{name}: an identity cannot reduce (stride {strides})")
        return x
    if op.startswith("sep"):
        x = separable_block(x, filters, int(op[3:]), strides, name=name)
    elif strides == 1:
        pool = layers.AveragePooling2D if op == "avg3" else layers.MaxPooling2D
        x = pool(3, strides=1, padding="same", name=f"{name}_pool")(x)
    elif op == "max3" and max_pool_padding == "same":
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    else:
        pool = layers.AveragePooling2D if op == "avg3" else layers.MaxPooling2D
        x = pool(3, strides=2, name=f"{name}_pool")(padded())
    if drop_path_rate > 0:
        x = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(x)
    return x


def cell(x, p, spec, filters, *, reduce_previous=False, max_pool_padding="zeros", drop_path_rate=0.0, name):
    """The cell ``spec`` (:class:`Cell`) on input ``x`` and previous state ``p`` (``None``: ``x``),
    ``p`` twice as large as ``x`` if ``reduce_previous``; returns ``(output, x)``, the pair of
    hidden states the next cell reads."""
    # The first stem cell has no previous state: it reads its input as it is (keras.applications).
    p = x if p is None else adjust(p, filters, reduce=reduce_previous, name=f"{name}_adjust")
    h = _conv_bn(x, filters, name=name)
    states = {"h": h, "p": p}
    cache = {}

    def padded():
        if "h" not in cache:
            cache["h"] = pad_same(h, 3, 2, name=f"{name}_pool_pad")
        return cache["h"]

    for index, (left, left_op, right, right_op) in enumerate(spec.blocks, start=1):
        branches = []
        for side, source, op in (("left", left, left_op), ("right", right, right_op)):
            if op not in OPS:
                raise ValueError(f"{name}: unknown operation {op!r}, expected one of {OPS}")
            strides = 2 if spec.reduction and source in ("h", "p") else 1
            branches.append(
                _operation(
                    states[source],
                    op,
                    strides,
                    filters=filters,
                    padded=padded if source == "h" else None,
                    max_pool_padding=max_pool_padding,
                    drop_path_rate=drop_path_rate,
                    name=f"{name}_block{index}_{side}",
                )
            )
        states[index] = layers.Add(name=f"{name}_block{index}")(branches)
    output = layers.Concatenate(name=f"{name}_concat")([states[key] for key in spec.outputs])
    return output, x


def _plan(num_blocks, skip_reduction, filter_multiplier, penultimate_filters):
    """``[(name, cell, width, skip)]`` of the whole network; ``skip``: the next cell keeps this
    cell's previous state (NASNet-A Large after a reduction)."""
    filters = penultimate_filters // 24
    plan = [
        ("stem_cell1", REDUCTION_CELL, filters // filter_multiplier**2, False),
        ("stem_cell2", REDUCTION_CELL, filters // filter_multiplier, False),
    ]
    for stack in range(3):
        width = filters * filter_multiplier**stack
        if stack:
            plan.append((f"reduction{stack}", REDUCTION_CELL, width, skip_reduction))
        plan += [(f"cell{stack * num_blocks + i + 1}", NORMAL_CELL, width, False) for i in range(num_blocks)]
    return plan


def _body(
    x,
    *,
    penultimate_filters,
    num_blocks,
    stem_filters,
    skip_reduction,
    filter_multiplier,
    max_pool_padding,
    drop_path_rate,
):
    tracker = FeatureTracker()
    x = layers.Conv2D(stem_filters, 3, strides=2, use_bias=False, kernel_initializer=INITIALIZER, name="stem_conv")(x)
    x = tracker.add(layers.BatchNormalization(**BN, name="stem_bn")(x), 2)
    plan = _plan(num_blocks, skip_reduction, filter_multiplier, penultimate_filters)
    # Each hidden state with the number of reductions before it: the plan, not the maps' sizes
    # (unknown in a graph of any input size), tells each cell how to adjust its previous state.
    x_level, p, p_level = 0, None, None
    for index, (name, spec, width, skip) in enumerate(plan):
        # TF-slim's drop path: rising linearly with the cell's depth in the network.
        rate = drop_path_rate * (index + 1) / len(plan)
        before = p, p_level
        x, p = cell(
            x,
            p,
            spec,
            width,
            reduce_previous=p_level is not None and p_level < x_level,
            max_pool_padding=max_pool_padding,
            drop_path_rate=rate,
            name=name,
        )
        p_level, x_level = x_level, x_level + spec.reduction
        if skip:
            p, p_level = before
        tracker.add(x, 2 if spec.reduction else 1)
    x = tracker.add(layers.ReLU(name="top_relu")(x))
    return x, tracker.maps


@family_constructor
def NASNet(
    penultimate_filters=4032,
    num_blocks=6,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    stem_filters=96,
    skip_reduction=True,
    filter_multiplier=2,
    max_pool_padding="zeros",
    dropout_rate=0.0,
    drop_path_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """NASNet-A (``num_blocks`` @ ``penultimate_filters``); the defaults are NASNet-A Large (6 @
    4032), ``NASNet(1056, 4, stem_filters=32, skip_reduction=False)`` is NASNet-A Mobile.

    Args:
        penultimate_filters: channels of the last feature map, 24 x the last cells' width; a
            multiple of ``24 * filter_multiplier ** 2``.
        num_blocks: normal cells in each of the three stacks.
        stem_filters: channels of the 3x3/2 stem convolution.
        skip_reduction: the cell after each reduction cell reads the state before the reduction
            cell's input as its previous state (NASNet-A Large: True; Mobile: False).
        filter_multiplier: the width ratio of consecutive stacks (2).
        max_pool_padding: how the stride-2 max poolings pad: ``"zeros"`` (keras.applications: a
            zero-padded map) or ``"same"`` (timm ``nasnetalarge``, TF-slim: the padding is ignored).
        dropout_rate: before the classifier (keras.applications: none; the paper trains with 0.5).
        drop_path_rate: TF-slim's drop path on every operation but the identities, rising linearly
            over the cells to ``drop_path_rate`` (the paper: 1 - 0.7 for Large, none for Mobile).
        features_only: the last map at strides 2 (stem BN), 4 and 8 (the stem cells' and the first
            stack's outputs), 16, 32 (the last ReLU), as a list in stride order.

    Any input size of at least 32 pixels, known or not (``input_shape=(None, None, 3)``). The
    other arguments are keras.applications'.
    """
    check_int(penultimate_filters, "penultimate_filters", 24)
    check_int(num_blocks, "num_blocks", 1)
    check_int(stem_filters, "stem_filters", 1)
    check_bool(skip_reduction, "skip_reduction")
    check_int(filter_multiplier, "filter_multiplier", 1)
    if penultimate_filters % (24 * filter_multiplier**2):
        raise ValueError(
            f"`penultimate_filters` must be a multiple of 24 * filter_multiplier ** 2 = {24 * filter_multiplier**2}, "
            f"got {penultimate_filters}"
        )
    check_choice(max_pool_padding, "max_pool_padding", MAX_POOL_PADDINGS)
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    architecture = FAMILY.architecture_of(locals())
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, **architecture, drop_path_rate=drop_path_rate),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"nasnet_{num_blocks}_{penultimate_filters}",
    )


# --- weight porting --------------------------------------------------------------------
# timm nasnetalarge (Cadene's names): conv0.{conv,bn}; cell_stem_0/1, cell_0..17, reduction_cell_0/1,
# each with conv_1x1 (our ReLU-1x1-BN of h), conv_prev_1x1 (the projection of p) or path_1.conv,
# path_2.conv, final_path_bn (the factorized reduction of p), comb_iter_{0-4}_{left,right} (the
# blocks' operations: separable_{1,2}.{depthwise,pointwise}_conv2d and bn_sep_{1,2}); last_linear.
_TIMM_CELL = r"(cell_stem_[01]|reduction_cell_[01]|cell_\d+)"
_TIMM_PARTS = {
    "conv_1x1.conv": "conv",
    "conv_1x1.bn": "bn",
    "conv_prev_1x1.conv": "adjust_conv",
    "conv_prev_1x1.bn": "adjust_bn",
    "path_1.conv": "adjust_conv1",
    "path_2.conv": "adjust_conv2",
    "final_path_bn": "adjust_bn",
}
_TIMM_SEPARABLE = {
    "separable_1.depthwise_conv2d": "sep1_dw",
    "separable_1.pointwise_conv2d": "sep1_pw",
    "bn_sep_1": "sep1_bn",
    "separable_2.depthwise_conv2d": "sep2_dw",
    "separable_2.pointwise_conv2d": "sep2_pw",
    "bn_sep_2": "sep2_bn",
}


def _alternatives(parts):
    return "|".join(re.escape(part) for part in parts)


def _timm_cell(name):
    """timm's cell name -> ours: ``cell_stem_0`` -> ``stem_cell1``, ``reduction_cell_1`` ->
    ``reduction2``, ``cell_5`` -> ``cell6``."""
    kind, _, index = name.rpartition("_")
    prefix = {"cell_stem": "stem_cell", "reduction_cell": "reduction", "cell": "cell"}[kind]
    return f"{prefix}{int(index) + 1}"


TIMM_KEY_MAP = (
    (r"conv0\.conv", "stem_conv"),
    (r"conv0\.bn", "stem_bn"),
    (r"last_linear", "predictions"),
    (
        rf"{_TIMM_CELL}\.({_alternatives(_TIMM_PARTS)})",
        lambda m: f"{_timm_cell(m[1])}_{_TIMM_PARTS[m[2]]}",
    ),
    (
        rf"{_TIMM_CELL}\.comb_iter_(\d)_(left|right)\.({_alternatives(_TIMM_SEPARABLE)})",
        lambda m: f"{_timm_cell(m[1])}_block{int(m[2]) + 1}_{m[3]}_{_TIMM_SEPARABLE[m[4]]}",
    ),
)

# keras.applications: [-1, 1] inputs (its "tf" preprocess_input); no crop stated, TF-slim evaluates
# a 0.875 central crop. timm's port of the Large checkpoint: bicubic, crop 0.911.
MOBILE_PREPROCESSING = Preprocessing(mean=INCEPTION_MEAN, std=INCEPTION_STD)
LARGE_PREPROCESSING = Preprocessing(input_size=(331, 331, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD)
TIMM_LARGE_PREPROCESSING = Preprocessing(
    input_size=(331, 331, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.911, interpolation="bicubic"
)
MOBILE = {"penultimate_filters": 1056, "num_blocks": 4, "stem_filters": 32, "skip_reduction": False}
LARGE = {"penultimate_filters": 4032, "num_blocks": 6, "stem_filters": 96, "skip_reduction": True}

# Compared in the suite: NASNet-A Mobile against keras.applications (the registry test, at 161x190).
# NASNet-A Large is 85 M parameters: its code path (skip_reduction) and timm's layout are compared
# at narrow widths in tests/models/test_nasnet.py (keras.applications' NASNet and timm's NASNetALarge
# take the same width arguments); its parameters and MACs are checked exactly here.
FAMILY = Family(
    name="nasnet",
    constructor=NASNet,
    architecture_args=(
        "penultimate_filters",
        "num_blocks",
        "stem_filters",
        "skip_reduction",
        "filter_multiplier",
        "max_pool_padding",
    ),
    preprocessing=MOBILE_PREPROCESSING,
    variants=(
        Variant(
            "nasnet_mobile",
            MOBILE,
            Reference(
                5_289_978,
                563.6,
                74.0,
                "keras.applications NASNetMobile (parameters); MACs measured (paper Table 2: 564 M); paper top-1",
            ),
            equals="keras:NASNetMobile",
            preprocessing=MOBILE_PREPROCESSING,
            layouts={"keras": None},
            weights=(keras_source("nasnet/NASNet-mobile.h5", 74.4, "020fb642bf7360b370c678b08e0adf61"),),
        ),
        Variant(
            "nasnet_large",
            LARGE,
            Reference(
                88_753_150,
                23_783.4,
                82.7,
                "keras.applications NASNetLarge (parameters); MACs measured (paper Table 2: 23.8 G); paper top-1",
                input_size=(331, 331, 3),
            ),
            equals="keras:NASNetLarge",
            preprocessing=LARGE_PREPROCESSING,
            layouts={"keras": None},
            weights=(keras_source("nasnet/NASNet-large.h5", 82.5, "11577c9a518f0070763c2b964a382f17"),),
            compared=False,
        ),
        Variant(
            "nasnet_large_tf",
            {**LARGE, "max_pool_padding": "same"},
            Reference(
                88_753_150,
                23_783.4,
                82.626,
                "timm nasnetalarge (TF-slim's checkpoint, Cadene's port; top-1 timm's at 331)",
                input_size=(331, 331, 3),
            ),
            equals="timm:nasnetalarge",
            preprocessing=TIMM_LARGE_PREPROCESSING,
            key_map=TIMM_KEY_MAP,
            layouts={"timm": TIMM_KEY_MAP},
            weights=(timm_source("nasnetalarge.tf_in1k", 82.626, "Apache-2.0", TIMM_LARGE_PREPROCESSING),),
            compared=False,
        ),
    ),
)
