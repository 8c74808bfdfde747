"""EfficientNetV2: what the registry-wide tests do not check.

Fused-MBConv against keras.applications' own block (both paths: expansion 4 strided with SE, and
expansion 1 with its residual) and its drop path; B3's parameters, layer order and drop-path
rates against keras.applications; keras.applications' raw-pixel input and ``.h5`` files; timm's
``tf_efficientnetv2_*`` checkpoints.
Outputs against keras.applications (B0) and torchvision (S, symmetric padding) are in
test_keras_reference.py and test_torch_reference.py.
"""

import h5py
import keras
import numpy as np
import pytest
from golden import seeded_weights
from inference import infer
from keras.src.applications.efficientnet_v2 import FusedMBConvBlock
from keras.src.legacy.saving import legacy_h5_format
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.layers import StochasticDepth, fused_mbconv, squeeze_excite
from keras_lightnets.layers.input_normalization import input_normalization_weights
from keras_lightnets.models.efficientnetv2 import round_filters, stage_plan
from keras_lightnets.training.recipes import get_recipe
from keras_lightnets.weights import copy_keras_weights

INPUT_SHAPE = (67, 83, 3)  # odd and non-square: TF "same" padding differs from symmetric at stride 2


def _fused_pair(input_shape, filters, strides, expansion, se_ratio, rng):
    """(keras.applications' FusedMBConvBlock, ours) on the same input, keras's weights copied."""
    inputs = keras.Input(input_shape)
    reference = keras.Model(
        inputs,
        FusedMBConvBlock(
            input_shape[-1], filters, expansion, 3, strides, se_ratio, activation="swish", survival_probability=0.3,
            name="ref_",
        )(inputs),
    )  # fmt: skip
    se = None
    if se_ratio:
        se = lambda x, name: squeeze_excite(x, hidden=int(input_shape[-1] * se_ratio), activation="silu", name=name)  # noqa: E731
    ours_inputs = keras.Input(input_shape)
    ours = keras.Model(
        ours_inputs,
        fused_mbconv(ours_inputs, filters, strides, expansion=expansion, se=se, drop_path_rate=0.3, name="block"),
    )
    seeded_weights(reference)
    copy_keras_weights(reference, ours)
    x = rng.standard_normal((2, *input_shape)).astype("float32")
    return reference, ours, x


@pytest.mark.parametrize(
    "filters, strides, expansion, se_ratio",
    [(24, 2, 4, 0.25), (16, 1, 1, 0.0), (16, 1, 4, 0.0)],
    ids=["expand4-stride2-se", "expand1-residual", "expand4-residual"],
)
def test_fused_mbconv_equals_keras_applications_block(rng, filters, strides, expansion, se_ratio):
    reference, ours, x = _fused_pair((13, 16, 16), filters, strides, expansion, se_ratio, rng)
    expected = infer(reference, x)
    assert ours.output_shape == reference.output_shape == (None, 13 // strides + 13 % strides, 16 // strides, filters)
    np.testing.assert_allclose(infer(ours, x), expected, rtol=1e-5, atol=1e-5)
    names = {layer.name for layer in ours.layers}
    # expansion 1: one kxk conv (with its activation) and nothing to expand; else kxk expand, 1x1 project
    assert ("block_expand_conv" in names) == (expansion != 1)
    project = ours.get_layer("block_project_conv")
    assert project.kernel_size == ((3, 3) if expansion == 1 else (1, 1))
    assert ("block_project_act" in names) == (expansion == 1)
    residual = strides == 1 and filters == 16
    assert ("block_add" in names) == residual and ("block_drop_path" in names) == residual


def test_fused_mbconv_drop_path_drops_whole_samples_in_training():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, fused_mbconv(inputs, 16, expansion=4, drop_path_rate=0.5, name="block"))
    assert model.get_layer("block_drop_path").rate == 0.5
    branch = keras.Model(inputs, model.get_layer("block_project_bn").output)
    x = np.random.default_rng(0).standard_normal((64, 8, 8, 16)).astype("float32")
    # BN on batch statistics in training: the branch run in training mode, a kept one scaled by 1 / (1 - rate)
    kept = keras.ops.convert_to_numpy(branch(x, training=True)) / 0.5
    residual = keras.ops.convert_to_numpy(model(x, training=True)) - x
    dropped = np.all(np.abs(residual) < 1e-5, axis=(1, 2, 3))
    assert np.allclose(residual[~dropped], kept[~dropped], atol=1e-4)
    assert 16 < dropped.sum() < 48  # about half, per sample
    np.testing.assert_allclose(infer(model, x) - x, infer(branch, x), atol=1e-4)  # no drop at inference


