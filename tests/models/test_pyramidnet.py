"""PyramidNet's distinctive operations, checked by hand-computed cases (no installable reference:
its outputs are pinned by golden tensors in test_golden.py): the width schedule, the zero-padded
shortcut with its ceil-mode average pool on odd sizes, no ReLU after the sum, the reference's key
names, the bad-input errors and the paper recipes."""

import keras
import numpy as np
import pytest
from inference import infer

import keras_lightnets as kl
from keras_lightnets.models.pyramidnet import TORCH_KEY_MAPS, pyramidal_unit, pyramidnet_widths, stage_units
from keras_lightnets.training.recipes import get_recipe, list_recipes
from keras_lightnets.weights.torch_port import compile_key_map, map_key


def test_widths_grow_by_alpha_over_n_rounded_half_to_even():
    # 6 units, α = 9: +1.5 per unit from 16: 17.5, 19, 20.5, 22, 23.5, 25 -> Python's round: 18, 19, 20, 22, 24, 25
    assert pyramidnet_widths((2, 2, 2), 9, 16) == ((18, 19), (20, 22), (24, 25))
    # PyramidNet-110, α = 48: 54 units of +8/9 from 16, ending at 16 + 48 = 64.
    widths = pyramidnet_widths(stage_units(110, False, "cifar"), 48, 16)
    assert [len(stage) for stage in widths] == [18, 18, 18]
    assert widths[0][:4] == (17, 18, 19, 20) and widths[0][-1] == 32 and widths[2][-1] == 64
    flat = [w for stage in widths for w in stage]
    assert all(abs(w - (16 + k * 48 / 54)) <= 0.5 for k, w in enumerate(flat, start=1))
    # ImageNet PyramidNet-101, α = 360: 33 units from 64 to 424 (a bottleneck outputs 4x: 1696).
    assert pyramidnet_widths(stage_units(101, True, "imagenet"), 360, 64)[-1][-1] == 424


def test_the_built_units_follow_the_schedule():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.PyramidNet(20, 24, layout="cifar", input_shape=(32, 32, 3), classes=10)
        bottleneck = kl.PyramidNet(11, 12, layout="cifar", bottleneck=True, input_shape=(32, 32, 3), classes=10)
    expected = pyramidnet_widths((3, 3, 3), 24, 16)  # 19, 21, 24 | 27, 29, 32 | 35, 37, 40
    assert expected == ((19, 21, 24), (27, 29, 32), (35, 37, 40))
    for i, stage in enumerate(expected):
        for j, width in enumerate(stage):
            assert model.get_layer(f"s{i + 1}_b{j + 1}_conv2_conv").filters == width
            assert model.get_layer(f"s{i + 1}_b{j + 1}_add").output.shape[-1] == width
    # a bottleneck unit: 1x1 -> w, 3x3 -> w, 1x1 -> 4w, its output 4w
    assert [bottleneck.get_layer(f"s3_b1_conv{k}_conv").filters for k in (1, 2, 3)] == [28, 28, 112]
    assert bottleneck.output_shape == (None, 10) and bottleneck.get_layer("final_bn").output.shape[-1] == 112


