"""The shared building blocks, against NumPy formulas and PyTorch semantics."""

import keras
import numpy as np
import pytest
from keras import layers

from keras_lightnets.layers import (
    ChannelPadAdd,
    StochasticDepth,
    conv_bn_act,
    fire,
    pad_for_conv,
    residual_add,
    squeeze_excite,
)


def test_squeeze_excite_formula(rng):
    inputs = keras.Input((4, 4, 6))
    model = keras.Model(inputs, squeeze_excite(inputs, hidden=2, name="se"))
    x = rng.standard_normal((1, 4, 4, 6)).astype("float32")
    w1, b1 = model.get_layer("se_reduce").get_weights()
    w2, b2 = model.get_layer("se_expand").get_weights()
    s = x.mean(axis=(1, 2)) @ w1[0, 0] + b1
    s = 1 / (1 + np.exp(-(np.maximum(s, 0) @ w2[0, 0] + b2)))
    np.testing.assert_allclose(model.predict(x, verbose=0), x * s[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_squeeze_excite_hidden_width_rule():
    inputs = keras.Input((4, 4, 40))
    model = keras.Model(inputs, squeeze_excite(inputs, ratio=0.25, name="se2"))
    assert model.get_layer("se2_reduce").filters == 10


def test_channel_pad_add_adds_to_the_first_channels(rng):
    y = rng.standard_normal((2, 3, 3, 5)).astype("float32")
    x = rng.standard_normal((2, 3, 3, 2)).astype("float32")
    out = ChannelPadAdd()([y, x]).numpy()
    np.testing.assert_allclose(out[..., :2], y[..., :2] + x, rtol=1e-6)
    np.testing.assert_array_equal(out[..., 2:], y[..., 2:])
    with pytest.raises(ValueError, match="shortcut channels"):
        ChannelPadAdd()([keras.Input((3, 3, 2)), keras.Input((3, 3, 5))])


def test_residual_add_pads_only_a_narrower_shortcut():
    y, same, narrow = keras.Input((3, 3, 5)), keras.Input((3, 3, 5)), keras.Input((3, 3, 2))
    assert type(residual_add(y, same, name="add")._keras_history.operation) is layers.Add
    assert type(residual_add(y, narrow, name="pad_add")._keras_history.operation) is ChannelPadAdd


def test_stochastic_depth_per_sample(rng):
    layer = StochasticDepth(0.5, seed=1)
    x = np.ones((256, 2, 2, 3), "float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    out = layer(x, training=True).numpy()
    per_sample = out.reshape(256, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}  # dropped or scaled by 1 / keep
    assert (per_sample == per_sample[:, :1]).all()  # the whole sample at once
    assert 0.35 < (per_sample[:, 0] == 0).mean() < 0.65
    restored = StochasticDepth.from_config(layer.get_config())
    assert restored.rate == 0.5 and restored.seed == 1
    with pytest.raises(ValueError, match="rate"):
        StochasticDepth(1.0)


@pytest.mark.parametrize("size", [7, 8])
def test_symmetric_padding_is_pytorch_padding(size):
    x = keras.Input((size, size, 1))
    padded, conv_padding = pad_for_conv(x, 3, 2, "symmetric", name="pad")
    assert conv_padding == "valid" and padded.shape[1:3] == (size + 2, size + 2)
    # stride 1 with an odd kernel needs no extra layer: "same" is symmetric there
    assert pad_for_conv(x, 3, 1, "symmetric", name="p2") == (x, "same")
    with pytest.raises(ValueError, match="padding must be one of"):
        pad_for_conv(x, 3, 1, "reflect", name="p3")


def test_conv_bn_act_names_and_options():
    inputs = keras.Input((8, 8, 3))
    x = conv_bn_act(inputs, 4, 3, 2, activation="relu6", name="stem")
    model = keras.Model(inputs, x)
    assert [layer.name for layer in model.layers[1:]] == ["stem_pad", "stem_conv", "stem_bn", "stem_act"]
    assert model.get_layer("stem_act").max_value == 6.0
    with pytest.raises(ValueError, match="activation must be one of"):
        conv_bn_act(inputs, 4, activation="mish", name="bad")


def test_fire_concatenates_expand1x1_then_expand3x3(rng):
    inputs = keras.Input((6, 6, 8))
    model = keras.Model(inputs, fire(inputs, 2, 3, 5, name="fire"))
    assert model.output_shape == (None, 6, 6, 8)
    x = rng.standard_normal((1, 6, 6, 8)).astype("float32")
    squeeze = keras.Model(inputs, model.get_layer("fire_expand1x1_act").output)
    np.testing.assert_array_equal(model.predict(x, verbose=0)[..., :3], squeeze.predict(x, verbose=0))
    assert isinstance(model.get_layer("fire_concat"), layers.Concatenate)
