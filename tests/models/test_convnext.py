"""ConvNeXt: what the registry-driven tests do not cover. torchvision's layout (LayerNorm2d, Linear
blocks, ``layer_scale`` of shape (C, 1, 1)) and timm's (``gamma``, Linear MLP) of ConvNeXt-T load
and equal those references at a small odd input; a Keras 2 ``.h5`` in keras.applications' layout
(nested ``Sequential`` stem and downsampling groups, its own LayerScale) loads through
``kl.weights.load_checkpoint``; the layer-scale and drop-path placement; weight decay sparing layer
scale; sizes' exact figures."""

import keras
import numpy as np
import pytest
import tf_keras
from inference import infer
from torch_reference import import_reference

import keras_lightnets as kl
from keras_lightnets.layers import LayerScale
from keras_lightnets.models.convnext import SIZES, TORCHVISION_KEY_MAP
from keras_lightnets.training.optimizers import decay_exclusions
from keras_lightnets.weights import load_torch_weights

SMALL = (67, 75, 3)  # odd, non-square: stride 4, 8, 16, 32 floor the sizes as every reference does


def _compare_torch(reference, key_map, seed):
    torch = import_reference("torchvision")[0]  # timm's Linear layout: the same modules (atto: its conv MLP)
    generator = torch.Generator().manual_seed(seed)
    reference.eval()
    with torch.no_grad():  # non-trivial layer scales and LayerNorm affines, so a mix-up shows
        for name, value in reference.state_dict().items():
            if name.endswith(("gamma", "layer_scale")) or (value.ndim == 1 and "norm" in name):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
    ours = kl.create_model("convnext_tiny", input_shape=SMALL, include_preprocessing=False, classifier_activation=None)
    load_torch_weights(ours, reference, key_map)
    x = np.random.default_rng(seed).standard_normal((2, *SMALL)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    diff = np.abs(expected - infer(ours, x)).max()
    assert diff <= 1e-4 * max(1.0, np.abs(expected).max()), diff


@pytest.mark.reference
def test_tiny_loads_and_equals_torchvision():
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    _compare_torch(torchvision.models.convnext_tiny(), TORCHVISION_KEY_MAP, 1)


@pytest.mark.reference
@pytest.mark.parametrize("size", ["femto", "pico", "nano"])
def test_timm_small_sizes_have_timms_parameters(size):
    torch, timm = import_reference("timm")
    reference = timm.create_model(f"convnext_{size}")
    assert kl.get_entry(f"convnext_{size}").reference.params == sum(p.numel() for p in reference.parameters())


def test_block_layout_and_layer_scale():
    model = kl.create_model("convnext_atto", input_shape=(32, 32, 3), drop_path_rate=0.1)
    scales = [layer for layer in model.layers if isinstance(layer, LayerScale)]
    assert len(scales) == sum(SIZES["atto"][0])
    assert all(np.allclose(np.asarray(layer.gamma), 1e-6) for layer in scales)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.LayerNormalization)]
    assert len(norms) == 1 + 3 + sum(SIZES["atto"][0]) + 1  # stem, downsampling, blocks, head
    assert {layer.epsilon for layer in norms} == {1e-6}
    names = [layer.name for layer in model.layers]
    assert "stage1_block1_drop_path" not in names  # rate 0 at the first block: no layer at all
    drops = [model.get_layer(f"stage{s}_block{b}_drop_path").rate for s, b in ((1, 2), (4, 2))]
    assert drops == [pytest.approx(0.1 / 11), pytest.approx(0.1)]


def test_keras_born_sizes_take_raw_pixels_timm_born_normalized_ones():
    assert kl.create_model("convnext_tiny", input_shape=(32, 32, 3)).get_layer("input_normalization")
    atto = kl.create_model("convnext_atto", input_shape=(32, 32, 3))
    assert "input_normalization" not in [layer.name for layer in atto.layers]


@pytest.mark.parametrize("size", ["large", "xlarge"])
def test_big_sizes_structure(size):
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model(f"convnext_{size}")
        assert kl.profile(model).params == kl.get_entry(f"convnext_{size}").reference.params
        assert model.get_layer("stage3_block27_pw1_conv").filters == 4 * SIZES[size][1][2]


def test_a_keras2_h5_file_in_keras_applications_layout_loads(tmp_path):
    # tf_keras.applications' ConvNeXtTiny saves keras.applications' Keras 2 layout: the stem and each
    # downsampling block are nested Sequential groups holding a conv and a LayerNorm, the depthwise
    # conv a Conv2D(groups=C), the MLP Dense layers, layer scale its own LayerScale.gamma.
    tf_keras.utils.set_random_seed(0)
    shape = (64, 64, 3)
    reference = tf_keras.applications.ConvNeXtTiny(weights=None, input_shape=shape, classifier_activation=None)
    rng = np.random.default_rng(0)
    for layer in reference.layers:  # non-trivial layer scales and LayerNorm affines, so a mix-up shows
        if layer.weights and ("layer_scale" in layer.name or "layernorm" in layer.name):
            layer.set_weights([rng.random(w.shape).astype("float32") + 0.5 for w in layer.get_weights()])
    path = tmp_path / "convnext_tiny.h5"
    reference.save_weights(path)
    ours = kl.weights.load_checkpoint(
        kl.create_model("convnext_tiny", input_shape=shape, classifier_activation=None), path
    )
    pixels = rng.uniform(0, 255, (2, *shape)).astype("float32")  # raw pixels on both sides
    expected = reference(pixels, training=False).numpy()
    assert np.abs(infer(ours, pixels) - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())


def test_weight_decay_spares_layer_scale_like_timm():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("convnext_atto", input_shape=(32, 32, 3), classes=10)
        spared = {id(v) for v in decay_exclusions(model)}
        scales = [layer.gamma for layer in model.layers if isinstance(layer, LayerScale)]
        assert len(scales) == sum(SIZES["atto"][0]) and all(id(gamma) in spared for gamma in scales)
        decayed = [v for v in model.trainable_variables if id(v) not in spared]
        assert decayed and all(len(v.shape) > 1 for v in decayed)  # what timm decays: kernels only
