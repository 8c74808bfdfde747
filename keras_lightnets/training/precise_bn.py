"""Precise BatchNorm: recompute the BatchNorm moving statistics from data after training.

A BatchNorm layer's moving mean/variance is an exponential average with a slow momentum
(0.999 in keras.applications' MobileNetV2, i.e. PyTorch's 0.001). After a short run
(a few hundred steps on the bundled digits) it still remembers its initial mean 0 /
variance 1, so the model trains well and predicts nothing at inference. "Precise BN"
(Wu & Johnson 2021, "Rethinking Batch in BatchNorm"; pycls and Detectron2's
``PreciseBN`` hook) replaces those averages by the population statistics of the final
weights: run the model in training mode over some batches and average each layer's
batch mean and variance with equal weights.

    recalibrate_batchnorm(model, dataset.map(lambda x, y: x), steps=32)
"""

import itertools

import keras

from keras_lightnets.checks import check_int

__all__ = [
    "DEFAULT_PRECISE_BN_STEPS",
    "STALE_BATCHNORM_MEMORY",
    "batchnorm_memory",
    "has_stale_batchnorm",
    "recalibrate_batchnorm",
]

# The one rule, shared by ``fit`` and ``fit_quantize_aware``: after training, a BatchNorm whose
# moving averages still give more than this share to their values from before the run
# (``batchnorm_memory(model, steps) > STALE_BATCHNORM_MEMORY``) is recalibrated from the final weights.
STALE_BATCHNORM_MEMORY = 0.05
# Batches of unaugmented training images averaged by that recalibration.
DEFAULT_PRECISE_BN_STEPS = 32


def _is_batchnorm(layer):
    # Keras 3's BatchNormalization, and tf_keras's inside a quantization-aware model (this
    # module does not import tf_keras: the two share these attribute names).
    return isinstance(layer, keras.layers.BatchNormalization) or (
        type(layer).__name__ == "BatchNormalization" and hasattr(layer, "moving_variance")
    )


def _batchnorm_layers(model):
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True) if _is_batchnorm(layer)]


def batchnorm_memory(model, steps):
    """What a BatchNorm's moving averages still owe to their values of ``steps`` steps ago.

    The largest ``momentum ** steps`` over the model's BatchNorm layers (0.0 without any).
    Over 90 steps MobileNetV2's momentum 0.999 keeps 91 %: its averages describe the weights of
    before. ReXNet's 0.9 keeps 0.008 %: they describe the current weights.
    """
    return max((float(layer.momentum) ** steps for layer in _batchnorm_layers(model)), default=0.0)


def has_stale_batchnorm(model, steps):
    """Whether ``steps`` training steps left some BatchNorm's moving averages stale: they still give
    more than :data:`STALE_BATCHNORM_MEMORY` to their values from before (the rule that decides
    whether ``fit`` and ``fit_quantize_aware`` recalibrate them)."""
    return batchnorm_memory(model, steps) > STALE_BATCHNORM_MEMORY


def recalibrate_batchnorm(model, batches, *, steps=32):
    """Sets every BatchNorm layer's moving mean/variance to the average over ``steps`` batches.

    Only the moving statistics change: the forward passes run in training mode (batch
    statistics, as in training) with a cumulative-average momentum, and every other
    variable is restored afterwards.

    Args:
        model: a Keras 3 model, or a quantization-aware tf_keras model from
            :func:`keras_lightnets.deploy.quantize_aware` (its fake-quant ranges are restored too).
        batches: an iterable of input batches (arrays or tensors), e.g. a ``tf.data``
            dataset of images; ``(images, labels)`` pairs are accepted and the labels ignored.
        steps: how many batches to average (at most what ``batches`` holds).

    Returns the number of batches used (0 when the model has no BatchNorm layer).
    """
    check_int(steps, "steps", 1)
    layers = _batchnorm_layers(model)
    if not layers:
        return 0
    moving = [weight for layer in layers for weight in (layer.moving_mean, layer.moving_variance)]
    others = [variable for variable in model.variables if not any(variable is weight for weight in moving)]
    saved_others = [keras.ops.convert_to_numpy(variable) for variable in others]
    saved_momentum = [layer.momentum for layer in layers]
    used = 0
    try:
        for batch in itertools.islice(batches, steps):
            images = batch[0] if isinstance(batch, tuple | list) else batch
            # moving = m * moving + (1 - m) * batch with m = k / (k + 1) keeps the plain average of k + 1 batches.
            for layer in layers:
                layer.momentum = used / (used + 1)
            model(images, training=True)
            used += 1
    finally:
        for layer, momentum in zip(layers, saved_momentum, strict=True):
            layer.momentum = momentum
        for variable, value in zip(others, saved_others, strict=True):
            variable.assign(value)
    if used == 0:
        raise ValueError("`batches` yielded no batch")
    return used
