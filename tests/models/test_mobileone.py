"""MobileOne: what the registry-driven tests do not cover.

- S0 (4 parallel 3x3 branches) and S4 (squeeze-excite), timm's weights (random BN statistics) copied
  through our timm layout: the training form equals timm's, ``kl.reparameterize`` of it equals
  timm's ``reparameterize_model`` and the training form, all within 1e-5 of the output scale; the
  fused parameter count is timm's fused count plus the BN of the one-branch pointwise blocks;
- the deploy form's structure: every block fused (depthwise ones into a ``DepthwiseConv2D`` with
  bias), no BatchNorm left in S0, only the 4 one-branch blocks' BN in S1-S4;
- the Android export fuses by default: a small MobileOne's ``.tflite`` has no ADD left;
- a depthwise branch that cannot fuse is refused by name; bad arguments.

(Train-time parameters and MACs of every variant, and fused = unfused for every variant, are in
test_variants.py and test_reparameterize.py; S0 and S4 against timm in test_torch_reference.py.)
"""

import re

import keras
import numpy as np
import pytest
from inference import infer
from torch_reference import import_reference
from torch_reference import randomize_batchnorm as randomize_torch_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy import inspect_tflite
from keras_lightnets.deploy.android import export_for_android
from keras_lightnets.models.mobileone import TIMM_KEY_MAP, mobileone_block
from keras_lightnets.reparameterize import fusable_blocks
from keras_lightnets.weights import load_torch_weights

TOLERANCE = 1e-5
INPUT = (2, 64, 72, 3)
# The channels of the pointwise blocks that change width (the first of each stage): one 1x1 branch,
# no identity, no Add, so nothing to fuse; their BN keeps gamma and beta where timm writes a bias.
ONE_BRANCH_CHANNELS = {"mobileone_s0": (), "mobileone_s4": (192, 448, 896, 2048)}


def assert_close(expected, actual):
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert expected.shape == actual.shape
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(expected - actual).max() <= TOLERANCE * scale, (np.abs(expected - actual).max(), scale)


def tame(torch, module):
    """timm's init with random BN statistics multiplies activations by ~(branches + 2) per block (1e14 at
    S0's output): each block's BN weights divided by its branch count keep them O(1), so 1e-5 of the
    output scale is a tight bound."""
    for block in module.modules():
        if type(block).__name__ == "MobileOneBlock":
            norms = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
            for norm in norms:
                norm.weight.data /= len(norms)
                norm.bias.data /= len(norms)


@pytest.mark.reference
@pytest.mark.parametrize("name", sorted(ONE_BRANCH_CHANNELS))
def test_fused_equals_timm_reparameterized(name):
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model(name).eval()
    randomize_torch_batchnorm(torch, reference, 0)
    tame(torch, reference)
    fused_reference = timm.utils.model.reparameterize_model(reference)  # a fused copy
    ours = kl.create_model(name, input_shape=(None, None, 3), classifier_activation=None)
    load_torch_weights(ours, reference, TIMM_KEY_MAP)
    fused = kl.reparameterize(ours)
    x = np.random.default_rng(0).standard_normal(INPUT).astype("float32")
    with torch.no_grad():
        tensor = torch.from_numpy(x.transpose(0, 3, 1, 2))
        expected, expected_fused = reference(tensor).numpy(), fused_reference(tensor).numpy()
    assert 1e-2 < np.abs(expected).max() < 1e2  # tamed: a tight bound, not one relative to 1e14
    training_form = infer(ours, x)
    assert_close(expected, training_form)
    assert_close(expected_fused, infer(fused, x))
    assert_close(training_form, infer(fused, x))
    timm_fused_params = sum(p.numel() for p in fused_reference.parameters())
    trainable = sum(int(np.prod(w.shape)) for w in fused.trainable_weights)
    assert trainable == timm_fused_params + sum(ONE_BRANCH_CHANNELS[name])


