"""Activation ranges of a quantization-aware model set from data before fine-tuning.

tfmot starts every activation range at [-6, 6] and moves it with an exponential moving
average of decay 0.999 per training step: after the few hundred steps of a short QAT
fine-tune, a range has covered only a fraction of the way to the data's real range (about
9 % after 90 steps), so int8 codes are wasted and the INT8 file drifts away from the QAT
Keras model (94 % top-1 agreement on ReXNet before this step, see
benchmarks/results/deploy_accuracy.md). Post-training quantization does not have this
problem because it calibrates ranges on data first; :func:`calibrate_ranges` does the same
for QAT: a few forward passes in training mode with the moving-average decay replaced by an
exact running mean of the batches' min/max, after which every other variable (BatchNorm
statistics, the step counters) is restored, so only the ranges change.
"""

import contextlib

from keras_lightnets.checks import check_int

__all__ = ["calibrate_ranges", "is_range_variable"]

_RANGE_SUFFIXES = ("_min", "_max")


def is_range_variable(variable):
    """Whether ``variable`` is a quantizer's min or max (activation or weight range)."""
    return variable.name.split(":")[0].endswith(_RANGE_SUFFIXES)


@contextlib.contextmanager
def _moving_average_decay(holder):
    """Makes tfmot's MovingAverageQuantizer use ``holder["decay"]`` instead of its fixed 0.999."""
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize

    def with_decay(*args, **kwargs):
        kwargs["ema_decay"] = holder["decay"]
        return original(*args, **kwargs)

    quant_ops.MovingAvgQuantize = with_decay
    try:
        yield
    finally:
        quant_ops.MovingAvgQuantize = original


def calibrate_ranges(qat_model, batches, *, steps=16):
    """Sets ``qat_model``'s activation ranges to the mean batch min/max over ``steps`` batches.

    ``batches``: an iterable of image batches (or ``(images, labels)``) preprocessed as the
    model expects. Returns the number of batches used. Runs eagerly (the patched decay must
    be read at every call), which is fine for a handful of batches.
    """
    check_int(steps, "steps", 1)
    saved = [(variable, variable.numpy()) for variable in qat_model.variables if not is_range_variable(variable)]
    holder = {"decay": 0.0}
    used = 0
    with _moving_average_decay(holder):
        for batch in batches:
            if used == steps:
                break
            images = batch[0] if isinstance(batch, tuple | list) else batch
            # decay 1 - 1/n: the n-th batch gets weight 1/n, i.e. a running mean (the first sets the range).
            holder["decay"] = 1.0 - 1.0 / (used + 1)
            qat_model(images, training=True)
            used += 1
    for variable, value in saved:
        variable.assign(value)
    return used
