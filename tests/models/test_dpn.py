"""DPN's dual paths written without slicing, the key-map rule that splits one PyTorch convolution
across two Keras ones, DPN-68b, and bad input. The outputs against timm's dpn68 / dpn92 (weights
copied) are in test_torch_reference.py, the Hub weights of dpn68b in test_weight_sources.py."""

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.models.dpn import CONFIGS, TIMM_KEY_MAP
from keras_lightnets.weights import load_torch_weights


def test_the_paths_are_summed_and_concatenated_without_slicing():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.DPN(68, input_shape=(64, 64, 3))
    kinds = {type(layer).__name__ for layer in model.layers}
    assert not kinds & {"Lambda", "Cropping1D", "Cropping2D", "Cropping3D"}
    k_r, groups, blocks, increments, _, _ = CONFIGS[68]
    for stage, (count, inc, bw) in enumerate(zip(blocks, increments, (64, 128, 256, 512), strict=True), start=1):
        # the first block projects to bw + 2 inc, each block sums bw channels and adds inc dense ones
        assert model.get_layer(f"s{stage}_b1_c1x1_w_res_conv").filters == bw
        assert model.get_layer(f"s{stage}_b1_c1x1_w_dense_conv").filters == 2 * inc
        assert model.get_layer(f"s{stage}_b{count}_res_add").output.shape[-1] == bw
        assert model.get_layer(f"s{stage}_b{count}_dense_concat").output.shape[-1] == (count + 2) * inc
        assert model.get_layer(f"s{stage}_b{count}_output").output.shape[-1] == bw + (count + 2) * inc
        assert model.get_layer(f"s{stage}_b2_c3x3_b_conv").groups == groups
        assert model.get_layer(f"s{stage}_b2_c3x3_b_conv").filters == k_r * 2 ** (stage - 1)
    # pre-activation: BN -> ReLU -> conv, epsilon 1e-3 everywhere
    assert {layer.epsilon for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)} == {1e-3}
    assert model.get_layer("s2_b2_c1x1_a_act").input is model.get_layer("s2_b2_c1x1_a_bn").output


def test_b_changes_no_layer_only_the_variant():
    with keras.StatelessScope(initialize_variables=False):
        plain, b = kl.DPN(68, input_shape=(64, 64, 3)), kl.DPN(68, b=True, input_shape=(64, 64, 3))
    assert (plain.name, b.name) == ("dpn68", "dpn68b")
    assert kl.model_identity(b)["variant"] == "dpn68b"

    def layers(model):
        return [(type(layer).__name__, layer.name) for layer in model.layers if type(layer).__name__ != "ModelCard"]

    assert layers(plain) == layers(b)
    assert kl.get_entry("dpn68b").weights[0].tag == "mx_in1k"
    assert kl.get_entry("dpn68b").weights[1].preprocessing.mean == (0.485, 0.456, 0.406)  # timm's ra_in1k
    assert kl.get_entry("dpn92").preprocessing.mean == (124 / 255, 117 / 255, 104 / 255)


def test_one_torch_convolution_loads_into_the_two_convolutions_of_its_paths(rng):
    # DPN's c1x1_c: one (bw + inc, r, 1, 1) kernel whose outputs timm slices; here two convolutions.
    inputs = keras.Input((5, 5, 3))
    res = keras.layers.Conv2D(4, 1, use_bias=False, name="b_res_conv")(inputs)
    dense = keras.layers.Conv2D(2, 1, use_bias=True, name="b_dense_conv")(inputs)
    model = keras.Model(inputs, [res, dense])
    weight, bias = rng.standard_normal((6, 3, 1, 1)).astype("float32"), np.zeros(6, "float32")
    key_map = [(r"block\.conv", ("b_res_conv", "b_dense_conv"))]
    with pytest.raises(ValueError, match=r"block\.conv\.bias\[0:4\] .*no weight for it"):
        load_torch_weights(model, {"block.conv.weight": weight, "block.conv.bias": bias}, key_map)
    load_torch_weights(model, {"block.conv.weight": weight}, key_map, strict=False)  # the dense bias is left
    kernel = weight[:, :, 0, 0].T  # (in, out)
    loaded = {
        name: keras.ops.convert_to_numpy(model.get_layer(name).kernel)[0, 0] for name in ("b_res_conv", "b_dense_conv")
    }
    np.testing.assert_array_equal(loaded["b_res_conv"], kernel[:, :4])
    np.testing.assert_array_equal(loaded["b_dense_conv"], kernel[:, 4:])
    with pytest.raises(ValueError, match=r"expected 6 outputs along the first axis"):
        load_torch_weights(model, {"block.conv.weight": weight[:5]}, key_map, strict=False)


def test_timm_key_map_reads_both_layouts_of_c1x1_c():
    from keras_lightnets.weights.torch_port import compile_key_map, map_key

    rules = compile_key_map(TIMM_KEY_MAP)
    assert map_key(rules, "features.conv3_1.c1x1_w_s2.conv")[0] == ("s2_b1_c1x1_w_res_conv", "s2_b1_c1x1_w_dense_conv")
    assert map_key(rules, "features.conv2_1.c1x1_w_s1.bn")[0] == "s1_b1_c1x1_w_bn"
    assert map_key(rules, "features.conv4_12.c1x1_c.conv")[0] == ("s3_b12_c1x1_c_res_conv", "s3_b12_c1x1_c_dense_conv")
    assert map_key(rules, "features.conv4_12.c1x1_c1")[0] == "s3_b12_c1x1_c_res_conv"  # DPN-b
    assert map_key(rules, "features.conv4_12.c1x1_c2")[0] == "s3_b12_c1x1_c_dense_conv"
    assert map_key(rules, "features.conv5_bn_ac.bn")[0] == "final_bn"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"depth": 50}, ValueError, "`depth` must be one of (68, 92, 98, 107, 131), got 50"),
        ({"b": "yes"}, TypeError, "`b` must be True or False"),
        ({"head_activation": "gelu"}, ValueError, "`head_activation` must be one of ('relu', 'elu'), got 'gelu'"),
        ({"dropout_rate": -0.1}, ValueError, "`dropout_rate` must be in [0, 1)"),
    ],
)
def test_bad_input_is_named(kwargs, error, message, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a layer was built before the arguments were checked")

    monkeypatch.setattr(keras.layers.Layer, "__init__", fail)
    with pytest.raises(error) as raised:
        kl.DPN(**kwargs)
    assert message in str(raised.value)
