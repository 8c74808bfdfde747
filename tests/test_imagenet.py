"""ImageNet class names shipped in the package, decode_predictions and preprocess_input."""

import keras
import numpy as np
import pytest

import keras_lightnets as kl


def test_the_1000_classes_are_in_label_order():
    classes = kl.imagenet_classes()
    assert len(classes) == 1000 and len({wnid for wnid, _ in classes}) == 1000
    assert [wnid for wnid, _ in classes] == sorted(wnid for wnid, _ in classes)  # TFDS / checkpoint order
    assert classes[0] == ("n01440764", "tench") and classes[967] == ("n07920052", "espresso")
    assert classes[281] == ("n02123045", "tabby")


def test_decode_predictions_ranks_like_keras_applications():
    scores = np.zeros((2, 1000), dtype="float32")
    scores[0, [967, 281, 5]] = [0.7, 0.2, 0.1]
    scores[1, 0] = 1.0
    first, second = kl.decode_predictions(scores, top=2)
    assert first == [("n07920052", "espresso", pytest.approx(0.7)), ("n02123045", "tabby", pytest.approx(0.2))]
    assert second[0][:2] == ("n01440764", "tench")


@pytest.mark.parametrize(
    "preds, top, match",
    [(np.zeros((2, 10)), 5, r"shape \(batch, 1000\)"), (np.zeros(1000), 5, "shape"), (np.zeros((1, 1000)), 0, "top")],
)
def test_decode_predictions_names_bad_input(preds, top, match):
    with pytest.raises(ValueError, match=match):
        kl.decode_predictions(preds, top=top)


def test_preprocess_input_uses_what_the_model_records():
    with keras.StatelessScope(initialize_variables=False):
        lite = kl.create_model("efficientnet_lite0", input_shape=(32, 32, 3))  # [-1, 1]
        resnet = kl.create_model("resnet18", input_shape=(32, 32, 3))  # ImageNet mean / std
        raw = kl.EfficientNet("b0", input_shape=(32, 32, 3), include_preprocessing=True)
    pixels = np.array([[[0.0, 127.5, 255.0]]], dtype="float32")
    np.testing.assert_allclose(kl.preprocess_input(pixels, lite), [[[-1.0, 0.0, 1.0]]], atol=1e-6)
    expected = (pixels / 255.0 - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    np.testing.assert_allclose(kl.preprocess_input(pixels, resnet), expected, rtol=1e-6)
    np.testing.assert_allclose(kl.preprocess_input(pixels, raw), pixels, rtol=1e-6)  # takes raw pixels
    foreign = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="records no preprocessing"):
        kl.preprocess_input(pixels, foreign)
