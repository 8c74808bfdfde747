"""AnyNet and RegNet: one generic network, the RegNet rule in front of it, and the details the
references get right (grouped convolutions in one layer, SE width from the block input, the
group width clipped to a narrow stage)."""

import keras
import numpy as np
import pytest
from inference import infer

import keras_lightnets as kl
from keras_lightnets.design_space import regnet_stages
from keras_lightnets.weights import copy_keras_weights

SMALL = (64, 72, 3)


def _anynet_point(name):
    """The AnyNet arguments of a published RegNet, through the RegNet rule."""
    kwargs = kl.get_entry(name).kwargs
    stages = regnet_stages(kwargs["w0"], kwargs["wa"], kwargs["wm"], kwargs["depth"], kwargs["group_width"])
    return {
        "stem_width": 32,
        "depths": [stage.depth for stage in stages],
        "widths": [stage.width for stage in stages],
        "strides": [2] * len(stages),
        "bottleneck_ratios": [1.0] * len(stages),
        "group_widths": [stage.group_width for stage in stages],
        "se_ratio": kwargs.get("se_ratio"),
    }


def test_a_regnet_is_the_anynet_of_its_stages(rng):
    regnet = kl.create_model("regnety_002", input_shape=SMALL, classifier_activation=None)
    anynet = kl.AnyNet(**_anynet_point("regnety_002"), input_shape=SMALL, classifier_activation=None)
    assert anynet.name == "anynet" and kl.model_identity(anynet)["family"] == "anynet"
    assert kl.profile(anynet) == kl.profile(regnet)
    copy_keras_weights(regnet, anynet)
    x = rng.standard_normal((2, *SMALL)).astype("float32")
    np.testing.assert_array_equal(infer(anynet, x), infer(regnet, x))


def test_grouped_convolutions_are_single_layers():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("regnetx_002", input_shape=SMALL)
    grouped = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    assert len(grouped) == 13  # one per block: every stage is wider than its group width 8
    assert {layer.name.rsplit("_", 2)[0] for layer in grouped} == {
        f"s{i}_b{j}" for i, depth in enumerate((1, 1, 4, 7), 1) for j in range(1, depth + 1)
    }
    assert not any(isinstance(layer, (keras.layers.Concatenate, keras.layers.Lambda)) for layer in model.layers)


def test_se_width_comes_from_the_block_input():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("regnety_002", input_shape=SMALL)
    # Stage widths 24, 56, 152, 368 with depths 1, 1, 4, 7. s3_b1 takes stage 2's 56 channels and
    # outputs 152: SE width round(0.25 * 56) = 14, not 38.
    assert model.get_layer("s3_b1_se_reduce").filters == 14
    assert model.get_layer("s3_b1_se_expand").filters == 152
    assert model.get_layer("s3_b2_se_reduce").filters == 38  # later blocks take 152 channels


def test_regnetx_8gf_clips_its_first_group_width():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("regnetx_080", input_shape=SMALL)
    assert model.get_layer("s1_b1_conv2_conv").groups == 1  # 80 channels, group width 120 -> 80
    assert model.get_layer("s2_b1_conv2_conv").groups == 2  # 240 / 120


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 13, "group_width": 8}, "regnetx_002"),
        ({"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 13, "group_width": 8, "se_ratio": 0.25}, "regnety_002"),
        ({"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 10, "group_width": 8}, "regnetx_custom"),
        ({"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 10, "group_width": 8, "se_ratio": 0.25}, "regnety_custom"),
    ],
)
def test_a_regnet_is_named_after_what_it_is(kwargs, expected):
    with keras.StatelessScope(initialize_variables=False):
        assert kl.RegNet(**kwargs, input_shape=SMALL).name == expected


def test_resnext_uses_one_grouped_convolution_per_block():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("resnext50_32x4d", input_shape=SMALL)
    grouped = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    assert len(grouped) == 16 and {layer.groups for layer in grouped} == {32}
    assert model.get_layer("s1_b1_conv2_conv").filters == 128  # int(64 * 4 / 64) * 32


def test_resnet_layouts_put_the_stride_where_their_reference_does():
    with keras.StatelessScope(initialize_variables=False):
        v15 = kl.create_model("resnet50", input_shape=SMALL)
        v1 = kl.create_model("resnet50_v1", input_shape=SMALL)
    assert v15.get_layer("s2_b1_conv2_conv").strides == (2, 2) and v15.get_layer("s2_b1_conv1_conv").strides == (1, 1)
    assert v1.get_layer("s2_b1_conv1_conv").strides == (2, 2) and v1.get_layer("s2_b1_conv2_conv").strides == (1, 1)
    assert v1.get_layer("s2_b1_conv1_conv").use_bias and not v15.get_layer("s2_b1_conv1_conv").use_bias
    assert v1.get_layer("stem_bn").epsilon == 1.001e-5 and v15.get_layer("stem_bn").epsilon == 1e-5
