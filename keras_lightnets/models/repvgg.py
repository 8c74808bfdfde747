"""RepVGG (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021).

A VGG-style stack of 3x3 convolutions that trains as a multi-branch network: every block is
``act(BN(conv3x3(x)) + BN(conv1x1(x)) [+ BN(x)])`` (:func:`~keras_lightnets.layers.rep_branches`;
the identity BN where in = out and stride 1). :func:`keras_lightnets.reparameterize` folds each
block into one 3x3 convolution with bias for inference: the deploy form is a plain VGG.

Five stages: a stem block of ``min(64, 64a)`` channels at stride 2, then four stages of
``(64a, 128a, 256a, 512b)`` channels whose first block has stride 2 (no max pool). The A
models have ``(2, 4, 14, 1)`` blocks, the B models ``(4, 6, 16, 1)``. The ``g2`` / ``g4``
models group the 3x3 and 1x1 convolutions of every second block of a stage (the official
code's layers 2, 4, ..., 26, counting the stem as layer 0) into 2 or 4 groups. Head: global
average pool → fully connected.

Reference: the official ``DingXiaoH/RepVGG`` ``repvgg.py`` and timm ``repvgg_*`` (same
parameters and outputs; timm's layer names ``stem``, ``stages.{i}.{j}``, ``head.fc`` are
ours with dots as underscores). timm has no ``repvgg_b1g2``: it is checked against the
official table's count and against timm's ``ByobNet`` built with 2 groups.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_int, check_number, check_rate
from keras_lightnets.layers import activation_layer
from keras_lightnets.layers.rep_branches import rep_branches
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Reference, Variant, timm_source

__all__ = ["TIMM_KEY_MAP", "RepVGG", "repvgg_block"]

BASE_WIDTHS = (64, 128, 256, 512)
STEM_MAX_WIDTH = 64
A_DEPTHS = (2, 4, 14, 1)
B_DEPTHS = (4, 6, 16, 1)


def repvgg_block(x, filters, strides=1, *, groups=1, activation="relu", name):
    """``act(BN(conv3x3(x)) + BN(conv1x1(x)) [+ BN(x)])``: layers ``{name}_conv_kxk_*``,
    ``{name}_conv_1x1_*``, ``{name}_identity``, ``{name}_add`` and ``{name}_act``."""
    kxk, one_by_one, identity = rep_branches(x, filters, strides, groups=groups, name=name)
    branches = [kxk, one_by_one] + ([identity] if identity is not None else [])
    x = layers.Add(name=f"{name}_add")(branches)
    return activation_layer(activation, name=f"{name}_act")(x)


def stage_widths(width_multipliers):
    """``(stem, stage 1..4)`` widths: ``min(64, 64a)`` and ``(64a, 128a, 256a, 512b)``."""
    widths = tuple(int(base * multiplier) for base, multiplier in zip(BASE_WIDTHS, width_multipliers, strict=True))
    return min(STEM_MAX_WIDTH, int(STEM_MAX_WIDTH * width_multipliers[0])), widths


def _body(x, *, depths, width_multipliers, groups, activation):
    tracker = FeatureTracker()
    stem_width, widths = stage_widths(width_multipliers)
    x = tracker.add(repvgg_block(x, stem_width, 2, activation=activation, name="stem"), 2)
    for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        for j in range(depth):
            stride = 2 if j == 0 else 1
            # The official code groups layers 2, 4, ..., 26 (stem = 0): with the B models' even
            # stage depths that is every odd block of a stage, the rule timm states.
            block_groups = groups if j % 2 == 1 else 1
            x = repvgg_block(x, width, stride, groups=block_groups, activation=activation, name=f"stages_{i}_{j}")
            tracker.add(x, stride)
    return x, tracker.maps


@family_constructor
def RepVGG(
    depths=A_DEPTHS,
    width_multipliers=(0.75, 0.75, 0.75, 2.5),
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    groups=1,
    activation="relu",
    dropout_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """A RepVGG in its training form (3x3, 1x1 and identity branches); call
    :func:`keras_lightnets.reparameterize` on it (trained) for the deploy form.

    Args:
        depths: blocks per stage (A: ``(2, 4, 14, 1)``, B: ``(4, 6, 16, 1)``).
        width_multipliers: ``(a, a, a, b)`` scaling ``(64, 128, 256, 512)``.
        groups: groups of every second block's convolutions (``g2``: 2, ``g4``: 4).
        activation: after every block (ReLU).
        dropout_rate: before the classifier (0 in the reference).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    if not isinstance(depths, (tuple, list)) or len(depths) != 4:
        raise ValueError(f"`depths` must be 4 stage depths such as (2, 4, 14, 1), got {depths!r}")
    for depth in depths:
        check_int(depth, "depths", 1)
    if not isinstance(width_multipliers, (tuple, list)) or len(width_multipliers) != 4:
        raise ValueError(f"`width_multipliers` must be 4 numbers (a, a, a, b), got {width_multipliers!r}")
    for multiplier in width_multipliers:
        check_number(multiplier, "width_multipliers", minimum=1 / 64, maximum=64)
    check_int(groups, "groups", 1)
    stem_width, widths = stage_widths(width_multipliers)
    grouped = [width for width, depth in zip(widths, depths, strict=True) if depth > 1]
    if any(width % groups for width in grouped):
        raise ValueError(f"`groups` must divide the widths of the stages it groups {tuple(grouped)}, got {groups}")
    check_rate(dropout_rate, "dropout_rate")
    depths, width_multipliers = tuple(depths), tuple(width_multipliers)
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, depths=depths, width_multipliers=width_multipliers, groups=groups, activation=activation),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="repvgg_custom",
    )


