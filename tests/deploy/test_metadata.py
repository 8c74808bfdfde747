"""TFLite Model Metadata for image classifiers: round trip, LiteRT, and MediaPipe Tasks loading the file as is."""

import io
import warnings
import zipfile

import numpy as np
import pytest

pytest.importorskip("mediapipe")

import keras  # noqa: E402
import mediapipe  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from mediapipe.tasks.metadata import schema_py_generated as model_fb  # noqa: E402
from mediapipe.tasks.python import BaseOptions, vision  # noqa: E402

from keras_lightnets.deploy.metadata import (  # noqa: E402
    ImageClassifierMetadata,
    MediaPipeCompatibilityWarning,
    embed_metadata,
    read_metadata,
)

LABELS = ("cat", "dog", "bird", "fish")
IMAGE_SIZE = 32
# The app feeds uint8 pixels; (pixel - 0) / 255 is the [0, 1] input the Keras model sees.
UNIT_RANGE = {"mean": (0.0,), "std": (255.0,)}
IMAGENET = {"mean": (0.485 * 255, 0.456 * 255, 0.406 * 255), "std": (0.229 * 255, 0.224 * 255, 0.225 * 255)}


def _metadata(**overrides):
    fields = {"name": "tiny_classifier", "version": "1.0", "labels": LABELS, **UNIT_RANGE}
    return ImageClassifierMetadata(**(fields | overrides))


def _tiny_classifier():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2)(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _convert(model, **converter_options):
    input_spec = tf.TensorSpec([1, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(input_spec)
    # The trackable object must track the tf.Variables under the Keras 3 variables: with the
    # Keras model itself (TF 2.21) the converter keeps them as VAR_HANDLE/READ_VARIABLE ops that
    # nothing initializes, and the .tflite outputs garbage.
    variables = tf.Module()
    variables.tf_variables = [variable.value for variable in model.variables]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], variables)
    for name, value in converter_options.items():
        setattr(converter, name, value)
    return converter.convert()


def _run_litert(content, image):
    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _classify_with_mediapipe(content, image):
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_buffer=content), max_results=4)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=image))
    return result.classifications[0]


def _metadata_entries(content):
    model = model_fb.Model.GetRootAs(content, 0)
    return [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]


@pytest.fixture(scope="module")
def classifier():
    """The tiny model, its float .tflite, and a 32x32 test image (no resize in MediaPipe) with Keras' output."""
    model = _tiny_classifier()
    content = _convert(model)
    image = np.random.default_rng(1).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    keras_input = image[None].astype(np.float32) / 255.0
    probabilities = np.asarray(model(keras_input, training=False))[0]
    # Guards the conversion itself: the .tflite must compute the Keras model.
    np.testing.assert_allclose(_run_litert(content, keras_input)[0], probabilities, atol=1e-6)
    return {"model": model, "content": content, "image": image, "probabilities": probabilities}


def _convert_int8(model, **converter_options):
    """Full-integer quantization calibrated on random [0, 1] images (the input range spans [0, 1])."""
    rng = np.random.default_rng(2)

    def representative_images():
        for _ in range(16):
            yield [rng.integers(0, 256, (1, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32) / 255.0]

    return _convert(
        model,
        optimizations=[tf.lite.Optimize.DEFAULT],
        representative_dataset=representative_images,
        **converter_options,
    )


@pytest.fixture(scope="module")
def uint8_input_content(classifier):
    """Full-integer model with a uint8 input: scale 1/255, zero point 0, i.e. input = pixel / 255."""
    return _convert_int8(classifier["model"], inference_input_type=tf.uint8)


def test_round_trip(classifier, tmp_path):
    metadata = _metadata(description="A 4-class test classifier.", license="Apache-2.0", author="tests")
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaPipeCompatibilityWarning)  # MediaPipe runs it as written
        content = embed_metadata(classifier["content"], metadata)

    read = read_metadata(content)
    assert read["name"] == "tiny_classifier"
    assert read["version"] == "1.0"
    assert read["description"] == "A 4-class test classifier."
    assert read["author"] == "tests"
    assert read["license"] == "Apache-2.0"
    assert read["labels"] == LABELS
    assert read["mean"] == (0.0,)
    assert read["std"] == (255.0,)
    assert read["min_parser_version"] == "1.0.0"
    assert read["input_name"] == "image"
    assert read["output_name"] == "probability"
    assert read["input_description"] == metadata.input_description
    assert read["output_description"] == metadata.output_description
    assert read["color_space"] == "RGB"
    assert read["input_stats"] == {"min": (0.0,), "max": (1.0,)}
    assert read["labels_file"] == "labels.txt"

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == ["labels.txt"]
        assert archive.read("labels.txt") == b"cat\ndog\nbird\nfish\n"

    path = tmp_path / "tiny.tflite"
    path.write_bytes(content)
    assert read_metadata(path) == read
    assert read_metadata(str(path)) == read