def test_structure_equals_keras_applications_b3():
    # B3: width 1.2 and depth 1.4, the rounding rules show; B0 is compared by outputs.
    with keras.StatelessScope(initialize_variables=False):
        reference = keras.applications.EfficientNetV2B3(weights=None, input_shape=(64, 64, 3))
        ours = kl.EfficientNetV2("b3", input_shape=(64, 64, 3))
        trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
        assert kl.profile(ours).params == trainable == kl.get_entry("efficientnetv2_b3").reference.params
        assert ours.count_params() == reference.count_params()  # BN statistics too; no input-layer weights
        # keras.applications' weighted-layer order (what its .h5 files are read in)
        ours_order = [tuple(w.shape) for layer in ours.layers for w in layer.weights]
        assert ours_order == [tuple(w.shape) for layer in reference.layers for w in layer.weights]
        # stochastic depth on the same residuals, rate * b / blocks with b from 0 over B3's 32 blocks
        # (timm's and torchvision's rule); keras.applications divides by the 21 blocks *before* depth
        # scaling, so its rates reach 0.2 * 31 / 21 = 0.295 (the same at depth 1.0: B0, S, M, L).
        rates = {layer.name: layer.rate for layer in ours.layers if isinstance(layer, StochasticDepth)}
        dropouts = {
            layer.name[:-5] + "_drop_path": layer.rate for layer in reference.layers if layer.name.endswith("_drop")
        }
        assert set(rates) == set(dropouts)
        assert rates["block1b_drop_path"] == pytest.approx(0.2 * 1 / 32)  # the expansion-1 fused residual
        assert dropouts["block1b_drop_path"] == pytest.approx(0.2 * 1 / 21)
        assert rates["block6l_drop_path"] == pytest.approx(0.2 * 31 / 32)
        assert "block2a_drop_path" not in rates  # stride 2: no shortcut


@pytest.fixture(scope="module")
def keras_b0():
    """keras.applications' EfficientNetV2B0 as users get it (include_preprocessing=True), random weights."""
    reference = keras.applications.EfficientNetV2B0(weights=None, input_shape=INPUT_SHAPE, classifier_activation=None)
    seeded_weights(reference)
    return reference


def test_a_keras_applications_h5_file_gives_keras_applications_outputs_on_raw_pixels(tmp_path, rng):
    # keras.applications' EfficientNetV2B0 as users get it (include_preprocessing=True), its weights
    # in keras.applications' Keras 2 .h5 layout, loaded into ours built with include_preprocessing=True.
    reference = keras.applications.EfficientNetV2B0(weights=None, input_shape=INPUT_SHAPE, classifier_activation=None)
    seeded_weights(reference)
    path = tmp_path / "efficientnetv2-b0.h5"
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)
    raw = kl.create_model("efficientnetv2_b0", include_preprocessing=True, input_shape=INPUT_SHAPE,
                          classifier_activation=None)  # fmt: skip
    kl.weights.load_checkpoint(raw, path)
    pixels = rng.integers(0, 256, (2, *INPUT_SHAPE)).astype("float32")
    expected = infer(reference, pixels)
    assert np.abs(infer(raw, pixels) - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max())
    assert kl.input_pixel_max(raw) == 255.0
    # S, M, L: keras.applications' Rescaling(1 / 128, offset=-1), exactly.
    for config in ("s", "m", "l"):
        kernel, bias = input_normalization_weights(kl.get_entry(f"efficientnetv2_{config}").preprocessing, 3)
        np.testing.assert_allclose(kernel.ravel(), 1 / 128, rtol=1e-6)
        np.testing.assert_allclose(bias, -1.0, rtol=1e-6)


def test_timm_tf_efficientnetv2_checkpoint_loads_and_equals_timm(tmp_path):
    # timm's tf_ port: TF padding, BN epsilon 1e-3; its ConvBnAct / EdgeResidual / InvertedResidual
    # names go through the per-stage key map, recognised from the file's keys by load_checkpoint.
    torch, timm = import_reference("timm")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = timm.create_model("tf_efficientnetv2_b0").eval()
    randomize_batchnorm(torch, reference)
    path = tmp_path / "tf_efficientnetv2_b0.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    ours = kl.create_model("efficientnetv2_b0", input_shape=INPUT_SHAPE, classifier_activation=None)
    kl.weights.load_checkpoint(ours, path)
    x = np.random.default_rng(0).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(infer(ours, x) - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_stage_plans_follow_keras_applications():
    # no 10 % floor in V2's rounding: B2's 16 * 1.1 = 17.6 -> 16, B3's 1280 * 1.2 -> 1536
    assert round_filters(16, 1.1) == 16 and round_filters(1280, 1.2) == 1536 and round_filters(32, 1.2) == 40
    assert [row[2] for row in stage_plan("b3")] == [2, 3, 3, 5, 7, 12]  # ceil(1.4 * r)
    assert [row[3] for row in stage_plan("b3")] == [16, 40, 56, 112, 136, 232]
    assert [row[0] for row in stage_plan("l")] == ["fused"] * 3 + ["mbconv"] * 4
    assert [row[4] for row in stage_plan("s")] == [1, 4, 4, 4, 6, 6]  # S's expansion-1 fused first stage


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"config": "b4"}, "config.*b0.*l"),
        ({"config": "xl"}, "config"),
        ({"padding": "valid"}, "padding.*same.*symmetric"),
        ({"dropout_rate": 1.5}, "dropout_rate"),
        ({"drop_path_rate": -0.1}, "drop_path_rate"),
        ({"input_shape": (31, 64, 3)}, "at least 32"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kl.EfficientNetV2(**kwargs)


def test_paper_recipe_holds_the_published_numbers():
    recipe = get_recipe("efficientnetv2", "paper")
    numbers = {"optimizer": "rmsprop", "rho": 0.9, "momentum": 0.9, "learning_rate": 0.256, "batch_size": 4096,
               "epochs": 350, "weight_decay": 1e-5, "schedule": "exponential", "decay_rate": 0.97,
               "decay_epochs": 2.4, "ema": 0.9999, "randaugment": True}  # fmt: skip
    assert {key: getattr(recipe, key) for key in numbers} == numbers
