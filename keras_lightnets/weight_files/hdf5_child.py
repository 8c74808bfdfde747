"""The HDF5 half of :mod:`keras_lightnets.weight_files.hdf5_reader`, run as a script in a child process.

HDF5 is parsed by a large C library (libhdf5, inside h5py) that has had crashes and overflows on
malformed files; a weights file from the internet is parsed here, in a process of its own with
its address space capped, so that a crash, a hang or a runaway allocation costs that process, not
the user's session. This file imports only the standard library, NumPy and h5py (not this
package: starting TensorFlow for it would take seconds).

    python hdf5_child.py inspect FILE MEMORY_LIMIT   → stdout: JSON of the file's structure
    python hdf5_child.py read FILE MEMORY_LIMIT      ← stdin: JSON [[dataset, nbytes], ...]
                                                     → stdout: the datasets' bytes, in that order

Both commands refuse, before any data is read: links (soft or external: a path out of the file
or an alias), datasets stored in external files or assembled from others (virtual), data types
other than numbers, more than ``MAX_OBJECTS`` objects, groups nested deeper than ``MAX_DEPTH``.
``read`` reads a dataset only if its declared size is the one the parent asked for. A refusal
exits with code 3 and a JSON ``{"problem": ..., "key": ...}`` on stderr.
"""

import json
import math
import os
import sys

MAX_OBJECTS = 100_000
MAX_DEPTH = 32
MAX_ATTRIBUTE_ITEMS = 100_000
MAX_NAME_LENGTH = 1024
MAX_DIMS = 16
# Only these attributes are read: keras.applications' layer and weight lists, Keras 3's bfloat16 marker.
READ_ATTRIBUTES = ("layer_names", "weight_names", "dtype")
REFUSED = 3


class RefusedFileError(Exception):
    def __init__(self, problem, key=None):
        super().__init__(problem)
        self.problem, self.key = problem, key


