"""Model families, one file each: configuration as data, body, head and variant table.

A family module ends with ``FAMILY = Family(...)``. This package finds every such module
(:func:`family_modules`), so adding a family is writing one file: its constructor is
exported here and its variants are registered without another edit.
"""

import importlib
import pkgutil

from keras_lightnets.models.variant import Family

__all__ = ["family_modules"]


def family_modules():
    """The modules of this package that define a ``FAMILY``, sorted by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "FAMILY", None), Family):
            found.append(module)
    return found


# Export every family's constructor (``MobileNetV2``, ``ReXNet``, ...) from this package.
for _module in family_modules():
    _constructor = _module.FAMILY.constructor
    globals()[_constructor.__name__] = _constructor
    __all__.append(_constructor.__name__)
del _module, _constructor
