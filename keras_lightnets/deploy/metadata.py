"""TFLite Model Metadata for image classifiers, so that Android apps load the ``.tflite`` file as is.

    content = embed_metadata(tflite_bytes, ImageClassifierMetadata(
        name="mobilenet_v2", version="1", labels=labels,
        mean=(127.5,), std=(127.5,)))       # the model takes (pixel - 127.5) / 127.5
    Path("mobilenet_v2.tflite").write_bytes(content)
    read_metadata("mobilenet_v2.tflite")["labels"]

An app using MediaPipe Tasks ``ImageClassifier`` (or the LiteRT support library / Task
library) needs no code of its own for pre- and post-processing: it reads them from the file.
:func:`embed_metadata` writes, with the flatbuffer schemas that mediapipe ships:

* a ``ModelMetadata`` table (name, description, version, author, license,
  ``min_parser_version``) with one ``SubGraphMetadata``: the input tensor ``image``
  (``ImageProperties`` RGB or GRAYSCALE, ``NormalizationOptions(mean, std)`` that the app
  applies to uint8 pixels as ``(pixel - mean) / std``, and the resulting value range as
  ``Stats``) and the output tensor ``probability`` whose last axis is named by the associated
  file ``labels.txt`` (``TENSOR_AXIS_LABELS``: one label per line, line i names class i);
* that table in the model's ``metadata`` list under the name ``TFLITE_METADATA`` (the name
  the readers look for), replacing an existing one;
* ``labels.txt`` appended to the flatbuffer as a ZIP archive: a metadata-carrying ``.tflite``
  is also a valid zip file whose members are the associated files (the TFLite interpreter
  ignores the bytes after the flatbuffer; the metadata readers open the zip).

MediaPipe Tasks (checked with 1.2.2) applies the normalization only to float32 inputs and
requires it there; a uint8 input gets the raw pixels, so its quantization must match
``mean``/``std`` (scale = 1 / std, zero point = mean). It accepts one normalization for all
channels only (per-channel values are refused with "Per-channel image normalization is not
available"), RGB images only, and float32 or uint8 inputs only; :func:`embed_metadata` warns
where a file is valid metadata but MediaPipe will not run it as written.

mediapipe is imported lazily: only these functions need it.
"""

from __future__ import annotations

import io
import math
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keras_lightnets.deploy.tflite_file import read_preprocessing_record, with_metadata_entry
from keras_lightnets.layers.preprocessing import Preprocessing

__all__ = [
    "ImageClassifierMetadata",
    "MediaPipeCompatibilityWarning",
    "embed_metadata",
    "pixel_normalization",
    "read_metadata",
]

METADATA_FIELD_NAME = "TFLITE_METADATA"  # Model.metadata entry the metadata readers look up
LABELS_FILE_NAME = "labels.txt"
INPUT_TENSOR_NAME = "image"
OUTPUT_TENSOR_NAME = "probability"  # MediaPipe reports it as ClassificationResult head_name

_TFLITE_FILE_IDENTIFIER = b"TFL3"
_METADATA_FILE_IDENTIFIER = b"M001"
_PIXEL_MIN, _PIXEL_MAX = 0.0, 255.0
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip file can hold

_MEDIAPIPE_MISSING = (
    "Embedding Android metadata needs mediapipe: pip install mediapipe==1.2.2 (install it after keras_lightnets: "
    "mediapipe pins absl-py~=2.3, tensorflow-model-optimization pins absl-py~=1.2; installed one after the other "
    "both work)"
)


class MediaPipeCompatibilityWarning(UserWarning):
    """The metadata is valid, but MediaPipe Tasks' ImageClassifier will not run the file as written."""