def test_per_channel_values_round_trip_as_float32(classifier):
    with pytest.warns(MediaPipeCompatibilityWarning, match="Per-channel image normalization"):
        content = embed_metadata(classifier["content"], _metadata(**IMAGENET))
    read = read_metadata(content)
    # The schema stores float32: what comes back is the float32 nearest to each value.
    assert read["mean"] == tuple(float(np.float32(value)) for value in IMAGENET["mean"])
    assert read["std"] == tuple(float(np.float32(value)) for value in IMAGENET["std"])
    expected_min = [(0 - m) / s for m, s in zip(IMAGENET["mean"], IMAGENET["std"], strict=True)]
    np.testing.assert_allclose(read["input_stats"]["min"], expected_min, rtol=1e-6)
    assert read["min_parser_version"] == "1.0.0"


def test_litert_output_is_unchanged(classifier):
    content = embed_metadata(classifier["content"], _metadata())
    image = np.random.default_rng(3).random((1, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    before = _run_litert(classifier["content"], image)
    after = _run_litert(content, image)
    assert after.dtype == before.dtype and after.shape == (1, len(LABELS))
    np.testing.assert_array_equal(after, before)


def test_mediapipe_classifies_with_our_labels_and_normalization(classifier):
    content = embed_metadata(classifier["content"], _metadata())
    classification = _classify_with_mediapipe(content, classifier["image"])

    probabilities = classifier["probabilities"]
    assert classification.head_name == "probability"
    assert sorted(category.category_name for category in classification.categories) == sorted(LABELS)
    for category in classification.categories:
        assert category.category_name == LABELS[category.index]
        # MediaPipe fed (pixel - 0) / 255: each score is the Keras probability of that class.
        assert category.score == pytest.approx(probabilities[category.index], abs=1e-4)
    top = classification.categories[0]
    assert top.index == int(np.argmax(probabilities))
    assert top.score == pytest.approx(float(np.max(probabilities)), abs=1e-4)


def test_mediapipe_applies_normalization_to_float_inputs(classifier):
    # Another (uniform) normalization: MediaPipe must compute (pixel - 127.5) / 127.5.
    content = embed_metadata(classifier["content"], _metadata(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)))
    expected = np.asarray(classifier["model"]((classifier["image"][None].astype(np.float32) - 127.5) / 127.5))[0]
    scores = {c.index: c.score for c in _classify_with_mediapipe(content, classifier["image"]).categories}
    np.testing.assert_allclose([scores[i] for i in range(len(LABELS))], expected, atol=1e-4)


def test_mediapipe_refuses_per_channel_normalization(classifier):
    with pytest.warns(MediaPipeCompatibilityWarning):
        content = embed_metadata(classifier["content"], _metadata(**IMAGENET))
    with pytest.raises(NotImplementedError, match="Per-channel image normalization is not available"):
        _classify_with_mediapipe(content, classifier["image"])


def test_mediapipe_feeds_raw_pixels_to_uint8_inputs(classifier, uint8_input_content):
    input_details = Interpreter(model_content=uint8_input_content).get_input_details()[0]
    assert input_details["dtype"] == np.uint8
    assert input_details["quantization"] == pytest.approx((1 / 255, 0))

    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaPipeCompatibilityWarning)  # the quantization matches: no warning
        content = embed_metadata(uint8_input_content, _metadata())
    read = read_metadata(content)
    assert read["input_stats"] == {"min": (0.0,), "max": (255.0,)}
    classification = _classify_with_mediapipe(content, classifier["image"])
    probabilities = classifier["probabilities"]
    assert classification.categories[0].index == int(np.argmax(probabilities))
    scores = {c.index: c.score for c in classification.categories}
    np.testing.assert_allclose([scores[i] for i in range(len(LABELS))], probabilities, atol=0.02)  # int8 error

    # NormalizationOptions are ignored for uint8 inputs: other values change nothing, hence the warning.
    with pytest.warns(MediaPipeCompatibilityWarning, match="raw pixels"):
        renormalized = embed_metadata(uint8_input_content, _metadata(mean=(127.5,), std=(127.5,)))
    assert _classify_with_mediapipe(renormalized, classifier["image"]).categories == classification.categories


