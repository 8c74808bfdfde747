"""Lives in :mod:`keras_lightnets.weight_files.errors` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.errors`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import errors

sys.modules[__name__] = errors
