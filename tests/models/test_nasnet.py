"""NASNet-A: the cells are data turned into layers by one function; its two distinctive operations
(the separable block, the adjust block with its shifted path) equal keras.applications' own; the
NASNet-A Large code path (``skip_reduction``) equals keras.applications' ``NASNet`` and timm's
``NASNetALarge`` (``max_pool_padding="same"``) at narrow widths; the arguments are checked.

NASNet-A Mobile is compared in full with keras.applications by test_keras_reference.py; the full
NASNet-A Large (85 M parameters) only structurally (test_variants.py), its code paths here."""

import re

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from inference import infer
from keras.src.applications import imagenet_utils
from keras.src.applications import nasnet as keras_nasnet
from keras.src.legacy.saving import legacy_h5_format
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.layers.padding import pad_same
from keras_lightnets.models.nasnet import (
    NORMAL_CELL,
    REDUCTION_CELL,
    TIMM_KEY_MAP,
    Cell,
    adjust,
    cell,
    separable_block,
)
from keras_lightnets.weights import copy_keras_weights, load_torch_weights

# Narrow NASNet-A Large: 6 normal cells per stack as timm's fixed layout, widths 8, 16, 32 (not 168...).
NARROW_LARGE = {"penultimate_filters": 192, "num_blocks": 6, "stem_filters": 8, "skip_reduction": True}
ODD_SHAPE = (67, 74, 3)  # odd and even sides: every stride-2 padding rule shows