def test_mediapipe_runs_int8_model_with_float_input(classifier):
    # Integer kernels, float32 input and output (QUANTIZE/DEQUANTIZE inside): normalized like the float model.
    content = embed_metadata(_convert_int8(classifier["model"]), _metadata())
    classification = _classify_with_mediapipe(content, classifier["image"])
    assert classification.categories[0].index == int(np.argmax(classifier["probabilities"]))
    scores = {c.index: c.score for c in classification.categories}
    np.testing.assert_allclose([scores[i] for i in range(len(LABELS))], classifier["probabilities"], atol=0.02)


def test_mediapipe_refuses_int8_input(classifier):
    int8_input = _convert_int8(
        classifier["model"],
        target_spec=tf.lite.TargetSpec(supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8]),
        inference_input_type=tf.int8,
    )
    with pytest.warns(MediaPipeCompatibilityWarning, match="input is INT8"):
        content = embed_metadata(int8_input, _metadata())
    assert read_metadata(content)["labels"] == LABELS  # the metadata itself is valid
    with pytest.raises(ValueError, match="Requested one of these types: uint8/float32, got INT8"):
        _classify_with_mediapipe(content, classifier["image"])


def test_min_parser_version_follows_the_parser_rules():
    from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb

    from keras_lightnets.deploy.metadata import _min_parser_version

    def version(subgraph=None, model_files=None):
        model_metadata = metadata_fb.ModelMetadataT()
        model_metadata.subgraphMetadata = [subgraph or metadata_fb.SubGraphMetadataT()]
        model_metadata.associatedFiles = model_files
        return _min_parser_version(metadata_fb, model_metadata)

    def associated_file(file_type, file_version=None):
        file = metadata_fb.AssociatedFileT()
        file.name, file.type, file.version = "f.txt", file_type, file_version
        return file

    def subgraph(**fields):
        table = metadata_fb.SubGraphMetadataT()
        for name, value in fields.items():
            setattr(table, name, value)
        return table

    labels, vocabulary = metadata_fb.AssociatedFileType.TENSOR_AXIS_LABELS, metadata_fb.AssociatedFileType.VOCABULARY
    assert version() == "1.0.0"
    assert version(model_files=[associated_file(labels)]) == "1.0.0"
    assert version(model_files=[associated_file(vocabulary)]) == "1.0.1"
    assert version(model_files=[associated_file(labels, "v2")]) == "1.4.1"
    assert version(subgraph(inputProcessUnits=[])) == "1.1.0"
    assert version(subgraph(outputTensorGroups=[])) == "1.2.0"
    assert version(subgraph(customMetadata=[])) == "1.5.0"
    regex = metadata_fb.ProcessUnitT()
    regex.optionsType = metadata_fb.ProcessUnitOptions.RegexTokenizerOptions
    tensor = metadata_fb.TensorMetadataT()
    tensor.processUnits = [regex]
    assert version(subgraph(inputTensorMetadata=[tensor])) == "1.2.1"


def test_embedding_twice_replaces_the_metadata(classifier):
    first = embed_metadata(classifier["content"], _metadata())
    relabeled = _metadata(name="renamed", version="2", labels=("a", "b", "c", "d"))
    second = embed_metadata(first, relabeled)

    assert _metadata_entries(second).count("TFLITE_METADATA") == 1
    assert _metadata_entries(second) == _metadata_entries(first)
    read = read_metadata(second)
    assert (read["name"], read["version"], read["labels"]) == ("renamed", "2", ("a", "b", "c", "d"))
    with zipfile.ZipFile(io.BytesIO(second)) as archive:
        assert archive.namelist() == ["labels.txt"]
    # The old metadata buffer and labels are gone: the same bytes as embedding into the original.
    assert second == embed_metadata(classifier["content"], relabeled)


