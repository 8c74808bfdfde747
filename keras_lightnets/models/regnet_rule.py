"""The RegNet rule (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020, section 3.3):
six numbers ``(w0, wa, wm, depth, group_width, bottleneck_ratio)`` become the four stages of an AnyNet.

Per block ``j < depth`` the continuous width is ``u_j = w0 + wa * j``. It is snapped to the
geometric ladder ``w0 * wm ** s_j`` with ``s_j = round(log(u_j / w0) / log(wm))`` and rounded to
a multiple of ``quantum`` (8), both with NumPy's round-half-even, as pycls does. Consecutive
blocks of equal width form a stage. Then pycls/timm make each stage's group width compatible
with its bottleneck width ``b = width * bottleneck_ratio``: the group width is clipped to ``b``
(RegNetX-8.0GF's first stage: 80 channels, group width 120 → one group of 80) and ``b`` is
rounded to a multiple of the group width.
"""

from dataclasses import dataclass

import numpy as np

from keras_lightnets.checks import check_int, check_number, check_positive

__all__ = ["Stage", "regnet_stages"]


@dataclass(frozen=True)
class Stage:
    """One stage of an AnyNet: ``depth`` blocks of output ``width``, 3x3 convs of ``group_width`` channels per group."""

    depth: int
    width: int
    group_width: int
    bottleneck_ratio: float = 1.0

    @property
    def bottleneck_width(self):
        """Channels of the block's 1x1 → 3x3 part: ``round(width * bottleneck_ratio)``."""
        return int(round(self.width * self.bottleneck_ratio))

    @property
    def groups(self):
        return self.bottleneck_width // self.group_width


def quantized_widths(w0, wa, wm, depth, quantum=8):
    """The per-block widths of the linear rule, snapped to ``w0 * wm ** k`` and to multiples of ``quantum``."""
    continuous = np.arange(depth) * wa + w0
    steps = np.round(np.log(continuous / w0) / np.log(wm))
    widths = np.round(w0 * np.power(wm, steps) / quantum).astype(int) * quantum
    return [int(width) for width in widths]


def compatible_stage(depth, width, group_width, bottleneck_ratio=1.0):
    """A :class:`Stage` with the group width clipped to the bottleneck width and the width
    rounded so that the bottleneck width is a multiple of the group width (pycls ``adjust_block_compatibility``)."""
    bottleneck = max(1, int(width * bottleneck_ratio))
    group_width = int(min(group_width, bottleneck))
    bottleneck = int(round(bottleneck / group_width) * group_width)
    return Stage(depth, int(bottleneck / bottleneck_ratio), group_width, bottleneck_ratio)


def regnet_stages(w0, wa, wm, depth, group_width, *, bottleneck_ratio=1.0, quantum=8):
    """The stages of the RegNet with these parameters, as a list of :class:`Stage`.

    Args:
        w0: initial width (> 0, a multiple of ``quantum``).
        wa: width slope (>= 0).
        wm: width multiplier between stages (> 1).
        depth: number of blocks (>= 1).
        group_width: channels per group of the 3x3 convolutions (>= 1).
        bottleneck_ratio: bottleneck width / block width (1 for the published RegNets).
        quantum: widths are multiples of it (8 in the paper).

    >>> [(s.depth, s.width) for s in regnet_stages(24, 36.44, 2.49, 13, 8)]  # RegNetX-200MF
    [(1, 24), (1, 56), (4, 152), (7, 368)]
    """
    check_int(quantum, "quantum", 1)
    check_positive(w0, "w0")
    if w0 % quantum:
        raise ValueError(f"`w0` must be a multiple of quantum={quantum}, got {w0!r}")
    check_number(wa, "wa", minimum=0)
    check_number(wm, "wm", minimum=1, exclusive_minimum=True)
    check_int(depth, "depth", 1)
    check_int(group_width, "group_width", 1)
    check_positive(bottleneck_ratio, "bottleneck_ratio")
    stages = []
    for width in quantized_widths(w0, wa, wm, depth, quantum):
        if stages and stages[-1][1] == width:
            stages[-1][0] += 1
        else:
            stages.append([1, width])
    return [compatible_stage(depth, width, group_width, bottleneck_ratio) for depth, width in stages]
