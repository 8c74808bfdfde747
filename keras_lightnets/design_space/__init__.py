"""Tools for network design spaces (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020).

- :func:`regnet_stages`: the RegNet rule, six numbers to the stages of an AnyNet;
- :func:`sample`: seeded configurations of AnyNetX_A ... E, RegNetX and RegNetY in a MAC band;
- :func:`anynet_macs`: the MACs of a configuration without building it;
- :func:`edf` and :func:`plot_edfs`: compare spaces by the distribution of their models' errors;
- :func:`train_samples` and :func:`plot_complexity`: train sampled models briefly, plot their
  errors against params, MACs and activations.
"""

from keras_lightnets.design_space.complexity import anynet_macs
from keras_lightnets.design_space.edf import edf, plot_edfs
from keras_lightnets.design_space.spaces import SPACES, sample
from keras_lightnets.design_space.study import SampleResult, plot_complexity, train_samples
from keras_lightnets.models.regnet_rule import Stage, regnet_stages

__all__ = [
    "SPACES",
    "SampleResult",
    "Stage",
    "anynet_macs",
    "edf",
    "plot_complexity",
    "plot_edfs",
    "regnet_stages",
    "sample",
    "train_samples",
]
