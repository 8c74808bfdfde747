"""Lives in :mod:`keras_lightnets.models.regnet_rule` (the models build their stages with it, and
this package's study trains those models); ``keras_lightnets.design_space.regnet_rule`` names that
same module."""

import sys

from keras_lightnets.models import regnet_rule

sys.modules[__name__] = regnet_rule
