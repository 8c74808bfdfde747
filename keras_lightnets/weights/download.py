"""Lives in :mod:`keras_lightnets.weight_files.download` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.download`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import download

sys.modules[__name__] = download
