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
from keras_lightnets.deploy.preprocessing import INPUT_NORMALIZATION_LAYER
from keras_lightnets.deploy.tflite_file import read_tflite_bytes

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


def _normalization(content, model_name):
    """mean/std in [0, 1] units for the data pipeline: the embedded metadata's, else the registry's.

    A file without metadata whose graph starts with our ``input_normalization`` layer (its
    tensor names are stored in the flatbuffer) takes ``pixel / 255``: normalizing it again with
    the registry's statistics would silently ruin the accuracy.
    """
    try:
        from keras_lightnets.deploy.metadata import read_metadata

        metadata = read_metadata(content)
    except (ImportError, ValueError):
        if INPUT_NORMALIZATION_LAYER.encode() in content:
            return {"mean": 0.0, "std": 1.0}
        return {"model": model_name}
    mean = tuple(float(m) / 255.0 for m in metadata["mean"])
    std = tuple(float(s) / 255.0 for s in metadata["std"])
    # One value applies to every channel (the metadata schema's rule).
    return {"mean": mean[0] if len(mean) == 1 else mean, "std": std[0] if len(std) == 1 else std}


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
):
    """Top-1 and top-5 accuracy of a ``.tflite`` classifier over a TFDS split, with the LiteRT interpreter.

    Images are preprocessed by the package's evaluation pipeline at the file's input size,
    normalized with ``mean``/``std`` (``[0, 1]`` units) when given, else with the mean/std
    embedded in the file's metadata, else as ``pixel / 255`` for a model that normalizes
    inside (:func:`with_input_normalization`), else the registered ``model_name``'s, else
    ImageNet's.
    The interpreter uses ``threads`` threads (default: up to 4 cores).

    Returns a dict: ``accuracy``, ``top5``, ``num_examples``, ``seconds``, ``threads`` and,
    with ``return_predictions``, ``predictions`` (top-1 indices) and ``labels``.
    """
    from keras_lightnets.data import make_dataset, num_examples
    from keras_lightnets.training.inputs import default_preset

    check_positive_int("limit", limit)
    if model_name is not None:
        from keras_lightnets.registry import get_entry

        get_entry(model_name)  # a clear error for a name that is not registered, whatever the file holds
    runner = TFLiteRunner(path, threads=threads)
    outputs = runner.interpreter.get_output_details()
    if len(outputs) != 1 or len(outputs[0]["shape"]) != 2:
        raise ValueError(
            f"`path`: evaluate_tflite needs a classifier with one (batch, classes) output; this file has "
            f"{len(outputs)} output(s) of shapes {[tuple(int(d) for d in o['shape']) for o in outputs]} "
            "(a feature extractor, features_only=True?)"
        )
    image_size, _, channels = runner.input_shape
    if (mean is None) != (std is None):
        raise ValueError("give both `mean` and `std`, or neither")
    if mean is not None:
        normalization = {"mean": mean, "std": std}
    else:
        normalization = _normalization(runner.content, model_name)
    data = make_dataset(
        dataset,
        split,
        image_size=image_size,
        batch_size=64,
        training=False,
        preset=default_preset(image_size),
        channels=channels,
        data_dir=data_dir,
        **normalization,
    )
    if limit is not None:
        data = data.unbatch().take(limit).batch(64)
    predictions, labels, top5_hits = [], [], 0
    start = time.perf_counter()
    total = min(limit or np.inf, num_examples(dataset, split, data_dir))
    name = "tflite" if isinstance(path, bytes | bytearray) else os.path.basename(str(path))
    with tqdm(total=int(total), desc=f"evaluate {name}", unit="img", disable=not verbose) as progress:
        for images, one_hot in data.as_numpy_iterator():
            outputs = runner(images)
            truth = one_hot.argmax(-1)
            predictions.append(outputs.argmax(-1))
            labels.append(truth)
            top5 = np.argsort(-outputs, axis=-1)[:, :5]
            top5_hits += int((top5 == truth[:, None]).any(-1).sum())
            progress.update(len(images))
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
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
