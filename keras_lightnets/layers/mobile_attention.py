"""Mobile multi-query attention (MobileNetV4 hybrids, Qin et al. 2024, arXiv 2404.10518, section 4):
every head has its own query, all heads share one key and one value, and the keys and values may be
computed on a map downsampled by a strided depthwise convolution.

Written with standard Keras layers only (``Conv2D``, ``Reshape``, ``Dot``, ``Rescaling``,
``Softmax``): the heads are folded into the query sequence, ``(H * W * heads, key_dim)``, so both
products are one batched matrix product each against the shared ``(P, key_dim)`` keys and
``(P, value_dim)`` values. In TFLite that is RESHAPE, BATCH_MATMUL, MUL, SOFTMAX, BATCH_MATMUL,
RESHAPE: built-in ops that all have int8 kernels.
"""

from keras import layers

from keras_lightnets.layers.channel_pad_add import residual_add
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.layers.stochastic_depth import StochasticDepth

__all__ = ["mobile_attention", "multi_query_attention"]


def _shared_projection(x, dim, *, kv_stride, kernel_size, norm, padding, name):
    """[depthwise kxk / kv_stride → BN] → 1x1 projection to ``dim`` → ``(batch, P, dim)``."""
    if kv_stride > 1:
        x = conv_bn_act(
            x, None, kernel_size, kv_stride, depthwise=True, activation=None, padding=padding,
            name=f"{name}_down", **norm,
        )  # fmt: skip
    x = layers.Conv2D(dim, 1, use_bias=False, name=f"{name}_proj")(x)
    return layers.Reshape((-1, dim), name=f"{name}_sequence")(x)


def multi_query_attention(
    x, filters, *, num_heads, key_dim, value_dim, kv_stride=1, kernel_size=3, bn_epsilon=1e-5, bn_momentum=0.9,
    padding="symmetric", name,
):  # fmt: skip
    """``proj_out(concat_h softmax(q_h k^T / sqrt(key_dim)) v)`` with ``q_h`` a 1x1 projection of ``x`` per
    head and ``k``, ``v`` shared by the heads (timm's ``MultiQueryAttention2d``, no bias anywhere).

    Needs a static height and width (the heads are merged back into a ``(H, W, heads * value_dim)`` map).

    Layers: ``{name}_query_proj``, ``{name}_query_heads``, ``{name}_key_down_*`` / ``{name}_value_down_*``
    (with ``kv_stride > 1``), ``{name}_key_proj``, ``{name}_value_proj``, ``{name}_scores``,
    ``{name}_scale``, ``{name}_softmax``, ``{name}_context``, ``{name}_merge_heads``, ``{name}_output_proj``.
    """
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError(f"multi-query attention {name!r} needs a static height and width, got shape {x.shape}")
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": bn_momentum}
    shared = {"kv_stride": kv_stride, "kernel_size": kernel_size, "norm": norm, "padding": padding}
    q = layers.Conv2D(num_heads * key_dim, 1, use_bias=False, name=f"{name}_query_proj")(x)
    # (H, W, heads * key_dim) -> (H * W * heads, key_dim): row (h * W + w) * heads + head
    q = layers.Reshape((height * width * num_heads, key_dim), name=f"{name}_query_heads")(q)
    k = _shared_projection(x, key_dim, name=f"{name}_key", **shared)
    v = _shared_projection(x, value_dim, name=f"{name}_value", **shared)
    scores = layers.Dot(axes=2, name=f"{name}_scores")([q, k])  # (H * W * heads, P)
    scores = layers.Rescaling(key_dim**-0.5, name=f"{name}_scale")(scores)
    weights = layers.Softmax(axis=-1, name=f"{name}_softmax")(scores)
    context = layers.Dot(axes=(2, 1), name=f"{name}_context")([weights, v])  # (H * W * heads, value_dim)
    context = layers.Reshape((height, width, num_heads * value_dim), name=f"{name}_merge_heads")(context)
    return layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_output_proj")(context)


def mobile_attention(
    x, filters, *, num_heads, key_dim, value_dim, kv_stride=1, kernel_size=3, layer_scale=None,
    drop_path_rate=0.0, bn_epsilon=1e-5, bn_momentum=0.9, padding="symmetric", name,
):  # fmt: skip
    """BN → :func:`multi_query_attention` → [layer scale] → [+ shortcut] (timm's ``MobileAttention`` with
    ``use_multi_query=True``); the shortcut exists when the width is unchanged.

    Layers: ``{name}_norm``, ``{name}_attn_*``, ``{name}_layer_scale``, ``{name}_drop_path``, ``{name}_add``.
    """
    shortcut = x
    y = layers.BatchNormalization(epsilon=bn_epsilon, momentum=bn_momentum, name=f"{name}_norm")(x)
    y = multi_query_attention(
        y, filters, num_heads=num_heads, key_dim=key_dim, value_dim=value_dim, kv_stride=kv_stride,
        kernel_size=kernel_size, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum, padding=padding,
        name=f"{name}_attn",
    )  # fmt: skip
    if layer_scale is not None:
        y = LayerScale(layer_scale, name=f"{name}_layer_scale")(y)
    if x.shape[-1] != filters:
        return y
    if drop_path_rate > 0.0:
        y = StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(y)
    return residual_add(y, shortcut, name=f"{name}_add")
