"""Residual Attention Network: the operations that make it (Caffe's aligned-corner Interp on hand
cases, the attention output (1 + M) · T) and its input bounds. Its outputs are pinned by golden
tensors (test_golden.py); no reference implementation can be installed."""

import keras
import numpy as np
import pytest
from inference import infer

import keras_lightnets as kl
from keras_lightnets.layers import AlignedBilinearResize
from keras_lightnets.models.resattnet import attention_module, min_input_size


def caffe_interp(x, height, width):
    """A transcription of DeepLab Caffe's ``caffe_cpu_interp2`` (the Interp layer), NHWC, float32 steps."""
    height_in, width_in = x.shape[1:3]
    rheight = np.float32((height_in - 1) / (height - 1)) if height > 1 else np.float32(0)
    rwidth = np.float32((width_in - 1) / (width - 1)) if width > 1 else np.float32(0)
    out = np.zeros((x.shape[0], height, width, x.shape[3]), np.float64)
    for h2 in range(height):
        h1r = np.float32(rheight * h2)
        h1 = int(h1r)
        h1p = 1 if h1 < height_in - 1 else 0
        h1lambda = h1r - h1
        for w2 in range(width):
            w1r = np.float32(rwidth * w2)
            w1 = int(w1r)
            w1p = 1 if w1 < width_in - 1 else 0
            w1lambda = w1r - w1
            out[:, h2, w2] = (1 - h1lambda) * ((1 - w1lambda) * x[:, h1, w1] + w1lambda * x[:, h1, w1 + w1p]) + (
                h1lambda * ((1 - w1lambda) * x[:, h1 + h1p, w1] + w1lambda * x[:, h1 + h1p, w1 + w1p])
            )
    return out


def resize(x, height, width):
    reference = np.zeros((x.shape[0], height, width, 1), np.float32)
    return np.asarray(AlignedBilinearResize()([x.astype("float32"), reference]))


def test_interp_aligns_corners_like_caffe_on_hand_cases():
    square = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    np.testing.assert_allclose(resize(square, 3, 3)[0, ..., 0], [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
    aligned = [[0, 1 / 3, 2 / 3, 1], [1, 4 / 3, 5 / 3, 2], [2, 7 / 3, 8 / 3, 3]]  # 2 * row + column
    np.testing.assert_allclose(resize(square, 3, 4)[0, ..., 0], aligned, rtol=1e-6)
    # One output row samples the first input row (Caffe's ratio 0), columns 2 -> 4 step by 1/3.
    tall = np.array([[0.0, 3.0], [6.0, 9.0], [12.0, 15.0]]).reshape(1, 3, 2, 1)
    np.testing.assert_allclose(resize(tall, 1, 4)[0, ..., 0], [[0, 1, 2, 3]], atol=1e-6)
    # Keras's own bilinear resizing samples half-pixel centres: not the same up-sampling.
    half_pixel = np.asarray(keras.layers.Resizing(3, 4, interpolation="bilinear")(square.astype("float32")))
    assert np.abs(half_pixel[0, ..., 0] - aligned).max() > 0.05
    # Ratios that are not whole (7 -> 14 is the mask's 224-pixel case) and down-sampling too.
    x = np.random.default_rng(0).standard_normal((2, 7, 5, 3))
    for height, width in ((14, 9), (7, 5), (4, 3)):
        np.testing.assert_allclose(resize(x, height, width), caffe_interp(x, height, width), rtol=1e-5, atol=1e-5)


def test_interp_twin_and_unknown_sizes():
    from keras_lightnets.deploy import to_tf_keras

    image, like = keras.Input((None, None, 3)), keras.Input((None, None, 1))
    model = keras.Model([image, like], AlignedBilinearResize(name="interp")([image, like]))
    twin = to_tf_keras(model)  # TFLite's RESIZE_BILINEAR with align_corners=True
    x = np.random.default_rng(1).standard_normal((1, 7, 5, 3)).astype("float32")
    for height, width in ((14, 9), (3, 11)):
        reference = np.zeros((1, height, width, 1), "float32")
        expected = caffe_interp(x, height, width)
        np.testing.assert_allclose(infer(model, [x, reference]), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(twin([x, reference]).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("unit", ["preact", "resnext"])
def test_attention_output_is_one_plus_mask_times_trunk(unit):
    from golden import seeded_weights

    inputs = keras.Input((16, 12, 64))
    out = attention_module(inputs, 32, 2, unit=unit, name="m")
    model = seeded_weights(keras.Model(inputs, out), seed=2)
    resnext = unit == "resnext"  # post-activation units end in a ReLU, pre-activation ones in the sum
    names = [
        "m_trunk2_relu" if resnext else "m_trunk2_add",
        "m_mask",
        "m_fusion",
        "m_post_conv1_conv" if resnext else "m_post_bn",
    ]
    probe = keras.Model(inputs, [model.get_layer(name).output for name in names[:3]])
    trunk, mask, fused = infer(probe, np.random.default_rng(0).standard_normal((2, 16, 12, 64)).astype("float32"))
    assert mask.shape == trunk.shape and 0.0 < mask.min() and mask.max() < 1.0 and mask.std() > 1e-3
    np.testing.assert_allclose(fused, (1.0 + mask) * trunk, rtol=1e-5, atol=1e-5)
    # the mask: two max pools down (16x12 -> 8x6 -> 4x3), two aligned up-samplings back, one skip
    assert model.get_layer("m_mask_interp2").output.shape[1:3] == (8, 6)
    assert model.get_layer("m_mask_interp1").output.shape[1:3] == (16, 12)
    assert model.get_layer("m_mask_interp2").input[0].shape[1:3] == (4, 3)
    assert model.get_layer(names[3]).input is model.get_layer("m_fusion").output  # the unit after the sum


def test_inputs_too_small_for_the_attention_stages_are_refused():
    assert (min_input_size("imagenet"), min_input_size("cifar")) == (31, 8)
    with pytest.raises(ValueError, match=r"`input_shape` height 30 is too small for the attention stages.*at least 31"):
        kl.ResidualAttentionNet(56, input_shape=(30, 64, 3))
    with pytest.raises(ValueError, match=r"`input_shape` width 7 is too small.*at least 8 pixels for the cifar layout"):
        kl.create_model("resattnet92_cifar", input_shape=(32, 7, 3))
    with pytest.raises(ValueError, match=r"`input_tensor` height 20 is too small"):
        kl.ResidualAttentionNet(56, input_tensor=keras.Input((20, 40, 3)))
    with pytest.raises(ValueError, match=r"`depth` must be one of \(56, 92\), got 50"):
        kl.ResidualAttentionNet(50)
    with pytest.raises(ValueError, match="`unit='resnext'` exists for layout='imagenet' only"):
        kl.ResidualAttentionNet(92, unit="resnext", layout="cifar")
    with keras.StatelessScope(initialize_variables=False):  # the smallest sizes build
        assert kl.ResidualAttentionNet(56, layout="cifar", input_shape=(8, 8, 3)).output_shape == (None, 1000)
