"""Weight converters: checkpoint files (safetensors, PyTorch pickles read without torch, HDF5 read
in a child process), PyTorch state dicts (timm / torchvision / efficientnet_pytorch layouts, by
name) and Keras models → our models. Whatever is wrong with a file is a :class:`CheckpointError`.

This package is the by-name layer (:func:`load_checkpoint` finds a model's variant in the
registry); the readers and converters it uses live in :mod:`keras_lightnets.weight_files`, which
knows no registry, and are re-exported here (its modules too: ``keras_lightnets.weights.torch_port``
is :mod:`keras_lightnets.weight_files.torch_port`).
"""

from keras_lightnets.weight_files.errors import CheckpointError, UnsafeCheckpointError
from keras_lightnets.weight_files.keras_weights import load_keras_weights
from keras_lightnets.weight_files.torch_pickle import read_torch_checkpoint
from keras_lightnets.weight_files.torch_port import KeyMap, load_torch_weights, torch_state_dict
from keras_lightnets.weights.checkpoint import checkpoint_layouts, detect_layout, load_checkpoint, read_checkpoint
from keras_lightnets.weights.keras_port import copy_keras_weights

__all__ = [
    "CheckpointError",
    "KeyMap",
    "UnsafeCheckpointError",
    "checkpoint_layouts",
    "copy_keras_weights",
    "detect_layout",
    "load_checkpoint",
    "load_keras_weights",
    "load_torch_weights",
    "read_checkpoint",
    "read_torch_checkpoint",
    "torch_state_dict",
]
