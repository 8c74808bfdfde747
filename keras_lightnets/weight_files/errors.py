"""The one error a bad weights file raises, whatever its format.

Every public loader (``read_checkpoint``, ``load_checkpoint``, ``weights=`` in every
constructor, ``weights="imagenet"``'s cache, ``lightnets train --weights FILE``) turns what is
wrong with a file into :class:`CheckpointError`: a ``ValueError`` whose message names the file,
the key or dataset, what is wrong and, where the user can act, what to do. No ``KeyError``,
``struct.error``, ``RecursionError`` or h5py ``OSError`` from inside a reader reaches the user.
"""

import os
import pickle
import stat

__all__ = ["CheckpointError", "UnsafeCheckpointError", "check_checkpoint_file"]


class CheckpointError(ValueError):
    """A weights file that cannot be loaded: damaged, hostile, or for another model.

    Attributes:
        path: the file, as given.
        key: the tensor key or HDF5 dataset the problem is in, or None.
        problem: what is wrong.
        advice: what the user can do about it, or None.
    """

    def __init__(self, path, problem, *, key=None, advice=None):
        self.path = None if path is None else os.fspath(path)
        self.key = key
        self.problem = problem
        self.advice = advice
        where = f"{self.path!r}" if self.path is not None else "checkpoint"
        if key is not None:
            where += f", {key!r}"
        message = f"{where}: {problem}"
        if advice:
            message += f" ({advice})"
        super().__init__(message)

    def __reduce__(self):  # picklable across processes (pytest-xdist, multiprocessing)
        return _rebuild, (type(self), self.path, self.problem, self.key, self.advice)


def _rebuild(kind, path, problem, key, advice):
    return kind(path, problem, key=key, advice=advice)


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The checkpoint's pickle asks for something beyond tensors and dicts of them (it would run
    code or change this package's objects); nothing it names was called."""


def check_checkpoint_file(path):
    """``path`` as a string, once it is known to name a regular file: a missing path, a folder or
    a FIFO / socket / device each get their own :class:`CheckpointError` (opening a FIFO would
    block forever, a folder would fail inside a library with a message naming neither)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(path, "checkpoint file does not exist") from None
    except OSError as error:
        raise CheckpointError(path, f"cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(mode):
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    if not stat.S_ISREG(mode):
        raise CheckpointError(path, "is not a regular file (a FIFO, socket or device), so it is not read")
    return path
