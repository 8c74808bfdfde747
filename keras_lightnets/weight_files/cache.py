"""Files in the weights cache that are trusted only while they match what was recorded when they were written.

A cache entry is a file (a downloaded checkpoint, a converted ``.weights.h5``) and its record
``<file>.json`` beside it: the file's size and SHA-256 and what it was made from (the URL and the
publisher's digest of a download, the checkpoint digest of a conversion). :func:`verify` re-hashes
the file on every use and compares: a file damaged on disk, replaced by another one (even a valid
weights file of the same architecture) or without a record is not used; the caller removes it
(:func:`remove`) and makes it again. Hashing costs about 0.1-0.3 s per 100 MB, small next to
building the model it is loaded into, and the price of never loading a file silently wrong.

Writers hold one lock per entry (:func:`locked`, a ``filelock.FileLock`` as huggingface_hub
uses) around download, check and conversion, so processes that want the same entry at once wait
for the first one and then find its verified file. They write to a unique temporary name in the
cache folder (:func:`temporary`) and rename it into place with ``os.replace`` only once complete
and checked (:func:`publish`, which then writes the record): a reader without the lock sees the
old file or the new one, never half a file, and a failure or exception leaves no temporary file.

The lock files are kept in ``.locks`` beside the cache folder (so the folder holds weights and
records only) and are never deleted, as huggingface_hub's are not: deleting a lock file while
another process waits on it would let a third one lock a new file at the same path, and two
writers would run at once. They are empty, one per entry.
"""

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path

from keras_lightnets.weight_files.errors import CheckpointError

__all__ = [
    "hash_file",
    "lock_path",
    "locked",
    "publish",
    "read_record",
    "record_path",
    "remove",
    "temporary",
    "verify",
    "write_record",
]

RECORD_SUFFIX = ".json"
LOCKS = ".locks"
_CHUNK = 1 << 20


def record_path(path):
    """Where the record of ``path`` is kept: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + RECORD_SUFFIX)


def lock_path(path):
    """The lock file of the entry ``path``: ``.locks/<name>.lock`` beside the folder ``path`` is in."""
    path = Path(path)
    return path.parent.parent / LOCKS / f"{path.name}.lock"


def hash_file(path, algorithms=("sha256",)):
    """``(size, {algorithm: hex digest})`` of ``path``, read once for all ``algorithms``.

    A file that cannot be read is a :class:`CheckpointError` naming it (a missing one stays a
    ``FileNotFoundError``, which callers treat as "not cached")."""
    digests = {name: hashlib.new(name) for name in dict.fromkeys(algorithms)}
    size = 0
    try:
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(_CHUNK), b""):
                size += len(chunk)
                for digest in digests.values():
                    digest.update(chunk)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise CheckpointError(
            path, f"cannot be read ({error.strerror or error})", advice="delete it; it is made again on the next use"
        ) from error
    return size, {name: digest.hexdigest() for name, digest in digests.items()}


def read_record(path):
    """The record of ``path`` (a dict with at least ``size`` and ``sha256``), or None when there is
    none or it is not one (a damaged record is as good as none: the file is made again)."""
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("sha256"), str)
        or not isinstance(record.get("size"), int)
    ):
        return None
    return record


def verify(path):
    """The record of ``path`` when the file is there and its size and SHA-256 are the recorded
    ones; None when it is missing, unrecorded, damaged or replaced."""
    record = read_record(path)
    if record is None:
        return None
    try:
        if os.path.getsize(path) != record["size"]:
            return None  # truncated or replaced: no need to hash it
        # Every use re-hashes the whole file: ~0.1-0.3 s per 100 MB, accepted so that a file changed
        # on disk is never loaded (size and mtime would miss a same-size replacement).
        _, digests = hash_file(path)
    except FileNotFoundError:
        return None
    return record if digests["sha256"] == record["sha256"] else None


def remove(path):
    """Removes ``path`` and its record, either of which may be missing; a file that cannot be
    removed is a :class:`CheckpointError` saying to delete it."""
    for file in (Path(path), record_path(path)):
        try:
            file.unlink(missing_ok=True)
        except OSError as error:
            raise CheckpointError(
                file,
                f"is not the file recorded in the weights cache and cannot be removed ({error.strerror or error})",
                advice=f"delete it and {record_path(path).name}; they are made again on the next use",
            ) from error


@contextlib.contextmanager
def locked(path):
    """Holds the lock of the entry ``path`` (waiting for another process or thread that holds it)."""
    from filelock import FileLock

    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        yield


@contextlib.contextmanager
def temporary(path, suffix=""):
    """A unique temporary name for ``path`` in its folder (``.<name>.<random>.partial<suffix>``:
    hidden, never matched by a cached file's name); the file is removed on leaving unless
    :func:`publish` renamed it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial{suffix}")
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def publish(partial, path, *, size, sha256, **made_from):
    """Renames the complete, checked ``partial`` to ``path`` and records it (see :func:`write_record`).

    The file is put in place before its record: a reader that comes in between sees a file
    without its (new) record, which does not verify, and waits for the lock; never a record that
    vouches for a file not yet there."""
    record_path(path).unlink(missing_ok=True)
    os.replace(partial, path)
    return write_record(path, size=size, sha256=sha256, **made_from)


def write_record(path, *, size, sha256, **made_from):
    """Records ``path``: its ``size``, its ``sha256`` (computed by the caller while checking the
    file, so it is read once) and ``made_from`` (JSON values: URL, digests, checkpoint). Written to
    a temporary name and renamed, so a record is whole or absent."""
    path = Path(path)
    record = {"file": path.name, "size": size, "sha256": sha256, **made_from}
    with temporary(record_path(path)) as written:
        written.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(written, record_path(path))
    return record
