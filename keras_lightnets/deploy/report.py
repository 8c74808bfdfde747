"""``export_report``: export for Android and report FP32 vs quantized accuracy, size and latency.

What ``lightnets export --report`` and the Quickstart's main job print: the Keras FP32
model, the FP32 ``.tflite`` and the quantized ``.tflite`` side by side (top-1 on the
dataset's evaluation split with the LiteRT interpreter, file size, batch-1 XNNPACK latency).
"""

import numpy as np

from keras_lightnets.data import BUNDLED_DATASET, dataset_info, make_dataset
from keras_lightnets.deploy.android import default_output, export_for_android
from keras_lightnets.deploy.benchmark import benchmark_tflite
from keras_lightnets.deploy.export import export_tflite
from keras_lightnets.deploy.interpreter import evaluate_tflite
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.training.inputs import default_eval_split, default_preset, evaluation_preset

__all__ = ["export_report", "keras_accuracy"]

# What ``unit_range=True`` says about a model that records nothing: it takes pixel / 255.
_UNIT_RANGE = Preprocessing(in_graph=True, pixel_max=1.0)


def keras_accuracy(model, dataset, split, *, unit_range=None, batch_size=64, preset=None, preprocessing=None):
    """Top-1 of a Keras (or tf_keras / QAT) model on ``split``: the images ``evaluate_tflite`` feeds its
    export, prepared as the model's :class:`~keras_lightnets.layers.preprocessing.Preprocessing`
    (its card, :func:`~keras_lightnets.preprocessing.resolve_preprocessing`) says: crop fraction,
    interpolation, and ``pixel / 255`` for a model that normalizes inside.

    Args:
        preprocessing: a Preprocessing or registered name used instead of the model's record.
        unit_range: ``True``: a model that records nothing takes ``pixel / 255`` (0.1's default);
            without a record and without either argument, a ValueError.
        preset: the data pipeline's preset; default what ``fit`` uses at the model's input size.
    """
    image_size = int(model.input_shape[1])
    prepared = resolve_preprocessing(preprocessing if preprocessing is not None else model)
    if prepared is None and unit_range:
        prepared = _UNIT_RANGE
    if prepared is None:
        raise ValueError(
            f"`preprocessing`: the model {getattr(model, 'name', model)!r} records none (no keras_lightnets "
            "model card): pass preprocessing= a Preprocessing or a registered model name, or unit_range=True "
            "for a model that takes pixel / 255"
        )
    data = make_dataset(
        dataset,
        split,
        image_size=image_size,
        batch_size=batch_size,
        training=False,
        preset=preset or default_preset(image_size),
        model=prepared,
    )
    hits = total = 0
    for images, labels in data.as_numpy_iterator():
        predictions = np.asarray(model(images, training=False)).argmax(-1)
        hits += int((predictions == labels.argmax(-1)).sum())
        total += len(labels)
    return hits / total


def _percent(value):
    return "–" if value is None else f"{100 * value:.2f}%"


def export_report(
    model_or_path,
    *,
    output=None,
    quantization="int8",
    qat_epochs=2,
    dataset=None,
    seed=None,
    compare=False,
    threads=1,
    runs=50,
    verbose=1,
    log=print,
    reparameterize=None,
):
    """Exports ``model_or_path`` (see :func:`export_for_android`) and returns the report's lines."""
    output = output or default_output(model_or_path, quantization)
    label = {None: "FP32", "float16": "FP16", "dynamic": "dynamic-range INT8", "int8": "INT8"}[quantization]
    how = (
        f"QAT {qat_epochs} epochs"
        if quantization == "int8" and qat_epochs
        else ("post-training" if quantization else "no quantization")
    )
    log(f"exporting {model_or_path} -> {output} ({label}, {how})")
    made = export_for_android(
        model_or_path,
        output,
        quantization=quantization,
        qat_epochs=qat_epochs,
        dataset=dataset,
        seed=seed,
        verbose=verbose,
        reparameterize=reparameterize,
        log=log,
    )
    summary = made.export.summary
    lines = [
        f"wrote {made.path} ({summary.size_bytes / 1e6:.2f} MB, {len(summary.operators)} ops, built-in only: "
        f"{'yes' if summary.builtin_only else 'no'}, fully integer: {'yes' if summary.fully_integer else 'no'}, "
        f"float ops inside: {summary.float_operator_count}, "
        f"metadata: {made.export.metadata.name} with {len(made.export.metadata.labels)} labels)"
    ]
    if not compare:
        return lines
    return lines + _comparison(made, label, quantization, dataset, threads=threads, runs=runs, verbose=verbose)


def _comparison(made, label, quantization, dataset, *, threads, runs, verbose):
    """The report's table: top-1 of the Keras model(s) and of each ``.tflite`` on the same images --
    one preprocessing (the float model's card, recorded in the files) and one preset (the run's) --
    with sizes and latencies."""
    files = {label: made.path}
    if quantization is not None:
        float_path = made.path.with_name(f"{made.path.stem}_float32.tflite")
        export_tflite(made.float_model, float_path, metadata=made.export.metadata)
        files = {"FP32": float_path, **files}
    data_name = dataset or made.run_info.get("dataset") or BUNDLED_DATASET  # what export_for_android used
    trained = (
        made.float_model.output_shape[-1] == len(made.export.metadata.labels)
        and dataset_info(data_name).num_classes == made.float_model.output_shape[-1]
    )
    split = default_eval_split(dataset_info(data_name).splits) if trained else None
    # The preset fit validated with, for the Keras and the LiteRT accuracies alike.
    preset = evaluation_preset(int(made.float_model.input_shape[1]), made.run_info, data_name)
    rows = [("| model | top-1 | size (MB) | latency median (p90), ms |"), "|---|---:|---:|---:|"]
    if split:
        accuracy = keras_accuracy(made.float_model, data_name, split, preset=preset)
        rows.append(f"| Keras FP32 | {_percent(accuracy)} | – | – |")
        if made.qat is not None:
            accuracy = keras_accuracy(made.qat.model, data_name, split, preset=preset)
            rows.append(f"| Keras QAT (fake-quant) | {_percent(accuracy)} | – | – |")
    measured = {}
    for name, path in files.items():
        accuracy = None
        if split:
            accuracy = evaluate_tflite(path, data_name, split=split, preset=preset, verbose=verbose == 1)["accuracy"]
        latency = benchmark_tflite(path, threads=threads, runs=runs)
        measured[name] = latency
        rows.append(
            f"| TFLite {name} | {_percent(accuracy)} | {latency.size_bytes / 1e6:.2f} | "
            f"{latency.median_ms:.3f} ({latency.p90_ms:.3f}) |"
        )
    lines = ["", f"{split or 'no evaluation (untrained model)'}, batch-1 latency with XNNPACK on {threads} thread(s):"]
    lines += rows
    if len(measured) == 2:
        fp32, quantized = measured["FP32"], measured[label]
        lines.append(
            f"{label}/FP32: size {quantized.size_bytes / fp32.size_bytes:.2f}, "
            f"latency {quantized.median_ms / fp32.median_ms:.2f}"
        )
    return lines
