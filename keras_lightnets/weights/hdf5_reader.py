"""Lives in :mod:`keras_lightnets.weight_files.hdf5_reader` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.hdf5_reader`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import hdf5_reader

sys.modules[__name__] = hdf5_reader
