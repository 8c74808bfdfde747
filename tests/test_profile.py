"""profile(): params, MACs, activations and depth, checked on graphs small enough to count by hand."""

import keras
import pytest
from keras import layers

import keras_lightnets as kl


def test_counts_a_hand_made_graph():
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", name="a")(inputs)  # 8*8*4 outputs x 27 MACs
    b = layers.DepthwiseConv2D(3, strides=2, padding="same", name="b")(a)  # 4*4*4 x 9
    c = layers.Conv2D(4, 1, groups=2, name="c")(b)  # 4*4*4 x 2
    branch = layers.Conv2D(4, 1, strides=2, name="branch")(a)  # 4*4*4 x 4 (a shorter path)
    x = layers.Add()([c, branch])
    x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(5)(x)  # 4 x 5
    result = kl.profile(keras.Model(inputs, outputs))
    assert result.macs == 8 * 8 * 4 * 27 + 4 * 4 * 4 * 9 + 4 * 4 * 4 * 2 + 4 * 4 * 4 * 4 + 4 * 5
    assert result.activations == 8 * 8 * 4 + 3 * 4 * 4 * 4
    assert result.depth == 4  # a -> b -> c -> dense
    # trainable: conv a 3*3*3*4+4, dw 9*4+4, c 2*4+4, branch 4*4+4, BN gamma/beta 8, dense 4*5+5
    assert result.params == 112 + 40 + 12 + 20 + 8 + 25


def test_counts_attention_matrix_products():
    # Attention as two Dot layers (MobileNetV4's multi-query attention): queries (6, 4) against keys (5, 4)
    # make (6, 5) scores, 4 MACs each; the (6, 5) weights against values (5, 3) make (6, 3), 5 MACs each.
    queries, keys, values = keras.Input((6, 4)), keras.Input((5, 4)), keras.Input((5, 3))
    scores = layers.Dot(axes=2)([queries, keys])
    context = layers.Dot(axes=(2, 1))([layers.Softmax()(scores), values])
    result = kl.profile(keras.Model([queries, keys, values], context))
    assert result.macs == 6 * 5 * 4 + 6 * 3 * 5
    assert result.depth == 0 and result.params == 0  # products of activations: no weights, no conv depth


def test_dynamic_shapes_are_refused():
    model = kl.MobileNetV2(0.35, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="static shapes"):
        kl.profile(model)


def test_refuses_non_models():
    with pytest.raises(TypeError, match="keras.Model"):
        kl.profile("rexnet_100")


def test_depth_of_registered_models():
    # MobileNetV1: stem + 13 x (dw, pw) + classifier = 28 conv/dense layers.
    assert kl.profile(kl.MobileNet(0.25)).depth == 28
    # SqueezeNet: conv1 + 8 fires x (squeeze, expand) + conv10 = 18.
    assert kl.profile(kl.SqueezeNet("1.1")).depth == 18


def test_custom_layers_count_by_their_table_rule():
    # ChannelPadAdd and CeilMaxPool2D multiply nothing: their rule (custom_layers.CUSTOM_LAYERS) says 0.
    inputs = keras.Input((9, 9, 3))
    a = layers.Conv2D(4, 1, name="a")(inputs)  # 9*9*4 x 3
    b = layers.Conv2D(2, 1, name="b")(inputs)  # 9*9*2 x 3
    x = kl.layers.ChannelPadAdd(name="pad_add")([a, b])
    x = kl.layers.CeilMaxPool2D(3, 2, name="pool")(x)  # 9 -> 4 (ceil mode)
    outputs = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))  # 4 x 5
    result = kl.profile(keras.Model(inputs, outputs))
    assert result.macs == 9 * 9 * 4 * 3 + 9 * 9 * 2 * 3 + 4 * 5
    assert result.depth == 2  # a -> dense: custom layers are not conv/dense
