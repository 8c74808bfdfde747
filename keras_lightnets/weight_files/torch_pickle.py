"""Read a PyTorch ``.pth`` / ``.pt`` / ``.bin`` checkpoint into NumPy arrays without torch,
without running any code stored in it, and without trusting a number it contains.

``torch.save`` writes Python pickles, and unpickling may call any importable function the file
names (``os.system`` included). This reader unpickles with :class:`SafeUnpickler`, an allow-list
unpickler that rebuilds tensors, storages, ``OrderedDict`` and plain containers and refuses
everything else before it is called. Both of torch's formats are read:

- the zip format (torch >= 1.6): ``<root>/data.pkl`` holds the object, tensors point to
  storages stored raw (uncompressed) as ``<root>/data/<key>``;
- the legacy format (torchvision's older files, many hand-converted checkpoints): five pickles in
  a row (magic number, protocol, system info, the object, the storage keys), then each storage's
  element count (int64) and raw bytes in that order.

What a file can make this reader do is bounded (the guarantees the README's "Security" section
states):

- every tensor's offset, sizes and strides are checked against its storage's real length before
  any view is made; overlapping strides (a zero stride, an expanded tensor) are refused;
- tensors are read-only *views* of their storages, never copies: reading allocates the storage
  bytes the file holds (bfloat16 storages twice that, widened to float32) plus the pickle's own
  objects, at most :data:`MAX_PICKLE_BYTES` of pickle in at most :data:`MAX_PICKLE_OPS` opcodes,
  whatever the tensors claim. Shared storages (tied weights) cost nothing extra;
- a storage's size is checked against the bytes left in the file before it is read, and a zip
  member must be stored uncompressed (as ``torch.save`` writes it) inside the file's bounds;
- the allow-listed objects cannot be changed by the file (``BUILD`` / ``__setstate__`` on them is
  refused), so nothing one load does survives it;
- nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_TENSORS` tensors, more than
  :data:`MAX_DIMS` dimensions or a container that contains itself are refused.

Every problem is a :class:`~keras_lightnets.weight_files.errors.CheckpointError` naming the file (an
:class:`~keras_lightnets.weight_files.errors.UnsafeCheckpointError` where the pickle asks for code).
Only little-endian files are read (what every published checkpoint is).
"""

import io
import math
import os
import pickle
import reprlib
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from keras_lightnets.weight_files.errors import CheckpointError, UnsafeCheckpointError, check_checkpoint_file

__all__ = [
    "MAX_DEPTH",
    "MAX_DIMS",
    "MAX_PICKLE_BYTES",
    "MAX_PICKLE_OPS",
    "MAX_TENSORS",
    "SafeUnpickler",
    "UnsafeCheckpointError",
    "read_torch_checkpoint",
]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# The bounds on what a file may ask for. The largest published CNN checkpoints hold ~3,000
# tensors in a ~0.5 MB pickle; these leave room for models 30x larger and keep the pickle's own
# objects (at most ~64 bytes per opcode) under ~256 MB.
MAX_PICKLE_BYTES = 64 << 20
MAX_PICKLE_OPS = 4_000_000
MAX_TENSORS = 100_000
MAX_DEPTH = 32
MAX_DIMS = 16
MAX_KEY_LENGTH = 1024

# torch storage type name → NumPy dtype. bfloat16 has no NumPy dtype: read as uint16, widened.
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
STORED_ITEMSIZE = {
    name: 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize for name, dtype in STORAGE_DTYPES.items()
}


