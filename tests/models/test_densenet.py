"""DenseNet beyond the registry's checks: what a layout is named after (a published layout given by
its numbers is that variant; keras.applications' epsilon makes the ``_keras`` variant), custom
layouts rebuild from their model card, and bad layouts are refused before any layer is built.

Outputs: ``densenet121`` / ``densenet161`` equal torchvision's (test_torch_reference.py),
``densenet121_keras`` equals keras.applications' ``DenseNet121`` (test_keras_reference.py), and
torchvision's old-style checkpoint keys load through ``weights="imagenet"`` (test_weight_sources.py).
"""

import keras
import pytest

import keras_lightnets as kl
from keras_lightnets.layers import find_model_card
from keras_lightnets.models.densenet import KERAS_BN_EPSILON, TORCH_KEY_MAP
from keras_lightnets.weights.torch_port import compile_key_map, map_key


def _card(model):
    card = find_model_card(model)
    return card.variant, card.architecture["args"]


def test_a_layout_is_named_after_what_it_is():
    with keras.StatelessScope(initialize_variables=False):
        by_numbers = kl.DenseNet(121, blocks=[6, 12, 32, 32], input_shape=(64, 64, 3))
        keras_epsilon = kl.DenseNet(169, bn_epsilon=KERAS_BN_EPSILON, input_shape=(64, 64, 3))
        custom = kl.DenseNet(growth_rate=12, init_features=24, blocks=(2, 3), input_shape=(8, 8, 3), classes=10)
    assert by_numbers.name == "densenet169" and _card(by_numbers)[0] == "densenet169"
    assert keras_epsilon.name == "densenet169_keras" and _card(keras_epsilon)[0] == "densenet169_keras"
    variant, args = _card(custom)
    assert custom.name == "densenet_custom" and variant is None
    assert args == {
        "depth": 121, "blocks": [2, 3], "growth_rate": 12, "init_features": 24, "bn_size": 4, "bn_epsilon": 1e-5,
    }  # fmt: skip
    # 24 + 2 * 12 = 48 channels, halved by the transition, + 3 * 12 = 60 at the end
    assert custom.get_layer("final_bn").output.shape[-1] == 60 and custom.output_shape == (None, 10)
    # The card's arguments rebuild the same architecture.
    with keras.StatelessScope(initialize_variables=False):
        rebuilt = kl.DenseNet(**{**args, "blocks": tuple(args["blocks"])}, input_shape=(8, 8, 3), classes=10)
    assert kl.profile(rebuilt) == kl.profile(custom)


def test_the_key_map_takes_torchvisions_old_and_new_key_names():
    rules = compile_key_map(TORCH_KEY_MAP)
    for prefix in ("features.denseblock3.denselayer24.norm.2", "features.denseblock3.denselayer24.norm2"):
        assert map_key(rules, prefix) == ("dense3_layer24_2_bn", None)
    for prefix in ("features.denseblock1.denselayer1.conv.1", "features.denseblock1.denselayer1.conv1"):
        assert map_key(rules, prefix) == ("dense1_layer1_1_conv", None)
    assert map_key(rules, "features.transition2.conv") == ("transition2_conv", None)


@pytest.fixture
def no_layer_may_be_built(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a layer was built before the arguments were checked")

    monkeypatch.setattr(keras.layers.Layer, "__init__", fail)


# (arguments, error, what the message says): refused before any layer is built.
BAD_LAYOUTS = [
    ({"depth": 100}, ValueError, "`depth` must be one of (121, 161, 169, 201), got 100"),
    ({"depth": "121"}, TypeError, "`depth` must be an integer"),
    ({"blocks": ()}, TypeError, "`blocks` must be a non-empty list or tuple of layers per dense block"),
    ({"blocks": 24}, TypeError, "`blocks` must be a non-empty list or tuple"),
    ({"blocks": (6, 12, 24, 16, 8, 4, 2)}, ValueError, "`blocks` may have 1 to 6 dense blocks, got 7"),
    ({"blocks": (6, 0, 24, 16)}, ValueError, "`blocks[1]` must be an integer in [1, 128], got 0"),
    ({"blocks": (6, 12, 24, 129)}, ValueError, "`blocks[3]` must be an integer in [1, 128], got 129"),
    ({"blocks": (6, 12.0, 24, 16)}, TypeError, "`blocks[1]` must be an integer in [1, 128], got 12.0"),
    ({"growth_rate": 0}, ValueError, "`growth_rate` must be an integer in [1, 256], got 0"),
    ({"growth_rate": 512}, ValueError, "`growth_rate` must be an integer in [1, 256], got 512"),
    ({"growth_rate": 1.5}, TypeError, "`growth_rate` must be an integer in [1, 256], got 1.5"),
    ({"init_features": 0}, ValueError, "`init_features` must be an integer in [1, 1024], got 0"),
    ({"bn_size": 0}, ValueError, "`bn_size` must be an integer >= 1, got 0"),
    ({"bn_epsilon": 0}, ValueError, "`bn_epsilon` must be a number > 0, got 0"),
    ({"drop_rate": 1.0}, ValueError, "`drop_rate` must be in [0, 1)"),
    ({"blocks": (2, 2, 2, 2, 2), "input_shape": (32, 32, 3)}, ValueError, "input height must be at least 64"),
]


def test_bad_layouts_are_named(no_layer_may_be_built):
    for kwargs, error, message in BAD_LAYOUTS:
        with pytest.raises(error) as raised:
            kl.DenseNet(**kwargs)
        assert message in str(raised.value), kwargs
