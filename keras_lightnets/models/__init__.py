"""Model families, one file each: configuration as data, body, head and variant table.

A family module ends with ``FAMILY = Family(...)``. This package finds every such module
(:func:`family_modules`), so adding a family is writing one file: its constructor is
exported here and its variants are registered without another edit.
"""

import functools
import importlib
import pkgutil

from keras_lightnets.models.variant import Family

__all__ = ["families", "family_modules"]


@functools.cache  # the files of an installed package do not change while it runs
def family_modules():
    """The modules of this package that define a ``FAMILY``, sorted by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "FAMILY", None), Family):
            found.append(module)
    return tuple(found)


def families():
    """Every family's :class:`~keras_lightnets.models.variant.Family`, sorted by module name."""
    return tuple(module.FAMILY for module in family_modules())


# Export every family's constructor (``MobileNetV2``, ``ReXNet``, ...) from this package.
for _module in family_modules():
    _constructor = _module.FAMILY.constructor
    globals()[_constructor.__name__] = _constructor
    __all__.append(_constructor.__name__)
del _module, _constructor