@dataclass(frozen=True)
class ImageClassifierMetadata:
    """What an app needs to know to run an image classifier.

    ``mean`` and ``std`` are in the pixel scale the app feeds, uint8 values in [0, 255]: the app
    computes ``(pixel - mean) / std`` per channel. For a model trained on ImageNet-normalized
    [0, 1] images use ``mean=(0.485 * 255, 0.456 * 255, 0.406 * 255)``,
    ``std=(0.229 * 255, 0.224 * 255, 0.225 * 255)``; for a model taking [0, 1] floats ``mean=(0,)``,
    ``std=(255,)``. One value applies to every channel (the schema's rule), and is the only form
    MediaPipe Tasks accepts. ``labels[i]`` names output class ``i``.
    """

    name: str
    version: str
    labels: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str = ""
    author: str = "keras_lightnets"
    license: str = ""
    input_description: str = "RGB image, H x W, normalized (pixel - mean) / std"
    output_description: str = "Probability of each class, in the order of labels.txt"

    def __post_init__(self):
        for field_name in ("name", "version"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"ImageClassifierMetadata.{field_name} must be a non-empty string, got {value!r}")
        for field_name in ("description", "author", "license", "input_description", "output_description"):
            value = getattr(self, field_name)
            if not isinstance(value, str):
                raise TypeError(f"ImageClassifierMetadata.{field_name} must be a string, got {type(value).__name__}")
        # Frozen dataclass: normalized values are stored with object.__setattr__.
        object.__setattr__(self, "labels", _validated_labels(self.labels))
        mean = _validated_floats("mean", self.mean)
        std = _validated_floats("std", self.std)
        if len(mean) != len(std):
            raise ValueError(
                f"ImageClassifierMetadata.mean and .std must have the same length (1 or 3), "
                f"got {len(mean)} and {len(std)}"
            )
        if any(value <= 0 for value in std):
            raise ValueError(f"ImageClassifierMetadata.std must be > 0 for every channel, got {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def per_channel(self) -> bool:
        """True when channels are normalized differently (MediaPipe Tasks refuses that)."""
        return len(set(self.mean)) > 1 or len(set(self.std)) > 1


def pixel_normalization(preprocessing: Preprocessing) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` for :class:`ImageClassifierMetadata`: what an app applies to uint8 pixels,
    ``(pixel - mean) / std``, for the model ``preprocessing`` describes -- its
    :meth:`~keras_lightnets.layers.preprocessing.Preprocessing.fed` statistics in [0, 255] units.
    One value when every channel has the same (the only form MediaPipe Tasks accepts): a model
    that normalizes inside gives ``(0,), (255 / pixel_max,)``."""
    if not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"`preprocessing` must be a Preprocessing, got {type(preprocessing).__name__}")
    mean, std = preprocessing.fed()
    mean, std = tuple(255.0 * m for m in mean), tuple(255.0 * s for s in std)
    if len(set(mean)) == 1 and len(set(std)) == 1:
        return mean[:1], std[:1]
    return mean, std


def _validated_labels(labels) -> tuple[str, ...]:
    # A string is a sequence too: "cat" would silently become three labels.
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
        raise TypeError(
            f"ImageClassifierMetadata.labels must be a list or tuple of strings, got {type(labels).__name__}"
        )
    if not labels:
        raise ValueError("ImageClassifierMetadata.labels must not be empty")
    for index, label in enumerate(labels):
        if not isinstance(label, str):
            raise TypeError(f"ImageClassifierMetadata.labels[{index}] must be a string, got {type(label).__name__}")
        # labels.txt holds one label per line: an empty label or a line break would shift the classes.
        if not label or "\n" in label or "\r" in label:
            raise ValueError(
                f"ImageClassifierMetadata.labels[{index}] must be a non-empty string without line breaks, got {label!r}"
            )
    return tuple(labels)


def _validated_floats(field_name: str, values) -> tuple[float, ...]:
    if isinstance(values, int | float):
        values = (values,)
    try:
        floats = tuple(float(value) for value in values)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"ImageClassifierMetadata.{field_name} must be a number or a sequence of 1 or 3 numbers, got {values!r}"
        ) from error
    if len(floats) not in (1, 3):
        raise ValueError(
            f"ImageClassifierMetadata.{field_name} must have 1 value (all channels) or 3 (R, G, B), got {len(floats)}"
        )
    if not all(math.isfinite(value) for value in floats):
        raise ValueError(f"ImageClassifierMetadata.{field_name} must be finite numbers, got {floats}")
    return floats


# --------------------------------------------------------------------------------------------
# flatbuffer schemas
# --------------------------------------------------------------------------------------------


def _schemas():
    """The generated schema modules mediapipe ships: (metadata schema, TFLite model schema)."""
    try:
        # `from ... import`: `import mediapipe.tasks.metadata.x as y` fails, because mediapipe/__init__
        # rebinds the attribute `mediapipe.tasks` to `mediapipe.tasks.python`.
        from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
        from mediapipe.tasks.metadata import schema_py_generated as model_fb
    except ImportError as error:
        raise ImportError(_MEDIAPIPE_MISSING) from error
    return metadata_fb, model_fb


def _as_model_bytes(model_content) -> bytes:
    if not isinstance(model_content, bytes | bytearray | memoryview):
        raise TypeError(f"model_content must be bytes of a .tflite file, got {type(model_content).__name__}")
    content = bytes(model_content)
    # A flatbuffer starts with the root table offset (4 bytes), then the file identifier.
    if len(content) < 8 or content[4:8] != _TFLITE_FILE_IDENTIFIER:
        raise ValueError(
            f"model_content is not a TFLite flatbuffer (expected the identifier {_TFLITE_FILE_IDENTIFIER!r} "
            f"at bytes 4:8, got {content[4:8]!r})"
        )
    return content


def _tensor_type_name(model_fb, tensor_type: int) -> str:
    names = {value: name for name, value in vars(model_fb.TensorType).items() if not name.startswith("_")}
    return names.get(tensor_type, str(tensor_type))


# --------------------------------------------------------------------------------------------
# min_parser_version
# --------------------------------------------------------------------------------------------

# Version of the metadata schema that introduced each member added after 1.0.0, as in
# GetMemberVersion() of the metadata parser: mediapipe/tasks/cc/metadata/metadata_version.cc
# (a copy of tflite-support's tensorflow_lite_support/metadata/cc/metadata_version.cc), and the
# "History" of metadata_schema.fbs. The minimum parser version is the largest version among the
# members a metadata buffer populates, "1.0.0" when it uses none of them. The readers compare it
# with their own version and refuse newer metadata ("Metadata schema version ... is smaller than
# the minimum version"), so it must be the real minimum: not the schema's latest, and not absent.
# Everything this module writes (ImageProperties, NormalizationOptions in a tensor's
# process_units, Stats, FeatureProperties, a TENSOR_AXIS_LABELS file without `version`) is 1.0.0.
_ASSOCIATED_FILE_TYPE_VERSIONS = {"VOCABULARY": (1, 0, 1), "SCANN_INDEX_FILE": (1, 4, 0)}
_ASSOCIATED_FILE_VERSION_FIELD = (1, 4, 1)
_PROCESS_UNIT_OPTION_VERSIONS = {
    "BertTokenizerOptions": (1, 1, 0),
    "SentencePieceTokenizerOptions": (1, 1, 0),
    "RegexTokenizerOptions": (1, 2, 1),
}
_AUDIO_PROPERTIES_VERSION = (1, 3, 0)
_SUBGRAPH_PROCESS_UNITS_VERSION = (1, 1, 0)  # SubGraphMetadata.input_/output_process_units
_SUBGRAPH_TENSOR_GROUPS_VERSION = (1, 2, 0)  # SubGraphMetadata.input_/output_tensor_groups
_SUBGRAPH_CUSTOM_METADATA_VERSION = (1, 5, 0)
_BASE_PARSER_VERSION = (1, 0, 0)


def _min_parser_version(metadata_fb, model_metadata) -> str:
    """Port of GetMinimumMetadataParserVersion() to the Object API (``ModelMetadataT``)."""
    file_types = {
        getattr(metadata_fb.AssociatedFileType, name): v for name, v in _ASSOCIATED_FILE_TYPE_VERSIONS.items()
    }
    option_types = {
        getattr(metadata_fb.ProcessUnitOptions, name): v for name, v in _PROCESS_UNIT_OPTION_VERSIONS.items()
    }
    versions = [_BASE_PARSER_VERSION]

    def visit_files(files):
        for associated_file in files or ():
            versions.append(file_types.get(associated_file.type, _BASE_PARSER_VERSION))
            if associated_file.version is not None:
                versions.append(_ASSOCIATED_FILE_VERSION_FIELD)

    def visit_process_units(units):
        for unit in units or ():
            versions.append(option_types.get(unit.optionsType, _BASE_PARSER_VERSION))

    for subgraph in model_metadata.subgraphMetadata or ():
        for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
            visit_files(tensor.associatedFiles)
            visit_process_units(tensor.processUnits)
            content = tensor.content
            if content is not None and content.contentPropertiesType == metadata_fb.ContentProperties.AudioProperties:
                versions.append(_AUDIO_PROPERTIES_VERSION)
        visit_files(subgraph.associatedFiles)
        for units in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if units is not None:
                versions.append(_SUBGRAPH_PROCESS_UNITS_VERSION)
                visit_process_units(units)
        if subgraph.inputTensorGroups is not None or subgraph.outputTensorGroups is not None:
            versions.append(_SUBGRAPH_TENSOR_GROUPS_VERSION)
        if subgraph.customMetadata is not None:
            versions.append(_SUBGRAPH_CUSTOM_METADATA_VERSION)
    visit_files(model_metadata.associatedFiles)
    return ".".join(str(part) for part in max(versions))


# --------------------------------------------------------------------------------------------
# embed
# --------------------------------------------------------------------------------------------


def _check_model(model_fb, model, metadata: ImageClassifierMetadata):
    """Checks the model is a single-input image classifier the metadata describes; returns its tensors."""
    if model.SubgraphsLength() < 1:
        raise ValueError("model_content has no subgraph")
    subgraph = model.Subgraphs(0)
    if subgraph.InputsLength() != 1 or subgraph.OutputsLength() != 1:
        raise ValueError(
            f"an image classifier has one input and one output tensor; the model's first subgraph has "
            f"{subgraph.InputsLength()} inputs and {subgraph.OutputsLength()} outputs"
        )
    input_tensor = subgraph.Tensors(subgraph.Inputs(0))
    output_tensor = subgraph.Tensors(subgraph.Outputs(0))

    input_shape = tuple(int(d) for d in input_tensor.ShapeAsNumpy()) if input_tensor.ShapeLength() else ()
    if len(input_shape) != 4 or input_shape[3] not in (1, 3):
        raise ValueError(
            f"the model input must be a 4-D image tensor (batch, height, width, channels) with 1 or 3 channels, "
            f"got shape {list(input_shape)}"
        )
    channels = input_shape[3]
    if len(metadata.mean) not in (1, channels):
        raise ValueError(
            f"ImageClassifierMetadata.mean and .std have {len(metadata.mean)} values; the model input has "
            f"{channels} channels (allowed: 1 value for all channels, or {channels})"
        )

    output_shape = tuple(int(d) for d in output_tensor.ShapeAsNumpy()) if output_tensor.ShapeLength() else ()
    if not output_shape:
        raise ValueError("the model output tensor is a scalar; a classifier outputs one score per class")
    if output_shape[-1] != len(metadata.labels):
        raise ValueError(
            f"number of labels ({len(metadata.labels)}) must equal the model output's last dimension "
            f"({output_shape[-1]}, output shape {list(output_shape)})"
        )

    for index in range(model.BuffersLength()):
        # Models over 2 GB keep weights after the flatbuffer at absolute file offsets (offset > 1):
        # re-serializing the flatbuffer would move them.
        if model.Buffers(index).Offset() > 1:
            raise ValueError("models with buffers stored outside the flatbuffer (over 2 GB) are not supported")
    return input_tensor, output_tensor


def _warn_mediapipe_incompatibilities(model_fb, input_tensor, metadata: ImageClassifierMetadata):
    """MediaPipe Tasks' checks (image_tensor_specs.cc, image_preprocessing_graph.cc) a valid file can fail."""
    tensor_type = input_tensor.Type()
    if tensor_type not in (model_fb.TensorType.FLOAT32, model_fb.TensorType.UINT8):
        warnings.warn(
            f"the model input is {_tensor_type_name(model_fb, tensor_type)}: MediaPipe Tasks accepts float32 or "
            f"uint8 image inputs only (convert with inference_input_type=tf.uint8 or tf.float32)",
            MediaPipeCompatibilityWarning,
            stacklevel=3,
        )
    if input_tensor.Shape(3) != 3:
        warnings.warn(
            "the model input has 1 channel: MediaPipe Tasks accepts RGB inputs only (3 channels)",
            MediaPipeCompatibilityWarning,
            stacklevel=3,
        )
    if tensor_type == model_fb.TensorType.FLOAT32 and metadata.per_channel:
        warnings.warn(
            f"per-channel normalization (mean={metadata.mean}, std={metadata.std}): MediaPipe Tasks refuses it "
            f"('Per-channel image normalization is not available'); the LiteRT support library applies it. For "
            f"MediaPipe, fold the normalization into the model and describe the input with one mean and one std",
            MediaPipeCompatibilityWarning,
            stacklevel=3,
        )
    if tensor_type == model_fb.TensorType.UINT8:
        # MediaPipe feeds uint8 inputs the raw pixels and ignores NormalizationOptions: the input
        # quantization must do the normalization, real = scale * (q - zero_point) = (q - mean) / std.
        quantization = input_tensor.Quantization()
        if quantization is not None and quantization.ScaleLength() == 1 and quantization.ZeroPointLength() == 1:
            scale, zero_point = float(quantization.Scale(0)), float(quantization.ZeroPoint(0))
            if not all(
                math.isclose(scale, 1.0 / std, rel_tol=0.02) and abs(zero_point - mean) <= 1.0
                for mean, std in zip(metadata.mean, metadata.std, strict=True)
            ):
                warnings.warn(
                    f"the uint8 input is quantized with scale={scale:.6g}, zero_point={zero_point:g}, which is not "
                    f"(pixel - mean) / std for mean={metadata.mean}, std={metadata.std} (expected scale=1/std, "
                    f"zero_point=mean): MediaPipe Tasks feeds uint8 inputs the raw pixels and ignores the "
                    f"normalization in the metadata",
                    MediaPipeCompatibilityWarning,
                    stacklevel=3,
                )


def _input_tensor_metadata(metadata_fb, model_fb, input_tensor, metadata: ImageClassifierMetadata):
    tensor_metadata = metadata_fb.TensorMetadataT()
    tensor_metadata.name = INPUT_TENSOR_NAME
    tensor_metadata.description = metadata.input_description

    image_properties = metadata_fb.ImagePropertiesT()
    grayscale = input_tensor.Shape(3) == 1
    image_properties.colorSpace = metadata_fb.ColorSpaceType.GRAYSCALE if grayscale else metadata_fb.ColorSpaceType.RGB
    tensor_metadata.content = metadata_fb.ContentT()
    tensor_metadata.content.contentPropertiesType = metadata_fb.ContentProperties.ImageProperties
    tensor_metadata.content.contentProperties = image_properties

    normalization = metadata_fb.NormalizationOptionsT()
    normalization.mean = list(metadata.mean)
    normalization.std = list(metadata.std)
    process_unit = metadata_fb.ProcessUnitT()
    process_unit.optionsType = metadata_fb.ProcessUnitOptions.NormalizationOptions
    process_unit.options = normalization
    tensor_metadata.processUnits = [process_unit]

    # Stats: the range of the tensor's values, as mediapipe's writer records it: the pixel range
    # [0, 255] for uint8 inputs, its normalization per channel for float inputs.
    stats = metadata_fb.StatsT()
    if input_tensor.Type() == model_fb.TensorType.UINT8:
        stats.min, stats.max = [_PIXEL_MIN], [_PIXEL_MAX]
    else:
        stats.min = [(_PIXEL_MIN - m) / s for m, s in zip(metadata.mean, metadata.std, strict=True)]
        stats.max = [(_PIXEL_MAX - m) / s for m, s in zip(metadata.mean, metadata.std, strict=True)]
    tensor_metadata.stats = stats
    return tensor_metadata


def _output_tensor_metadata(metadata_fb, metadata: ImageClassifierMetadata):
    tensor_metadata = metadata_fb.TensorMetadataT()
    tensor_metadata.name = OUTPUT_TENSOR_NAME
    tensor_metadata.description = metadata.output_description
    tensor_metadata.content = metadata_fb.ContentT()
    tensor_metadata.content.contentPropertiesType = metadata_fb.ContentProperties.FeatureProperties
    tensor_metadata.content.contentProperties = metadata_fb.FeaturePropertiesT()
    # No Stats: whether the output is a softmax (range [0, 1]) or logits is not recorded in the model.
    tensor_metadata.stats = metadata_fb.StatsT()

    labels_file = metadata_fb.AssociatedFileT()
    labels_file.name = LABELS_FILE_NAME
    labels_file.description = "Labels of the output classes, one per line; line i names class i."
    labels_file.type = metadata_fb.AssociatedFileType.TENSOR_AXIS_LABELS
    tensor_metadata.associatedFiles = [labels_file]
    return tensor_metadata


def _metadata_buffer(metadata_fb, model_fb, input_tensor, metadata: ImageClassifierMetadata) -> bytes:
    import flatbuffers  # a mediapipe dependency

    subgraph_metadata = metadata_fb.SubGraphMetadataT()
    subgraph_metadata.inputTensorMetadata = [_input_tensor_metadata(metadata_fb, model_fb, input_tensor, metadata)]
    subgraph_metadata.outputTensorMetadata = [_output_tensor_metadata(metadata_fb, metadata)]

    model_metadata = metadata_fb.ModelMetadataT()
    model_metadata.name = metadata.name
    model_metadata.description = metadata.description
    model_metadata.version = metadata.version
    model_metadata.author = metadata.author
    model_metadata.license = metadata.license
    model_metadata.subgraphMetadata = [subgraph_metadata]
    model_metadata.minParserVersion = _min_parser_version(metadata_fb, model_metadata)

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_metadata.Pack(builder), _METADATA_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _append_zip(content: bytes, files: dict[str, bytes]) -> bytes:
    """``content`` followed by a zip archive of ``files``, as mediapipe's MetadataPopulator writes it."""
    stream = io.BytesIO(content)
    stream.seek(0, io.SEEK_END)
    # Mode "a" on bytes that are not a zip appends a new archive after them. Members are stored
    # uncompressed, as the populator does, so that the C++ readers can hand out views into the file.
    # A fixed timestamp keeps the output a function of the inputs (reproducible files).
    with zipfile.ZipFile(stream, mode="a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME), data)
    return stream.getvalue()


def embed_metadata(model_content: bytes, metadata: ImageClassifierMetadata) -> bytes:
    """Returns ``model_content`` (a ``.tflite`` file's bytes) with image classifier metadata and ``labels.txt``.

    The model must have one 4-D image input (batch, height, width, 1 or 3 channels) and one output
    whose last dimension is the number of labels. Metadata already embedded is replaced, and so
    are associated files packed before (this writes ``labels.txt`` only). The model's operators,
    tensors and weights are kept: the result runs as the input does.

    Raises:
        ImportError: mediapipe (which ships the flatbuffer schemas) is not installed.
        TypeError: ``model_content`` is not bytes, or ``metadata`` is not an ImageClassifierMetadata.
        ValueError: ``model_content`` is not a TFLite flatbuffer, or does not fit ``metadata``.

    Warns:
        MediaPipeCompatibilityWarning: the file is valid, but MediaPipe Tasks' ImageClassifier will
        refuse it or feed it unnormalized input (see the module docstring).
    """
    if not isinstance(metadata, ImageClassifierMetadata):
        raise TypeError(f"metadata must be an ImageClassifierMetadata, got {type(metadata).__name__}")
    content = _as_model_bytes(model_content)
    metadata_fb, model_fb = _schemas()

    model = model_fb.Model.GetRootAs(content, 0)
    input_tensor, _ = _check_model(model_fb, model, metadata)
    _warn_mediapipe_incompatibilities(model_fb, input_tensor, metadata)

    metadata_buffer = _metadata_buffer(metadata_fb, model_fb, input_tensor, metadata)
    flatbuffer = with_metadata_entry(content, METADATA_FIELD_NAME, metadata_buffer)
    # A trailing newline, as label files have: the readers drop one empty last line.
    labels_txt = ("\n".join(metadata.labels) + "\n").encode("utf-8")
    return _append_zip(flatbuffer, {LABELS_FILE_NAME: labels_txt})


# --------------------------------------------------------------------------------------------
# read
# --------------------------------------------------------------------------------------------


def _decode(value) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def read_metadata(path_or_bytes: str | os.PathLike | bytes) -> dict:
    """Reads back what :func:`embed_metadata` wrote, from a ``.tflite`` path or its bytes.

    Returns a dict with ``name``, ``version``, ``description``, ``author``, ``license``,
    ``min_parser_version``, ``input_name``, ``output_name``, ``input_description``,
    ``output_description``, ``color_space`` ("RGB", "GRAYSCALE"), ``mean`` and ``std`` (tuples
    of floats, as stored: float32), ``input_stats`` (``{"min": ..., "max": ...}``), ``labels_file``,
    ``labels`` (a tuple of strings, read from the zip archive) and ``preprocessing``: the full
    :class:`~keras_lightnets.layers.preprocessing.Preprocessing` :func:`export_tflite` records
    next to this metadata (crop, interpolation, input size, pixel range), ``None`` without one.

    Raises:
        ValueError: the file is not a TFLite flatbuffer, or has no (valid) TFLITE_METADATA.
    """
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        content = _as_model_bytes(path_or_bytes)
    else:
        content = _as_model_bytes(Path(path_or_bytes).read_bytes())
    metadata_fb, model_fb = _schemas()

    model = model_fb.Model.GetRootAs(content, 0)
    metadata_buffer = None
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if _decode(entry.Name()) == METADATA_FIELD_NAME:
            metadata_buffer = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    if metadata_buffer is None:
        raise ValueError(f"the model has no {METADATA_FIELD_NAME} metadata (embed it with embed_metadata)")
    if not metadata_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(metadata_buffer, 0):
        raise ValueError(f"the {METADATA_FIELD_NAME} buffer is not a metadata flatbuffer (identifier M001)")
    model_metadata = metadata_fb.ModelMetadataT.InitFromObj(metadata_fb.ModelMetadata.GetRootAs(metadata_buffer, 0))
    if not model_metadata.subgraphMetadata:
        raise ValueError("the metadata has no SubGraphMetadata")
    subgraph = model_metadata.subgraphMetadata[0]
    if not subgraph.inputTensorMetadata or not subgraph.outputTensorMetadata:
        raise ValueError("the metadata describes no input or no output tensor")
    input_metadata = subgraph.inputTensorMetadata[0]
    output_metadata = subgraph.outputTensorMetadata[0]

    normalization = None
    for unit in input_metadata.processUnits or ():
        if unit.optionsType == metadata_fb.ProcessUnitOptions.NormalizationOptions:
            normalization = unit.options
            break
    color_space = None
    content_properties = input_metadata.content.contentProperties if input_metadata.content else None
    if isinstance(content_properties, metadata_fb.ImagePropertiesT):
        color_spaces = {v: k for k, v in vars(metadata_fb.ColorSpaceType).items() if not k.startswith("_")}
        color_space = color_spaces.get(content_properties.colorSpace)
    stats = input_metadata.stats

    labels_file = None
    for associated_file in output_metadata.associatedFiles or ():
        if associated_file.type == metadata_fb.AssociatedFileType.TENSOR_AXIS_LABELS:
            labels_file = _decode(associated_file.name)
            break
    labels = None
    if labels_file is not None:
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                labels_text = archive.read(labels_file).decode("utf-8")
        except (zipfile.BadZipFile, KeyError) as error:
            raise ValueError(f"the metadata names {labels_file!r}, which is not packed in the model") from error
        # Split on "\n" only, as MediaPipe does (str.splitlines also splits on other separators).
        lines = labels_text.split("\n")
        labels = tuple(lines[:-1] if lines and not lines[-1] else lines)

    def floats(values):
        return None if values is None else tuple(float(value) for value in values)

    return {
        "name": _decode(model_metadata.name),
        "version": _decode(model_metadata.version),
        "description": _decode(model_metadata.description),
        "author": _decode(model_metadata.author),
        "license": _decode(model_metadata.license),
        "min_parser_version": _decode(model_metadata.minParserVersion),
        "input_name": _decode(input_metadata.name),
        "input_description": _decode(input_metadata.description),
        "output_name": _decode(output_metadata.name),
        "output_description": _decode(output_metadata.description),
        "color_space": color_space,
        "mean": floats(normalization.mean) if normalization is not None else None,
        "std": floats(normalization.std) if normalization is not None else None,
        "input_stats": {"min": floats(stats.min), "max": floats(stats.max)} if stats is not None else None,
        "labels_file": labels_file,
        "labels": labels,
        "preprocessing": read_preprocessing_record(content),
    }
