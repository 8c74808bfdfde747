"""Tools for network design spaces (Radosavovic et al., "Designing Network Design Spaces", CVPR 2020).

- :func:`regnet_stages`: the RegNet rule, six numbers to the stages of an AnyNet.
"""

from keras_lightnets.design_space.regnet_rule import Stage, regnet_stages

__all__ = ["Stage", "regnet_stages"]
