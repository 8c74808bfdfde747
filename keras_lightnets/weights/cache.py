"""Lives in :mod:`keras_lightnets.weight_files.cache` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.cache`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import cache

sys.modules[__name__] = cache