def _random_like_keras(model, seed=0):
    """Every weight random, BN variances positive (so BN statistics count)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.standard_normal(weight.shape).astype("float32") * 0.3
        if "variance" in weight.path:
            value = np.abs(value) + 0.5
        weight.assign(value)


def _compare(reference, ours, shape, seed=0):
    _random_like_keras(reference, seed)
    copy_keras_weights(reference, ours)
    x = np.random.default_rng(seed).standard_normal((2, *shape)).astype("float32")
    expected = infer(reference, x)
    return np.abs(expected - infer(ours, x)).max(), np.abs(expected).max()


def test_the_cells_are_tables():
    # Fig. 4 of the paper (TF-slim's tables): every block sums two operations; the normal cell
    # outputs p and its five blocks, the reduction cell blocks 2-5 (TF-slim leaves out the states
    # it marks used: h, p and block 1, which feeds blocks 4 and 5).
    for spec in (NORMAL_CELL, REDUCTION_CELL):
        assert len(spec.blocks) == 5 and all(len(block) == 4 for block in spec.blocks)
    assert NORMAL_CELL.outputs == ("p", 1, 2, 3, 4, 5) and REDUCTION_CELL.outputs == (2, 3, 4, 5)
    assert [block[1::2] for block in REDUCTION_CELL.blocks] == [
        ("sep5", "sep7"), ("max3", "sep7"), ("avg3", "sep5"), ("identity", "avg3"), ("sep3", "max3"),
    ]  # fmt: skip
    # The first cell reads its input as p: a normal cell's output is 6 x its width, a reduction's 4 x.
    inputs = keras.Input((8, 8, 5))
    assert cell(inputs, None, NORMAL_CELL, 5, name="n")[0].shape == (None, 8, 8, 30)
    assert cell(inputs, None, REDUCTION_CELL, 5, name="r")[0].shape == (None, 4, 4, 20)


def test_one_function_builds_any_cell_from_its_table():
    # A made-up cell: the table alone decides the layers and the width of the output.
    spec = Cell(blocks=(("h", "sep3", "p", "max3"), (1, "sep5", "h", "identity")), outputs=("p", 2), reduction=False)
    inputs = keras.Input((9, 11, 6))
    output, passed = cell(inputs, None, spec, 6, name="c")
    model = keras.Model(inputs, output)
    names = {layer.name for layer in model.layers}
    assert {"c_block1_left_sep1_dw", "c_block1_right_pool", "c_block2_left_sep2_pw", "c_block2"} <= names
    assert "c_block2_right_pool" not in names and passed is inputs
    assert output.shape == (None, 9, 11, 6 + 6)  # p (the input itself in a first cell) and block 2
    assert sum(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers) == 4  # two per sep block
    with pytest.raises(ValueError, match="unknown operation 'conv9'"):
        cell(inputs, None, Cell(blocks=(("h", "conv9", "p", "identity"),), outputs=(1,), reduction=False), 4, name="d")
    with pytest.raises(ValueError, match="an identity cannot reduce"):
        cell(inputs, None, Cell(blocks=(("h", "identity", "p", "avg3"),), outputs=(1,), reduction=True), 4, name="e")


@pytest.mark.parametrize("kernel_size, strides", [(3, 1), (7, 2)])
def test_separable_block_is_keras_applications(kernel_size, strides):
    # ReLU-SepConv-BN twice, the stride-2 one zero-padded as TF's "same": keras.applications' own
    # block (its SeparableConv2D layers are our DepthwiseConv2D + 1x1 Conv2D pairs).
    inputs = keras.Input(ODD_SHAPE[:2] + (5,))
    size = (kernel_size, kernel_size)
    reference = keras.Model(inputs, keras_nasnet._separable_conv_block(inputs, 6, size, (strides, strides), "t"))
    ours = keras.Model(inputs, separable_block(inputs, 6, kernel_size, strides, name="t"))
    diff, scale = _compare(reference, ours, ODD_SHAPE[:2] + (5,))
    assert reference.output_shape == ours.output_shape and diff <= 1e-5 * max(1.0, scale)


@pytest.mark.parametrize(
    "p_shape, filters", [((17, 20, 6), 8), ((9, 10, 6), 8), ((9, 10, 6), 6)], ids=["factorized", "projection", "same"]
)
def test_adjust_block_is_keras_applications(p_shape, filters):
    # The previous state made to fit (9, 10): twice as large -> the two-path factorized reduction
    # (the second path shifted by one pixel); another width -> ReLU-1x1-BN; else unchanged.
    p, h = keras.Input(p_shape), keras.Input((9, 10, 6))
    reference = keras.Model([p, h], keras_nasnet._adjust_block(p, h, filters, "t"))
    ours = keras.Model([p, h], adjust(p, filters, reduce=p_shape[0] > 9, name="t"))
    if ours.output is p:
        assert reference.output is p and not ours.weights
        return
    _random_like_keras(reference)
    copy_keras_weights(reference, ours)
    rng = np.random.default_rng(1)
    x = [rng.standard_normal((2, *p_shape)).astype("float32"), rng.standard_normal((2, 9, 10, 6)).astype("float32")]
    np.testing.assert_allclose(infer(ours, x), infer(reference, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [3, 7])
def test_same_padding_follows_the_parity_of_any_size(kernel_size):
    # pad_same + a "valid" stride-2 window is TF's "same" (keras.applications' correct_pad) at every
    # size: ZeroPadding2D where the size is known, SamePadding2D where it is not (a graph of any size).
    dynamic = keras.Input((None, None, 2))
    padded = pad_same(dynamic, kernel_size, 2, name="pad")
    assert isinstance(padded._keras_history.operation, kl.layers.SamePadding2D)
    # an average pool counts the zeros: every one shows
    any_size = keras.Model(dynamic, keras.layers.AveragePooling2D(kernel_size, 2)(padded))
    # in a graph of unknown size too (a SavedModel's or TFLite's signature), where the size is a tensor
    graph = tf.function(any_size, input_signature=[tf.TensorSpec((None, None, None, 2))])
    for height, width in ((9, 10), (10, 9)):
        static = keras.Input((height, width, 2))
        padded = pad_same(static, kernel_size, 2, name="pad")
        assert isinstance(padded._keras_history.operation, keras.layers.ZeroPadding2D)
        assert padded._keras_history.operation.padding == imagenet_utils.correct_pad(static, kernel_size)
        fixed = keras.Model(static, keras.layers.AveragePooling2D(kernel_size, 2)(padded))
        x = np.random.default_rng(0).standard_normal((1, height, width, 2)).astype("float32")
        np.testing.assert_array_equal(infer(any_size, x), infer(fixed, x))
        np.testing.assert_array_equal(graph(x).numpy(), infer(fixed, x))


def test_the_factorized_reduction_samples_two_shifted_grids():
    # With identity 1x1 convolutions and BN, the two paths are relu(p)[::2, ::2] and
    # relu(p)[1::2, 1::2], the latter zero-padded past the map's end.
    p = keras.Input((None, None, 3))  # any size: the shift is a crop and a pad
    model = keras.Model(p, adjust(p, 6, reduce=True, name="t"))
    for index in (1, 2):
        model.get_layer(f"t_conv{index}").kernel.assign(np.eye(3, dtype="float32")[None, None])
    model.get_layer("t_bn").moving_variance.assign(np.full(6, 1 - 1e-3, "float32"))
    x = np.random.default_rng(2).standard_normal((1, 7, 8, 3)).astype("float32")
    out = infer(model, x)
    relu = np.maximum(x, 0)
    shifted = np.zeros((1, 4, 4, 3), "float32")
    shifted[:, :3, :] = relu[:, 1::2, 1::2]
    np.testing.assert_allclose(out, np.concatenate([relu[:, ::2, ::2], shifted], -1), atol=1e-5)


def test_narrow_large_layout_is_keras_applications(tmp_path):
    # skip_reduction: the cell after a reduction reads the state before it (NASNet-A Large). Ours is
    # built for any input size (the cell plan, not the maps' sizes, picks each adjust block; the
    # TF "same" paddings follow each map's parity at run time): the same graph, keras' outputs.
    kwargs = {**NARROW_LARGE, "num_blocks": 2}
    reference = keras_nasnet.NASNet(
        ODD_SHAPE, kwargs["penultimate_filters"], kwargs["num_blocks"], kwargs["stem_filters"], True, 2,
        weights=None, classifier_activation=None,
    )  # fmt: skip
    ours = kl.NASNet(**kwargs, input_shape=(None, None, 3), classifier_activation=None)
    same_pads = [layer.name for layer in reference.layers if re.match(r"(separable_conv_1|reduction)_pad", layer.name)]
    assert (
        sum(isinstance(layer, kl.layers.SamePadding2D) for layer in ours.layers) == len(same_pads) == 4 * 5
    )  # 4 stride-2 separable blocks and the pool padding per reduction cell
    diff, scale = _compare(reference, ours, ODD_SHAPE)
    assert diff <= 1e-5 * max(1.0, scale), (diff, scale)
    # keras.applications' Keras 2 .h5 layout (one SeparableConv2D group per pair of ours) loads too.
    path = tmp_path / "nasnet.h5"
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)
    expected = infer(ours, np.ones((1, *ODD_SHAPE), "float32"))
    for weight in ours.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    kl.weights.load_checkpoint(ours, path)
    np.testing.assert_array_equal(infer(ours, np.ones((1, *ODD_SHAPE), "float32")), expected)


def test_narrow_large_layout_is_timm_nasnetalarge_with_same_max_pooling():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.models.nasnet.NASNetALarge(
        num_features=NARROW_LARGE["penultimate_filters"], stem_size=NARROW_LARGE["stem_filters"]
    ).eval()
    randomize_batchnorm(torch, reference, 0)
    x = np.random.default_rng(0).standard_normal((2, *ODD_SHAPE)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    scale = max(1.0, np.abs(expected).max())
    ours = kl.NASNet(**NARROW_LARGE, max_pool_padding="same", input_shape=ODD_SHAPE, classifier_activation=None)
    load_torch_weights(ours, reference, TIMM_KEY_MAP)
    diff = np.abs(expected - infer(ours, x)).max()
    assert diff <= 1e-4 * scale, (diff, scale)


def test_registered_layouts():
    assert kl.get_entry("nasnet_mobile").equals == "keras:NASNetMobile"
    assert kl.get_entry("nasnet_large").equals == "keras:NASNetLarge"
    timm_large = kl.get_entry("nasnet_large_tf")
    assert timm_large.equals == "timm:nasnetalarge" and timm_large.kwargs["max_pool_padding"] == "same"
    assert {w.tag for w in timm_large.weights} == {"tf_in1k"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"penultimate_filters": 1000}, r"multiple of 24 \* filter_multiplier \*\* 2 = 96, got 1000"),
        ({"max_pool_padding": "valid"}, r"`max_pool_padding` must be one of \('zeros', 'same'\)"),
        ({"num_blocks": 0}, "num_blocks"),
        ({"input_shape": (31, 64, 3)}, "at least 32"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kl.NASNet(**kwargs)
