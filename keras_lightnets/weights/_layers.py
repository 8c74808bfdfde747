"""Lives in :mod:`keras_lightnets.weight_files._layers` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights._layers`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import _layers

sys.modules[__name__] = _layers
