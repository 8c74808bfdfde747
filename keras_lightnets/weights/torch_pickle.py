"""Lives in :mod:`keras_lightnets.weight_files.torch_pickle` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.torch_pickle`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import torch_pickle

sys.modules[__name__] = torch_pickle
