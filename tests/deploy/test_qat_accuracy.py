"""Accuracy that holds after conversion: the QAT Keras model and its INT8 file agree; LiteRT evaluation."""

import numpy as np
from deploy_helpers import unit_range_test_images

from keras_lightnets.data import make_dataset
from keras_lightnets.deploy import evaluate_tflite, export_tflite, read_metadata


def _qat_keras_predictions(qat_model):
    data = make_dataset(
        "lightnets_digits", "test", image_size=32, batch_size=64, training=False, preset="cifar", mean=0.0, std=1.0
    )
    return np.concatenate([qat_model(images, training=False).numpy().argmax(-1) for images, _ in data])


def test_qat_keras_and_int8_tflite_agree_on_99_percent(trained_tiny, tiny_qat):
    float_model, float_accuracy = trained_tiny
    qat_model, path = tiny_qat
    assert float_accuracy > 0.8  # a model that learned, so agreement is meaningful
    result = evaluate_tflite(path, "lightnets_digits", split="test", return_predictions=True, verbose=False)
    assert result["num_examples"] == 355
    agreement = (result["predictions"] == _qat_keras_predictions(qat_model)).mean()
    assert agreement >= 0.99, agreement
    assert result["accuracy"] >= float_accuracy - 0.05  # QAT-INT8 close to FP32 after one QAT epoch


def test_evaluate_tflite_matches_keras_on_a_float_file(trained_tiny, tmp_path):
    float_model, float_accuracy = trained_tiny
    path = export_tflite(float_model, tmp_path / "float.tflite").path  # no metadata
    result = evaluate_tflite(path, "lightnets_digits", threads=2, return_predictions=True, verbose=False)
    explicit = evaluate_tflite(path, "lightnets_digits", mean=0.0, std=1.0, verbose=False)
    assert explicit["accuracy"] == result["accuracy"]  # pixel / 255 recognised from the graph
    images, labels = unit_range_test_images(64)
    assert np.array_equal(result["labels"][:64], labels)  # same images, same order
    assert abs(result["accuracy"] - float_accuracy) <= 1 / 355
    assert result["threads"] == 2 and 0 <= result["top5"] <= 1 and result["top5"] >= result["accuracy"]


def test_evaluate_tflite_uses_the_embedded_normalization(tiny_qat):
    _, path = tiny_qat
    metadata = read_metadata(path)
    assert tuple(metadata["mean"]) == (0.0,) and tuple(metadata["std"]) == (255.0,)
    limited = evaluate_tflite(path, limit=50, verbose=False)
    assert limited["num_examples"] == 50


def test_calibration_sets_ranges_from_data_and_nothing_else(trained_tiny):
    from deploy_helpers import unit_range_test_images

    from keras_lightnets.deploy import calibrate_ranges, quantize_aware
    from keras_lightnets.deploy.qat_calibration import is_range_variable

    float_model, _ = trained_tiny
    qat_model = quantize_aware(float_model)
    ranges = {v.name: v.numpy() for v in qat_model.variables if v.name.endswith("output_max:0")}
    assert ranges and all(np.allclose(value, 6.0) for value in ranges.values())  # tfmot's initial [-6, 6]
    others = {v.name: v.numpy() for v in qat_model.variables if not is_range_variable(v)}
    images, _ = unit_range_test_images(64)
    assert calibrate_ranges(qat_model, [images[:32], images[32:]], steps=5) == 2
    after = {v.name: v.numpy() for v in qat_model.variables}
    # Every output range now comes from the data (a ReLU6 may legitimately reach 6).
    unmoved = [name for name in ranges if np.allclose(after[name], 6.0) and "relu" not in name]
    assert not unmoved and len(ranges) >= 5
    assert all(np.array_equal(after[name], value) for name, value in others.items())  # BN stats untouched
    relu6 = [v.numpy() for v in qat_model.variables if "relu" in v.name and v.name.endswith("_min:0")]
    assert relu6 and all(value >= 0.0 for value in relu6)  # after ReLU6 nothing is negative


def _se_then_relu6(seed=0):
    """Conv-BN-ReLU, a squeeze-excite gate and ``Multiply`` -> ReLU6, the ReXNet/MnasNet block tail."""
    import keras
    from deploy_helpers import randomize_batchnorm

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(24, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    gate = keras.layers.Conv2D(24, 1, activation="sigmoid", name="se_gate")(gate)
    x = keras.layers.Multiply(name="se_scale")([x, gate])
    outputs = keras.layers.ReLU(6.0, name="relu6")(x)
    return randomize_batchnorm(keras.Model(inputs, outputs, name="se_relu6"), seed)


def test_qat_rounds_a_multiply_once_when_tflite_fuses_its_relu(tmp_path):
    """The INT8 MUL writes straight into the ReLU6's range; QAT must not round the product first."""
    import tensorflow_model_optimization as tfmot
    from ai_edge_litert.interpreter import Interpreter

    from keras_lightnets.deploy import calibrate_ranges, quantize_aware

    qat_model = quantize_aware(_se_then_relu6())
    multiply = qat_model.get_layer("quant_se_scale")
    assert isinstance(multiply, tfmot.quantization.keras.QuantizeWrapper)
    assert not multiply.quantize_config.get_output_quantizers(multiply.layer)  # fused: no rounding of its own

    images = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 3)).astype("float32")
    calibrate_ranges(qat_model, [images[:32], images[32:]], steps=2)
    path = export_tflite(qat_model, tmp_path / "se.tflite", quantization="int8").path
    interpreter = Interpreter(str(path))
    interpreter.allocate_tensors()
    (input_detail,), (output_detail,) = interpreter.get_input_details(), interpreter.get_output_details()
    ops = {op["op_name"]: op for op in interpreter._get_ops_details()}
    assert "MUL" in ops and "RELU6" not in ops  # the ReLU6 is fused into the MUL
    (product,) = ops["MUL"]["outputs"]
    step = interpreter.get_tensor_details()[product]["quantization"][0]
    off = []
    for image in images[:8]:
        interpreter.set_tensor(input_detail["index"], image[None])
        interpreter.invoke()
        difference = np.abs(interpreter.get_tensor(output_detail["index"]) - qat_model(image[None]).numpy())
        off.append((difference > 0.51 * step).mean())
    # Rounding the product too (before the fix) put ~20 % of the elements one step off.
    assert np.mean(off) < 0.02, np.mean(off)
