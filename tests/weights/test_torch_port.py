"""load_torch_weights maps PyTorch tensors to Keras layers by name: from a module or a NumPy state
dict, in any key order, with a shortcut registered before the body; every unexpected key, missing
weight and wrong shape is named, and a failed load leaves the model untouched."""

import random

import keras
import numpy as np
import pytest
from reference_diffs import record_reference_diff
from torch_reference import import_reference, import_torch

import keras_lightnets as kl
from keras_lightnets.models.rexnet import TIMM_KEY_MAP as REXNET_TIMM
from keras_lightnets.weights import load_torch_weights

INPUT_SHAPE = (64, 80, 3)
TOLERANCE = 1e-5


def randomize(torch, module, seed=0):
    """Random parameters and BatchNorm statistics, so that a swapped or untransposed tensor shows."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in module.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        else:
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return module.eval()


def torch_output(torch, module, x):
    return module(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal((2, *shape)).astype("float32")


# A toy block whose torch module registers the shortcut before the body: order-based porting
# would load the shortcut's tensors into the body conv (same shapes), by name they land right.
TOY_KEY_MAP = (
    (r"shortcut", "block_shortcut_conv"),
    (r"(conv|bn)", r"block_\1"),
    (r"dw|fc", r"\g<0>"),
)


def toy_torch(torch):
    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.shortcut = torch.nn.Conv2d(3, 8, 1)
            self.conv = torch.nn.Conv2d(3, 8, 1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.dw = torch.nn.Conv2d(8, 16, 3, padding=1, groups=8, bias=False)  # depth multiplier 2
            self.fc = torch.nn.Linear(16, 5)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x))) + self.shortcut(x)
            return self.fc(self.dw(x).mean((2, 3)))

    return randomize(torch, Toy())


def toy_keras(input_shape=(9, 11, 3)):
    layers = keras.layers
    x = keras.Input(input_shape)
    y = layers.Conv2D(8, 1, name="block_conv")(x)
    y = layers.BatchNormalization(epsilon=1e-5, name="block_bn")(y)
    y = layers.ReLU(name="block_act")(y)
    shortcut = layers.Conv2D(8, 1, name="block_shortcut_conv")(x)
    y = layers.Add(name="block_add")([y, shortcut])
    y = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False, name="dw")(y)
    y = layers.GlobalAveragePooling2D(name="pool")(y)
    return keras.Model(x, layers.Dense(5, name="fc")(y), name="toy")


def numpy_state(module):
    return {key: value.numpy() for key, value in module.state_dict().items()}


def assert_same_weights(before, model):
    after = model.get_weights()
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_shortcut_registered_before_the_body_maps_by_name():
    torch = import_torch()
    torch.set_grad_enabled(False)
    reference, ours = toy_torch(torch), toy_keras()
    assert next(iter(reference.state_dict())).startswith("shortcut.")  # registered first
    load_torch_weights(ours, reference, TOY_KEY_MAP)
    weight = reference.shortcut.weight.numpy()
    np.testing.assert_array_equal(ours.get_layer("block_shortcut_conv").kernel.numpy(), weight.transpose(2, 3, 1, 0))
    x = inputs((9, 11, 3))
    diff = float(np.abs(torch_output(torch, reference, x) - ours.predict(x, verbose=0)).max())
    assert diff <= TOLERANCE


def test_numpy_state_dict_and_module_load_the_same_and_match_timm():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = randomize(torch, timm.create_model("rexnet_100"))
    from_module = kl.ReXNet(1.0, input_shape=INPUT_SHAPE, classifier_activation=None)
    from_numpy = kl.ReXNet(1.0, input_shape=INPUT_SHAPE, classifier_activation=None)
    load_torch_weights(from_module, reference, REXNET_TIMM)
    state = numpy_state(reference)
    assert all(type(value) is np.ndarray for value in state.values())
    load_torch_weights(from_numpy, state, REXNET_TIMM)
    x = inputs(INPUT_SHAPE)
    np.testing.assert_array_equal(from_module.predict(x, verbose=0), from_numpy.predict(x, verbose=0))
    diff = float(np.abs(torch_output(torch, reference, x) - from_numpy.predict(x, verbose=0)).max())
    record_reference_diff("rexnet_100 64x80 (NumPy state dict)", "timm rexnet_100", diff)
    assert diff <= TOLERANCE


def test_shuffled_state_dict_loads_identically():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    state = numpy_state(randomize(torch, timm.create_model("rexnet_100")))
    keys = list(state)
    random.Random(0).shuffle(keys)
    in_order = load_torch_weights(kl.ReXNet(1.0, input_shape=INPUT_SHAPE), state, REXNET_TIMM)
    shuffled = load_torch_weights(kl.ReXNet(1.0, input_shape=INPUT_SHAPE), {k: state[k] for k in keys}, REXNET_TIMM)
    assert_same_weights(in_order.get_weights(), shuffled)


@pytest.fixture
def toy():
    torch = import_torch()
    model = toy_keras()
    return model, numpy_state(toy_torch(torch)), model.get_weights()


def test_missing_key_is_named_and_nothing_is_loaded(toy):
    model, state, before = toy
    del state["bn.running_var"], state["fc.bias"]
    with pytest.raises(ValueError, match="missing") as error:
        load_torch_weights(model, state, TOY_KEY_MAP)
    message = str(error.value)
    assert "block_bn.moving_variance (8,): no torch key bn.running_var" in message
    assert "fc.bias (5,): no torch key fc.bias" in message
    assert "nothing was loaded (2 problems)" in message
    assert_same_weights(before, model)


def test_unexpected_keys_are_named_and_nothing_is_loaded(toy):
    model, state, before = toy
    state["head.weight"] = np.zeros((5, 16), "float32")  # no rule maps it
    state["dw.bias"] = np.zeros(16, "float32")  # the Keras depthwise conv has no bias
    with pytest.raises(ValueError, match="unexpected") as error:
        load_torch_weights(model, state, TOY_KEY_MAP)
    message = str(error.value)
    assert "head.weight (5, 16): no key-map rule matches 'head'" in message
    assert "dw.bias (16,): Keras DepthwiseConv2D 'dw' has no weight for it" in message
    assert_same_weights(before, model)


def test_key_mapped_to_an_absent_layer_is_unexpected(toy):
    model, state, before = toy
    with pytest.raises(ValueError) as error:
        load_torch_weights(model, state, ((r"shortcut", "block_shortcut"), *TOY_KEY_MAP))
    message = str(error.value)
    assert "shortcut.weight (8, 3, 1, 1): 'shortcut' maps to 'block_shortcut', not a weighted layer" in message
    assert "block_shortcut_conv (Conv2D: kernel (1, 1, 3, 8), bias (8,)): no torch module maps to it" in message
    assert_same_weights(before, model)


def test_wrong_shape_names_key_layer_and_both_shapes(toy):
    model, state, before = toy
    state["conv.weight"] = np.zeros((8, 3, 3, 3), "float32")
    state["dw.weight"] = np.zeros((16, 2, 3, 3), "float32")
    with pytest.raises(ValueError, match="shape mismatches") as error:
        load_torch_weights(model, state, TOY_KEY_MAP)
    message = str(error.value)
    assert "conv.weight (8, 3, 3, 3) → block_conv.kernel (1, 1, 3, 8): expected torch shape (8, 3, 1, 1) or (8, 3)" in (
        message
    )
    assert "dw.weight (16, 2, 3, 3) → dw.kernel (3, 3, 8, 2): expected torch shape (16, 1, 3, 3)" in message
    assert_same_weights(before, model)


def test_two_modules_on_one_layer_fail(toy):
    model, state, before = toy
    with pytest.raises(ValueError, match="'conv' and 'shortcut' both map to Keras layer 'block_conv'"):
        load_torch_weights(model, state, ((r"shortcut|conv", "block_conv"), *TOY_KEY_MAP))
    assert_same_weights(before, model)


def test_not_strict_tolerates_missing_and_unexpected_but_not_shapes(toy):
    model, state, before = toy
    state["head.weight"] = np.zeros((5, 16), "float32")
    fc_weight = state.pop("fc.weight")
    with pytest.warns(UserWarning, match="head.weight"):
        load_torch_weights(model, state, TOY_KEY_MAP, strict=False)
    np.testing.assert_array_equal(model.get_layer("fc").kernel.numpy(), before[-2])  # nothing to load: kept
    np.testing.assert_array_equal(model.get_layer("fc").bias.numpy(), state["fc.bias"])
    state["fc.weight"] = fc_weight[:, :3]
    with pytest.raises(ValueError, match="fc.weight"):
        load_torch_weights(model, state, TOY_KEY_MAP, strict=False)


def test_skip_rule_and_linear_or_1x1_conv_layouts(toy):
    model, state, _ = toy
    state["aux.weight"] = np.zeros((5, 16), "float32")
    as_conv = {**state, "fc.weight": state["fc.weight"][:, :, None, None]}  # a 1x1 conv classifier
    load_torch_weights(model, as_conv, ((r"aux", None), *TOY_KEY_MAP))
    np.testing.assert_array_equal(model.get_layer("fc").kernel.numpy(), state["fc.weight"].T)


def test_bad_key_map_and_source_raise_type_errors(toy):
    model, state, _ = toy
    with pytest.raises(TypeError, match="pairs"):
        load_torch_weights(model, state, {"conv": "block_conv"})
    with pytest.raises(TypeError, match="rule 0"):
        load_torch_weights(model, state, [(r"conv", "block_conv", "extra")])
    with pytest.raises(TypeError, match="state dict"):
        load_torch_weights(model, [1, 2], TOY_KEY_MAP)
