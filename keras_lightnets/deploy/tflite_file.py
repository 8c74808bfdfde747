"""What is inside a ``.tflite`` file: operators, tensor types, inputs and outputs.

Read straight from the flatbuffer with the TFLite schema that TensorFlow ships (no
interpreter, so no delegate rewrites the graph), for the checks that matter on a phone:
built-in operators only (no Flex/``SELECT_TF_OPS``, no custom ops) and, for an INT8 model,
no float tensor inside the graph.

It also keeps the file's preprocessing record: the model card's
:class:`~keras_lightnets.layers.preprocessing.Preprocessing` (input size, mean/std, crop
fraction, interpolation, pixel range, whether the graph normalizes itself) as JSON in an entry
of the flatbuffer's own ``metadata`` list named :data:`PREPROCESSING_RECORD`. The LiteRT
interpreter and MediaPipe Tasks read only the entries they know (``min_runtime_version``,
``TFLITE_METADATA``), so the record changes nothing for them, needs no mediapipe, and survives
the Android metadata being embedded or replaced afterwards. ``evaluate_tflite`` reads it back.
"""

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as schema

from keras_lightnets.layers.preprocessing import Preprocessing

__all__ = [
    "PREPROCESSING_RECORD",
    "TFLiteSummary",
    "inspect_tflite",
    "read_preprocessing_record",
    "read_tflite_bytes",
    "with_preprocessing_record",
]

# The name of the flatbuffer metadata entry holding the record, and the version of its JSON layout.
PREPROCESSING_RECORD = "keras_lightnets_preprocessing"
_RECORD_VERSION = 1

_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_TENSOR_TYPE_NAMES = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
_INTEGER_TYPES = {"int8", "uint8", "int16", "int32", "int64"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class TFLiteSummary:
    """The facts :func:`inspect_tflite` reads from a model.

    ``operators``: op names in graph order (custom ops as ``CUSTOM:<name>``, Flex ops start
    with ``Flex``); ``float_tensors_inside``: float tensors other than the graph's inputs
    and outputs; empty for a fully integer model; ``float_operators``: the operators that write
    them (what runs in float inside the graph, DEQUANTIZE included), in graph order, once each;
    ``float_operator_count``: how many operators write them (0 for a fully integer model).
    """

    size_bytes: int
    operators: tuple
    inputs: tuple
    outputs: tuple
    tensor_types: dict
    float_tensors_inside: tuple
    custom_operators: tuple
    float_operators: tuple = ()
    float_operator_count: int = 0

    @property
    def builtin_only(self):
        return not self.custom_operators

    @property
    def fully_integer(self):
        return not self.float_tensors_inside and any(t in _INTEGER_TYPES for t in self.tensor_types)


def read_tflite_bytes(path_or_bytes):
    """The bytes of a ``.tflite`` given as a path or as bytes, checked to be a TFLite flatbuffer."""
    if isinstance(path_or_bytes, bytes | bytearray):
        content = bytes(path_or_bytes)
    elif isinstance(path_or_bytes, str | Path):
        path = Path(path_or_bytes)
        if not path.is_file():
            raise FileNotFoundError(f"no TFLite file at {str(path)!r}")
        content = path.read_bytes()
    else:
        raise TypeError(f"expected a path or the bytes of a .tflite file, got {type(path_or_bytes).__name__}")
    if content[4:8] != b"TFL3":
        raise ValueError("not a TFLite model: the flatbuffer identifier 'TFL3' is missing")
    return content


def _tensor_info(tensor):
    quantization = tensor.quantization
    scale = zero_point = None
    if quantization is not None and quantization.scale is not None and len(quantization.scale) == 1:
        scale, zero_point = float(quantization.scale[0]), int(quantization.zeroPoint[0])
    name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
    shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else ()))
    return TensorInfo(name, shape, _TENSOR_TYPE_NAMES[tensor.type], scale, zero_point)


