"""``export_tflite``: a Keras 3 model (or a quantization-aware one) to a ``.tflite`` file.

    export_tflite(model, "m.tflite")                                    # float32
    export_tflite(model, "m.tflite", quantization="float16")            # fp16 weights
    export_tflite(model, "m.tflite", quantization="dynamic")            # int8 weights, float activations
    export_tflite(model, "m.tflite", quantization="int8",               # full integer (PTQ)
                  representative_data="lightnets_digits")
    export_tflite(quantize_aware(model), "m.tflite", quantization="int8")   # full integer (QAT)

The model is traced at batch 1 (what a phone runs) into a concrete function and converted
with ``tf.lite.TFLiteConverter.from_concrete_functions`` — the path that works for Keras 3
models (``from_keras_model`` does not, tensorflow#63867) and for tfmot's tf_keras models
alike. Only TFLite built-in operators are allowed: a model that would need Flex
(``SELECT_TF_OPS``) or custom ops fails with :class:`TFLiteExportError` instead of
producing a file that an Android app cannot run without the Flex delegate. An INT8 export
is checked to be fully integer (no float tensor inside the graph). Every argument is
checked before the conversion starts, and the file is written atomically (temporary file,
then rename), so a failure never leaves a partial ``.tflite`` behind.
"""

import itertools
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from keras_lightnets.checks import check_int, check_writable_folder
from keras_lightnets.data import make_dataset
from keras_lightnets.deploy.metadata import ImageClassifierMetadata, embed_metadata
from keras_lightnets.deploy.qat import is_quantize_aware, is_tf_keras_model
from keras_lightnets.deploy.tflite_file import TFLiteSummary, inspect_tflite, with_preprocessing_record
from keras_lightnets.files import load_keras_model
from keras_lightnets.layers.custom_layers import float_only_layers, float_only_message
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.models.describe import without_auxiliary_outputs
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.training.inputs import default_preset
from keras_lightnets.training.run_dir import atomic_write_bytes

__all__ = [
    "IO_TYPES",
    "QUANTIZATIONS",
    "ExportResult",
    "RepresentativeDataError",
    "TFLiteExportError",
    "export_tflite",
    "representative_dataset",
]

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
IO_TYPES = ("float32", "int8", "uint8")
DEFAULT_REPRESENTATIVE_SAMPLES = 200


class TFLiteExportError(RuntimeError):
    """The converter could not produce a TFLite model with built-in operators only (or fully integer)."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_tflite` wrote: the path, its quantization and a :class:`TFLiteSummary`."""

    path: Path
    quantization: str | None
    io_type: str
    summary: TFLiteSummary
    metadata: object = None

    @property
    def size_bytes(self):
        return self.summary.size_bytes

    @property
    def float_operator_count(self):
        """How many operators run in float inside the graph (DEQUANTIZE included): 0 for a fully integer file."""
        return self.summary.float_operator_count


# --- argument checks (all before any conversion work) --------------------------------------


def _check_output_path(path):
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".tflite":
        raise ValueError(f"`path` must end in .tflite, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"`path` {str(path)!r} is a directory; give a file name ending in .tflite")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"`path` {str(path)!r}: its folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"`path` {str(path)!r}: its folder {str(parent)!r} is not writable")
    check_writable_folder(parent, "path", path)  # what os.access cannot tell root (/proc, read-only mounts)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"`path` {str(path)!r} exists and is not writable")
    return path


def _load_if_path(model):
    if isinstance(model, str | os.PathLike):
        model_path = Path(model)
        if model_path.suffix != ".keras" or not model_path.is_file():
            raise ValueError(f"`model` path {str(model_path)!r} is not an existing .keras file")
        return load_keras_model(model_path)
    return model


def _image_input_shape(model):
    shape = tuple(model.input_shape)
    if len(shape) != 4 or any(dim is None for dim in shape[1:]):
        raise ValueError(
            f"the model's input shape must be a static image shape (None, H, W, C) to export, got {shape}; "
            "build it with input_shape=(H, W, C)"
        )
    return shape[1:]


def _is_model(model):
    return isinstance(model, keras.Model) or is_tf_keras_model(model)


# --- representative data ------------------------------------------------------------------


def representative_dataset(dataset="lightnets_digits", *, model=None, image_size, split="train", batch_size=32):
    """Evaluation-preprocessed images of a TFDS ``dataset`` (``tf.data``), for calibration.

    The images go through the same pipeline the model is trained and evaluated with
    (:func:`keras_lightnets.data.make_dataset`, no augmentation), prepared as ``model`` needs:
    a registered name, a :class:`~keras_lightnets.layers.preprocessing.Preprocessing`, or a Keras 3,
    tf_keras or QAT model (its model card, through
    :func:`~keras_lightnets.preprocessing.resolve_preprocessing`: ``pixel / 255`` for a model
    that normalizes inside, see :func:`~keras_lightnets.deploy.with_input_normalization`).
    """
    images = make_dataset(
        dataset,
        split,
        image_size=image_size,
        batch_size=batch_size,
        training=False,
        preset=default_preset(image_size),
        model=resolve_preprocessing(model),
    )
    return images.map(lambda image, label: image)