class _Frozen:
    """Base of the objects allow-listed names unpickle to: no ``__dict__``, no attribute can be
    set after construction and ``__setstate__`` (pickle's BUILD) is refused, so a file can't
    change them for itself or for a later load."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise UnsafeCheckpointError(None, f"the checkpoint tried to set {name!r} on an allow-listed object")

    def __setstate__(self, state):
        raise UnsafeCheckpointError(None, "the checkpoint tried to change an allow-listed object (pickle BUILD)")


class _StorageType(_Frozen):
    """What ``torch.FloatStorage`` & co. unpickle to: a marker naming the element type."""

    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    def __repr__(self):
        return f"torch.{self.name}"

    def __call__(self, *args):
        raise CheckpointError(None, f"torch.{self.name} is called (torch only names it in a storage record)")


class _Allowed(_Frozen):
    """An allow-listed callable: calling it is the only thing a file can do with it."""

    __slots__ = ("function", "qualified_name")

    def __init__(self, function, qualified_name):
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "qualified_name", qualified_name)

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self):
        return self.qualified_name


class _Storage:
    """One storage of the file: its key, dtype name and element count; ``array`` once read."""

    def __init__(self, key, type_name, numel):
        self.key, self.type_name, self.numel = key, type_name, numel
        self.array = None


class _TensorRef:
    """A tensor as the pickle describes it, checked; made into a view once its storage is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def view(self):
        array = self.storage.array
        itemsize = array.itemsize
        base = array[self.offset :] if self.offset < array.size else array[:0]
        strides = tuple(s * itemsize for s in self.stride)
        view = np.lib.stride_tricks.as_strided(base, shape=self.size, strides=strides, writeable=False)
        return view


