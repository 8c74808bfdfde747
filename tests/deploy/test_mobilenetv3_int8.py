"""MobileNetV3 through quantization-aware training to a fully integer INT8 file (issue 27's hard point;
tensorflow/models#11274, tensorflow#83754, tfmot#546 report the converter refusing it or an unusable INT8
model): built-in operators only, every hard-swish one HARD_SWISH, the hard-sigmoid gates an int8 ADD
(fused RELU6) and MUL, nothing in float between the input QUANTIZE and the output DEQUANTIZE, and the
INT8 file agreeing with the QAT model it came from."""

from collections import Counter

import numpy as np
from deploy_helpers import randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy import calibrate_ranges, export_tflite, inspect_tflite, predict_tflite, quantize_aware

SIZE = 64


def _activations(model, name):
    return sum(layer.get_config().get("activation") == name for layer in model.layers)


def test_qat_int8_is_fully_integer_with_one_hard_swish_op_each(tmp_path):
    # keras.applications' layout (the model users convert): raw 0-255 pixels in, normalized inside.
    model = randomize_batchnorm(
        kl.create_model("mobilenetv3_small_100", input_shape=(SIZE, SIZE, 3), classes=10, classifier_activation=None)
    )
    hard_swish, hard_sigmoid = _activations(model, "hard_silu"), _activations(model, "hard_sigmoid")
    assert (hard_swish, hard_sigmoid) == (19, 9)  # stem, 8 blocks x 2, the head conv and pre-logits; 9 SE gates
    qat_model = quantize_aware(model)
    images = np.random.default_rng(0).uniform(0, 255, (16, SIZE, SIZE, 3)).astype("float32")
    calibrate_ranges(qat_model, [images[:8], images[8:]], steps=2)
    path = export_tflite(qat_model, tmp_path / "mobilenetv3.tflite", quantization="int8").path

    summary = inspect_tflite(path)
    assert summary.builtin_only and summary.fully_integer
    assert summary.float_operators == () and summary.float_tensors_inside == ()
    ops = Counter(summary.operators)
    assert ops["HARD_SWISH"] == hard_swish  # never split into ADD / RELU6 / MUL / MUL
    residuals = sum(layer.name.endswith("_add") for layer in model.layers)
    assert ops["ADD"] == hard_sigmoid + residuals  # each gate's x + 3 (RELU6 fused), the shortcuts
    assert ops["MUL"] == 2 * hard_sigmoid  # each gate's / 6 and its SE multiply
    assert (summary.operators[0], summary.operators[-1]) == ("QUANTIZE", "DEQUANTIZE")

    # The INT8 file computes what the QAT model computes, to a few steps of its int8 output grid
    # (measured: at most 2 over 19 HARD_SWISH and 9 gates, random weights).
    expected = qat_model(images[:4], training=False).numpy()
    got = predict_tflite(path, images[:4])
    step = np.diff(np.unique(got)).min()  # the output's quantization step
    assert np.abs(got - expected).max() <= 3 * step


def test_float_export_fuses_keras3s_hard_swish(tmp_path):
    model = kl.create_model("mobilenetv3_small_050_timm", input_shape=(32, 32, 3), classes=10)
    summary = export_tflite(model, tmp_path / "float.tflite").summary
    assert Counter(summary.operators)["HARD_SWISH"] == _activations(model, "hard_silu")
