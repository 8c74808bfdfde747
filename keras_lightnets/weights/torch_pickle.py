"""Read a PyTorch ``.pth`` / ``.pt`` / ``.bin`` checkpoint into NumPy arrays without torch, and
without running any code stored in it.

``torch.save`` writes Python pickles, and unpickling may call any importable function the file
names (``os.system`` included). This reader unpickles with an allow-list: it rebuilds tensors,
storages, ``OrderedDict`` and plain containers, and refuses every other global with
:class:`UnsafeCheckpointError` before anything is called. Both of torch's formats are read:

- the zip format (torch >= 1.6): ``<root>/data.pkl`` holds the object, tensors point to
  storages stored raw as ``<root>/data/<key>``;
- the legacy format (torchvision's older files, many hand-converted checkpoints): five pickles in
  a row (magic number, protocol, system info, the object, the storage keys), then each storage's
  element count (int64) and raw bytes in that order.

Only little-endian files are read (what every published checkpoint is).
"""

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["UnsafeCheckpointError", "read_torch_checkpoint"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage type name → NumPy dtype. bfloat16 has no NumPy dtype: read as uint16, widened below.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint's pickle names a global outside the allow-list (it would run code)."""


class _StorageType:
    """What ``torch.FloatStorage`` & co. unpickle to: a marker carrying the element dtype."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


def _as_numpy(raw, dtype):
    if dtype == "bfloat16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """``torch._utils._rebuild_tensor_v2``'s job, on a NumPy storage: a strided *view* (the legacy
    format fills its storages after the object is unpickled; :func:`_tensors` copies at the end)."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    base = storage[int(storage_offset) :]
    strides = tuple(s * storage.itemsize for s in stride)
    return np.lib.stride_tricks.as_strided(base, shape=size, strides=strides)


def _rebuild_parameter(data, *_ignored):
    return data


# (module, name) → what it unpickles to. Nothing else is ever looked up.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to unpickle {module}.{name}: a checkpoint may only hold tensors and dicts of them "
                "(loading it would run code named in the file)"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafeCheckpointError(f"unknown persistent id in the checkpoint: {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(f"unknown storage type in the checkpoint: {storage_type!r}")
        return self._load_storage(str(key), storage_type.dtype, int(numel))


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a torch zip checkpoint has one data.pkl, found {pickles}")
        root = pickles[0][: -len("data.pkl")]
        storages = {}

        def load_storage(key, dtype, _numel):
            if key not in storages:
                storages[key] = _as_numpy(archive.read(f"{root}data/{key}"), dtype)
            return storages[key]

        with archive.open(pickles[0]) as data:
            return _RestrictedUnpickler(io.BytesIO(data.read()), load_storage).load()


def _read_legacy(path):
    with open(path, "rb") as file:
        # The first three pickles are plain numbers and a dict: any global in them is refused too.
        def header():
            return _RestrictedUnpickler(file, _no_storage).load()

        if header() != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a PyTorch checkpoint (no torch magic number, not a zip file)")
        if header() != LEGACY_PROTOCOL:
            raise ValueError(f"{path}: unsupported legacy torch protocol")
        header()  # system info: endianness, type sizes
        storages = {}  # key → array, filled from the bytes after the pickles

        def load_storage(key, dtype, numel):
            if dtype == "bfloat16":
                raise ValueError(f"{path}: bfloat16 tensors in a legacy-format checkpoint are not supported")
            if key not in storages:
                storages[key] = np.empty(numel, dtype=np.dtype(dtype).newbyteorder("<"))
            return storages[key]

        result = _RestrictedUnpickler(file, load_storage).load()
        keys = _RestrictedUnpickler(file, _no_storage).load()
        for key in keys:
            (numel,) = struct.unpack("<q", file.read(8))
            target = storages[key]
            if numel != target.size:
                raise ValueError(f"{path}: storage {key} holds {numel} elements, its tensors expect {target.size}")
            raw = file.read(target.nbytes)
            if len(raw) != target.nbytes:
                raise ValueError(f"{path}: truncated checkpoint (storage {key} is cut short)")
            target.view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
        return result


def _no_storage(*_args):
    raise UnsafeCheckpointError("a storage where none can be")


def _tensors(obj, prefix=""):
    """``{dotted key: array}`` of a (nested) state dict; a ``state_dict`` / ``model`` wrapper is unwrapped."""
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model", "model_state_dict"):
            if wrapper in obj and isinstance(obj[wrapper], dict) and not prefix:
                return _tensors(obj[wrapper])
        found = {}
        for key, value in obj.items():
            found.update(_tensors(value, f"{prefix}{key}."))
        return found
    if isinstance(obj, np.ndarray):
        return {prefix[:-1]: np.array(obj, copy=True)}  # off the storage views
    return {}  # numbers, strings, optimizer settings: not weights


def read_torch_checkpoint(path):
    """``{key: numpy array}`` of the PyTorch checkpoint at ``path`` (zip or legacy format), without torch.

    A checkpoint saved as ``{"state_dict": ...}`` / ``{"model": ...}`` is unwrapped. Raises
    :class:`UnsafeCheckpointError` when the file's pickle names anything but tensors, storages and
    dicts, ``ValueError`` when it is not a torch checkpoint.
    """
    obj = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    return _tensors(obj)