def test_the_deploy_form_is_a_plain_mobilenet():
    with keras.StatelessScope(initialize_variables=False):
        for name, blocks, batchnorms in (("mobileone_s0", 43, 0), ("mobileone_s1", 39, 4)):
            model = kl.create_model(name)
            # stem + 2 x 21 (depthwise, pointwise) blocks; S1's 4 width-changing pointwise blocks have one branch
            assert len(fusable_blocks(model)) == blocks
            fused = kl.reparameterize(model)
            assert not fusable_blocks(fused)
            depthwise = [layer for layer in fused.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
            assert len(depthwise) == 21 and all(layer.use_bias and layer.kernel_size == (3, 3) for layer in depthwise)
            assert {layer.name for layer in depthwise} == {f"stages_{i}_{2 * j}_conv_kxk_0_conv" for i, d in
                                                          enumerate((2, 8, 10, 1)) for j in range(d)}  # fmt: skip
            kept = [layer.name for layer in fused.layers if isinstance(layer, keras.layers.BatchNormalization)]
            assert kept == [f"stages_{i}_1_conv_kxk_0_bn" for i in range(4)][:batchnorms]
            assert not [layer for layer in fused.layers if isinstance(layer, keras.layers.Add)]


def test_the_android_export_fuses_by_default(tmp_path):
    model = kl.MobileOne((0.25, 0.25, 0.25, 0.25), (1, 2, 1, 1), 2, (0, 0, 0, 1), input_shape=(32, 32, 3), classes=3)
    said = []
    export_for_android(
        model, tmp_path / "m.tflite", quantization=None, qat_epochs=0, labels=["a", "b", "c"], log=said.append
    )
    assert len(said) == 1 and said[0].startswith(f"reparameterized: {len(fusable_blocks(model))} branch sums fused")
    operators = inspect_tflite(tmp_path / "m.tflite").operators
    # No branch sum left; one depthwise convolution per depthwise block (5), after the input
    # normalization's per-channel affine (a 1x1 depthwise convolution in the file).
    assert "ADD" not in operators and operators.count("DEPTHWISE_CONV_2D") == 1 + 5


def test_a_depthwise_branch_that_cannot_fuse_is_named():
    inputs = keras.Input((8, 8, 4))
    x = mobileone_block(inputs, 4, 3, depthwise=True, num_conv_branches=2, name="b")
    model = keras.Model(inputs, x)
    assert fusable_blocks(model) == ["b_add"]
    wide = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="wide")(inputs)
    narrow = keras.layers.Conv2D(8, 3, padding="same", groups=4, use_bias=False, name="grouped")(inputs)
    branches = [keras.layers.BatchNormalization(name=f"{n}_bn")(t) for n, t in (("wide", wide), ("grouped", narrow))]
    bad = keras.Model(inputs, keras.layers.Add(name="bad_add")(branches))
    with pytest.raises(ValueError, match=r"'bad_add' cannot be reparameterized: .*'wide' has depth_multiplier 2"):
        kl.reparameterize(bad)


@pytest.mark.parametrize("zero", [True, False])
def test_blocks_with_an_identity_branch_start_as_it(zero):
    """``zero_init_branches`` (the default): where a block has an identity BN, its convolution branches' BN
    scales start at 0 and the block starts as ``act(BN(x))``; blocks without one (strided, width-changing)
    keep 1, or they would start dead. Off: timm's init, every scale 1."""
    model = kl.MobileOne(
        (0.25, 0.25, 0.25, 0.25), depths=(1, 2, 1, 1), num_conv_branches=2, zero_init_branches=zero,
        input_shape=(32, 32, 3), classes=10,
    )  # fmt: skip
    names = {layer.name for layer in model.layers}
    scales = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.name.endswith("_identity"):
            block = re.sub(r"_conv_(kxk_\d|scale)_bn$", "", layer.name)
            scales.setdefault(f"{block}_identity" in names, set()).update(np.unique(layer.gamma.numpy()).tolist())
        elif layer.name.endswith("_identity"):
            assert np.all(layer.gamma.numpy() == 1.0)
    # stages_1_2 / _3 (the second pair of a 2-deep stage) have an identity; every stride-2 block does not
    assert {"stages_1_2_identity", "stages_1_3_identity"} <= names and "stages_1_0_identity" not in names
    assert scales == {True: {0.0 if zero else 1.0}, False: {1.0}}


def test_bad_arguments():
    with pytest.raises(TypeError, match="`zero_init_branches` must be True or False"):
        kl.MobileOne(zero_init_branches=1)
    with pytest.raises(ValueError, match="`se_blocks`"):
        kl.MobileOne(se_blocks=(0, 0, 11, 1))
    with pytest.raises(ValueError, match="`width_multipliers` must be 4 numbers"):
        kl.MobileOne(width_multipliers=(1.0, 1.0))
    with pytest.raises(ValueError, match="`num_conv_branches`"):
        kl.MobileOne(num_conv_branches=0)
    with pytest.raises(ValueError, match="depthwise block keeps its 4 channels"):
        mobileone_block(keras.Input((8, 8, 4)), 8, depthwise=True, name="b")
