"""Running ``.tflite`` files with the LiteRT interpreter (``ai-edge-litert``): predict and evaluate.

The interpreter runs with its default delegate (XNNPACK on CPU, as on Android) and
``num_threads`` threads. Models with int8/uint8 inputs or outputs are handled here: images
are quantized with the input tensor's scale and zero point, outputs dequantized, so every
function takes and returns float arrays whatever the file's I/O type.
"""

import os
import time

import numpy as np
from tqdm.auto import tqdm

from keras_lightnets.checks import check_positive_int
from keras_lightnets.data import make_dataset, num_examples
from keras_lightnets.deploy.tflite_file import read_preprocessing_record, read_tflite_bytes
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.registry import get_entry
from keras_lightnets.training.inputs import default_preset

__all__ = ["TFLiteRunner", "evaluate_tflite", "predict_tflite"]


def _default_threads():
    return max(1, min(4, os.cpu_count() or 1))


class TFLiteRunner:
    """One LiteRT interpreter over a ``.tflite`` (path or bytes), called on float images of any batch size."""

    def __init__(self, path_or_bytes, *, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        check_positive_int("threads", threads)
        self.threads = threads or _default_threads()
        self.content = read_tflite_bytes(path_or_bytes)
        try:
            self.interpreter = Interpreter(model_content=self.content, num_threads=self.threads)
        except ValueError as error:
            where = "the given bytes" if isinstance(path_or_bytes, bytes | bytearray) else repr(str(path_or_bytes))
            raise ValueError(
                f"{where} is not a valid TFLite model ({len(self.content):,} bytes; {error}): the file is truncated "
                "or corrupt; export it again"
            ) from None
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self.input["shape"][1:])

    def _quantize(self, images):
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return images.astype(np.float32)
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantize(self, values):
        if self.output["dtype"] == np.float32:
            return values
        scale, zero_point = self.output["quantization"]
        return (values.astype(np.float32) - zero_point) * scale

    def invoke(self, image):
        """The output for one image batch of 1 (``(1, H, W, C)``), as float32."""
        self.interpreter.set_tensor(self.input["index"], self._quantize(image))
        self.interpreter.invoke()
        return self._dequantize(self.interpreter.get_tensor(self.output["index"]))

    def __call__(self, images):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == len(self.input_shape):
            images = images[None]
        if tuple(images.shape[1:]) != self.input_shape:
            raise ValueError(f"images have shape {images.shape}, the TFLite model takes (N, {self.input_shape})")
        return np.concatenate([self.invoke(image[None]) for image in images], axis=0)


def predict_tflite(path_or_bytes, images, *, threads=None):
    """Float outputs of the ``.tflite`` model for float ``images`` ``(N, H, W, C)``, one image at a time."""
    return TFLiteRunner(path_or_bytes, threads=threads)(images)


def _file_preprocessing(content, preprocessing, model_name):
    """The :class:`Preprocessing` that feeds the file: ``preprocessing`` when given, else the file's own
    record (written by :func:`export_tflite`), else the registered ``model_name``'s; else a ValueError.

    Nothing is guessed: a file without a record (another tool's, or keras_lightnets 0.1's) may
    normalize inside or not, and may have been validated with any crop or interpolation.
    """
    if preprocessing is not None:
        if not isinstance(preprocessing, str | Preprocessing):
            raise TypeError(
                f"`preprocessing` must be a Preprocessing or a registered model name, got {preprocessing!r}"
            )
        try:
            return resolve_preprocessing(preprocessing)
        except ValueError as error:
            raise ValueError(f"`preprocessing`: {error}") from None
    recorded = read_preprocessing_record(content)
    if recorded is not None:
        return recorded
    if model_name is not None:
        return get_entry(model_name).preprocessing
    raise ValueError(
        "`preprocessing`: this .tflite records no keras_lightnets preprocessing (exported by another tool or by "
        "keras_lightnets 0.1), so how its images must be prepared is unknown: pass preprocessing= a registered "
        "model name or a Preprocessing (for a file that normalizes inside and takes pixel / 255: "
        "Preprocessing(in_graph=True, ...), with the crop_pct and interpolation it was validated with)"
    )


