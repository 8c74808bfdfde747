"""The design spaces of Radosavovic et al. (CVPR 2020) and a seeded sampler over them.

AnyNetX (section 3.1): a 32-channel stem, four stages of stride 2, per stage a depth
``d in [1, 16]``, a width ``w in {8, 16, ..., 1024}``, a bottleneck ratio ``b in {1, 2, 4}``
(bottleneck width ``w / b``) and a group width ``g in {1, 2, ..., 32}``. The paper narrows it
step by step, each step keeping the error distribution while shrinking the space:

- ``AnyNetX_A``: everything independent per stage;
- ``AnyNetX_B``: one bottleneck ratio shared by the stages;
- ``AnyNetX_C``: and one group width shared;
- ``AnyNetX_D``: and widths that never decrease from stage to stage;
- ``AnyNetX_E``: and depths that never decrease;
- ``RegNetX``: the quantized linear rule of section 3.3, ``d < 64``, ``w0, wa < 256``,
  ``1.5 <= wm <= 3``, ``b`` and ``g`` as in AnyNetX_C; ``RegNetY``: the same with a
  squeeze-excite of ratio 0.25. Both keep four-stage networks only, as AnyNetX has (pycls's
  sweeps constrain ``REGNET.NUM_STAGES`` the same way).

A drawn configuration is made compatible as pycls does (the group width clipped to the
bottleneck width, which is rounded to a multiple of it), and is re-drawn when that breaks
the space's constraints. :func:`sample` keeps the configurations whose MACs at 224x224
(:func:`~keras_lightnets.design_space.complexity.anynet_macs`) fall in a band.
"""

import numpy as np

from keras_lightnets.checks import check_choice, check_int, check_number
from keras_lightnets.design_space.complexity import anynet_macs
from keras_lightnets.models.regnet_rule import compatible_stage, regnet_stages

__all__ = ["SPACES", "sample"]

SPACES = ("AnyNetX_A", "AnyNetX_B", "AnyNetX_C", "AnyNetX_D", "AnyNetX_E", "RegNetX", "RegNetY")
STEM_WIDTH = 32
STAGES = 4
DEPTHS = np.arange(1, 17)
WIDTHS = np.arange(8, 1025, 8)
BOTTLENECK_RATIOS = (1, 2, 4)  # the paper's b: bottleneck width = w / b
GROUP_WIDTHS = (1, 2, 4, 8, 16, 32)
REGNET_DEPTHS = np.arange(1, 64)
REGNET_W0 = np.arange(8, 256, 8)
# AnyNetX_A keeps about 1 draw in 1,900 in the paper's 360-400 MF band (measured, seed 0): the
# bound leaves a 10x margin and still gives up on an unreachable band within seconds.
MAX_DRAWS_PER_SAMPLE = 20_000


def _level(space):
    """0 for AnyNetX_A ... 4 for AnyNetX_E: each level adds one constraint to the previous."""
    return "ABCDE".index(space[-1])


def _draw_anynet(space, rng):
    level = _level(space)
    shared_b, shared_g = level >= 1, level >= 2
    depths = rng.choice(DEPTHS, STAGES)
    widths = rng.choice(WIDTHS, STAGES)
    b = rng.choice(BOTTLENECK_RATIOS, 1 if shared_b else STAGES)
    g = rng.choice(GROUP_WIDTHS, 1 if shared_g else STAGES)
    if level >= 3:
        widths = np.sort(widths)
    if level >= 4:
        depths = np.sort(depths)
    return depths, widths, np.resize(b, STAGES), np.resize(g, STAGES)


def _draw_regnet(rng):
    depth = int(rng.choice(REGNET_DEPTHS))
    w0 = int(rng.choice(REGNET_W0))
    wa = float(rng.uniform(0, 256))
    wm = float(rng.uniform(1.5, 3.0))
    b = int(rng.choice(BOTTLENECK_RATIOS))
    g = int(rng.choice(GROUP_WIDTHS))
    stages = regnet_stages(w0, wa, wm, depth, g, bottleneck_ratio=1.0 / b)
    depths = [stage.depth for stage in stages]
    widths = [stage.width for stage in stages]
    return np.array(depths), np.array(widths), np.full(len(stages), b), np.full(len(stages), g)


def _config(depths, widths, b, g, se_ratio):
    stages = [
        compatible_stage(int(d), int(w), int(gw), 1.0 / int(r))
        for d, w, r, gw in zip(depths, widths, b, g, strict=True)
    ]
    return {
        "stem_width": STEM_WIDTH,
        "depths": [stage.depth for stage in stages],
        "widths": [stage.width for stage in stages],
        "strides": [2] * len(stages),
        "bottleneck_ratios": [stage.bottleneck_ratio for stage in stages],
        "group_widths": [stage.group_width for stage in stages],
        "se_ratio": se_ratio,
    }


def _keeps_constraints(space, config):
    widths = config["widths"]
    if min(widths) < 1:
        return False
    # A RegNet's stage count follows from its parameters (1 to 8 here); like AnyNetX, and as
    # pycls's sweeps constrain REGNET.NUM_STAGES, the space keeps four-stage networks (32x down).
    if space.startswith("RegNet") and len(widths) != STAGES:
        return False
    if (
        space.startswith("AnyNetX")
        and _level(space) >= 3
        and any(b < a for a, b in zip(widths[:-1], widths[1:], strict=True))
    ):
        return False
    return True


def sample(space, n, *, seed, macs=None, input_size=224, classes=1000):
    """``n`` configurations of ``space`` (dicts of :func:`keras_lightnets.AnyNet` arguments).

    Args:
        space: one of :data:`SPACES`.
        n: how many.
        seed: the draws are reproducible from it.
        macs: ``(low, high)``: keep only configurations whose MACs (at ``input_size``, with
            ``classes`` outputs) fall in ``[low, high]``; ``None`` keeps all.

    Raises ``ValueError`` when no configuration in ``MAX_DRAWS_PER_SAMPLE * n`` draws falls in the band.
    """
    check_choice(space, "space", SPACES)
    check_int(n, "n", 1)
    check_int(seed, "seed", 0)
    if macs is not None:
        if not isinstance(macs, (tuple, list)) or len(macs) != 2:
            raise TypeError(f"`macs` must be None or a (low, high) pair, got {macs!r}")
        low, high = (check_number(value, f"macs[{i}]", minimum=0) for i, value in enumerate(macs))
        if low > high:
            raise ValueError(f"`macs` must be a (low, high) band with low <= high, got {tuple(macs)!r}")
    rng = np.random.default_rng(seed)
    se_ratio = 0.25 if space == "RegNetY" else None
    kept, draws = [], 0
    while len(kept) < n:
        if draws >= MAX_DRAWS_PER_SAMPLE * n:
            raise ValueError(
                f"`macs`={tuple(macs)!r}: only {len(kept)} of {n} {space} configurations fell in the band after "
                f"{draws} draws; widen the band (MACs at {input_size}x{input_size})"
            )
        draws += 1
        if space.startswith("RegNet"):
            config = _config(*_draw_regnet(rng), se_ratio)
        else:
            config = _config(*_draw_anynet(space, rng), se_ratio)
        if not _keeps_constraints(space, config):
            continue
        if macs is not None and not low <= anynet_macs(config, input_size=input_size, classes=classes) <= high:
            continue
        kept.append(config)
    return kept