# --- weight porting --------------------------------------------------------------------
# timm repvgg_*: stem.{conv_kxk,conv_1x1}.{conv,bn}, stages.{i}.{j}.{conv_kxk,conv_1x1}.{conv,bn},
# stages.{i}.{j}.identity, head.fc.
TIMM_KEY_MAP = (
    (r"stem\.(conv_kxk|conv_1x1)\.(conv|bn)", r"stem_\1_\2"),
    (r"stages\.(\d)\.(\d+)\.(conv_kxk|conv_1x1)\.(conv|bn)", r"stages_\1_\2_\3_\4"),
    (r"stages\.(\d)\.(\d+)\.identity", r"stages_\1_\2_identity"),
    (r"head\.fc", "predictions"),
)

# Compared with timm in the suite: A0 (the smallest, ungrouped) and B1g4 (B depths, grouped
# blocks). The others run the same code with other numbers; their parameters and MACs are exact.
COMPARED = ("repvgg_a0", "repvgg_b1g4")

# name: (depths, (a, b), groups, train params, deploy params, MACs train / deploy (M), top-1)
# from the official README table and timm (top-1 of timm's ports of the official weights).
TABLE = {
    "repvgg_a0": (A_DEPTHS, (0.75, 2.5), 1, 9_108_968, 8_309_384, 1512.6, 1361.5, 72.426),
    "repvgg_a1": (A_DEPTHS, (1.0, 2.5), 1, 14_092_264, 12_789_864, 2626.5, 2364.0, 74.474),
    "repvgg_a2": (A_DEPTHS, (1.5, 2.75), 1, 28_210_600, 25_499_944, 5685.3, 5117.0, 76.488),
    "repvgg_b0": (B_DEPTHS, (1.0, 2.5), 1, 15_817_960, 14_339_048, 3397.2, 3057.6, 75.158),
    "repvgg_b1": (B_DEPTHS, (2.0, 4.0), 1, 57_415_016, 51_829_480, 13128.1, 11815.5, 78.370),
    "repvgg_b1g2": (B_DEPTHS, (2.0, 4.0), 2, 45_782_376, 41_360_104, 9788.4, 8809.7, None),
    "repvgg_b1g4": (B_DEPTHS, (2.0, 4.0), 4, 39_966_056, 36_125_416, 8118.5, 7306.9, 77.608),
    "repvgg_b2": (B_DEPTHS, (2.5, 5.0), 1, 89_022_376, 80_315_112, 20418.2, 18376.6, 78.788),
    "repvgg_b2g4": (B_DEPTHS, (2.5, 5.0), 4, 61_758_376, 55_777_512, 12590.7, 11331.9, 79.396),
    "repvgg_b3": (B_DEPTHS, (3.0, 5.0), 1, 123_085_288, 110_960_872, 29120.7, 26208.9, 80.528),
    "repvgg_b3g4": (B_DEPTHS, (3.0, 5.0), 4, 83_825_128, 75_626_728, 17849.2, 16064.5, 80.224),
}


def _variant(name, depths, multipliers, groups, params, deploy_params, macs, deploy_macs, top1):
    a, b = multipliers
    kwargs = {"depths": depths, "width_multipliers": (a, a, a, b)}
    if groups > 1:
        kwargs["groups"] = groups
    # timm registers no repvgg_b1g2; its ByobNet builds it from B1's block config with 2 groups,
    # which is what tests/models/test_repvgg.py compares it with (parameters and outputs).
    equals = f"timm:{name}"
    return Variant(
        name,
        kwargs,
        Reference(
            params,
            macs,
            top1,
            f"DingXiaoH/RepVGG README; timm {name}",
            deploy_params=deploy_params,
            deploy_macs_m=deploy_macs,
        ),
        equals=equals,
        key_map=TIMM_KEY_MAP,
        # The official weights in timm's layout on the Hub (none were published for B1g2).
        weights=() if top1 is None else (timm_source(f"{name}.rvgg_in1k", top1, "MIT"),),
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="repvgg",
    constructor=RepVGG,
    architecture_args=("depths", "width_multipliers", "groups", "activation"),
    variants=tuple(_variant(name, *row) for name, row in TABLE.items()),
)