def _check_classifier(runner):
    outputs = runner.interpreter.get_output_details()
    if len(outputs) != 1 or len(outputs[0]["shape"]) != 2:
        raise ValueError(
            f"`path`: evaluate_tflite needs a classifier with one (batch, classes) output; this file has "
            f"{len(outputs)} output(s) of shapes {[tuple(int(d) for d in o['shape']) for o in outputs]} "
            "(a feature extractor, features_only=True?)"
        )


def _predictions(runner, data, total, name, verbose):
    """``(top-1 predictions, labels, top-5 hits)`` of ``runner`` over the batches of ``data``."""
    predictions, labels, top5_hits = [], [], 0
    with tqdm(total=int(total), desc=f"evaluate {name}", unit="img", disable=not verbose) as progress:
        for images, one_hot in data.as_numpy_iterator():
            outputs = runner(images)
            truth = one_hot.argmax(-1)
            predictions.append(outputs.argmax(-1))
            labels.append(truth)
            top5 = np.argsort(-outputs, axis=-1)[:, :5]
            top5_hits += int((top5 == truth[:, None]).any(-1).sum())
            progress.update(len(images))
    return np.concatenate(predictions), np.concatenate(labels), top5_hits


def evaluate_tflite(
    path,
    dataset="lightnets_digits",
    *,
    split="test",
    model_name=None,
    mean=None,
    std=None,
    threads=None,
    limit=None,
    data_dir=None,
    return_predictions=False,
    verbose=True,
    preprocessing=None,
    preset=None,
):
    """Top-1 and top-5 accuracy of a ``.tflite`` classifier over a TFDS split, with the LiteRT interpreter.

    Images go through the package's evaluation pipeline at the file's input size, prepared as
    the file's :class:`~keras_lightnets.layers.preprocessing.Preprocessing` says -- the record
    :func:`export_tflite` writes from the model card: crop fraction, interpolation and what the
    model takes (:meth:`Preprocessing.fed`: ``pixel / 255`` for a model that normalizes inside),
    the same as ``fit``'s validation and ``evaluate``.

    Args:
        preprocessing: a :class:`Preprocessing` or a registered model name; overrides the file's
            record, and is required for a file without one (``ValueError`` otherwise).
        model_name: the registered name whose preprocessing applies when the file records none
            (the 0.1 spelling of ``preprocessing``; the file's record wins over it).
        mean, std: override the normalization applied to ``[0, 1]`` pixels (give both).
        preset: the data pipeline's preset; default what ``fit`` uses at the file's input size.
        threads: interpreter threads (default: up to 4 cores). limit: evaluate the first examples only.

    Returns a dict: ``accuracy``, ``top5``, ``num_examples``, ``seconds``, ``threads`` and,
    with ``return_predictions``, ``predictions`` (top-1 indices) and ``labels``.
    """
    check_positive_int("limit", limit)
    if model_name is not None:
        get_entry(model_name)  # a clear error for a name that is not registered, whatever the file holds
    if (mean is None) != (std is None):
        raise ValueError("give both `mean` and `std`, or neither")
    runner = TFLiteRunner(path, threads=threads)
    _check_classifier(runner)
    image_size, _, channels = runner.input_shape
    prepared = _file_preprocessing(runner.content, preprocessing, model_name)
    data = make_dataset(
        dataset,
        split,
        image_size=image_size,
        batch_size=64,
        training=False,
        preset=preset or default_preset(image_size),
        model=prepared,
        mean=mean,
        std=std,
        channels=channels,
        data_dir=data_dir,
    )
    if limit is not None:
        data = data.unbatch().take(limit).batch(64)
    start = time.perf_counter()
    total = min(limit or np.inf, num_examples(dataset, split, data_dir))
    name = "tflite" if isinstance(path, bytes | bytearray) else os.path.basename(str(path))
    predictions, labels, top5_hits = _predictions(runner, data, total, name, verbose)
    result = {
        "accuracy": float((predictions == labels).mean()),
        "top5": top5_hits / len(labels),
        "num_examples": int(len(labels)),
        "seconds": time.perf_counter() - start,
        "threads": runner.threads,
    }
    if return_predictions:
        result["predictions"], result["labels"] = predictions, labels
    return result
