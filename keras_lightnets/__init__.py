"""keras_lightnets: efficient and classic image-classification CNNs for Keras 3.

import keras_lightnets as kl
model = kl.ReXNet(1.0)                      # by class
model = kl.create_model("squeezenet1_1")    # by name
kl.profile(model)                           # params, MACs, activations, depth

Every family's constructor (``ReXNet``, ``SqueezeNet``, ...) is exported here: the family
modules are found, not listed (see :mod:`keras_lightnets.models`).
"""

from keras_lightnets import layers, models, transfer, weights
from keras_lightnets.imagenet import decode_predictions, imagenet_classes, preprocess_input
from keras_lightnets.layers import ModelCard
from keras_lightnets.models.describe import input_pixel_max, model_identity, model_preprocessing
from keras_lightnets.profile import Profile, profile
from keras_lightnets.registry import (
    create_model,
    get_entry,
    get_family,
    list_families,
    list_models,
    list_weights,
    representative_models,
)
from keras_lightnets.reparameterize import reparameterize

__version__ = "0.1.0"

__all__ = [
    "ModelCard",
    "Profile",
    "create_model",
    "decode_predictions",
    "get_entry",
    "get_family",
    "imagenet_classes",
    "layers",
    "list_families",
    "input_pixel_max",
    "list_models",
    "list_weights",
    "model_identity",
    "model_preprocessing",
    "preprocess_input",
    "profile",
    "reparameterize",
    "representative_models",
    "transfer",
    "weights",
]

# The constructors, from every family module.
for _family in models.families():
    globals()[_family.constructor.__name__] = _family.constructor
    __all__.append(_family.constructor.__name__)
del _family
