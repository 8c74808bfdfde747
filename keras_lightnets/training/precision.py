"""Mixed precision: which Keras dtype policy a run uses, set only while the model is built.

``"auto"`` picks ``mixed_bfloat16`` on TPUs, ``mixed_float16`` on GPUs and full float32 on
CPUs (where float16 math is emulated and slower). Under ``mixed_float16`` Keras's
``compile`` wraps the optimizer in a ``LossScaleOptimizer`` by itself (``auto_scale_loss``).
"""

import contextlib

import keras
import tensorflow as tf

__all__ = ["POLICIES", "global_policy", "resolve_policy"]

POLICIES = (None, "auto", "float32", "mixed_float16", "mixed_bfloat16")


def resolve_policy(mixed_precision, strategy):
    """The Keras dtype policy name for ``mixed_precision`` (``None`` means ``"float32"``)."""
    if mixed_precision not in POLICIES:
        raise ValueError(f"`mixed_precision` must be one of {POLICIES}, got {mixed_precision!r}")
    if mixed_precision == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            return "mixed_bfloat16"
        if tf.config.list_logical_devices("GPU") and not isinstance(strategy, tf.distribute.OneDeviceStrategy):
            return "mixed_float16"
        return "float32"
    return mixed_precision or "float32"


@contextlib.contextmanager
def global_policy(policy):
    """Sets Keras's global dtype policy for the block and restores the previous one after it.

    Layers take the global policy when they are created, so building the model inside the
    block is what makes it mixed; nothing leaks into code that runs afterwards.
    """
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
