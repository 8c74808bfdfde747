"""PyTorch ``MaxPool2d(ceil_mode=True)`` with standard Keras layers."""

from keras import layers

__all__ = ["max_pool_ceil"]


def _axis_padding(size, pool, stride):
    # Ceil mode keeps one more window when the last stride leaves a partial window.
    # TensorFlow's "same" then gives the same windows when it pads one row at the
    # end only (padding is ignored by the max): true for the 3/2 and 2/2 pools.
    if (size - pool) % stride == 0:
        return "valid"
    same_out = -(-size // stride)
    ceil_out = -(-(size - pool) // stride) + 1
    same_total_pad = (same_out - 1) * stride + pool - size
    if same_out != ceil_out or same_total_pad != 1:
        raise ValueError(f"no exact Keras padding for ceil-mode pooling of size {size} (pool {pool}, stride {stride})")
    return "same"


def max_pool_ceil(x, pool_size=3, strides=2, *, name):
    """Max pooling with PyTorch's ``ceil_mode=True`` output size.

    Needs static spatial dimensions: whether the last partial window exists
    depends on the size. When height and width need different rules, the pool
    is split into a (k, 1) and a (1, k) pool; max pooling is separable, so the
    result is identical.
    """
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError(
            "ceil-mode max pooling needs static spatial dimensions; build the model with a fixed "
            "input_shape such as (224, 224, 3)"
        )
    rule_h = _axis_padding(height, pool_size, strides)
    rule_w = _axis_padding(width, pool_size, strides)
    if rule_h == rule_w:
        return layers.MaxPooling2D(pool_size, strides, padding=rule_h, name=name)(x)
    x = layers.MaxPooling2D((pool_size, 1), (strides, 1), padding=rule_h, name=f"{name}_h")(x)
    return layers.MaxPooling2D((1, pool_size), (1, strides), padding=rule_w, name=name)(x)
