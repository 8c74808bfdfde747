"""Lives in :mod:`keras_lightnets.weight_files.torch_port` (below the registry, where the build scaffold
can import it); ``keras_lightnets.weights.torch_port`` names that same module, so imports, attributes and
monkeypatches written against this name keep working."""

import sys

from keras_lightnets.weight_files import torch_port

sys.modules[__name__] = torch_port
