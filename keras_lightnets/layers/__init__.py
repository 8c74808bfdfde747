"""Public building blocks shared by the model families.

Block functions add standard Keras layers to a Functional graph under one
name prefix, so every model stays one flat graph that can be quantized and
rewritten. The custom layers here (:class:`StochasticDepth`,
:class:`ChannelPadAdd`, :class:`CeilMaxPool2D`,
:class:`LocalResponseNormalization`, ...) use ``keras.ops`` only, are
registered serializable under the ``keras_lightnets`` package and are described
in one table, :data:`keras_lightnets.layers.custom_layers.CUSTOM_LAYERS`.
"""

from keras_lightnets.layers.activations import ACTIVATIONS, activation_layer
from keras_lightnets.layers.channel_pad_add import ChannelPadAdd, PartialResidualAdd, residual_add
from keras_lightnets.layers.channel_shuffle import ChannelShuffle
from keras_lightnets.layers.conv_bn_act import conv_bn_act
from keras_lightnets.layers.depthwise_separable import depthwise_separable
from keras_lightnets.layers.fire import fire
from keras_lightnets.layers.fused_mbconv import fused_mbconv
from keras_lightnets.layers.interp import AlignedBilinearResize
from keras_lightnets.layers.inverted_residual import inverted_residual
from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.layers.lrn import LocalResponseNormalization
from keras_lightnets.layers.mobile_attention import mobile_attention, multi_query_attention
from keras_lightnets.layers.model_card import ModelCard, find_model_card
from keras_lightnets.layers.nearest_resize import NearestResize
from keras_lightnets.layers.padding import PADDING_MODES, SamePadding2D, pad_for_conv, pad_same
from keras_lightnets.layers.pooling import CeilMaxPool2D, max_pool_ceil
from keras_lightnets.layers.preact import bn_act_conv
from keras_lightnets.layers.residual_block import residual_block
from keras_lightnets.layers.squeeze_excite import squeeze_excite
from keras_lightnets.layers.stochastic_depth import StochasticDepth
from keras_lightnets.layers.universal_inverted_bottleneck import universal_inverted_bottleneck

__all__ = [
    "ACTIVATIONS",
    "PADDING_MODES",
    "AlignedBilinearResize",
    "CeilMaxPool2D",
    "ChannelPadAdd",
    "ChannelShuffle",
    "LayerScale",
    "LocalResponseNormalization",
    "ModelCard",
    "NearestResize",
    "PartialResidualAdd",
    "SamePadding2D",
    "StochasticDepth",
    "activation_layer",
    "bn_act_conv",
    "conv_bn_act",
    "depthwise_separable",
    "find_model_card",
    "fire",
    "fused_mbconv",
    "inverted_residual",
    "max_pool_ceil",
    "mobile_attention",
    "multi_query_attention",
    "pad_for_conv",
    "pad_same",
    "residual_add",
    "residual_block",
    "squeeze_excite",
    "universal_inverted_bottleneck",
]
