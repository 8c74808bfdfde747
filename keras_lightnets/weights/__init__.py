"""Weight converters: PyTorch checkpoints (timm / torchvision layouts, by name) and Keras models → our models."""

from keras_lightnets.weights.keras_port import copy_keras_weights
from keras_lightnets.weights.torch_port import KeyMap, load_torch_weights, torch_state_dict

__all__ = ["KeyMap", "copy_keras_weights", "load_torch_weights", "torch_state_dict"]