def _first_array(batch):
    """The image array of one element of representative data: an array, ``(images, labels)`` or a dict."""
    if isinstance(batch, dict):
        for key in ("image", "images", "input", "inputs"):
            if key in batch:
                return batch[key]
        raise ValueError(f"representative_data dicts must have an 'image' key, got keys {sorted(batch)}")
    if isinstance(batch, tuple | list):
        return batch[0]
    return batch


def _check_calibration_values(batch, model):
    """Refuses calibration data that is not what ``model`` takes: non-finite values, or raw
    pixels fed to a model that expects normalized ones (its INT8 ranges would be wrong, silently)."""
    if not np.isfinite(batch).all():
        raise ValueError("`representative_data` holds NaN or infinite values")
    preprocessing = resolve_preprocessing(model)
    if preprocessing is None:
        return  # a foreign model: nothing says what it takes
    largest = float(np.abs(batch).max())
    # Normalized ImageNet pixels stay within about [-2.2, 2.7]; [0, 1] pixels within 1.
    expected, limit = (
        ("normalized pixels ((pixel / 255 - mean) / std)", 10.0)
        if not preprocessing.in_graph
        else ("pixel / 255, in [0, 1]", 1.5)
        if preprocessing.pixel_max == 1.0
        else (None, None)
    )
    if expected is not None and largest > limit:
        raise ValueError(
            f"`representative_data` looks like raw pixels (largest value {largest:g}), but {model.name!r} takes "
            f"{expected}: pass a TFDS name, batches from kl.data.make_dataset(..., model=model), or "
            "kl.preprocess_input(images, model)"
        )


class RepresentativeDataError(ValueError):
    """A bad batch of ``representative_data`` found while the converter draws it; raised as it is,
    not wrapped in :class:`TFLiteExportError` (the converter's own "Cannot set tensor" names nothing)."""


def _as_batch(element, index, input_shape):
    """The float32 ``(B, H, W, C)`` batch of the ``index``-th element of representative data, checked
    against the model's ``input_shape`` as it is drawn (a later batch of another size would otherwise
    reach the converter, whose error does not say which argument or batch is wrong)."""
    raw = np.asarray(_first_array(element))
    if raw.dtype.kind not in "fiu":
        raise TypeError(f"`representative_data` must hold numeric image arrays, got dtype {raw.dtype} (batch {index})")
    batch = raw.astype(np.float32)
    if batch.ndim == len(input_shape):  # a single image
        batch = batch[None]
    if batch.ndim != len(input_shape) + 1 or tuple(batch.shape[1:]) != tuple(input_shape):
        raise RepresentativeDataError(
            f"`representative_data` batch {index} has shape {tuple(raw.shape)}, but the model takes "
            f"(batch, {', '.join(map(str, input_shape))}) images: every batch must have that shape"
        )
    if not np.isfinite(batch).all():
        raise RepresentativeDataError(f"`representative_data` holds NaN or infinite values (batch {index})")
    return batch


