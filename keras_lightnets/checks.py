"""Argument checks, one convention for the whole package.

A value of the wrong type raises ``TypeError``; a value of the right type outside what is
allowed raises ``ValueError``. Every message names the argument in backticks, says what is
allowed and shows what was given, so the user can fix the call without reading our code.
Bools are refused where numbers are expected (``True`` is an ``int`` in Python, never what
the caller meant). Each check returns the value, so it can be used inline.
"""

import math
import numbers
import os
import tempfile
from pathlib import Path

__all__ = [
    "check_bool",
    "check_choice",
    "check_image_size",
    "check_int",
    "check_number",
    "check_positive",
    "check_positive_int",
    "check_rate",
    "check_width",
    "check_writable_folder",
]

# The largest model a width multiplier may ask for: 2e9 parameters are 8 GB of float32 weights
# before any gradient or optimizer state; past that the build runs out of memory, minutes later.
MAX_PARAMS = 2_000_000_000


def check_bool(value, arg):
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{arg}` must be True or False, got {value!r}")
    return value


def check_choice(value, arg, allowed):
    """One of ``allowed`` (compared with ``==`` and the same type, so ``1.0`` is not ``"1.0"``)."""
    if not any(value == choice and type(value) is type(choice) for choice in allowed):
        raise ValueError(f"`{arg}` must be one of {tuple(allowed)}, got {value!r}")
    return value


def check_number(value, arg, *, minimum=None, maximum=None, integer=False, exclusive_minimum=False, hint=""):
    """A finite real number (an integer when ``integer``) within ``[minimum, maximum]``.

    ``exclusive_minimum`` makes the lower bound strict (``> minimum``). ``hint`` is appended
    to the allowed range in the message (what the bound means).
    """
    kind = numbers.Integral if integer else numbers.Real
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"`{arg}` must be {what}{_range(minimum, maximum, exclusive_minimum)}{hint}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"`{arg}` must be a finite number, got {value!r}")
    below = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    above = maximum is not None and value > maximum
    if below or above:
        raise ValueError(f"`{arg}` must be {what}{_range(minimum, maximum, exclusive_minimum)}{hint}, got {value!r}")
    return value


def _range(minimum, maximum, exclusive_minimum):
    if minimum is not None and maximum is not None:
        return f" in {'(' if exclusive_minimum else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f" {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_positive(value, arg, *, integer=False):
    """A finite number > 0 (an integer when ``integer``)."""
    return check_number(value, arg, minimum=0, integer=integer, exclusive_minimum=True)


def check_width(value, arg, *, params_at_one, exponent=2):
    """A finite multiplier > 0 whose model stays under :data:`MAX_PARAMS` parameters, estimated
    as ``params_at_one * value ** exponent`` (convolutions grow with the square of a width)."""
    check_positive(value, arg)
    estimate = params_at_one * value**exponent
    if estimate > MAX_PARAMS:
        largest = (MAX_PARAMS / params_at_one) ** (1 / exponent)
        raise ValueError(
            f"`{arg}={value!r}` would build a model of about {estimate:.2g} parameters ({estimate * 4 / 1e9:,.0f} GB "
            f"of float32 weights); `{arg}` must be at most {largest:.3g} here"
        )
    return value


def check_int(value, arg, minimum, hint=""):
    """An integer >= ``minimum``."""
    return check_number(value, arg, minimum=minimum, integer=True, hint=hint)


def check_positive_int(arg, value):
    """``None`` (the default applies) or an integer >= 1."""
    if value is None:
        return None
    return check_number(value, arg, minimum=1, integer=True)


def check_rate(value, arg):
    """A probability in [0, 1), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{arg}` must be a number in [0, 1), got {value!r}")
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"`{arg}` must be in [0, 1), got {value!r}")
    return float(value)


def check_writable_folder(folder, arg, path):
    """The nearest existing folder of ``folder`` (itself or an ancestor), checked to accept a new file.

    ``os.access`` says yes to root everywhere, also under ``/proc`` or on a read-only mount, so the
    check creates (and removes) an empty hidden file there: the write that would fail later, after
    the work, naming our temporary file instead of ``arg``. ``path`` is what the user gave.
    """
    folder = Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise ValueError(f"`{arg}` {str(path)!r} cannot be written: {str(existing)!r} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".lightnets-write-check-", dir=existing)
    except OSError as error:
        raise ValueError(
            f"`{arg}` {str(path)!r} cannot be written: the folder {str(existing)!r} does not accept new files "
            f"({error.strerror or error}); choose a folder you can write to"
        ) from None
    os.close(handle)
    os.unlink(probe)
    return existing


def check_image_size(model, image_size, arg="image_size"):
    """``image_size`` fits ``model``'s input: a model built with a fixed ``(H, W, C)`` input takes
    ``H x W`` images only (Keras would fail inside its graph, after the pipeline is built); one
    built with ``input_shape=(None, None, C)`` takes any size."""
    shape = model.input_shape
    if not (isinstance(shape, tuple) and len(shape) == 4):
        return image_size  # several inputs, or not images: nothing to compare
    height, width = shape[1], shape[2]
    if (height is None or height == image_size) and (width is None or width == image_size):
        return image_size
    fixed = f"{height}x{width}"
    raise ValueError(
        f"`{arg}={image_size}` does not fit {model.name!r}, which takes {fixed} images (input shape {shape}): pass "
        f"`{arg}={height if height is not None else width}` (or leave it out), or build the model for {image_size} px "
        f"(input_shape=({image_size}, {image_size}, {shape[3]})), or with input_shape=(None, None, {shape[3]}) "
        "for any size"
    )
