"""The arguments a family constructor takes: an unknown one is named with the families that take it.

Python's own ``TypeError: ResNet() got an unexpected keyword argument 'aux_logits'`` does not say
where the argument belongs (GoogLeNet's auxiliary classifiers). Every family constructor is
decorated with :func:`family_constructor`, so a direct call (``kl.ResNet(aux_logits=True)``) and
``kl.create_model("resnet50", aux_logits=True)`` (which calls the same constructor) give the one
message made here.
"""

import functools
import inspect

# The package, for its families (looked up only to word an error, when every family is imported).
from keras_lightnets import models

__all__ = ["UnknownArgumentError", "family_constructor", "unknown_argument_error"]


class UnknownArgumentError(TypeError, ValueError):
    """An argument the family's constructor does not take: a ``TypeError`` as Python raises for an
    unexpected keyword, and a ``ValueError`` as for any argument this package refuses."""


def _parameters(constructor):
    return tuple(inspect.signature(constructor).parameters)


def unknown_argument_error(constructor, argument):
    """The :class:`UnknownArgumentError` for ``argument`` passed to ``constructor``: the families
    whose constructors take it, and the arguments this one takes."""
    taken_by = [family.name for family in models.families() if argument in _parameters(family.constructor)]
    hint = f"; the families that take it: {', '.join(taken_by)}" if taken_by else ""
    return UnknownArgumentError(
        f"`{argument}` is not an argument of {constructor.__name__}{hint}. "
        f"Its arguments: {', '.join(_parameters(constructor))}"
    )


def family_constructor(function):
    """Decorates a family's constructor: a keyword it does not take raises :func:`unknown_argument_error`."""
    parameters = _parameters(function)

    @functools.wraps(function)
    def constructor(*args, **kwargs):
        unknown = next((key for key in kwargs if key not in parameters), None)
        if unknown is not None:
            raise unknown_argument_error(constructor, unknown)
        return function(*args, **kwargs)

    return constructor
