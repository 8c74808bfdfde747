"""What a file is, checked before a library reads it, so a wrong or damaged file gets one clear
error naming the file, what it is not and what was expected, instead of an h5py, zipfile or
struct traceback (or Keras's "File not found" for a file that exists but is not a zip).
"""

import os
import zipfile

__all__ = ["KERAS_WEIGHTS_SUFFIXES", "check_keras_file", "check_weights_h5", "load_keras_model"]

# The files Keras loads weights from: ``model.save_weights()``'s and ``model.save()``'s.
KERAS_WEIGHTS_SUFFIXES = (".weights.h5", ".keras")


def check_weights_h5(path, arg="weights"):
    """``path`` is an HDF5 file (what ``.weights.h5`` files are)."""
    import h5py

    if not h5py.is_hdf5(path):
        raise ValueError(
            f"`{arg}` {os.fspath(path)!r} is not a Keras .weights.h5 file (not HDF5: {os.path.getsize(path):,} bytes, "
            "truncated or another format); expected a file written by model.save_weights()"
        )
    return path


def check_keras_file(path, arg="model"):
    """``path`` is a zip archive (what ``.keras`` files are)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"`{arg}` {os.fspath(path)!r} is not a .keras file (not a zip archive: {os.path.getsize(path):,} bytes, "
            "truncated or another format); expected a file written by model.save()"
        )
    return path


def load_keras_model(path, arg="model"):
    """``keras.saving.load_model(path, compile=False)`` with a clear error for a damaged file."""
    import keras

    check_keras_file(path, arg)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - zip members, JSON and deserialization errors alike
        raise ValueError(f"`{arg}` {os.fspath(path)!r} cannot be loaded ({type(error).__name__}: {error})") from error