def test_embedding_is_deterministic(classifier):
    assert embed_metadata(classifier["content"], _metadata()) == embed_metadata(classifier["content"], _metadata())


def test_wrong_number_of_labels(classifier):
    with pytest.raises(ValueError, match=r"number of labels \(3\) must equal the model output's last dimension \(4"):
        embed_metadata(classifier["content"], _metadata(labels=LABELS[:3]))


def test_not_a_tflite_flatbuffer():
    with pytest.raises(ValueError, match="model_content is not a TFLite flatbuffer"):
        embed_metadata(b"\x00" * 64, _metadata())
    with pytest.raises(ValueError, match="model_content is not a TFLite flatbuffer"):
        read_metadata(b"PK\x03\x04 not a model")
    with pytest.raises(TypeError, match="model_content must be bytes"):
        embed_metadata("model.tflite", _metadata())


def test_read_metadata_without_metadata(classifier):
    with pytest.raises(ValueError, match="no TFLITE_METADATA"):
        read_metadata(classifier["content"])


def _small_model(input_shape):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    return keras.Model(inputs, keras.layers.Dense(len(LABELS), activation="softmax")(x))


def test_input_must_be_a_4d_image():
    content = _convert(_small_model((8,)))
    with pytest.raises(ValueError, match=r"4-D image tensor .* got shape \[1, 8\]"):
        embed_metadata(content, _metadata())


def test_channels_must_match_the_input():
    grayscale = _convert(_small_model((IMAGE_SIZE, IMAGE_SIZE, 1)))
    with pytest.raises(ValueError, match=r"mean and \.std have 3 values; the model input has 1 channels"):
        embed_metadata(grayscale, _metadata(mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)))
    # One value fits any number of channels; MediaPipe Tasks takes RGB only, hence the warning.
    with pytest.warns(MediaPipeCompatibilityWarning, match="RGB inputs only"):
        content = embed_metadata(grayscale, _metadata())
    assert read_metadata(content)["color_space"] == "GRAYSCALE"


@pytest.mark.parametrize("std", [(0.0,), (-1.0,), (255.0, 0.0, 255.0)])
def test_std_must_be_positive(std):
    with pytest.raises(ValueError, match=r"std must be > 0"):
        _metadata(mean=(0.0,) * len(std), std=std)


def test_mean_and_std_lengths_must_match():
    with pytest.raises(ValueError, match=r"mean and \.std must have the same length"):
        _metadata(mean=(0.0, 0.0, 0.0), std=(255.0,))


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"name": ""}, ValueError, r"name must be a non-empty string"),
        ({"version": "  "}, ValueError, r"version must be a non-empty string"),
        ({"labels": ()}, ValueError, r"labels must not be empty"),
        ({"labels": "cat"}, TypeError, r"labels must be a list or tuple of strings"),
        ({"labels": ("cat", "two\nlines")}, ValueError, r"labels\[1\] must be a non-empty string without line"),
        ({"labels": ("cat", "")}, ValueError, r"labels\[1\] must be a non-empty string"),
        ({"labels": ("cat", 3)}, TypeError, r"labels\[1\] must be a string"),
        ({"mean": (0.0, 0.0), "std": (1.0, 1.0)}, ValueError, r"mean must have 1 value \(all channels\) or 3"),
        ({"mean": (float("nan"),)}, ValueError, r"mean must be finite"),
    ],
)
def test_metadata_validation(overrides, error, message):
    with pytest.raises(error, match=message):
        _metadata(**overrides)


def test_labels_and_normalization_are_stored_as_tuples():
    metadata = _metadata(labels=list(LABELS), mean=[0, 0, 0], std=[255, 255, 255])
    assert metadata.labels == LABELS
    assert metadata.mean == (0.0, 0.0, 0.0) and metadata.std == (255.0, 255.0, 255.0)
    assert not metadata.per_channel
    scalar = _metadata(mean=0, std=255)
    assert (scalar.mean, scalar.std) == ((0.0,), (255.0,))
    assert _metadata(**IMAGENET).per_channel
