"""QAT (a short fit) -> INT8 TFLite for one variant of each family: fully integer, built-in ops, runs in LiteRT."""

import keras
import numpy as np
import pytest
from deploy_helpers import ARCHITECTURE_OVERRIDES, FAMILY_VARIANTS, input_size_for

import keras_lightnets as kl
from keras_lightnets.deploy import (
    TFLiteExportError,
    UnsupportedLayerError,
    export_tflite,
    fit_quantize_aware,
    inspect_tflite,
    is_quantize_aware,
    predict_tflite,
    quantize_aware,
)
from keras_lightnets.layers.custom_layers import float_only_layers
from keras_lightnets.models.describe import without_auxiliary_outputs

INTEGER_TYPES = {"int8", "int32"}


# ParNet's ImageNet layout (five stride-2 blocks, average-pool branches) besides its CIFAR representative;
# EfficientNet-B0 (SE with SiLU, sigmoid gates) besides EfficientNet-Lite0 (ReLU6, no SE); torchvision's
# AlexNet (no LRN: fully integer) besides AlexNet-2012, whose LRN TFLite runs in float only. VGG and AlexNet
# keep their flattening classifier, at the reduced input size.
@pytest.mark.parametrize("name", sorted({*FAMILY_VARIANTS, "parnet_s", "efficientnet_b0", "alexnet"}))
def test_qat_to_int8_tflite(name, tmp_path):
    size = input_size_for(name)
    overrides = ARCHITECTURE_OVERRIDES.get(name, {})
    model = kl.create_model(name, input_shape=(size, size, 3), classes=10, classifier_activation=None, **overrides)
    if float_only_layers(model):
        # Never a silent float: QAT and a full-integer export are refused at once, naming the layers.
        with pytest.raises(UnsupportedLayerError, match=r"lrn1, lrn2 \(LocalResponseNormalization\): TFLite has no"):
            quantize_aware(model)
        images = np.zeros((1, size, size, 3), np.float32)
        with pytest.raises(TFLiteExportError, match=r"fully integer.*lrn1, lrn2 \(LocalResponseNormalization\)"):
            export_tflite(model, tmp_path / f"{name}.tflite", quantization="int8", representative_data=[images])
        assert not (tmp_path / f"{name}.tflite").exists()
        return
    if kl.get_entry(name).reference.deploy_params is not None:
        # RepVGG / ParNet: QAT fine-tunes the fused deploy form (the training form is refused).
        with pytest.raises(ValueError, match="reparameterize"):
            quantize_aware(model)
        model = kl.reparameterize(model)
    qat_model = quantize_aware(model)
    assert is_quantize_aware(qat_model)
    # QAT trains what the Keras 3 model trains, no more: as many variables (a BatchNorm that becomes a
    # depthwise convolution keeps two), none of an in-graph input normalization.
    trained = without_auxiliary_outputs(model).trainable_weights
    assert len(qat_model.trainable_weights) == len(trained)
    assert not any(w.name.startswith("input_normalization/") for w in qat_model.trainable_weights)
    # Precise BN is tested on its own (test_qat_precise_bn.py); two batches keep its path in this
    # run without its default 32 (78 s per family on 2 cores). One step runs eagerly: tracing a
    # QAT train step costs 15-40 s per family, and the graph path is trained in
    # test_qat_accuracy.py, test_android.py and the main job.
    weights_before = [np.array(w) for w in qat_model.trainable_weights]
    result = fit_quantize_aware(
        qat_model,
        epochs=1,
        steps_per_epoch=1,
        batch_size=16,
        validation_split=None,
        calibration_steps=2,
        precise_bn_steps=2,
        run_eagerly=True,
        verbose=0,
    )
    assert np.isfinite(result.history["loss"]).all()
    weights_after = [np.asarray(w) for w in qat_model.trainable_weights]
    changed = [not np.array_equal(b, a) for b, a in zip(weights_before, weights_after, strict=True)]
    assert np.mean(changed) > 0.9  # the gradient reached (nearly) every trainable weight

    exported = export_tflite(qat_model, tmp_path / f"{name}.tflite", quantization="int8")
    summary = inspect_tflite(exported.path)
    assert summary.float_tensors_inside == ()  # nothing float between the input QUANTIZE and output DEQUANTIZE
    assert set(summary.tensor_types) - {"float32"} <= INTEGER_TYPES
    assert {t.dtype for t in summary.inputs} == {"float32"} and summary.operators[0] == "QUANTIZE"
    assert summary.operators[-1] == "DEQUANTIZE" and summary.builtin_only
    # Every Conv2D -- grouped ones too (RegNet, ResNeXt) -- is one CONV_2D: the converter has
    # not split a grouped convolution into SPLIT + per-group CONV_2D + CONCATENATION, which
    # phones run several times slower.
    convolutions = [layer for layer in model.layers if type(layer) is keras.layers.Conv2D]
    # one per call: a shared Conv2D (PolyNet's poly-3 orders) is one CONV_2D each time it runs
    assert summary.operators.count("CONV_2D") == sum(len(layer._inbound_nodes) for layer in convolutions)
    assert "SPLIT" not in summary.operators and "SPLIT_V" not in summary.operators
    if name == "regnetx_002":
        assert sum(layer.groups > 1 for layer in convolutions) == 13  # one grouped 3x3 per block
    resizes = [layer for layer in model.layers if isinstance(layer, kl.layers.AlignedBilinearResize)]
    assert summary.operators.count("RESIZE_BILINEAR") == len(resizes)  # Residual Attention's masks, in INT8

    images = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    outputs = predict_tflite(exported.path, images)
    assert outputs.shape == (2, 10) and np.isfinite(outputs).all()
