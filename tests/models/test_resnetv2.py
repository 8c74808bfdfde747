"""ResNetV2 (pre-activation): what the registry-wide tests do not check.

Outputs against keras.applications (``resnet50_v2``) and timm (``resnetv2_50``) are in
test_keras_reference.py and test_torch_reference.py. Here: the parameters of every reference,
where each layout puts a stage's stride, that stochastic depth keeps keras.applications'
weighted-layer order (its files load by order), and the argument checks.
"""

import keras
import numpy as np
import pytest
from torch_reference import import_reference

import keras_lightnets as kl
from keras_lightnets.training.recipes import get_recipe
from keras_lightnets.weights._layers import weighted_layers


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_parameters_equal_keras_applications(depth):
    with keras.StatelessScope(initialize_variables=False):
        reference = getattr(keras.applications, f"ResNet{depth}V2")(weights=None)
        trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
        ours = kl.create_model(f"resnet{depth}_v2")
        assert kl.profile(ours).params == trainable == kl.get_entry(f"resnet{depth}_v2").reference.params
        # the same weighted layers, in the same order: keras.applications' files load in graph order
        assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]


@pytest.mark.parametrize("depth", [50, 101])
def test_parameters_equal_timm(depth):
    torch, timm = import_reference("timm")
    expected = sum(p.numel() for p in timm.create_model(f"resnetv2_{depth}").parameters())
    with keras.StatelessScope(initialize_variables=False):
        assert kl.profile(kl.create_model(f"resnetv2_{depth}")).params == expected
    assert expected == kl.get_entry(f"resnetv2_{depth}").reference.params


def test_keras_strides_in_a_stages_last_block_timm_in_its_first():
    size = 64
    keras_layout = kl.ResNetV2(50, include_top=False, input_shape=(size, size, 3))
    timm_layout = kl.ResNetV2(50, layout="timm", include_top=False, input_shape=(size, size, 3))

    def strides(model, blocks):
        return [size // model.get_layer(f"{block}_add").output.shape[1] for block in blocks]

    ends = ["s1_b3", "s2_b4", "s3_b6", "s4_b3"]
    firsts = ["s1_b1", "s2_b1", "s3_b1", "s4_b1"]
    assert strides(keras_layout, firsts) == [4, 8, 16, 32] and strides(keras_layout, ends) == [8, 16, 32, 32]
    assert strides(timm_layout, firsts) == [4, 8, 16, 32] and strides(timm_layout, ends) == [4, 8, 16, 32]
    # keras.applications' downsampling block without a projection: a 1x1/2 max pool of its input
    assert keras_layout.get_layer("s1_b3_shortcut_pool").pool_size == (1, 1)
    assert not any(layer.name.endswith("_shortcut_pool") for layer in timm_layout.layers)
    # biases where keras.applications has them, none in timm's layout
    biased = {layer.name for layer in keras_layout.layers if getattr(layer, "use_bias", False)}
    assert {"stem_conv", "s1_b1_shortcut_conv", "s1_b1_conv3_conv", "s1_b1_conv2_conv"} & biased == {
        "stem_conv",
        "s1_b1_shortcut_conv",
        "s1_b1_conv3_conv",
    }
    assert not any(getattr(layer, "use_bias", False) for layer in timm_layout.layers if layer.name != "predictions")


def test_stochastic_depth_keeps_keras_applications_weighted_layer_order():
    with keras.StatelessScope(initialize_variables=False):
        plain = kl.create_model("resnet50_v2", input_shape=(64, 64, 3))
        dropping = kl.create_model("resnet50_v2", input_shape=(64, 64, 3), drop_path_rate=0.2)
    assert any(type(layer).__name__ == "StochasticDepth" for layer in dropping.layers)
    assert [layer.name for layer in weighted_layers(dropping)] == [layer.name for layer in weighted_layers(plain)]


def test_blocks_name_the_network_by_its_layers():
    with keras.StatelessScope(initialize_variables=False):
        assert kl.ResNetV2(101, blocks=(3, 4, 6, 3)).name == "resnet50_v2"  # a published count is that variant
        assert kl.ResNetV2(blocks=(3, 4, 23, 3), layout="timm").name == "resnetv2_101"
        assert kl.ResNetV2(blocks=[1, 1, 1, 1]).name == "resnet14_v2"


def test_paper_recipe_holds_the_published_numbers():
    recipe = get_recipe("resnetv2", "paper")
    numbers = {"optimizer": "sgd", "nesterov": True, "learning_rate": 0.1, "batch_size": 256, "epochs": 90}
    assert {key: getattr(recipe, key) for key in numbers} == numbers
    assert (recipe.schedule, recipe.milestones, recipe.decay_rate, recipe.weight_decay) == (
        "multistep",
        (30.0, 60.0),
        0.1,
        1e-4,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": 34}, r"depth.*34"),
        ({"layout": "slim"}, r"layout.*keras.*timm.*'slim'"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate"),
        ({"dropout_rate": -0.1}, r"dropout_rate"),
        ({"blocks": (3, 4, 6)}, r"blocks.*4 bottleneck counts"),
        ({"blocks": (3, 0, 6, 3)}, r"blocks.*got 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kl.ResNetV2(**kwargs)
