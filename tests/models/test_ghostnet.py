"""GhostNet V1 / V2 / V3: what the registry-wide tests do not check.

- GhostNetV3: timm's safetensors state dict (its training-form keys) loads through
  ``kl.weights.load_checkpoint``; the fused deploy form (``kl.reparameterize``: every branch sum,
  68 in the 16 blocks, becomes one convolution with bias, no BN left inside a Ghost module) equals
  timm's ``reparameterize_model`` of the same weights, on an odd input where the DFC gate's nearest
  upsampling repeats its first row, and has timm's deploy parameter count;
- the DFC attention gate: in every block from the third on, first Ghost module only, in V2 and V3,
  none in V1; :class:`NearestResize` equals PyTorch's ``F.interpolate(mode="nearest")`` at odd, even
  and unknown sizes, and so does its tf_keras twin (TFLite's ``RESIZE_NEAREST_NEIGHBOR``);
- argument checks (V2 / V3 need 33 pixels: the DFC gate pools the 1/32 map).

Training-form outputs against timm (one variant per version) are in test_torch_reference.py, fused =
training form for every V3 variant in test_reparameterize.py, parameters and MACs in test_variants.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from inference import infer
from safetensors.numpy import save_file
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy.twin_layers import TwinNearestResize
from keras_lightnets.layers import NearestResize
from keras_lightnets.reparameterize import fusable_blocks

TOLERANCE = 1e-5
ODD_INPUT = (2, 57, 49, 3)  # block3a's DFC gate: 15x13 -> pooled 7x6 -> nearest back to 15x13


def assert_close(ours, expected):
    assert np.abs(ours - expected).max() <= TOLERANCE * max(1.0, float(np.abs(expected).max()))


@pytest.fixture(scope="module")
def ghostnetv3(tmp_path_factory):
    """timm's ghostnetv3_050 (random BN statistics) and ours, loaded from its safetensors file."""
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("ghostnetv3_050").eval()
    randomize_batchnorm(torch, reference)
    path = tmp_path_factory.mktemp("ghostnet") / "model.safetensors"
    save_file({key: value.numpy() for key, value in reference.state_dict().items()}, str(path))
    ours = kl.create_model("ghostnetv3_050", input_shape=(None, None, 3), classifier_activation=None)
    kl.weights.load_checkpoint(ours, path)
    return torch, timm, reference, ours


def test_v3_training_form_from_timms_checkpoint_fuses_into_timms_deploy_form(ghostnetv3):
    torch, timm, reference, ours = ghostnetv3
    x = np.random.default_rng(0).standard_normal(ODD_INPUT).astype("float32")
    torch_x = torch.from_numpy(x.transpose(0, 3, 1, 2))
    assert_close(infer(ours, x), reference(torch_x).numpy())

    fused_reference = timm.utils.model.reparameterize_model(reference)
    assert not any("_rpr_" in key for key in fused_reference.state_dict())
    assert (
        sum(p.numel() for p in fused_reference.parameters()) == kl.get_entry("ghostnetv3_050").reference.deploy_params
    )
    fused = kl.reparameterize(ours)
    # Per block: two Ghost modules of two sums each (primary 1x1, cheap depthwise), the stride-2 depthwise.
    assert len(fusable_blocks(ours)) == 16 * 4 + 4 and not fusable_blocks(fused)
    batchnorms = {layer.name for layer in fused.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert all(name.endswith(("attn_bn", "attn_h_bn", "attn_v_bn", "shortcut_bn", "shortcut_dw_bn")) or
               name in ("stem_bn", "head_bn") for name in batchnorms), sorted(batchnorms)  # fmt: skip
    cheap = fused.get_layer("block9b_ghost1_cheap_conv_kxk_0_conv")
    assert isinstance(cheap, keras.layers.DepthwiseConv2D) and cheap.use_bias
    assert_close(infer(fused, x), fused_reference(torch_x).numpy())


def test_dfc_attention_gates_the_first_ghost_module_from_the_third_block_in_v2_and_v3():
    gated = {}
    with keras.StatelessScope(initialize_variables=False):
        for version in ("v1", "v2", "v3"):
            model = kl.GhostNet(0.5, version=version, include_top=False, input_shape=(64, 64, 3))
            gated[version] = [layer.name for layer in model.layers if isinstance(layer, NearestResize)]
            blocks = sorted({layer.name.split("_")[0] for layer in model.layers if layer.name.startswith("block")})
    assert gated["v1"] == [] and len(blocks) == 16
    assert gated["v2"] == gated["v3"] == [f"{block}_ghost1_attn_resize" for block in blocks[2:]]


@pytest.mark.parametrize(("size_in", "size_out"), [((3, 3), (7, 7)), ((4, 6), (8, 13)), ((1, 2), (3, 5))])
def test_nearest_resize_equals_pytorch_and_its_twin(size_in, size_out):
    torch, _ = import_reference("timm")
    x = np.random.default_rng(0).standard_normal((1, *size_in, 2)).astype("float32")
    reference = np.zeros((1, *size_out, 1), "float32")
    expected = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=size_out)
    expected = expected.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(NearestResize()([x, reference])), expected)
    inputs = [keras.Input((None, None, 2)), keras.Input((None, None, 1))]
    unknown = keras.Model(inputs, NearestResize()(inputs))
    np.testing.assert_array_equal(unknown.predict([x, reference], verbose=0), expected)
    np.testing.assert_array_equal(TwinNearestResize()([tf.constant(x), tf.constant(reference)]).numpy(), expected)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"`version` must be one of \('v1', 'v2', 'v3'\), got 'v4'"):
        kl.GhostNet(version="v4")
    with pytest.raises(ValueError, match="`width`"):
        kl.GhostNet(0.0)
    with pytest.raises(ValueError, match="`dropout_rate`"):
        kl.GhostNet(dropout_rate=1.5)
    # V2 / V3's DFC gate pools the 1/32 map 2x2: 33 pixels leave it 2 wide, 32 only 1.
    with pytest.raises(ValueError, match="at least 33 pixels"):
        kl.GhostNet(version="v2", input_shape=(32, 32, 3))
