"""Deployment: TFLite export, quantization-aware training, Android metadata, LiteRT evaluation and latency.

    from keras_lightnets import create_model
    from keras_lightnets.deploy import quantize_aware, fit_quantize_aware, export_tflite, evaluate_tflite

    model = ...                                   # a trained Keras 3 model
    qat = quantize_aware(model)                   # tf_keras twin + tfmot fake-quant, our SE configs
    fit_quantize_aware(qat, epochs=2)             # the family's recipe, fine-tuning rate
    export_tflite(qat, "model.tflite", quantization="int8", metadata=classifier_metadata(...))
    evaluate_tflite("model.tflite")               # top-1 on the bundled test split, LiteRT interpreter
    benchmark_tflite("model.tflite", threads=1)   # median / p90 latency, XNNPACK, batch 1

Model code never imports tf_keras; only this package does (tfmot's requirement).
"""

from keras_lightnets.deploy.benchmark import BenchmarkResult, benchmark_tflite
from keras_lightnets.deploy.export import (
    IO_TYPES,
    QUANTIZATIONS,
    ExportResult,
    RepresentativeDataError,
    TFLiteExportError,
    export_tflite,
    representative_dataset,
)
from keras_lightnets.deploy.interpreter import TFLiteRunner, evaluate_tflite, predict_tflite
from keras_lightnets.deploy.metadata import ImageClassifierMetadata, embed_metadata, read_metadata
from keras_lightnets.deploy.qat import is_quantize_aware, quantize_aware, quantize_scope
from keras_lightnets.deploy.qat_calibration import calibrate_ranges
from keras_lightnets.deploy.qat_fit import QATFitResult, fit_quantize_aware
from keras_lightnets.deploy.tflite_file import TFLiteSummary, inspect_tflite
from keras_lightnets.deploy.twin import UnsupportedLayerError, to_tf_keras

__all__ = [
    "IO_TYPES",
    "QUANTIZATIONS",
    "BenchmarkResult",
    "ExportResult",
    "ImageClassifierMetadata",
    "QATFitResult",
    "RepresentativeDataError",
    "TFLiteExportError",
    "TFLiteRunner",
    "TFLiteSummary",
    "UnsupportedLayerError",
    "benchmark_tflite",
    "calibrate_ranges",
    "embed_metadata",
    "evaluate_tflite",
    "export_tflite",
    "fit_quantize_aware",
    "inspect_tflite",
    "is_quantize_aware",
    "predict_tflite",
    "quantize_aware",
    "quantize_scope",
    "read_metadata",
    "representative_dataset",
    "to_tf_keras",
]