def inspect_tflite(path_or_bytes):
    """A :class:`TFLiteSummary` of the ``.tflite`` at ``path_or_bytes`` (a path or the file's bytes)."""
    content = read_tflite_bytes(path_or_bytes)
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    except Exception as error:  # noqa: BLE001 - a cut flatbuffer fails in struct/IndexError/...
        raise ValueError(
            f"not a readable TFLite model ({len(content):,} bytes; {type(error).__name__}): the file is truncated "
            "or corrupt; export it again"
        ) from None
    subgraph = model.subgraphs[0]
    tensors = [_tensor_info(t) for t in subgraph.tensors]
    opcode_names = []
    for opcode in model.operatorCodes:
        code = max(opcode.builtinCode, opcode.deprecatedBuiltinCode)
        if code == schema.BuiltinOperator.CUSTOM:
            custom = opcode.customCode.decode() if isinstance(opcode.customCode, bytes) else opcode.customCode
            opcode_names.append(custom if custom.startswith("Flex") else f"CUSTOM:{custom}")
        else:
            opcode_names.append(_BUILTIN_NAMES.get(code, f"BUILTIN_{code}"))
    operators = tuple(opcode_names[op.opcodeIndex] for op in subgraph.operators)

    # Float is allowed only at the graph's own inputs and outputs (a float-I/O INT8 model
    # quantizes its input and dequantizes its output); a float op hidden between a
    # DEQUANTIZE and a QUANTIZE inside the graph is reported.
    boundary = set(np.asarray(subgraph.inputs).tolist()) | set(np.asarray(subgraph.outputs).tolist())
    float_inside = tuple(
        t.name for index, t in enumerate(tensors) if t.dtype.startswith("float") and index not in boundary
    )
    float_indices = {index for index, t in enumerate(tensors) if t.dtype.startswith("float")} - boundary
    float_writers = [
        operators[position]
        for position, op in enumerate(subgraph.operators)
        if float_indices & set(np.asarray(op.outputs if op.outputs is not None else []).tolist())
    ]
    float_operators = tuple(dict.fromkeys(float_writers))
    types = {}
    for t in tensors:
        types[t.dtype] = types.get(t.dtype, 0) + 1
    return TFLiteSummary(
        size_bytes=len(content),
        operators=operators,
        inputs=tuple(tensors[i] for i in np.asarray(subgraph.inputs).tolist()),
        outputs=tuple(tensors[i] for i in np.asarray(subgraph.outputs).tolist()),
        tensor_types=types,
        float_tensors_inside=float_inside,
        custom_operators=tuple(sorted({n for n in operators if n.startswith(("Flex", "CUSTOM:"))})),
        float_operators=float_operators,
        float_operator_count=len(float_writers),
    )


def _entry_name(entry):
    name = entry.name if hasattr(entry, "name") else entry.Name()
    return name.decode("utf-8") if isinstance(name, bytes) else name


def with_preprocessing_record(path_or_bytes, preprocessing):
    """The ``.tflite`` bytes with ``preprocessing`` recorded in their :data:`PREPROCESSING_RECORD`
    metadata entry (an existing record is replaced); operators, tensors and weights are kept.

    Call it before the Android metadata is embedded: that appends a zip archive of associated
    files after the flatbuffer, which rewriting the flatbuffer would drop (refused here).
    """
    if not isinstance(preprocessing, Preprocessing):
        raise TypeError(f"`preprocessing` must be a Preprocessing, got {type(preprocessing).__name__}")
    content = read_tflite_bytes(path_or_bytes)
    if zipfile.is_zipfile(io.BytesIO(content)):
        raise ValueError(
            "the .tflite already carries associated files (Android metadata): record the preprocessing before "
            "embed_metadata, which export_tflite does"
        )
    record = json.dumps({"version": _RECORD_VERSION, "preprocessing": preprocessing.to_config()}, sort_keys=True)
    return with_metadata_entry(content, PREPROCESSING_RECORD, record.encode("utf-8"))


def with_metadata_entry(content, name, data):
    """The model flatbuffer ``content`` with ``data`` (bytes) as its metadata entry ``name``: an
    existing entry's buffer is reused (removing a buffer would renumber the buffers every tensor
    points to) and duplicates dropped; operators, tensors and weights are kept. What the
    preprocessing record and the Android metadata are both written with."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, dtype=np.uint8)  # a numpy array is packed in one copy, bytes byte by byte
    model.buffers = model.buffers or []
    model.metadata = model.metadata or []
    entries = [entry for entry in model.metadata if _entry_name(entry) == name]
    if entries:
        model.buffers[entries[0].buffer] = buffer
        model.metadata = [entry for entry in model.metadata if entry not in entries[1:]]
    else:
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + len(data) + 1024)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def read_preprocessing_record(path_or_bytes):
    """The :class:`Preprocessing` a ``.tflite`` records (see :func:`with_preprocessing_record`), or
    ``None`` for a file without a record (exported by another tool, or by keras_lightnets 0.1)."""
    content = read_tflite_bytes(path_or_bytes)
    model = schema.Model.GetRootAsModel(content, 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if _entry_name(entry) == PREPROCESSING_RECORD:
            data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            record = json.loads(data.decode("utf-8"))
            if record.get("version") != _RECORD_VERSION:
                raise ValueError(
                    f"the file's {PREPROCESSING_RECORD} record has version {record.get('version')!r}; this "
                    f"keras_lightnets reads version {_RECORD_VERSION}: upgrade keras_lightnets"
                )
            return Preprocessing.from_config(record["preprocessing"])
    return None