def _ceil_avg_pool_2x2(x):
    """Hand-written PyTorch AvgPool2d(2, 2, ceil_mode=True): a window past the edge averages what it holds."""
    height, width = x.shape[1:3]
    out = np.zeros((x.shape[0], -(-height // 2), -(-width // 2), x.shape[3]), x.dtype)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(axis=(1, 2))
    return out


def _unit_with_silent_branch(input_shape, width, strides, bottleneck=False):
    """One pyramidal unit whose residual branch is zero (its last BN: gamma 0, beta 0): only the shortcut shows."""
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, pyramidal_unit(inputs, width, strides, bottleneck=bottleneck, name="u"))
    last_bn = model.get_layer("u_bn")
    gamma, beta, mean, variance = last_bn.get_weights()
    last_bn.set_weights([np.zeros_like(gamma), np.zeros_like(beta), mean, variance])
    return model


@pytest.mark.parametrize("bottleneck", [False, True], ids=["basic", "bottleneck"])
def test_downsampling_shortcut_is_a_ceil_mode_average_then_zero_channels(bottleneck, rng):
    # Odd sizes: the last row and column are windows of their own (PyTorch's ceil mode, count of
    # the elements inside), then zero channels are appended up to the unit's width.
    x = rng.standard_normal((2, 7, 9, 5)).astype("float32")
    model = _unit_with_silent_branch((7, 9, 5), 6, 2, bottleneck)
    out = infer(model, x)
    channels = 24 if bottleneck else 6
    assert out.shape == (2, 4, 5, channels)
    pooled = _ceil_avg_pool_2x2(x)
    np.testing.assert_allclose(out[..., :5], pooled, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[..., 5:], 0.0)
    assert out[:, -1, -1, 0] == pytest.approx(x[:, -1, -1, 0])  # the corner window holds one pixel
    assert type(model.get_layer("u_add")).__name__ == "ChannelPadAdd"


def test_the_pool_equals_pytorchs_ceil_mode_average():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).standard_normal((1, 7, 9, 3)).astype("float32")
    expected = torch.nn.AvgPool2d((2, 2), stride=(2, 2), ceil_mode=True)(torch.from_numpy(x.transpose(0, 3, 1, 2)))
    model = _unit_with_silent_branch((7, 9, 3), 3, 2)
    np.testing.assert_allclose(infer(model, x), expected.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_ceil_avg_pool_2x2(x), expected.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


def test_no_relu_after_the_sum(rng):
    # The identity passes negative values through: no activation follows the addition.
    x = rng.standard_normal((1, 8, 8, 4)).astype("float32")
    out = infer(_unit_with_silent_branch((8, 8, 4), 4, 1), x)
    assert (x < 0).any()
    np.testing.assert_allclose(out, x, rtol=1e-6, atol=1e-6)
    # and in a whole network, no sum feeds an activation: the next unit starts with its BN.
    with keras.StatelessScope(initialize_variables=False):
        model = kl.PyramidNet(20, 24, layout="cifar", input_shape=(32, 32, 3), classes=10)
    consumers = {
        type(node.operation).__name__
        for layer in model.layers
        if layer.name.endswith("_add")
        for node in layer._outbound_nodes
    }
    # the next unit's BN and its shortcut (pool, sum); the final BN
    assert "BatchNormalization" in consumers
    assert consumers <= {"BatchNormalization", "AveragePooling2D", "Add", "ChannelPadAdd"}
    # the unit's first convolution is not preceded by a ReLU either (BN -> conv), the second is
    assert "s1_b1_conv1_act" not in [layer.name for layer in model.layers]
    assert isinstance(model.get_layer("s1_b1_conv2_act"), keras.layers.ReLU)


def _reference_keys(units, bottleneck):
    """The state-dict modules of dyhan0920/PyramidNet-PyTorch's CIFAR PyramidNet, written from its code."""
    keys = ["conv1", "bn1"]
    for stage, count in enumerate(units, start=1):
        for block in range(count):
            for k in range(1, (5 if bottleneck else 4)):
                keys.append(f"layer{stage}.{block}.bn{k}")
            for k in range(1, (4 if bottleneck else 3)):
                keys.append(f"layer{stage}.{block}.conv{k}")
    return keys + ["bn_final", "fc"]


@pytest.mark.parametrize("bottleneck", [False, True], ids=["basic", "bottleneck"])
def test_the_reference_state_dict_names_map_onto_every_layer(bottleneck):
    depth = 20 if bottleneck else 14  # two units per stage
    with keras.StatelessScope(initialize_variables=False):
        model = kl.PyramidNet(depth, 12, layout="cifar", bottleneck=bottleneck, input_shape=(32, 32, 3), classes=10)
    weighted = {layer.name for layer in model.layers if layer.weights}
    rules = compile_key_map(TORCH_KEY_MAPS[bottleneck])
    for prefix in ("", "module."):  # a checkpoint saved through DataParallel
        mapped = [map_key(rules, prefix + key)[0] for key in _reference_keys((2, 2, 2), bottleneck)]
        assert None not in mapped and len(set(mapped)) == len(mapped)
        assert set(mapped) == weighted


BAD_INPUT = [
    ({"alpha": 0}, ValueError, "`alpha` must be a number > 0 (the total widening α), got 0"),
    ({"alpha": -48}, ValueError, "`alpha` must be a number > 0"),
    ({"alpha": True}, TypeError, "`alpha` must be a number"),
    ({"depth": 111}, ValueError, "`depth` of a cifar PyramidNet with basic units must be 2 + 6 n"),
    ({"depth": 110, "bottleneck": True, "alpha": 48}, None, None),  # 2 + 9 * 12: valid
    ({"depth": 165, "bottleneck": True}, ValueError, "with bottleneck units must be 2 + 9 n (n >= 1"),
    ({"depth": 2}, ValueError, "`depth` must be an integer >= 3, got 2"),
    ({"depth": 5}, ValueError, "must be 2 + 6 n (n >= 1"),
    ({"layout": "svhn"}, ValueError, "`layout` must be one of ('imagenet', 'cifar'), got 'svhn'"),
    ({"bottleneck": "yes"}, TypeError, "`bottleneck` must be True or False"),
    ({"layout": "imagenet", "depth": 101, "bottleneck": False}, ValueError, "PyramidNet-101 of the reference table"),
    ({"layout": "imagenet", "depth": 99}, ValueError, "or one of the table's [18, 34, 50, 101, 152, 200]"),
    ({"dropout_rate": 1.0}, ValueError, "`dropout_rate` must be in [0, 1)"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_INPUT, ids=[str(k) for k, _, _ in BAD_INPUT])
def test_bad_input_is_named_before_any_layer_is_built(kwargs, error, message, monkeypatch):
    arguments = {"depth": 110, "alpha": 48, "layout": "cifar", **kwargs}
    if error is None:
        assert stage_units(arguments["depth"], True, "cifar") == (12, 12, 12)
        return

    def fail(*args, **kwargs):
        raise AssertionError("a layer was built before the arguments were checked")

    monkeypatch.setattr(keras.layers.Layer, "__init__", fail)
    with pytest.raises(error) as raised:
        kl.PyramidNet(**arguments)
    assert message in str(raised.value)


def test_the_registry_sets_dropout_for_alpha_450_and_cifar_classes():
    assert kl.get_entry("pyramidnet200_a450").defaults == {"dropout_rate": 0.5}
    assert kl.get_entry("pyramidnet110_a48_cifar100").classes == 100
    assert kl.get_entry("pyramidnet110_a48_cifar10").preprocessing.input_size == (32, 32, 3)
    with keras.StatelessScope(initialize_variables=False):
        model = kl.PyramidNet(18, 48, dropout_rate=0.5, input_shape=(64, 64, 3))
    assert model.get_layer("dropout").rate == 0.5 and model.name == "pyramidnet18_a48"


def test_paper_recipes_hold_the_published_numbers():
    assert list_recipes("pyramidnet") == ["default", "paper", "paper_cifar100", "paper_imagenet"]
    cifar10, cifar100, imagenet = (get_recipe("pyramidnet", n) for n in ("paper", "paper_cifar100", "paper_imagenet"))
    for recipe in (cifar10, cifar100):
        assert (recipe.optimizer, recipe.nesterov, recipe.momentum, recipe.batch_size, recipe.epochs) == (
            "sgd",
            True,
            0.9,
            128,
            300,
        )
        assert (recipe.weight_decay, recipe.weight_decay_mode) == (1e-4, "l2")
        # the reference's adjust_learning_rate: / 10 at epochs * 0.5 and epochs * 0.75
        assert (recipe.schedule, recipe.decay_rate, recipe.milestones) == ("multistep", 0.1, (150.0, 225.0))
    assert (cifar10.learning_rate, cifar100.learning_rate) == (0.1, 0.5)
    assert (imagenet.learning_rate, imagenet.batch_size, imagenet.epochs) == (0.05, 128, 100)
    assert (imagenet.schedule, imagenet.decay_rate, imagenet.decay_epochs) == ("exponential", 0.1, 30.0)
    for recipe in (cifar10, cifar100, imagenet):
        assert "dyhan0920/PyramidNet-PyTorch" in recipe.source
