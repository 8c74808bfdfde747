"""PolyNet: outputs equal pretrainedmodels' port with the weights copied, the poly-3 modules' shared
convolutions (one kernel for every order, a BatchNorm per order) against a NumPy transcription, and
the residual scales and input bounds."""

import keras
import numpy as np
import pytest
from inference import infer
from reference_diffs import record_reference_diff
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.models.polynet import BN_EPSILON, POLY_CONV_NAMES, module_scales, poly_module
from keras_lightnets.weights import load_torch_weights

# The smallest input the two reductions take, odd and non-square: the port's 9x9 average pool
# needs 331 pixels, so both sides are compared on the features, then through the classifier on
# their global average (what the 9x9 pool is at 331, and what our head is at every size).
COMPARE_SHAPE = (75, 83, 3)


@pytest.mark.reference
def test_polynet_matches_pretrainedmodels():
    torch, pretrainedmodels = import_reference("pretrainedmodels")
    torch.manual_seed(0)
    reference = pretrainedmodels.polynet(num_classes=1000, pretrained=None).eval()
    randomize_batchnorm(torch, reference)
    stages = (reference.stage_a, reference.stage_b, reference.stage_c)
    assert [module.scale for stage in stages for module in stage] == module_scales()
    ours = kl.create_model("polynet", input_shape=COMPARE_SHAPE, classifier_activation=None)
    load_torch_weights(ours, reference, kl.get_entry("polynet").key_map)  # every key, every shape
    x = np.random.default_rng(0).standard_normal((2, *COMPARE_SHAPE)).astype("float32")
    with torch.no_grad():
        features = reference.features(torch.from_numpy(x.transpose(0, 3, 1, 2)))
        expected = reference.last_linear(features.mean((2, 3))).numpy()
    got = infer(ours, x)
    diff, scale = float(np.abs(got - expected).max()), float(np.abs(expected).max())
    record_reference_diff("polynet 75x83", "pretrainedmodels polynet", diff)
    assert diff <= 1e-4 * max(1.0, scale), (diff, scale)


def _conv_same(x, kernel):
    """NumPy stride-1 convolution with PyTorch's ``k // 2`` padding (NHWC, kernel (kh, kw, in, out))."""
    kh, kw = kernel.shape[:2]
    height, width = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    return sum(
        np.einsum("nhwc,co->nhwo", padded[:, i : i + height, j : j + width], kernel[i, j])
        for i in range(kh)
        for j in range(kw)
    )


def _bn(x, layer):
    gamma, beta, mean, variance = (np.asarray(w, np.float64) for w in layer.weights)
    return (x - mean) / np.sqrt(variance + BN_EPSILON) * gamma + beta


def test_poly3_orders_share_their_convolutions_and_own_their_batchnorms():
    # Inception-ResNet-B poly-3 (1152 channels) on a 4x5 map, seeded weights: every BN differs.
    from golden import seeded_weights

    inputs = keras.Input((4, 5, 1152))
    model = seeded_weights(keras.Model(inputs, poly_module(inputs, "b", 0.9, name="m")), seed=3)
    path0, path1 = POLY_CONV_NAMES["b"]
    for conv in (*path0, path1):
        shared = model.get_layer(f"m_{conv}_conv")
        assert len(shared._inbound_nodes) == 3  # one layer, called by each order: one kernel
        assert len({id(model.get_layer(f"m_{conv}_bn{order}")) for order in (1, 2, 3)}) == 3  # a BN per order
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 4 + 3  # the shared four, and each order's own 1x1 "conv2d"
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 3 * 4 + 3 and all(len(layer._inbound_nodes) == 1 for layer in bns)

    def kernel(name):
        return np.asarray(model.get_layer(name).kernel, np.float64)

    def unit(y, conv, order):
        return np.maximum(_bn(_conv_same(y, kernel(f"m_{conv}_conv")), model.get_layer(f"m_{conv}_bn{order}")), 0)

    x = np.random.default_rng(0).standard_normal((2, 4, 5, 1152))
    y, total = x, 0.0
    for order in (1, 2, 3):  # F_n of the previous order's ReLU, the same kernels every time
        y0 = unit(unit(unit(y, path0[0], order), path0[1], order), path0[2], order)
        joined = np.concatenate([y0, unit(y, path1, order)], axis=-1)
        branch = _bn(
            _conv_same(joined, kernel(f"m_order{order}_conv2d_conv")), model.get_layer(f"m_order{order}_conv2d_bn")
        )
        total, y = total + branch, np.maximum(branch, 0)
    expected = np.maximum(x + 0.9 * total, 0)
    np.testing.assert_allclose(infer(model, x.astype("float32")), expected, rtol=1e-4, atol=1e-4)


def test_residual_scales_decay_linearly_from_1_to_0_7():
    scales = module_scales()
    assert len(scales) == 40 and scales[0] == 1.0 and scales[-1] == 0.7
    # the port's six-decimal values: first B module, last A module, a C module
    assert (scales[1], scales[9], scales[10], scales[30]) == (0.992308, 0.930769, 0.923077, 0.769231)
    assert module_scales(5) == [1.0, 0.925, 0.85, 0.775, 0.7]


def test_inputs_below_75_pixels_and_bad_module_counts_are_refused():
    with pytest.raises(ValueError, match="at least 75 pixels"):
        kl.PolyNet(input_shape=(74, 120, 3))
    with pytest.raises(ValueError, match="`modules` must be the module counts of stages"):
        kl.PolyNet(modules=(10, 20))
    with pytest.raises(ValueError, match="`modules`"):
        kl.PolyNet(modules=(10, 0, 10))
    with keras.StatelessScope(initialize_variables=False):
        shallow = kl.PolyNet((1, 2, 2), input_shape=(75, 75, 3), classes=10)
    assert shallow.name == "polynet_custom"
    kinds = {layer.name.split("_")[0] for layer in shallow.layers if layer.name.endswith("_scale")}
    assert kinds == {"a1", "b1", "b2", "c1", "c2"}