def _limit_memory(extra_bytes):
    """Caps this process's address space at what it uses now plus ``extra_bytes``."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (used + extra_bytes, used + extra_bytes))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: the declared-size checks still bound what is read


def _decode(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _attribute(h5py, obj, name):
    """A string (list) attribute, its size checked before it is read; None when absent."""
    if name not in obj.attrs:
        return None
    attr = h5py.h5a.open(obj.id, name.encode())
    if math.prod(attr.shape or ()) > MAX_ATTRIBUTE_ITEMS:
        raise RefusedFileError(f"attribute {name!r} holds {math.prod(attr.shape):,} items", obj.name)
    if math.prod(attr.shape or ()) == 0 and attr.shape:  # Keras 2 writes an empty list as float64[0]
        return []
    if attr.dtype.kind not in "SOU":
        raise RefusedFileError(f"attribute {name!r} is not text", obj.name)
    value = obj.attrs[name]
    items = [_decode(v) for v in value.ravel()] if hasattr(value, "ravel") else [_decode(value)]
    if any(len(item) > MAX_NAME_LENGTH for item in items):
        raise RefusedFileError(f"attribute {name!r} holds a name longer than {MAX_NAME_LENGTH} characters", obj.name)
    return items if hasattr(value, "ravel") else items[0]


def _check_dataset(h5py, dataset):
    """``(shape, dtype string, bfloat16)`` of a dataset whose data lives in this file as numbers."""
    where = dataset.name
    if dataset.is_virtual:
        raise RefusedFileError("a virtual dataset (its data would come from other files)", where)
    if dataset.external:
        raise RefusedFileError(f"data stored in an external file ({_decode(dataset.external[0][0])})", where)
    if dataset.shape is None or len(dataset.shape) > MAX_DIMS:
        raise RefusedFileError(f"a dataset of shape {dataset.shape} (weights have 0 to {MAX_DIMS} dimensions)", where)
    bfloat16 = _attribute(h5py, dataset, "dtype") == "bfloat16"
    kind, itemsize = dataset.dtype.kind, dataset.dtype.itemsize
    if not (kind in "fiub" or (bfloat16 and kind == "V" and itemsize == 2)):
        raise RefusedFileError(f"data type {dataset.dtype} is not a number type", where)
    dtype = "<u2" if bfloat16 else dataset.dtype.newbyteorder("<").str
    return [int(d) for d in dataset.shape], dtype, bfloat16


def _walk(h5py, file):
    """Every group and dataset under the root, without following anything but hard links."""
    pending, count = [(file, 0)], 0
    while pending:
        group, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise RefusedFileError(f"groups nested deeper than {MAX_DEPTH} levels", group.name)
        yield group
        for name in group:
            count += 1
            if count > MAX_OBJECTS or len(name) > MAX_NAME_LENGTH:
                raise RefusedFileError(f"more than {MAX_OBJECTS:,} objects or a name over {MAX_NAME_LENGTH} characters")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise RefusedFileError(f"an external link to {link.filename}:{link.path}", f"{group.name}/{name}")
            if isinstance(link, h5py.SoftLink):
                raise RefusedFileError(f"a soft link to {link.path}", f"{group.name}/{name}")
            member = group[name]
            if isinstance(member, h5py.Group):
                pending.append((member, depth + 1))
            elif isinstance(member, h5py.Dataset):
                yield member
            else:
                raise RefusedFileError(f"an object of type {type(member).__name__}", member.name)


def inspect(h5py, file):
    datasets, attributes = [], {}
    for obj in _walk(h5py, file):
        if isinstance(obj, h5py.Dataset):
            shape, dtype, bfloat16 = _check_dataset(h5py, obj)
            datasets.append({"path": obj.name, "shape": shape, "dtype": dtype, "bfloat16": bfloat16})
            continue
        found = {name: _attribute(h5py, obj, name) for name in READ_ATTRIBUTES[:2]}
        found = {name: value for name, value in found.items() if value is not None}
        if found:
            attributes[obj.name] = found
    return {"datasets": datasets, "attributes": attributes}


def read(h5py, np, file, requests):
    out = sys.stdout.buffer
    for path, nbytes in requests:
        if not isinstance(path, str) or path not in file:
            raise RefusedFileError("no such dataset", str(path)[:MAX_NAME_LENGTH])
        for prefix in _prefixes(path):  # every link on the way must be a hard one
            if not isinstance(file.get(prefix, getlink=True), h5py.HardLink):
                raise RefusedFileError("reached through a link", prefix)
        dataset = file[path]
        if not isinstance(dataset, h5py.Dataset):
            raise RefusedFileError("not a dataset", path)
        shape, dtype, _ = _check_dataset(h5py, dataset)
        declared = math.prod(shape) * np.dtype(dtype).itemsize
        if declared != nbytes:
            raise RefusedFileError(f"declares {declared:,} bytes, {nbytes:,} expected", path)
        array = np.empty(shape, dtype=dtype)
        if array.size and dataset.dtype.kind == "V":  # Keras 3's bfloat16: 2 opaque bytes, kept as they are
            array.view("V2")[...] = dataset[()]
        elif array.size:
            dataset.read_direct(array)  # HDF5 converts to the little-endian type asked for
        out.write(memoryview(array).cast("B") if array.size else b"")  # no copy: the data once in memory
    out.flush()


def _prefixes(path):
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def main(argv):
    command, path, memory = argv[1], argv[2], int(argv[3])
    import h5py
    import numpy as np

    _limit_memory(memory)
    try:
        if not h5py.is_hdf5(path):
            raise RefusedFileError("not an HDF5 file (no HDF5 signature: truncated, or another format)")
        with h5py.File(path, "r") as file:
            if command == "inspect":
                sys.stdout.write(json.dumps(inspect(h5py, file)))
            else:
                read(h5py, np, file, json.loads(sys.stdin.read()))
    except RefusedFileError as refused:
        sys.stderr.write(json.dumps({"problem": refused.problem, "key": refused.key}))
        return REFUSED
    except MemoryError:
        sys.stderr.write(json.dumps({"problem": "reading it needs more memory than its declared sizes allow"}))
        return REFUSED
    except Exception as error:  # noqa: BLE001 - h5py raises OSError, KeyError, ValueError... on a damaged file
        sys.stderr.write(json.dumps({"problem": f"HDF5 cannot read it ({type(error).__name__}: {str(error)[:200]})"}))
        return REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