def _representative_batches(representative_data, model, input_shape, samples):
    """Checks the first batch, then returns the ``representative_dataset`` generator the converter wants,
    which checks every later batch as it draws it."""
    if isinstance(representative_data, str):
        representative_data = representative_dataset(
            representative_data,
            model=model,
            image_size=input_shape[0],
        ).take(max(1, samples // 32 + 1))
    if not isinstance(representative_data, Iterable) or isinstance(representative_data, bytes):
        raise TypeError(
            "`representative_data` must be a TFDS name, a tf.data.Dataset or an iterable of image batches, "
            f"got {type(representative_data).__name__}"
        )
    iterator = iter(representative_data)
    try:
        first = _as_batch(next(iterator), 0, input_shape)
    except StopIteration:
        raise ValueError("`representative_data` is empty") from None
    _check_calibration_values(first, model)

    def samples_at_batch_1():
        count = 0
        for index, element in enumerate(itertools.chain([first], iterator)):
            batch = first if index == 0 else _as_batch(element, index, input_shape)
            for image in batch:
                if count >= samples:
                    return
                count += 1
                yield [image[None]]

    return samples_at_batch_1


# --- conversion ---------------------------------------------------------------------------


def _converter(model, input_shape, workdir):
    """A converter for ``model`` at batch 1, from a weights-frozen SavedModel written in ``workdir``.

    The weights are frozen into constants before anything is saved. Handing the converter the
    model (or its variables) instead makes it write them into its own intermediate SavedModel,
    which costs minutes and breaks Keras 3 models:
    - a tf_keras (QAT) model makes the SavedModel writer trace every layer's call functions
      (about 2,500 traces for ReXNet-0.9);
    - a Keras 3 model leaves its weights as uninitialized variables (NaN or constant outputs);
    - a QAT model's ~1,400 variables cost 10 s of save/restore tracing, and more to reload.
    The file has the same size and outputs as before (checked on ReXNet-0.9, FP32 and INT8) and
    keeps its ``serving_default`` signature; an INT8 ReXNet-0.9 at 32x32 converts in about 11 s
    instead of 250 s on 2 cores.
    """
    signature = tf.TensorSpec([1, *input_shape], tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False))
    frozen = convert_variables_to_constants_v2(function.get_concrete_function(signature))
    # Custom gradients (SiLU's) are irrelevant to inference and cannot be saved once frozen.
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(tf.Module(), workdir, signatures=frozen, options=options)
    return tf.lite.TFLiteConverter.from_saved_model(workdir)


def _convert(converter):
    try:
        return converter.convert()
    except RepresentativeDataError:
        raise
    except Exception as error:  # the converter raises ConverterError or plain exceptions
        message = str(error)
        select_ops = re.findall(r"TF Select ops: ([^\n]+)", message)
        custom_ops = re.findall(r"Custom ops: ([^\n]+)", message)
        if select_ops or custom_ops or "neither a custom op nor a flex op" in message:
            needed = ", ".join(select_ops + custom_ops) or "see the converter's message above"
            raise TFLiteExportError(
                f"the model uses TensorFlow operations that are not TFLite built-ins: {needed}. keras_lightnets "
                "only exports models that run on built-in ops (Flex/SELECT_TF_OPS and custom ops need extra "
                "runtimes on Android); replace those operations with standard Keras layers"
            ) from error
        raise TFLiteExportError(f"TFLite conversion failed: {message.strip()[:2000]}") from error


def export_tflite(
    model,
    path,
    *,
    quantization=None,
    representative_data=None,
    representative_samples=DEFAULT_REPRESENTATIVE_SAMPLES,
    io_type="float32",
    metadata=None,
    preprocessing=None,
):
    """Converts ``model`` to a TFLite file at ``path`` (written atomically) and returns an :class:`ExportResult`.

    Args:
        model: a Keras 3 model with a static ``(H, W, C)`` input, a ``.keras`` file, or a
            quantization-aware model from :func:`~keras_lightnets.deploy.quantize_aware`
            (then ``quantization`` must be ``"int8"`` and no representative data is needed:
            the ranges come from training).
        path: the ``.tflite`` file to write; its folder must exist and be writable.
        quantization: ``None`` (float32), ``"float16"`` (fp16 weights), ``"dynamic"`` (int8
            weights, float activations) or ``"int8"`` (weights and activations; every tensor
            inside the graph is integer).
        representative_data: for ``"int8"`` post-training quantization: a TFDS name (images
            preprocessed as for the model, see :func:`representative_dataset`), a
            ``tf.data.Dataset`` or any iterable of image batches ``(B, H, W, C)`` (or of
            ``(images, labels)``), preprocessed as the model expects.
        representative_samples: how many images calibrate the activation ranges.
        io_type: the input and output type of an ``"int8"`` model: ``"float32"`` (quantize
            inside the model; what MediaPipe Tasks wants), ``"int8"`` or ``"uint8"``.
        metadata: an :class:`~keras_lightnets.deploy.ImageClassifierMetadata` to embed
            (labels, normalization, names) so Android apps load the file as is.
        preprocessing: the :class:`~keras_lightnets.layers.preprocessing.Preprocessing` (or a
            registered model name) to record in the file; default the model card's. The record
            (see :func:`~keras_lightnets.deploy.tflite_file.with_preprocessing_record`) is what
            :func:`~keras_lightnets.deploy.evaluate_tflite` prepares images by; a model without a
            card and without this argument gets none.

    Raises:
        ValueError / TypeError: a bad argument, before any conversion.
        TFLiteExportError: the model needs non-built-in ops, an INT8 result is not fully integer, or
            ``"int8"`` was asked for a model with layers TFLite runs in float only (local response
            normalization), refused before any conversion.
    """
    _check_options(quantization, io_type, representative_samples, representative_data)
    model, qat = _exportable_model(model, quantization)
    if quantization == "int8" and not qat and representative_data is None:
        raise ValueError(
            "quantization='int8' post-training quantization needs `representative_data` (a TFDS name such as "
            "'lightnets_digits', a tf.data.Dataset or batches of preprocessed images) to calibrate activation "
            "ranges; or pass a quantize_aware() model"
        )
    path = _check_output_path(path)
    input_shape = _image_input_shape(model)
    _check_metadata(metadata, model)
    recorded = _recorded_preprocessing(preprocessing, model)
    representative = None
    if quantization == "int8" and not qat:
        representative = _representative_batches(representative_data, model, input_shape, representative_samples)

    content = _converted(model, input_shape, quantization, io_type, representative)
    summary = inspect_tflite(content)
    _check_converted(summary, quantization)
    # The preprocessing record first: the Android metadata appends a zip archive that a later
    # rewrite of the flatbuffer would drop.
    if recorded is not None:
        content = with_preprocessing_record(content, recorded)
    if metadata is not None:
        content = embed_metadata(content, metadata)
    if recorded is not None or metadata is not None:
        summary = inspect_tflite(content)
    atomic_write_bytes(path, content)
    return ExportResult(path=path, quantization=quantization, io_type=io_type, summary=summary, metadata=metadata)


def _check_options(quantization, io_type, representative_samples, representative_data):
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {QUANTIZATIONS}, got {quantization!r}")
    if io_type not in IO_TYPES:
        raise ValueError(f"`io_type` must be one of {IO_TYPES}, got {io_type!r}")
    if io_type != "float32" and quantization != "int8":
        raise ValueError(f"`io_type={io_type!r}` needs quantization='int8', got quantization={quantization!r}")
    check_int(representative_samples, "representative_samples", 1)
    if representative_data is not None and quantization != "int8":
        raise ValueError(f"`representative_data` is only used with quantization='int8', got {quantization!r}")


def _exportable_model(model, quantization):
    """``(model, is quantization-aware)``: loaded if a path, without auxiliary classifiers, checked
    to convert to ``quantization``."""
    model = _load_if_path(model)
    if not _is_model(model):
        raise TypeError(f"`model` must be a Keras model, a .keras path or a quantize_aware() model, got {model!r}")
    if isinstance(model, keras.Model):
        model = without_auxiliary_outputs(model)  # GoogLeNet's auxiliary classifiers are for training only
    qat = is_quantize_aware(model)
    if qat and quantization != "int8":
        raise ValueError(
            f"a quantization-aware model converts to quantization='int8' only, got quantization={quantization!r}"
        )
    found = float_only_layers(model) if quantization == "int8" else None
    if found:
        # Refused before any conversion: a full-integer file cannot hold these, and a model
        # that quietly kept them in float would not be the INT8 model that was asked for.
        raise TFLiteExportError(
            f"quantization='int8' asks for a fully integer model, but {model.name!r} has layers TFLite runs "
            f"in float only: {float_only_message(found)}. Export it with quantization='dynamic' (int8 "
            "weights, these layers and the activations in float), 'float16' or None"
        )
    return model, qat


def _check_metadata(metadata, model):
    if metadata is None:
        return
    if not isinstance(metadata, ImageClassifierMetadata):
        raise TypeError(f"`metadata` must be an ImageClassifierMetadata, got {type(metadata).__name__}")
    classes = model.output_shape[-1]
    if len(metadata.labels) != classes:
        raise ValueError(f"`metadata` has {len(metadata.labels)} labels but the model has {classes} outputs")


def _recorded_preprocessing(preprocessing, model):
    """What the file will record: ``preprocessing`` (a Preprocessing or a registered name), else the
    model card's (``None`` for a model without one)."""
    if preprocessing is None:
        return resolve_preprocessing(model)
    if not isinstance(preprocessing, str | Preprocessing):
        raise TypeError(f"`preprocessing` must be a Preprocessing or a registered model name, got {preprocessing!r}")
    try:
        return resolve_preprocessing(preprocessing)
    except ValueError as error:
        raise ValueError(f"`preprocessing`: {error}") from None


def _converted(model, input_shape, quantization, io_type, representative):
    """The ``.tflite`` bytes of ``model`` converted with built-in operators only."""
    with tempfile.TemporaryDirectory(prefix="lightnets_export_") as workdir:
        converter = _converter(model, input_shape, workdir)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if representative is not None:
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_type != "float32":
            converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
        return _convert(converter)


def _check_converted(summary, quantization):
    if not summary.builtin_only:
        raise TFLiteExportError(f"the converted model uses non-built-in operators {summary.custom_operators}")
    if quantization == "int8" and not summary.fully_integer:
        raise TFLiteExportError(
            f"the INT8 model is not fully integer: {summary.float_operator_count} operators run in float inside "
            f"the graph ({list(summary.float_operators)}), "
            f"float tensors inside the graph: {list(summary.float_tensors_inside[:10])}"
        )
