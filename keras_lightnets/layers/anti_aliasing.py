"""Anti-aliased downsampling: a convolution runs at stride 1 and a low-pass pool takes the stride.

Zhang, "Making Convolutional Networks Shift-Invariant Again" (ICML 2019): a strided convolution
samples its output without low-pass filtering first, so a one-pixel shift of the input can change
the output a lot. timm's ``aa_layer`` moves the stride out of the convolution (after its BN and
activation) into

- ``"avg"``: a 2x2 average pool of stride 2 (PyTorch's ``AvgPool2d(2)``, no padding);
- ``"blur"``: a 3x3 binomial blur of stride 2 (``[1, 2, 1] / 4`` in each direction) over one row and
  column of zeros on every side (timm's ``BlurPool2d(pad_mode="constant")``, ``aa_layer="blurpc"``).

The blur is built from two built-in average pools, because ``[1, 1] / 2 * [1, 1] / 2 = [1, 2, 1] / 4``:
a 2x2 pool of stride 1, then a 2x2 pool of stride 2, on the zero-padded map, gives exactly the
binomial filter's taps ``2i, 2i + 1, 2i + 2``. No custom layer and no weights: ``.keras`` files,
quantization-aware training and TFLite (two int8 ``AVERAGE_POOL_2D``) take it as it is.
"""

from keras import layers

__all__ = ["ANTI_ALIASING", "anti_aliased_downsample"]

ANTI_ALIASING = ("avg", "blur")


def anti_aliased_downsample(x, kind, strides=2, *, name):
    """``x`` downsampled by ``strides`` (2) with the low-pass ``kind`` (``"avg"`` or ``"blur"``).

    Layers: ``{name}`` (the strided pool); for ``"blur"`` also ``{name}_pad`` and ``{name}_pair`` (the
    stride-1 pool).
    """
    if kind not in ANTI_ALIASING:
        raise ValueError(f"`anti_aliasing` must be one of {ANTI_ALIASING} or None, got {kind!r}")
    if strides != 2:
        raise ValueError(f"anti-aliased downsampling is defined for stride 2 (timm's), got {strides} in {name!r}")
    if kind == "avg":
        return layers.AveragePooling2D(2, strides=2, name=name)(x)
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = layers.AveragePooling2D(2, strides=1, name=f"{name}_pair")(x)
    return layers.AveragePooling2D(2, strides=2, name=name)(x)
