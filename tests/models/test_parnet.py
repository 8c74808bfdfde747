"""ParNet and RepVGG specifics. ParNet has no installable reference (the official code is not a
package): its distinctive operations are checked against NumPy written from the official code's
semantics (RepVGG-SSE, the downsampling block's 2x2 average-pool branch and doubled SE gate, the
fusion block's per-input BN, interleave, groups=2 and shuffle), the counts against the table
(test_variants.py) and two models against golden tensors (test_golden.py)."""

import keras
import numpy as np
import pytest
from golden import seeded_weights
from torch_reference import import_reference

import keras_lightnets as kl
from keras_lightnets.layers import ChannelShuffle
from keras_lightnets.models.parnet import parnet_block, parnet_fusion

RNG = np.random.default_rng(0)


# --- NumPy, from the official RepVGGBlock / SE1 / Concat2d / channel_shuffle semantics -------------


def conv(x, kernel, stride=1, pad=0, groups=1):
    """NHWC convolution, PyTorch padding ``pad`` on every side, kernel (kh, kw, in/g, out)."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw, per_group, out = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    y = np.zeros((n, oh, ow, out))
    out_per_group = out // groups
    for o in range(out):
        g = o // out_per_group
        xs = x[..., g * per_group : (g + 1) * per_group]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
                y[..., o] += patch @ kernel[i, j, :, o]
    return y


def bn(layer, x):
    gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
    return (x - mean) / np.sqrt(var + layer.epsilon) * gamma + beta


def silu(x):
    return x / (1 + np.exp(-x))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def shuffle(x, groups):
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).transpose(0, 1, 2, 4, 3).reshape(n, h, w, c)


def reference_block(model, name, x, stride, groups):
    w = lambda suffix: np.asarray(model.get_layer(f"{name}_{suffix}").get_weights()[0])  # noqa: E731
    layer = lambda suffix: model.get_layer(f"{name}_{suffix}")  # noqa: E731
    dense = bn(layer("conv_kxk_bn"), conv(x, w("conv_kxk_conv"), stride, 1, groups))
    if stride == 2:
        n, h, wd, c = x.shape
        padded = np.pad(x, ((0, 0), (0, h % 2), (0, wd % 2), (0, 0)))  # PyTorch needs even sizes; see rep_branches
        pooled = padded.reshape(n, (h + 1) // 2, 2, (wd + 1) // 2, 2, c).mean(axis=(2, 4))
        one = bn(layer("conv_1x1_bn"), conv(pooled, w("conv_1x1_conv"), 1, 0, groups))
    else:
        one = bn(layer("conv_1x1_bn"), conv(x, w("conv_1x1_conv"), 1, 0, groups))
    if x.shape[-1] == dense.shape[-1] and stride == 1:  # RepVGG-SSE: SE1(ver=1) on the identity BN
        identity = bn(layer("identity"), x)
        gate = sigmoid(conv(identity.mean(axis=(1, 2), keepdims=True), w("sse_conv"), groups=groups))
        out = dense + one + identity * gate
    else:  # SE1(ver=2) on the block input, doubled
        gate = 2 * sigmoid(conv(x.mean(axis=(1, 2), keepdims=True), w("se_conv"), groups=groups))
        out = (dense + one) * gate
    out = silu(out)
    return shuffle(out, groups) if groups > 1 else out


@pytest.mark.parametrize(
    "in_channels, filters, stride, size",
    [(8, 8, 1, (7, 9)), (6, 10, 2, (8, 10)), (6, 10, 2, (7, 9))],
    ids=["sse", "downsample-even", "downsample-odd"],
)
def test_block_matches_numpy(in_channels, filters, stride, size):
    inputs = keras.Input((*size, in_channels))
    model = seeded_weights(keras.Model(inputs, parnet_block(inputs, filters, stride, name="b")))
    x = RNG.standard_normal((2, *size, in_channels)).astype("float32")
    expected = reference_block(model, "b", x.astype(np.float64), stride, 1)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=1e-4, atol=1e-4)


def test_fusion_block_matches_numpy():
    stream_in, down_in = keras.Input((6, 8, 4)), keras.Input((6, 8, 4))
    out = parnet_fusion(stream_in, down_in, 6, 2, activation="silu", name="f")
    model = seeded_weights(keras.Model([stream_in, down_in], out))
    s, d = (RNG.standard_normal((2, 6, 8, 4)) for _ in range(2))
    # Official Concat2d(shuffle=True): stack on a new axis after the channels -> [s0, d0, s1, d1, ...].
    s_bn, d_bn = bn(model.get_layer("f_bn_stream"), s), bn(model.get_layer("f_bn_down"), d)
    interleaved = np.stack([s_bn, d_bn], axis=-1).reshape(2, 6, 8, 8)
    expected = reference_block(model, "f", interleaved, 2, 2)
    got = np.asarray(model([s.astype("float32"), d.astype("float32")], training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_channel_shuffle_by_hand():
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)  # groups of 3: [0 1 2 | 3 4 5]
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(2)(x)).ravel(), [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(np.asarray(ChannelShuffle(3)(x)).ravel(), [0, 2, 4, 1, 3, 5])
    with pytest.raises(ValueError, match="divisible by groups=4"):
        ChannelShuffle(4)(x)
    with pytest.raises(ValueError, match="positive integer"):
        ChannelShuffle(0)


@pytest.mark.parametrize("name", ["parnet_s", "parnet_cifar10"])
def test_depth_12_and_activation(name):
    entry = kl.get_entry(name)
    with keras.StatelessScope(initialize_variables=False):
        model = entry.build()
        assert kl.profile(model).depth == 12
        assert kl.profile(kl.reparameterize(model)).depth == 12
        activations = {layer.get_config()["activation"] for layer in model.layers if layer.name.endswith("_act")}
        assert activations == {"silu"}  # the paper's; activation="relu" gives the released checkpoints'
        relu = entry.build(activation="relu")
        assert not any(layer.name.endswith("_act") and type(layer).__name__ == "Activation" for layer in relu.layers)
        assert relu.name == f"{name}_custom"


def test_cifar_layout_facts():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("parnet_cifar100")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 100)
    assert model.name == "parnet_cifar100"
    # Streams of 3, 4, 4 blocks at 32, 16 and 8 pixels; a 1x1 conv head at 8 pixels.
    for stream, (count, size) in enumerate(((3, 32), (4, 16), (4, 8))):
        names = [
            layer.name
            for layer in model.layers
            if layer.name.startswith(f"streams_{stream}_") and layer.name.endswith("_act")
        ]
        assert len(names) == count and model.get_layer(names[0]).output.shape[1] == size
    assert model.get_layer("combine_down_conv").kernel_size == (1, 1)


def test_bad_input():
    with pytest.raises(ValueError, match="`activation` must be one of"):
        kl.ParNet(activation="gelu")
    with pytest.raises(ValueError, match="at least 32 pixels"):
        kl.ParNet(input_shape=(16, 64, 3))
    with pytest.raises(ValueError, match="at least 4 pixels"):
        kl.ParNet(layout="cifar", input_shape=(2, 2, 3))
    with pytest.raises(ValueError, match="`layout` must be one of"):
        kl.ParNet(layout="coco")
    with pytest.raises(ValueError, match="must be even"):
        kl.ParNet((16, 33, 64))
    with pytest.raises(ValueError, match="`groups` must divide"):
        kl.RepVGG(groups=5)


def test_repvgg_b1g2_has_the_parameters_of_timm_byobnet_with_2_groups():
    # timm registers no repvgg_b1g2; its RepVGG block config with groups=2 is the official B1g2.
    torch, timm = import_reference("timm")
    from timm.models.byobnet import ByobNet, ByoModelCfg, _rep_vgg_bcfg

    cfg = ByoModelCfg(blocks=_rep_vgg_bcfg(wf=(2.0, 2.0, 2.0, 4.0), groups=2), stem_type="rep", stem_chs=64)
    with torch.device("meta"):
        reference = ByobNet(cfg)
    expected = sum(p.numel() for p in reference.parameters())
    assert expected == kl.get_entry("repvgg_b1g2").reference.params == 45_782_376
