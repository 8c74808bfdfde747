"""AnyNet (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020): pycls's generic network.

A stem (3x3/2 conv → BN → ReLU), four stages of residual bottleneck blocks, a head (global
average pool → fully connected). Each stage ``i`` has its own depth ``d_i``, width ``w_i``,
stride, bottleneck ratio ``b_i`` and group width ``g_i``; with ``se_ratio`` every block has a
squeeze-excite whose width is ``round(se_ratio * block input width)`` (AnyNetY / RegNetY).
Every point of the paper's design spaces (AnyNetX_A ... E, RegNetX/Y) is one ``AnyNet`` call;
:func:`keras_lightnets.RegNet` is the RegNet rule in front of it.

Reference: pycls ``pycls/models/anynet.py`` (``simple_stem_in``, ``res_bottleneck_block``,
``AnyHead``) and timm ``regnet.py`` (the same network and parameter counts). PyTorch
conventions: symmetric padding, BatchNorm epsilon 1e-5.
"""

from functools import partial

from keras_lightnets.checks import check_int, check_number, check_positive, check_rate
from keras_lightnets.layers import conv_bn_act, residual_block, squeeze_excite
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.regnet_rule import compatible_stage
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family

__all__ = ["AnyNet", "anynet_body", "check_stages"]

STEM_WIDTH = 32
NORM = {"bn_epsilon": 1e-5, "bn_momentum": 0.9}  # PyTorch's BatchNorm defaults
STAGE_ARGS = ("depths", "widths", "strides", "bottleneck_ratios", "group_widths")


def _sequence(value, arg):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
        raise TypeError(f"`{arg}` must be a non-empty list or tuple, one entry per stage, got {value!r}")
    return tuple(value)


def check_stages(depths, widths, strides, bottleneck_ratios, group_widths):
    """The per-stage lists as :class:`Stage` rows plus strides, each entry checked, all of one length.

    The group width is made compatible with the bottleneck width as pycls and timm do (clipped
    to it, the bottleneck width rounded to a multiple of it), but a width that would change is
    an error: ``AnyNet`` builds exactly the widths it is given.
    """
    lists = {
        arg: _sequence(value, arg)
        for arg, value in zip(STAGE_ARGS, (depths, widths, strides, bottleneck_ratios, group_widths), strict=True)
    }
    lengths = {arg: len(value) for arg, value in lists.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(
            "`depths`, `widths`, `strides`, `bottleneck_ratios` and `group_widths` must have one entry per stage, "
            f"got lengths {lengths}"
        )
    stages = []
    for index, (depth, width, stride, ratio, group_width) in enumerate(zip(*lists.values(), strict=True)):
        check_int(depth, f"depths[{index}]", 1)
        check_int(width, f"widths[{index}]", 1)
        if stride not in (1, 2) or isinstance(stride, bool):
            raise ValueError(f"`strides[{index}]` must be 1 or 2, got {stride!r}")
        check_positive(ratio, f"bottleneck_ratios[{index}]")
        check_int(group_width, f"group_widths[{index}]", 1)
        stage = compatible_stage(depth, width, group_width, ratio)
        if stage.width != width:
            bottleneck = int(round(width * ratio))
            raise ValueError(
                f"`widths[{index}]`={width} with bottleneck ratio {ratio} gives a bottleneck of {bottleneck} channels, "
                f"not divisible by `group_widths[{index}]`={group_width}; the nearest compatible width is {stage.width}"
            )
        stages.append((stage, stride))
    return stages


def anynet_body(x, *, stem_width, stages, se_ratio, activation, drop_path_rate, name_prefix="s"):
    """Stem and stages: ``stages`` is ``[(Stage, stride), ...]``; blocks are named ``s{i}_b{j}``."""
    tracker = FeatureTracker()
    x = conv_bn_act(x, stem_width, 3, 2, activation=activation, padding="symmetric", name="stem", **NORM)
    tracker.add(x, 2)
    total = sum(stage.depth for stage, _ in stages)
    index = 0
    for i, (stage, stride) in enumerate(stages):
        for j in range(stage.depth):
            block_stride = stride if j == 0 else 1
            se = None
            if se_ratio:
                se = partial(squeeze_excite, hidden=int(round(se_ratio * x.shape[-1])))  # from the block *input*
            x = residual_block(
                x,
                stage.width,
                block_stride,
                kind="bottleneck",
                bottleneck_width=stage.bottleneck_width,
                group_width=stage.group_width,
                se=se,
                activation=activation,
                drop_path_rate=drop_path_rate * index / max(1, total - 1),
                padding="symmetric",
                name=f"{name_prefix}{i + 1}_b{j + 1}",
                **NORM,
            )
            tracker.add(x, block_stride)
            index += 1
    return x, tracker.maps


@family_constructor
def AnyNet(
    stem_width,
    depths,
    widths,
    strides,
    bottleneck_ratios,
    group_widths,
    se_ratio=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    dropout_rate=0.0,
    drop_path_rate=0.0,
    activation="relu",
    features_only=False,
    include_preprocessing=False,
):
    """Any network of the AnyNet design space: stem, one stage per entry of the lists, head.

    Block (pycls ``res_bottleneck_block``): 1x1 conv to ``b = round(w * bottleneck_ratio)`` →
    BN → ReLU; 3x3 conv, ``b / group_width`` groups, the stage's stride on the first block →
    BN → ReLU; [squeeze-excite]; 1x1 conv to ``w`` → BN; plus the shortcut (1x1 conv → BN when
    the width or the resolution changes), then ReLU.

    Args:
        stem_width: channels of the 3x3/2 stem conv (32 in the paper).
        depths, widths, strides, bottleneck_ratios, group_widths: one entry per stage: blocks,
            output channels, 1 or 2, bottleneck width / width, channels per group of the 3x3.
        se_ratio: squeeze-excite width as a fraction of each block's input width (0.25 for
            RegNetY); ``None`` or 0 for none.
        dropout_rate: before the classifier (0 in pycls and timm).
        drop_path_rate: stochastic depth, rising linearly over the blocks.
        activation: of every unit and after every sum (ReLU in the paper).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).

    >>> model = AnyNet(32, depths=(1, 1, 4, 7), widths=(24, 56, 152, 368), strides=(2, 2, 2, 2),
    ...                bottleneck_ratios=(1, 1, 1, 1), group_widths=(8, 8, 8, 8))  # RegNetX-200MF
    """
    check_int(stem_width, "stem_width", 1)
    stages = check_stages(depths, widths, strides, bottleneck_ratios, group_widths)
    if se_ratio is not None:
        check_number(se_ratio, "se_ratio", minimum=0, maximum=1)
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(
            anynet_body,
            stem_width=stem_width,
            stages=stages,
            se_ratio=se_ratio,
            activation=activation,
            drop_path_rate=drop_path_rate,
        ),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="anynet",
    )


# No published AnyNet models: its points are sampled (keras_lightnets.design_space) or built
# through RegNet, whose 24 published models are registered in regnet.py.
FAMILY = Family(
    name="anynet",
    constructor=AnyNet,
    architecture_args=("stem_width", *STAGE_ARGS, "se_ratio", "activation"),
    variants=(),
)
