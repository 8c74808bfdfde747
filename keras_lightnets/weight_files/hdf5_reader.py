"""Read an HDF5 weights file from a stranger: parsed in a child process, checked, returned as arrays.

keras.applications' ``.h5`` files and Keras 3's ``.weights.h5`` (also inside ``.keras``) are
HDF5, parsed by libhdf5, a C library with a history of crashes on malformed files. Here it only
ever parses such a file in a child process (:mod:`keras_lightnets.weight_files.hdf5_child`) whose
address space is capped, with a time limit: a crash, hang or runaway allocation there becomes a
:class:`~keras_lightnets.weight_files.errors.CheckpointError`, never the end of the user's session.
Reading is in two steps, so that sizes are checked before anything is allocated:

1. :func:`inspect_hdf5` returns the file's structure (every dataset's path, declared shape and
   type; keras.applications' layer and weight lists), after refusing links, external and
   virtual datasets and non-numeric types (the child's checks);
2. the caller compares the declared shapes with the model it loads into, then
   :func:`read_hdf5_datasets` reads exactly the datasets it chose, each only if its declared size
   is still the one expected.

Starting the child costs about 0.3 s per step.
"""

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keras_lightnets.weight_files.errors import CheckpointError, check_checkpoint_file

__all__ = ["HDF5Dataset", "HDF5Structure", "inspect_hdf5", "read_hdf5_datasets"]

CHILD_SCRIPT = Path(__file__).with_name("hdf5_child.py")
# Runs the script by path, without this package's __init__ (TensorFlow) and without the
# script's folder first on sys.path (where it could shadow a standard module).
CHILD_BOOT = (
    "import runpy, sys; sys.path.pop(0); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
CHILD_TIMEOUT_S = 300
INSPECT_MEMORY = 256 << 20  # the structure of any weights file fits in far less
READ_MEMORY_SLACK = 256 << 20  # libhdf5's chunk cache and buffers, on top of the data
REFUSED = 3  # hdf5_child's exit code for a file it refuses


@dataclass(frozen=True)
class HDF5Dataset:
    """A dataset as the file declares it (nothing of it read yet)."""

    path: str
    shape: tuple
    dtype: str
    bfloat16: bool = False

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def nbytes(self):
        return self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class HDF5Structure:
    """``datasets``: path → :class:`HDF5Dataset`, in file order; ``attributes``: group path →
    its ``layer_names`` / ``weight_names`` (keras.applications' lists)."""

    datasets: dict
    attributes: dict


def _run_child(command, path, memory, request=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    argv = [sys.executable, "-c", CHILD_BOOT, str(CHILD_SCRIPT), command, path, str(memory)]
    try:
        done = subprocess.run(argv, input=request, capture_output=True, timeout=CHILD_TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise CheckpointError(path, f"reading it as HDF5 took over {CHILD_TIMEOUT_S} s (a malformed file)") from None
    if done.returncode == 0:
        return done.stdout
    if done.returncode == REFUSED:
        try:
            refusal = json.loads(done.stderr.decode("utf-8", "replace"))
            problem, key = str(refusal["problem"]), refusal.get("key")
        except (ValueError, KeyError, TypeError):
            problem, key = "refused by the HDF5 reader", None
        raise CheckpointError(path, problem, key=key)
    if done.returncode < 0:
        raise CheckpointError(
            path, f"the HDF5 library crashed reading it (signal {-done.returncode}): the file is malformed"
        )
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    raise CheckpointError(path, f"the HDF5 reader failed (exit code {done.returncode}: {tail[0][:200]})")


def inspect_hdf5(path):
    """The :class:`HDF5Structure` of the HDF5 file at ``path``; :class:`CheckpointError` for a
    file that is not HDF5, is damaged, or holds links, external or virtual data or non-numbers."""
    path = check_checkpoint_file(path)
    found = json.loads(_run_child("inspect", path, INSPECT_MEMORY))
    datasets = {
        item["path"]: HDF5Dataset(item["path"], tuple(item["shape"]), item["dtype"], item["bfloat16"])
        for item in found["datasets"]
    }
    return HDF5Structure(datasets, found["attributes"])


def read_hdf5_datasets(path, datasets):
    """``{path: read-only array}`` of ``datasets`` (:class:`HDF5Dataset` from :func:`inspect_hdf5`),
    each read only if the file still declares its size. A bfloat16 dataset (Keras 3 marks them)
    comes back as its raw bits, ``uint16``."""
    path = check_checkpoint_file(path)
    datasets = list(datasets)
    total = sum(d.nbytes for d in datasets)
    request = json.dumps([[d.path, d.nbytes] for d in datasets]).encode()
    data = _run_child("read", path, total + READ_MEMORY_SLACK, request)
    if len(data) != total:
        raise CheckpointError(path, f"the HDF5 reader returned {len(data):,} bytes, {total:,} expected")
    arrays, offset = {}, 0
    for dataset in datasets:
        flat = np.frombuffer(data, dtype=dataset.dtype, count=dataset.size, offset=offset) if dataset.size else None
        arrays[dataset.path] = np.zeros(dataset.shape, dataset.dtype) if flat is None else flat.reshape(dataset.shape)
        offset += dataset.nbytes
    return arrays
