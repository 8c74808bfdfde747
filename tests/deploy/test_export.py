"""export_tflite: float/fp16/dynamic/int8, equal outputs, atomic writes, clear errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from deploy_helpers import TEST_SIZE, randomize_batchnorm, unit_range_test_images

import keras_lightnets as kl
from keras_lightnets.deploy import (
    TFLiteExportError,
    export_tflite,
    inspect_tflite,
    predict_tflite,
    quantize_aware,
)


@pytest.fixture(scope="module")
def rexnet():
    model = kl.create_model("rexnet_100", input_shape=(TEST_SIZE, TEST_SIZE, 3), classes=10)
    return randomize_batchnorm(model)


@pytest.fixture(scope="module")
def squeezenet():
    model = kl.create_model("squeezenet1_1", input_shape=(TEST_SIZE, TEST_SIZE, 3), classes=10)
    return randomize_batchnorm(model)


def _images(count=4, seed=0):
    return np.random.default_rng(seed).standard_normal((count, TEST_SIZE, TEST_SIZE, 3)).astype(np.float32)


def test_float32_export_equals_keras(rexnet, tmp_path):
    result = export_tflite(rexnet, tmp_path / "rexnet.tflite")
    assert result.path.is_file() and result.size_bytes == result.path.stat().st_size
    assert result.summary.builtin_only and "MUL" in result.summary.operators  # SE gating
    np.testing.assert_allclose(predict_tflite(result.path, _images()), np.asarray(rexnet(_images())), atol=1e-5)
    # Apps that call the interpreter by signature find it under TFLite's default name.
    from ai_edge_litert.interpreter import Interpreter

    signatures = Interpreter(str(result.path)).get_signature_list()
    assert list(signatures) == ["serving_default"] and signatures["serving_default"]["inputs"] == ["image"]


def test_float16_and_dynamic_shrink_the_file(squeezenet, tmp_path):
    sizes = {}
    for quantization in (None, "float16", "dynamic"):
        result = export_tflite(squeezenet, tmp_path / f"{quantization}.tflite", quantization=quantization)
        sizes[quantization] = result.size_bytes
        outputs = predict_tflite(result.path, _images())
        np.testing.assert_allclose(outputs.sum(-1), 1.0, atol=1e-3)  # still a softmax
        assert np.abs(outputs - np.asarray(squeezenet(_images()))).max() < 2e-2
    assert sizes["float16"] < 0.55 * sizes[None] and sizes["dynamic"] < 0.3 * sizes[None]


def test_int8_post_training_from_a_tfds_name(trained_tiny, tmp_path):
    float_model, _ = trained_tiny
    result = export_tflite(
        float_model,
        tmp_path / "ptq.tflite",
        quantization="int8",
        representative_data="lightnets_digits",
        representative_samples=64,
    )
    assert result.summary.fully_integer and result.summary.float_tensors_inside == ()
    images, _ = unit_range_test_images(64)
    agreement = (predict_tflite(result.path, images).argmax(-1) == np.asarray(float_model(images)).argmax(-1)).mean()
    assert agreement >= 0.9


@pytest.mark.parametrize("io_type", ["int8", "uint8"])
def test_integer_io(trained_tiny, tmp_path, io_type):
    float_model, _ = trained_tiny
    images, _ = unit_range_test_images(16)
    result = export_tflite(
        float_model, tmp_path / "io.tflite", quantization="int8", representative_data=[images], io_type=io_type
    )
    summary = inspect_tflite(result.path)
    assert summary.inputs[0].dtype == io_type and summary.outputs[0].dtype == io_type
    assert summary.float_tensors_inside == () and "float32" not in summary.tensor_types
    outputs = predict_tflite(result.path, images)  # quantized in, dequantized out
    assert (outputs.argmax(-1) == np.asarray(float_model(images)).argmax(-1)).mean() >= 0.85


def test_keras_file_is_accepted(squeezenet, tmp_path):
    squeezenet.save(tmp_path / "model.keras")
    result = export_tflite(tmp_path / "model.keras", tmp_path / "from_file.tflite")
    np.testing.assert_allclose(predict_tflite(result.path, _images()), np.asarray(squeezenet(_images())), atol=1e-5)


# --- bad input: each a clear error, before any conversion, nothing left on disk ------------


def test_unsupported_quantization(squeezenet, tmp_path):
    with pytest.raises(ValueError, match=r"`quantization` must be one of .*'int4'"):
        export_tflite(squeezenet, tmp_path / "m.tflite", quantization="int4")
    assert not list(tmp_path.iterdir())


def test_int8_without_representative_data(squeezenet, tmp_path):
    with pytest.raises(ValueError, match="needs `representative_data`"):
        export_tflite(squeezenet, tmp_path / "m.tflite", quantization="int8")


def test_representative_data_of_the_wrong_shape(squeezenet, tmp_path):
    wrong = [np.zeros((2, 64, 64, 3), np.float32)]
    with pytest.raises(ValueError, match=r"\(2, 64, 64, 3\).*\(batch, 32, 32, 3\)"):
        export_tflite(squeezenet, tmp_path / "m.tflite", quantization="int8", representative_data=wrong)
    assert not list(tmp_path.iterdir())


def test_unwritable_output_folder(squeezenet, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as if read-only (root ignores chmod)
    with pytest.raises(ValueError, match="is not writable"):
        export_tflite(squeezenet, tmp_path / "m.tflite")
    monkeypatch.undo()
    with pytest.raises(ValueError, match="does not exist"):
        export_tflite(squeezenet, tmp_path / "missing" / "m.tflite")
    with pytest.raises(ValueError, match=r"must end in \.tflite"):
        export_tflite(squeezenet, tmp_path / "m.onnx")


def test_failed_write_leaves_no_partial_file(squeezenet, tmp_path, monkeypatch):
    import keras_lightnets.training.run_dir as run_dir

    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_dir.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_tflite(squeezenet, tmp_path / "m.tflite")
    assert not list(tmp_path.iterdir())


def test_flex_ops_are_refused_by_name(tmp_path):
    class CumulativeProduct(keras.layers.Layer):  # tf.math.cumprod has no TFLite built-in kernel
        def call(self, inputs):
            return tf.math.cumprod(inputs, axis=-1)

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(CumulativeProduct()(inputs)))
    with pytest.raises(TFLiteExportError, match="not TFLite built-ins: Cumprod"):
        export_tflite(model, tmp_path / "flex.tflite")
    assert not list(tmp_path.iterdir())


def test_qat_model_converts_to_int8_only(tmp_path):
    model = kl.create_model("mobilenetv1_025", input_shape=(TEST_SIZE, TEST_SIZE, 3), classes=10)
    with pytest.raises(ValueError, match="quantization-aware model converts to quantization='int8' only"):
        export_tflite(quantize_aware(model), tmp_path / "m.tflite", quantization="float16")


def test_other_bad_arguments(squeezenet, tmp_path):
    with pytest.raises(ValueError, match="`io_type`"):
        export_tflite(squeezenet, tmp_path / "m.tflite", io_type="float64")
    with pytest.raises(ValueError, match="needs quantization='int8'"):
        export_tflite(squeezenet, tmp_path / "m.tflite", io_type="uint8")
    with pytest.raises(TypeError, match="`model` must be"):
        export_tflite(object(), tmp_path / "m.tflite")
    inputs = keras.Input((None, None, 3))
    dynamic = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs)))
    with pytest.raises(ValueError, match="static image shape"):
        export_tflite(dynamic, tmp_path / "m.tflite")
    assert not list(tmp_path.iterdir())
