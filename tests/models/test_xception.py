"""Xception: what the registry-wide tests do not check.

Outputs against keras.applications (``xception``) and timm (``legacy_xception``) are in
test_keras_reference.py and test_torch_reference.py. Here: the parameters of both references,
the symmetric max pool that tells the layouts apart, keras.applications' ``SeparableConv2D``
file loading into our depthwise + pointwise pair, timm's checkpoint loading into the Keras layout
by key, and the argument checks.
"""

import h5py
import keras
import numpy as np
import pytest
from golden import seeded_weights
from inference import infer
from keras.src.legacy.saving import legacy_h5_format
from torch_reference import import_reference, import_torch

import keras_lightnets as kl
from keras_lightnets.layers.pooling import max_pool_symmetric
from keras_lightnets.models.xception import PARAMS
from keras_lightnets.training.recipes import get_recipe
from keras_lightnets.weight_files._layers import weighted_layers_in_keras_order

SMALL = (79, 86, 3)  # odd and even, small enough for a quick file round trip


def test_parameters_equal_both_references():
    torch, timm = import_reference("timm")
    with keras.StatelessScope(initialize_variables=False):
        reference = keras.applications.Xception(weights=None)
        trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
        for name in ("xception", "legacy_xception"):
            assert kl.profile(kl.create_model(name)).params == trainable == PARAMS
    assert sum(p.numel() for p in timm.create_model("legacy_xception").parameters()) == PARAMS


@pytest.mark.parametrize("size", [6, 7, 10, 11, None])
def test_symmetric_max_pool_is_pytorchs_on_negative_maps_at_any_size(size):
    torch = import_torch()
    inputs = keras.Input((size, size, 4))
    pool = keras.Model(inputs, max_pool_symmetric(inputs, 3, 2, name="pool"))
    same = keras.Model(inputs, keras.layers.MaxPooling2D(3, 2, padding="same")(inputs))
    n = size or 9
    x = -np.abs(np.random.default_rng(n).standard_normal((2, n, n, 4))).astype("float32")  # a zero would win
    expected = torch.nn.MaxPool2d(3, 2, padding=1)(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_array_equal(infer(pool, x), expected.transpose(0, 2, 3, 1))
    # TensorFlow's "same" pool is the same at odd sizes, other windows at even ones.
    assert np.array_equal(infer(same, x), infer(pool, x)) == (n % 2 == 1)


def _keras_h5(reference, path):
    """keras.applications' file layout (Keras 2 ``.h5``: one group per layer, SeparableConv2D's two kernels)."""
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)


def test_keras_applications_file_loads_its_separable_convolutions_into_depthwise_and_pointwise(tmp_path):
    reference = keras.applications.Xception(weights=None, input_shape=SMALL, classifier_activation=None)
    seeded_weights(reference)
    path = tmp_path / "xception_weights_tf_dim_ordering_tf_kernels.h5"
    _keras_h5(reference, path)
    model = kl.weights.load_checkpoint(kl.create_model("xception", input_shape=SMALL, classifier_activation=None), path)
    separable = reference.get_layer("block2_sepconv1")
    np.testing.assert_array_equal(model.get_layer("block2_sepconv1_dw").kernel, separable.depthwise_kernel)
    np.testing.assert_array_equal(model.get_layer("block2_sepconv1_pw").kernel, separable.pointwise_kernel)
    x = np.random.default_rng(0).standard_normal((2, *SMALL)).astype("float32")
    expected = infer(reference, x)
    np.testing.assert_allclose(infer(model, x), expected, atol=1e-5 * max(1.0, np.abs(expected).max()))


def test_timms_checkpoint_loads_into_the_keras_layout_by_key(tmp_path):
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("legacy_xception").eval()
    torch.save(reference.state_dict(), tmp_path / "xception-43020ad28.pth")
    keras_layout = kl.weights.load_checkpoint(
        kl.create_model("xception", input_shape=SMALL), tmp_path / "xception-43020ad28.pth"
    )
    timm_layout = kl.create_model("legacy_xception", input_shape=SMALL)
    kl.weights.load_torch_weights(timm_layout, reference, kl.get_entry("legacy_xception").key_map)
    assert len(keras_layout.weights) == len(timm_layout.weights)
    for ours, theirs in zip(keras_layout.weights, timm_layout.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=ours.path)


def test_the_layouts_differ_in_pools_and_bn_epsilon_only():
    keras_layout, timm_layout = (kl.create_model(name, input_shape=SMALL) for name in ("xception", "legacy_xception"))
    assert {layer.epsilon for layer in keras_layout.layers if isinstance(layer, keras.layers.BatchNormalization)} == {
        1e-3
    }
    assert {layer.epsilon for layer in timm_layout.layers if isinstance(layer, keras.layers.BatchNormalization)} == {
        1e-5
    }
    pools = [layer.name for layer in timm_layout.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert pools == [f"block{i}_pool{part}" for i in (2, 3, 4, 13) for part in ("_window", "")]
    # the same weighted layers in the same order: keras.applications' file loads into either
    order = [[layer.name for layer in weighted_layers_in_keras_order(m)] for m in (keras_layout, timm_layout)]
    assert order[0] == order[1] and len(order[0]) == 115


def test_the_middle_flow_repeats_one_block():
    # a middle block: three separable 728 -> 728 convolutions (3x3 depthwise, 1x1 pointwise) and their BNs
    middle = 3 * (9 * 728 + 728 * 728 + 2 * 728)
    with keras.StatelessScope(initialize_variables=False):
        model = kl.Xception(middle_blocks=1)
        assert kl.profile(model).params == PARAMS - 7 * middle
    assert model.name == "xception_m1" and model.get_layer("block7_sepconv2_act")
    assert kl.model_identity(model)["variant"] is None


def test_paper_recipe_holds_the_published_numbers():
    recipe = get_recipe("xception", "paper")
    numbers = {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.045, "decay_rate": 0.94, "decay_epochs": 2.0}
    assert {key: getattr(recipe, key) for key in numbers} == numbers
    assert (recipe.weight_decay, recipe.weight_decay_mode, recipe.dropout_rate) == (1e-5, "l2", 0.5)
    assert get_recipe("xception", "default").image_size >= kl.get_family("xception").min_input_size


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"padding": "valid"}, r"padding.*same.*symmetric.*'valid'"),
        ({"bn_epsilon": 0}, r"bn_epsilon"),
        ({"dropout_rate": 1.0}, r"dropout_rate"),
        ({"input_shape": (70, 299, 3)}, r"at least 71 pixels"),
        ({"middle_blocks": -1}, r"middle_blocks"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kl.Xception(**kwargs)
