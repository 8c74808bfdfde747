"""MACs of an AnyNet configuration, computed from its numbers without building the model.

Counts what :func:`keras_lightnets.profile` counts (multiply-accumulates of the convolutions and
the classifier, no BatchNorm, pooling or additions), so a sampler can keep a MAC band while
drawing thousands of configurations. A test checks it against ``profile`` of the built model.
"""

import math

__all__ = ["anynet_macs"]


def _half(size):
    """Output size of a stride-2 3x3 convolution with symmetric padding 1 (and of a stride-2 1x1)."""
    return math.ceil(size / 2)


def anynet_macs(config, *, input_size=224, classes=1000):
    """MACs of ``kl.AnyNet(**config)`` on a square ``input_size`` image, with ``classes`` outputs.

    ``config`` holds ``stem_width``, ``depths``, ``widths``, ``strides``, ``bottleneck_ratios``,
    ``group_widths`` and optionally ``se_ratio``: the keyword arguments of :func:`keras_lightnets.AnyNet`.
    """
    size = _half(input_size)
    channels = config["stem_width"]
    macs = 3 * 3 * 3 * channels * size * size
    se_ratio = config.get("se_ratio") or 0
    stages = zip(
        config["depths"],
        config["widths"],
        config["strides"],
        config["bottleneck_ratios"],
        config["group_widths"],
        strict=True,
    )
    for depth, width, stride, ratio, group_width in stages:
        bottleneck = int(round(width * ratio))
        groups = bottleneck // group_width
        for block in range(depth):
            block_stride = stride if block == 0 else 1
            out_size = _half(size) if block_stride == 2 else size
            macs += channels * bottleneck * size * size  # 1x1 at the input resolution
            macs += 3 * 3 * (bottleneck // groups) * bottleneck * out_size * out_size  # grouped 3x3
            if se_ratio:
                hidden = int(round(se_ratio * channels))
                macs += 2 * bottleneck * hidden  # on the pooled 1x1 map
            macs += bottleneck * width * out_size * out_size  # 1x1 projection
            if block_stride != 1 or channels != width:
                macs += channels * width * out_size * out_size  # shortcut projection
            channels, size = width, out_size
    return macs + channels * classes
