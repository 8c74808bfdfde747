"""Lives in :mod:`keras_lightnets.weight_files.keras_h5` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.keras_h5`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import keras_h5

sys.modules[__name__] = keras_h5
