"""Inception-ResNet-v2: the residual scaling against keras.applications' own layer and by hand, the
published scales, timm's layout against timm at a small input, a keras.applications ``.h5`` file
through ``load_checkpoint``, the feature taps, and the arguments."""

import io

import keras
import numpy as np
import pytest
from golden import seeded_weights
from inference import infer
from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
from reference_diffs import record_reference_diff
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.layers import StochasticDepth
from keras_lightnets.models.inception_resnet_v2 import (
    BLOCK35,
    VERSION_OPTIONS,
    Conv,
    residual_block,
)
from keras_lightnets.weights import load_torch_weights

SMALL = (75, 83, 3)  # keras.applications' smallest input (Reduction-B needs a 3x3 map), non-square


def _block_model(table, scale, *, activation):
    """``[x, the block's 1x1 projection, the block's output]`` of one residual block on a 9x9x6 input."""
    inputs = keras.Input((9, 9, 6))
    out = residual_block(inputs, table, scale, options=VERSION_OPTIONS["keras"], activation=activation, name="b")
    model = keras.Model(inputs, out)
    seeded_weights(model)
    return keras.Model(inputs, [model.get_layer("b_conv").output, out])


@pytest.mark.parametrize("scale", [0.17, 0.1, 0.2])
def test_residual_scaling_equals_keras_custom_scale_layer_and_the_formula(scale, rng):
    model = _block_model(((Conv(4),), (Conv(2), Conv(3, 3))), scale, activation=True)
    x = rng.standard_normal((2, 9, 9, 6)).astype("float32")
    up, out = infer(model, x)
    assert up.shape == x.shape  # projected back to the block's width
    # keras.applications' CustomScaleLayer (inputs[0] + inputs[1] * scale), then its ReLU: the same floats.
    expected = keras.ops.convert_to_numpy(keras.ops.relu(CustomScaleLayer(scale)([x, up])))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out, np.maximum(x + np.float32(scale) * up, 0), rtol=1e-6, atol=1e-6)


def test_the_last_block_adds_unscaled_and_keeps_its_sign(rng):
    model = _block_model(BLOCK35, 1.0, activation=False)
    assert model.layers[-1].name == "b_add" and "b_scale" not in [layer.name for layer in model.layers]
    x = rng.standard_normal((2, 9, 9, 6)).astype("float32")
    up, out = infer(model, x)
    np.testing.assert_array_equal(out, x + up)
    assert (out < 0).any()


def test_published_residual_scales_and_the_unactivated_last_block():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("inception_resnet_v2")
    scales = [layer.scale for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    assert scales == [0.17] * 10 + [0.1] * 20 + [0.2] * 9
    # block8_10: scale 1.0, no ReLU; its sum goes straight into conv2d_7b.
    assert "block8_10_scale" not in [layer.name for layer in model.layers]
    assert model.get_layer("conv2d_7b_conv").input is model.get_layer("block8_10_add").output
    up_projections = [model.get_layer(f"block{kind}_1_conv") for kind in (35, 17, 8)]
    assert [(layer.filters, layer.use_bias) for layer in up_projections] == [(320, True), (1088, True), (2080, True)]
    batchnorms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {(layer.scale, layer.epsilon, layer.momentum) for layer in batchnorms} == {(False, 1e-3, 0.99)}


@pytest.mark.reference
def test_timm_layout_matches_timm_at_a_small_input():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("inception_resnet_v2").eval()
    assert [block.scale for block in (*reference.repeat, *reference.repeat_1, *reference.repeat_2)] == (
        [0.17] * 10 + [0.1] * 20 + [0.2] * 9
    )
    assert reference.block8.scale == 1.0 and reference.block8.relu is None
    assert all(m.bias is not None for m in (reference.repeat[0].conv2d, reference.block8.conv2d))  # biased, as Keras
    assert reference.conv2d_1a.bn.eps == 1e-3
    randomize_batchnorm(torch, reference)
    entry = kl.get_entry("inception_resnet_v2_timm")
    ours = kl.create_model(entry.name, input_shape=SMALL, classifier_activation=None)
    load_torch_weights(ours, reference, entry.key_map)  # every key, every shape
    x = np.random.default_rng(0).standard_normal((2, *SMALL)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    diff, scale = float(np.abs(infer(ours, x) - expected).max()), float(np.abs(expected).max())
    record_reference_diff("inception_resnet_v2_timm 75x83", "timm inception_resnet_v2", diff)
    assert diff <= 1e-4 * max(1.0, scale), (diff, scale)


def test_a_keras_applications_h5_file_loads_and_equals_keras_applications(tmp_path, rng):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    reference = seeded_weights(keras.applications.InceptionResNetV2(weights=None, input_shape=SMALL))
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)
    path = tmp_path / "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
    path.write_bytes(buffer.getvalue())
    model = kl.weights.load_checkpoint(kl.create_model("inception_resnet_v2", input_shape=SMALL), path)
    x = rng.uniform(-1, 1, (1, *SMALL)).astype("float32")
    np.testing.assert_allclose(infer(model, x), infer(reference, x), rtol=1e-5, atol=1e-7)


def test_feature_taps_are_timms():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.InceptionResNetV2(blocks=(1, 1, 1), input_shape=SMALL, features_only=True)
    assert [(output.shape[1], output.shape[-1]) for output in model.outputs] == [
        (35, 64),  # conv2d_2b
        (15, 192),  # conv2d_4a
        (7, 320),  # the Inception-ResNet-A blocks
        (3, 1088),  # the B blocks
        (1, 1536),  # conv2d_7b
    ]


def test_stochastic_depth_rises_over_the_blocks():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.InceptionResNetV2(blocks=(1, 2, 2), input_shape=SMALL, drop_path_rate=0.2)
    rates = [layer.rate for layer in model.layers if isinstance(layer, StochasticDepth)]
    assert rates == pytest.approx([0.05, 0.1, 0.15, 0.2])  # 0 for the first block: no layer
    assert model.name == "inception_resnet_v2_custom"  # fewer blocks: not the published network


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"blocks": (10, 20)}, r"`blocks` must be the numbers of Inception-ResNet-A, -B and -C blocks"),
        ({"blocks": (10, 0, 10)}, r"blocks"),
        ({"version": "tf"}, r"`version` must be one of .*'keras', 'timm'"),
        ({"input_shape": (74, 299, 3)}, r"at least 75 pixels"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kl.InceptionResNetV2(**kwargs)
