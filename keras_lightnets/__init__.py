"""keras_lightnets: efficient and classic image-classification CNNs for Keras 3.

import keras_lightnets as kl
model = kl.ReXNet(1.0)                      # by class
model = kl.create_model("squeezenet1_1")    # by name
kl.profile(model)                           # params, MACs, activations, depth
"""

from keras_lightnets import layers
from keras_lightnets.models import MobileNet, MobileNetV2, ReXNet, ReXNetLite, SqueezeNet
from keras_lightnets.profile import Profile, profile
from keras_lightnets.registry import create_model, get_entry, list_models

__version__ = "0.1.0"

__all__ = [
    "MobileNet",
    "MobileNetV2",
    "Profile",
    "ReXNet",
    "ReXNetLite",
    "SqueezeNet",
    "create_model",
    "get_entry",
    "layers",
    "list_models",
    "profile",
]
