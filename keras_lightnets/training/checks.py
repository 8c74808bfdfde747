"""Argument checks shared by the training and deployment entry points (``fit``, ``fit_quantize_aware``)."""

__all__ = ["check_positive_int"]


def check_positive_int(name, value):
    """``value`` is ``None`` (the default applies) or an integer >= 1; bools are refused."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
