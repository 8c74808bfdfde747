"""Keras 3 weights files (``.weights.h5``, and the weights inside a ``.keras`` archive) from a
stranger, loaded atomically.

Keras's own ``model.load_weights`` parses the file in this process with libhdf5 and assigns
layer by layer, so a file for another head leaves the first layers overwritten when it fails.
Here the file is read by :mod:`~keras_lightnets.weight_files.hdf5_reader` (in a child process, links,
external and virtual data refused, every declared size bounded by the model's own before anything
is read), its datasets are written into a clean ``.weights.h5`` of our own in a temporary folder,
and Keras loads *that* file, with the model's variables restored if it fails: a failed load leaves
the model bit-identical, and libhdf5 in this process only ever reads files this package wrote.
"""

import contextlib
import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from keras_lightnets.weight_files.errors import CheckpointError, check_checkpoint_file
from keras_lightnets.weight_files.hdf5_reader import inspect_hdf5, read_hdf5_datasets

__all__ = ["load_keras_weights", "restored_on_failure", "sanitized_weights_file"]

KERAS_ARCHIVE_WEIGHTS = "model.weights.h5"  # where a .keras archive keeps its weights
# A Keras 3 weights file may hold, next to the model's variables, the optimizer's (a .keras file
# saved from a compiled model: Adam keeps two per variable); more than that is not a weights file.
OPTIMIZER_ALLOWANCE = 3
SLACK_ELEMENTS = 1 << 18


def _variables(model):
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return variables


@contextlib.contextmanager
def restored_on_failure(model):
    """Snapshots every variable of ``model`` (and its optimizer's) and assigns them back if the
    block raises, so a load that fails half-way leaves the model as it was."""
    variables = _variables(model)
    saved = [np.array(variable) for variable in variables]
    try:
        yield model
    except BaseException:
        for variable, value in zip(variables, saved, strict=True):
            variable.assign(value)
        raise


def _extract_archive_weights(path, folder, limit_bytes):
    """The ``.keras`` archive's weights member, copied to ``folder`` with its size capped."""
    if not zipfile.is_zipfile(path):
        raise CheckpointError(path, "not a .keras file (not a zip archive: truncated, or another format)")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(KERAS_ARCHIVE_WEIGHTS)
            if info.file_size > limit_bytes:
                raise CheckpointError(
                    path, f"declares {info.file_size:,} bytes, more than the model's weights allow", key=info.filename
                )
            target = Path(folder) / "archive.weights.h5"
            with archive.open(info) as source, open(target, "wb") as sink:
                copied = 0
                while chunk := source.read(1 << 20):
                    copied += len(chunk)
                    if copied > limit_bytes:  # a header that lies about the size
                        raise CheckpointError(path, "expands past its declared size", key=info.filename)
                    sink.write(chunk)
    except KeyError:
        raise CheckpointError(path, f"a .keras archive without {KERAS_ARCHIVE_WEIGHTS}") from None
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(path, f"the archive cannot be read ({type(error).__name__}: {error})") from None
    return target


def _check_declared_sizes(path, structure, model):
    """All datasets together no larger than the model's variables (with the optimizer's
    allowance): checked before anything is read. (Which dataset feeds which variable is Keras's
    loader's business: a classifier's file also loads into the same network without its head, so
    a dataset may be larger than any variable of the model at hand.)"""
    sizes = [math.prod(tuple(int(d) for d in v.shape)) for v in _variables(model)]
    budget = OPTIMIZER_ALLOWANCE * sum(sizes) + SLACK_ELEMENTS
    total = sum(dataset.size for dataset in structure.datasets.values())
    if total > budget:
        largest = max(structure.datasets.values(), key=lambda d: d.size)
        raise CheckpointError(
            path,
            f"declares {total:,} values, more than {model.name!r} could load ({budget:,}): the file is for "
            f"another model (its largest dataset: {largest.path} {largest.shape})",
        )


def _write_clean_copy(structure, arrays, target):
    """The datasets, re-written by h5py into a new file with the same paths (and Keras's
    bfloat16 marker); nothing else of the original file is carried over."""
    import h5py

    with h5py.File(target, "w") as file:
        for dataset in structure.datasets.values():
            value = arrays[dataset.path]
            if dataset.bfloat16:
                import ml_dtypes

                written = file.create_dataset(dataset.path, data=value.view(ml_dtypes.bfloat16))
                written.attrs["dtype"] = "bfloat16"
            else:
                file.create_dataset(dataset.path, data=value)


@contextlib.contextmanager
def sanitized_weights_file(path, model):
    """The path of a clean copy of the Keras 3 weights in ``path`` (``.weights.h5`` or ``.keras``),
    checked against ``model``'s sizes; it exists while the block runs."""
    path = check_checkpoint_file(path)
    budget_bytes = 8 * OPTIMIZER_ALLOWANCE * sum(math.prod(v.shape) for v in _variables(model)) + (64 << 20)
    with tempfile.TemporaryDirectory(prefix="lightnets-weights-") as folder:
        source = _extract_archive_weights(path, folder, budget_bytes) if path.endswith(".keras") else path
        try:
            structure = inspect_hdf5(source)
            _check_declared_sizes(path, structure, model)
            arrays = read_hdf5_datasets(source, structure.datasets.values())
        except CheckpointError as error:
            raise CheckpointError(path, error.problem, key=error.key, advice=error.advice) from None
        clean = Path(folder) / "clean.weights.h5"
        _write_clean_copy(structure, arrays, clean)
        del arrays
        yield clean


def keras_load_message(error, clean, path):
    """Keras's message for a failed load, about the user's file rather than our clean copy."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return re.sub(re.escape(os.fspath(clean)), os.fspath(path), text)[:600]


def load_keras_weights(model, path):
    """Loads a Keras 3 ``.weights.h5`` / ``.keras`` file into ``model`` atomically; returns it.

    :class:`CheckpointError` for a damaged or hostile file, or one saved from another
    architecture, width or number of classes; the model is bit-identical afterwards then.
    """
    with sanitized_weights_file(path, model) as clean:
        try:
            with restored_on_failure(model):
                model.load_weights(clean)
        except ValueError as error:
            raise CheckpointError(
                path,
                f"does not fit {model.name!r}: it was saved from another architecture, width or number of classes "
                f"(Keras says: {keras_load_message(error, clean, path)})",
            ) from None
    return model