def _int_tuple(value, what):
    if not isinstance(value, tuple | list) or len(value) > MAX_DIMS:
        raise CheckpointError(
            None, f"a tensor's {what} must be a tuple of at most {MAX_DIMS} integers, got {reprlib.repr(value)}"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise CheckpointError(None, f"a tensor's {what} must be non-negative integers, got {reprlib.repr(value)}")
    return tuple(value)


def check_tensor_geometry(storage_numel, offset, size, stride):
    """Raises unless a tensor of ``size``/``stride`` at ``offset`` lies inside a storage of
    ``storage_numel`` elements with no element reachable twice (no zero or overlapping strides).

    Sorted by stride, each dimension's stride must step past everything the smaller ones reach;
    then the last element reachable, ``offset + sum((size - 1) * stride)``, must be inside the
    storage. So a tensor never has more elements than its storage.
    """
    if len(size) != len(stride):
        raise CheckpointError(None, f"a tensor has {len(size)} sizes but {len(stride)} strides")
    if math.prod(size) == 0:
        if offset > storage_numel:
            raise CheckpointError(None, f"an empty tensor starts at {offset}, past its {storage_numel}-element storage")
        return
    reach = 0
    for step, length in sorted((st, n) for n, st in zip(size, stride, strict=True) if n > 1):
        if step <= reach:
            raise CheckpointError(
                None,
                f"a tensor of size {size} with strides {stride} reads storage elements more than once "
                "(a zero stride or an expanded tensor): refused, a checkpoint stores every element",
            )
        reach += (length - 1) * step
    if offset + reach >= storage_numel:
        raise CheckpointError(
            None,
            f"a tensor of size {size}, strides {stride} at offset {offset} reaches element {offset + reach}, "
            f"outside its {storage_numel}-element storage",
        )


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """``torch._utils._rebuild_tensor_v2``'s job, checked: a :class:`_TensorRef`."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(None, f"a tensor's storage must be a storage record, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
        raise CheckpointError(
            None, f"a tensor's storage offset must be a non-negative integer, got {reprlib.repr(storage_offset)}"
        )
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    check_tensor_geometry(storage.numel, storage_offset, size, stride)
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    if not isinstance(data, _TensorRef):
        raise CheckpointError(None, f"a parameter must wrap a tensor, got {type(data).__name__}")
    return data


def _ordered_dict(*args):
    if args:  # torch writes OrderedDict() and fills it with SETITEMS; nothing else is needed
        raise CheckpointError(None, "OrderedDict is called with arguments (torch never writes that)")
    return OrderedDict()


# (module, name) → what it unpickles to. Nothing else is ever looked up.
ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): _Allowed(_ordered_dict, "collections.OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"): _Allowed(_rebuild_tensor, "torch._utils._rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"): _Allowed(_rebuild_tensor, "torch._utils._rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"): _Allowed(_rebuild_parameter, "torch._utils._rebuild_parameter"),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class SafeUnpickler(pickle._Unpickler):
    """Python's own (pure-Python) unpickler with the allow-list above, a bound on opcodes and no
    opcode that could reach an object outside it.

    The pure-Python unpickler keeps its memo in a dict (the C one sizes an array from an index
    in the file) and lets every opcode be checked: ``BUILD`` only on ``OrderedDict`` instances
    this load made (torch's ``_metadata``), no ``NEWOBJ``, no out-of-band buffers. ``storage``
    turns a persistent id into a storage record (the caller reads its bytes).
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storage):
        super().__init__(file, encoding="utf-8")  # torch.load's encoding for Python 2 strings
        self._storage = storage
        self._ops = 0

    def load(self):
        # pickle._Unpickler.load, counting opcodes and marks: the only loop a file drives.
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)
        self.read, self.readinto, self.readline = self._unframer.read, self._unframer.readinto, self._unframer.readline
        self.metastack, self.stack, self.proto = [], [], 0
        self.append = self.stack.append
        try:
            while True:
                opcode = self.read(1)
                if not opcode:
                    raise EOFError("the pickle ends before its STOP opcode")
                self._ops += 1
                if self._ops > MAX_PICKLE_OPS:
                    raise CheckpointError(None, f"the pickle has more than {MAX_PICKLE_OPS:,} opcodes")
                if len(self.metastack) > MAX_DEPTH:
                    raise CheckpointError(None, f"the pickle nests deeper than {MAX_DEPTH} levels")
                self.dispatch[opcode[0]](self)
        except pickle._Stop as stop:
            return stop.value

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                None,
                f"refusing to unpickle {module}.{name}: a checkpoint may only hold tensors and dicts of them "
                "(loading it would run code named in the file)",
            ) from None

    def persistent_load(self, pid):
        # ("storage", type, key, location, numel); the legacy format adds a view record, None
        # since torch 0.4 (older storage views are not read).
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage" and pid[5:] in ((), (None,))):
            raise UnsafeCheckpointError(None, f"unknown persistent id in the checkpoint: {reprlib.repr(pid)}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(None, f"unknown storage type in the checkpoint: {reprlib.repr(storage_type)}")
        if not isinstance(key, str | int) or not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise CheckpointError(
                None, f"malformed storage record: key {reprlib.repr(key)}, {reprlib.repr(numel)} elements"
            )
        return self._storage(str(key), storage_type.name, numel)

    def load_build(self):
        state, target = self.stack.pop(), self.stack[-1]
        if type(target) is not OrderedDict or not isinstance(state, dict):
            raise UnsafeCheckpointError(
                None, f"refusing pickle BUILD on {type(target).__name__}: only a state dict's metadata is set so"
            )
        for name, value in state.items():
            if not isinstance(name, str) or name.startswith("__"):
                raise UnsafeCheckpointError(None, f"refusing to set attribute {reprlib.repr(name)} while unpickling")
            setattr(target, name, value)

    dispatch[pickle.BUILD[0]] = load_build

    def _refuse(self):
        raise UnsafeCheckpointError(None, "the pickle uses an opcode torch never writes (object creation or buffers)")

    # NEWOBJ & co. create objects of a class without calling it; EXT* read copyreg's process-wide
    # cache, which other unpicklers fill without this allow-list.
    for _opcode in (
        pickle.NEWOBJ,
        pickle.NEWOBJ_EX,
        pickle.INST,
        pickle.OBJ,
        pickle.NEXT_BUFFER,
        pickle.READONLY_BUFFER,
        pickle.EXT1,
        pickle.EXT2,
        pickle.EXT4,
    ):
        dispatch[_opcode[0]] = _refuse
    del _opcode


def _unpickle(data, storage):
    """Unpickles ``data`` (bytes) with :class:`SafeUnpickler`; any malformation is a CheckpointError."""
    try:
        return SafeUnpickler(io.BytesIO(data), storage).load()
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - a malformed pickle raises anything from IndexError to struct.error
        raise CheckpointError(None, f"malformed pickle ({type(error).__name__}: {str(error)[:120]})") from None


def _as_numpy(raw, type_name):
    if STORAGE_DTYPES[type_name] == "bfloat16":
        # No NumPy bfloat16: its bits are the top half of a float32's.
        widened = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        widened.flags.writeable = False
        return widened
    return np.frombuffer(raw, dtype=STORAGE_DTYPES[type_name])


def _storage_record(storages, key, type_name, numel):
    """The storage record for ``key``, created on first reference; the same key must keep its type."""
    if key in storages:
        storage = storages[key]
        if storage.type_name != type_name or storage.numel != numel:
            raise CheckpointError(
                None,
                f"storage {key!r} is referenced as {storage.type_name}[{storage.numel}] and as {type_name}[{numel}]",
            )
        return storage
    if len(storages) >= MAX_TENSORS:
        raise CheckpointError(None, f"more than {MAX_TENSORS:,} storages")
    storages[key] = _Storage(key, type_name, numel)
    return storages[key]


def _read_zip(path, file_size):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as error:
        raise CheckpointError(path, f"not a readable zip archive ({error})") from None
    with archive:
        infos = archive.infolist()
        pickles = [info for info in infos if info.filename.endswith("data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(path, f"a torch zip checkpoint has one data.pkl, found {len(pickles)}")
        root = pickles[0].filename[: -len("data.pkl")]
        members = {info.filename: info for info in infos}
        budget = _MemberBudget(path, file_size)
        storages = {}
        obj = _unpickle(budget.read(archive, pickles[0], MAX_PICKLE_BYTES), lambda *a: _storage_record(storages, *a))
        for key, storage in storages.items():
            info = members.get(f"{root}data/{key}")
            if info is None:
                raise CheckpointError(path, "the pickle names a storage the archive does not hold", key=f"data/{key}")
            raw = budget.read(archive, info, storage.numel * STORED_ITEMSIZE[storage.type_name])
            if len(raw) != storage.numel * STORED_ITEMSIZE[storage.type_name]:
                raise CheckpointError(
                    path,
                    f"storage holds {len(raw)} bytes, its record says {storage.numel} x {storage.type_name}",
                    key=f"data/{key}",
                )
            storage.array = _as_numpy(raw, storage.type_name)
        return obj


class _MemberBudget:
    """Reads zip members only while everything read stays within the file: each member stored
    uncompressed (torch never compresses: a deflated member is a bomb's way to grow), its data
    inside the file, and all of them together no larger than the file (overlapping members)."""

    def __init__(self, path, file_size):
        self.path, self.file_size, self.spent = path, file_size, 0

    def read(self, archive, info, limit):
        name = info.filename
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(self.path, "member is compressed; torch.save stores tensors uncompressed", key=name)
        if info.file_size > limit or info.header_offset + info.file_size > self.file_size:
            raise CheckpointError(
                self.path, f"member declares {info.file_size:,} bytes (at most {limit:,} expected)", key=name
            )
        self.spent += info.file_size
        if self.spent > self.file_size:
            raise CheckpointError(self.path, "members overlap (more bytes than the file holds)", key=name)
        try:
            return archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, RuntimeError) as error:
            raise CheckpointError(self.path, f"member cannot be read ({error})", key=name) from None


def _read_legacy(path, file_size):
    with open(path, "rb") as file:
        head = file.read(min(file_size, MAX_PICKLE_BYTES))
        stream = io.BytesIO(head)
        storages = {}

        def next_pickle(storage=_no_storage):
            try:
                return SafeUnpickler(stream, storage).load()
            except CheckpointError:
                raise
            except Exception as error:  # noqa: BLE001 - see _unpickle
                raise CheckpointError(None, f"malformed pickle ({type(error).__name__}: {str(error)[:120]})") from None

        if next_pickle() != LEGACY_MAGIC:
            raise CheckpointError(path, "not a PyTorch checkpoint (no torch magic number, not a zip file)")
        if next_pickle() != LEGACY_PROTOCOL:
            raise CheckpointError(path, "unsupported legacy torch protocol")
        system = next_pickle()
        if isinstance(system, dict) and system.get("little_endian") is False:
            raise CheckpointError(path, "a big-endian checkpoint; only little-endian files are read")
        obj = next_pickle(lambda *a: _storage_record(storages, *a))
        keys = next_pickle()
        file.seek(stream.tell())
        _read_legacy_storages(path, file, file_size, storages, keys)
        return obj


def _read_legacy_storages(path, file, file_size, storages, keys):
    """Fills each storage from the bytes after the pickles: its count (int64), then its data, in
    the order ``keys`` lists them; each size checked against the bytes left before reading."""
    if not isinstance(keys, list) or len(keys) != len(set(map(str, keys))) or {str(k) for k in keys} != set(storages):
        raise CheckpointError(path, "the storage list does not match the storages its tensors use")
    for key in map(str, keys):
        storage = storages[key]
        count = file.read(8)
        if len(count) != 8:
            raise CheckpointError(path, "truncated checkpoint (the storage's size is cut short)", key=key)
        (numel,) = struct.unpack("<q", count)
        nbytes = storage.numel * STORED_ITEMSIZE[storage.type_name]
        if numel != storage.numel:
            raise CheckpointError(
                path, f"storage holds {numel} elements, its tensors' record says {storage.numel}", key=key
            )
        if nbytes > file_size - file.tell():
            raise CheckpointError(
                path, f"truncated checkpoint (storage needs {nbytes:,} bytes, fewer are left)", key=key
            )
        storage.array = _as_numpy(file.read(nbytes), storage.type_name)


def _no_storage(*_args):
    raise CheckpointError(None, "a storage where none can be (in a header pickle)")


def _unwrap(obj):
    """A checkpoint saved as ``{"state_dict": ...}`` / ``{"model": ...}`` is unwrapped."""
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(wrapper), dict):
                return obj[wrapper]
    return obj


def _tensors(obj):
    """``{dotted key: read-only array}`` of a (nested) state dict, walked without recursion,
    bounded in depth and count; numbers, strings and optimizer settings are not weights."""
    found, seen = {}, set()
    pending = [("", _unwrap(obj), 0)]
    while pending:
        prefix, value, depth = pending.pop()
        if isinstance(value, _TensorRef):
            if len(found) >= MAX_TENSORS:
                raise CheckpointError(None, f"more than {MAX_TENSORS:,} tensors")
            found[prefix[:-1]] = value.view()
        elif isinstance(value, dict):
            if id(value) in seen:
                raise CheckpointError(None, f"the dict at {prefix[:-1]!r:.80} contains itself")
            if depth >= MAX_DEPTH:
                raise CheckpointError(None, f"dicts nested deeper than {MAX_DEPTH} levels at {prefix[:80]!r}")
            seen.add(id(value))
            for key, item in reversed(value.items()):
                if not isinstance(key, str | int) or isinstance(key, bool) or len(str(key)) > MAX_KEY_LENGTH:
                    raise CheckpointError(None, f"a key {reprlib.repr(key)} (state dict keys are short strings)")
                pending.append((f"{prefix}{key}.", item, depth + 1))
    return found


def read_torch_checkpoint(path):
    """``{key: read-only numpy array}`` of the PyTorch checkpoint at ``path`` (zip or legacy
    format), without torch and without running anything the file names.

    A checkpoint saved as ``{"state_dict": ...}`` / ``{"model": ...}`` is unwrapped. Tensors are
    views of the storages read from the file (copy one before writing to it). Raises
    :class:`~keras_lightnets.weight_files.errors.UnsafeCheckpointError` when the pickle names anything
    but tensors, storages and dicts, and
    :class:`~keras_lightnets.weight_files.errors.CheckpointError` for anything else wrong with the file.
    """
    path = check_checkpoint_file(path)
    try:
        file_size = os.path.getsize(path)
        is_zip = zipfile.is_zipfile(path)
        obj = _read_zip(path, file_size) if is_zip else _read_legacy(path, file_size)
        return _tensors(obj)
    except OSError as error:  # the file vanished or became unreadable while it was read
        raise CheckpointError(path, f"cannot be read ({error})") from None
    except CheckpointError as error:
        if error.path is None:  # raised deep in the reader, which does not know the file
            raise type(error)(path, error.problem, key=error.key, advice=error.advice) from None
        raise
