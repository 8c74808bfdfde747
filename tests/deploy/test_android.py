"""Android-ready files: MediaPipe Tasks ImageClassifier loads our INT8 model and agrees with Keras."""

import numpy as np
import pytest
from deploy_helpers import unit_range_test_images

from keras_lightnets.deploy import inspect_tflite, read_metadata
from keras_lightnets.deploy.android import export_for_android
from keras_lightnets.deploy.preprocessing import with_input_normalization
from keras_lightnets.reparameterize import fusable_blocks


def test_metadata_of_the_exported_int8_model(tiny_qat):
    _, path = tiny_qat
    metadata = read_metadata(path)
    assert metadata["labels"] == tuple(str(d) for d in range(10))
    assert metadata["name"] == "tiny_cnn" and metadata["version"].startswith("keras_lightnets ")
    assert "pixels / 255" in metadata["description"]
    assert inspect_tflite(path).fully_integer


def test_mediapipe_image_classifier_agrees_with_keras(trained_tiny, tiny_qat):
    mp = pytest.importorskip("mediapipe")
    from mediapipe.tasks.python import BaseOptions, vision

    float_model, _ = trained_tiny
    _, path = tiny_qat
    images, _ = unit_range_test_images(64)
    probabilities = np.asarray(float_model(images))
    ranked = np.sort(probabilities, axis=-1)
    confident = np.flatnonzero(ranked[:, -1] - ranked[:, -2] > 0.3)[:12]  # clear-cut images only
    assert len(confident) >= 8
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)), max_results=3)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for index in confident:
            pixels = np.round(images[index] * 255).astype(np.uint8)  # what a phone camera gives
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels))
            top = result.classifications[0].categories[0]
            assert top.index == probabilities[index].argmax(), index
            assert top.category_name == str(probabilities[index].argmax())
            assert 0.0 < top.score <= 1.0


def test_normalization_is_not_added_twice(trained_tiny):
    float_model, _ = trained_tiny  # already normalizes inside
    with pytest.raises(ValueError, match="already starts with"):
        with_input_normalization(float_model, 0.5, 0.5)


def test_export_for_android_from_a_keras_file(tmp_path):
    import keras_lightnets as kl

    model = kl.create_model("squeezenet1_1", input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    model.save(tmp_path / "squeezenet1_1.keras")
    made = export_for_android(tmp_path / "squeezenet1_1.keras", tmp_path / "sq.tflite", qat_epochs=0)
    metadata = read_metadata(made.path)
    assert tuple(metadata["labels"]) == tuple(str(d) for d in range(10))  # the bundled dataset's class names
    assert made.export.summary.fully_integer and made.float_model.layers[1].name == "input_normalization"
    assert made.float_model.layers[-1].name == "probabilities"
    with pytest.raises(ValueError, match="`qat_epochs` needs quantization='int8'"):
        export_for_android(tmp_path / "squeezenet1_1.keras", tmp_path / "x.tflite", quantization=None, qat_epochs=1)


def test_export_fuses_repvgg_and_parnet_blocks_by_default(tmp_path):
    import io

    import keras_lightnets as kl
    from keras_lightnets.cli import main

    model = kl.ParNet((8, 16, 32), 32, layout="cifar", classes=10, classifier_activation=None)
    model.save(tmp_path / "tiny_parnet.keras")
    blocks = len(fusable_blocks(model))
    convolutions = {}
    for flag in ("default", "--no-reparameterize"):
        out = io.StringIO()
        target = tmp_path / f"{flag.strip('-')}.tflite"
        argv = ["export", str(tmp_path / "tiny_parnet.keras"), "--quantization", "float32", "--output", str(target)]
        assert main(argv + ([flag] if flag != "default" else []), out) == 0
        said = f"reparameterized: {blocks} branch sums fused into one convolution each"
        assert (said in out.getvalue()) == (flag == "default"), out.getvalue()
        convolutions[flag] = inspect_tflite(target).operators.count("CONV_2D")
    # Each fused block loses its 1x1 convolution (the SE convolutions stay).
    assert convolutions["--no-reparameterize"] - convolutions["default"] == blocks
    # Asking to fuse a model without such blocks is an error; QAT refuses the training form.
    assert main(["export", "squeezenet1_1", "--reparameterize", "--output", str(tmp_path / "s.tflite")]) == 2
    with pytest.raises(ValueError, match="training form"):
        export_for_android(tmp_path / "tiny_parnet.keras", tmp_path / "q.tflite", qat_epochs=1, reparameterize=False)
