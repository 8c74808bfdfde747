"""``.safetensors`` and PyTorch checkpoint files to ``{key: numpy array}``, without torch.

``.safetensors`` goes through safetensors' NumPy API (bounds-checked by design); ``.pth`` /
``.pt`` / ``.bin`` / ``.ckpt`` through :mod:`~keras_lightnets.weight_files.torch_pickle` (an
allow-list unpickler, never torch, never code from the file, every tensor checked against its
storage).
"""

import os
from pathlib import Path

from safetensors.numpy import load_file

from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES
from keras_lightnets.weight_files.errors import CheckpointError, check_checkpoint_file
from keras_lightnets.weight_files.torch_pickle import read_torch_checkpoint

__all__ = ["TORCH_SUFFIXES", "read_checkpoint"]

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


def _read_safetensors(path):
    try:
        return dict(load_file(path))
    except Exception as error:  # noqa: BLE001 - safetensors raises its own SafetensorError, numpy TypeError...
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise CheckpointError(path, f"not a readable .safetensors file ({message})") from None


def read_checkpoint(path):
    """``{key: numpy array}`` of a ``.safetensors`` or PyTorch checkpoint, without torch.

    :class:`~keras_lightnets.weight_files.errors.CheckpointError` names the file and what is wrong
    with it (a ``ValueError``); a file of another type is a ``ValueError`` naming the types read.
    """
    path = os.fspath(path)
    if not path.endswith((".safetensors", *TORCH_SUFFIXES)):
        raise ValueError(
            f"unknown checkpoint type {Path(path).name!r}: expected .safetensors, {', '.join(TORCH_SUFFIXES)} "
            f"or a Keras {' / '.join(KERAS_WEIGHTS_SUFFIXES)} file"
        )
    path = check_checkpoint_file(path)
    return _read_safetensors(path) if path.endswith(".safetensors") else read_torch_checkpoint(path)
