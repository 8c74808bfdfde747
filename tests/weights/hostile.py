"""Crafted checkpoint files, written byte by byte the way an attacker would: a tiny pickle
assembler (protocol 2, the opcodes torch writes) and the two torch container formats.

It needs neither torch nor anything it names, so a test can state exactly what a file claims
(a stride, a storage size, a global) without a library refusing to write it.
"""

import io
import pickle
import struct
import zipfile


class Global:
    """``module.name`` as the pickle's GLOBAL opcode names it (nothing is imported)."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """``func(*args)`` (REDUCE)."""

    def __init__(self, func, args=()):
        self.func, self.args = func, tuple(args)


class Persistent:
    """A persistent id (BINPERSID): how torch points a tensor at a storage."""

    def __init__(self, pid):
        self.pid = pid


class Build:
    """``obj.__setstate__(state)`` (BUILD)."""

    def __init__(self, obj, state):
        self.obj, self.state = obj, state


class Raw:
    """Opcodes written as they are."""

    def __init__(self, data):
        self.data = data


def _write(out, value):
    if value is None:
        out += b"N"
    elif value is True or value is False:
        out += pickle.NEWTRUE if value else pickle.NEWFALSE
    elif isinstance(value, int):
        if 0 <= value < 256:
            out += pickle.BININT1 + bytes([value])
        elif -(2**31) <= value < 2**31:
            out += pickle.BININT + struct.pack("<i", value)
        else:
            encoded = pickle.encode_long(value)
            out += pickle.LONG1 + bytes([len(encoded)]) + encoded
    elif isinstance(value, str):
        encoded = value.encode()
        out += pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded
    elif isinstance(value, tuple):
        out += pickle.MARK
        for item in value:
            _write(out, item)
        out += pickle.TUPLE
    elif isinstance(value, list):
        out += pickle.EMPTY_LIST + pickle.MARK
        for item in value:
            _write(out, item)
        out += pickle.APPENDS
    elif isinstance(value, dict):
        out += pickle.EMPTY_DICT
        if value:
            out += pickle.MARK
            for key, item in value.items():
                _write(out, key)
                _write(out, item)
            out += pickle.SETITEMS
    elif isinstance(value, Global):
        out += pickle.GLOBAL + f"{value.module}\n{value.name}\n".encode()
    elif isinstance(value, Call):
        _write(out, value.func)
        _write(out, value.args)
        out += pickle.REDUCE
    elif isinstance(value, Persistent):
        _write(out, value.pid)
        out += pickle.BINPERSID
    elif isinstance(value, Build):
        _write(out, value.obj)
        _write(out, value.state)
        out += pickle.BUILD
    elif isinstance(value, Raw):
        out += value.data
    else:
        raise TypeError(f"cannot write {type(value).__name__}")


def dumps(value):
    out = bytearray(pickle.PROTO + b"\x02")
    _write(out, value)
    return bytes(out + pickle.STOP)


def storage(key, numel, dtype="FloatStorage"):
    return Persistent(("storage", Global("torch", dtype), key, "cpu", numel))


def tensor(key, numel, offset, size, stride, dtype="FloatStorage"):
    """torch's record of a tensor: ``_rebuild_tensor_v2(storage, offset, size, stride, ...)``."""
    hooks = Call(Global("collections", "OrderedDict"))
    return Call(
        Global("torch._utils", "_rebuild_tensor_v2"), (storage(key, numel, dtype), offset, size, stride, False, hooks)
    )


def state_dict(entries):
    """An ``OrderedDict`` of ``entries``, as torch pickles a state dict."""
    return Call(Global("collections", "OrderedDict")) if not entries else _filled(entries)


def _filled(entries):
    body = bytearray()
    _write(body, Call(Global("collections", "OrderedDict")))
    body += pickle.MARK
    for key, value in entries.items():
        _write(body, key)
        _write(body, value)
    body += pickle.SETITEMS
    return Raw(bytes(body))


def torch_zip(obj, storages, *, compression=zipfile.ZIP_STORED):
    """The zip format: ``archive/data.pkl`` and one raw member per storage."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr(zipfile.ZipInfo("archive/data.pkl"), dumps(obj), compress_type=zipfile.ZIP_STORED)
        for key, data in storages.items():
            archive.writestr(zipfile.ZipInfo(f"archive/data/{key}"), data, compress_type=compression)
        archive.writestr(zipfile.ZipInfo("archive/version"), b"3\n", compress_type=zipfile.ZIP_STORED)
    return buffer.getvalue()


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
SYSTEM_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def torch_legacy(obj, storages, *, keys=None, system_info=None):
    """The legacy format: five pickles, then each storage's element count and bytes.
    ``storages``: ``{key: (numel written, bytes)}``; ``keys``: the storage list (default: all)."""
    out = dumps(LEGACY_MAGIC) + dumps(1001) + dumps(system_info or SYSTEM_INFO) + dumps(obj)
    out += dumps(list(storages) if keys is None else keys)
    for numel, data in storages.values():
        out += struct.pack("<q", numel) + data
    return out


def floats(*values):
    return struct.pack(f"<{len(values)}f", *values)
