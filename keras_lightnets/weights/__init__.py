"""Weight converters: PyTorch modules (timm / torchvision layouts) and Keras models → our models."""

from keras_lightnets.weights.keras_port import copy_keras_weights
from keras_lightnets.weights.torch_port import load_torch_weights

__all__ = ["copy_keras_weights", "load_torch_weights"]
