"""A recipe's learning-rate schedule and optimizer, from Keras's own (serializable) classes.

Schedules advance per optimizer step, so epochs are converted to steps with the run's
``steps_per_epoch``:

- cosine: ``CosineDecay(0, decay_steps, warmup_target=peak, warmup_steps=W)``, i.e. a linear
  ramp from 0 at step 0 to ``peak`` at step ``W``, then ``peak * (1 + cos(pi t / D)) / 2``
  down to 0 at step ``W + D`` = the last step;
- exponential: ``ExponentialDecay(peak, steps_per_epoch * decay_epochs, decay_rate, staircase=True)``;
- linear: ``PolynomialDecay(peak, total_steps, 0, power=1)`` (Caffe's ``poly``);
- constant: ``peak``.

Only Keras classes (or, for transfer learning's lower body rate, their registered
:mod:`keras_lightnets.transfer` subclasses), so a saved ``.keras`` model (optimizer included)
loads anywhere keras_lightnets is imported.
"""

import keras

from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.training.recipes import effective_weight_decay
from keras_lightnets.transfer.optimizers import body_rate_class

__all__ = ["build_optimizer", "build_schedule", "decay_exclusions"]


def build_schedule(recipe, peak_learning_rate, steps_per_epoch, epochs, *, keras_module=keras):
    """The learning rate (a float or a ``LearningRateSchedule``) of ``recipe`` for this run's length.

    ``keras_module``: ``keras`` or ``tf_keras`` (whose schedule classes have the same
    signatures), so quantization-aware tf_keras models train with the same schedule.
    """
    schedules = keras_module.optimizers.schedules
    total_steps = max(1, steps_per_epoch * epochs)
    if recipe.schedule == "constant":
        return peak_learning_rate
    if recipe.schedule == "exponential":
        return schedules.ExponentialDecay(
            peak_learning_rate,
            decay_steps=max(1, round(steps_per_epoch * recipe.decay_epochs)),
            decay_rate=recipe.decay_rate,
            staircase=True,
        )
    if recipe.schedule == "multistep":
        # Keras's boundaries are inclusive (the old value up to and including the boundary step):
        # the first step of a milestone epoch already runs at the divided rate, as with PyTorch's MultiStepLR.
        boundaries = [max(0, round(steps_per_epoch * epoch) - 1) for epoch in recipe.milestones]
        values = [peak_learning_rate * recipe.decay_rate**index for index in range(len(boundaries) + 1)]
        return schedules.PiecewiseConstantDecay(boundaries, values)
    if recipe.schedule == "linear":
        return schedules.PolynomialDecay(peak_learning_rate, total_steps, 0.0, power=1.0)
    warmup_steps = min(total_steps - 1, round(steps_per_epoch * recipe.warmup_epochs))
    if warmup_steps <= 0:
        return schedules.CosineDecay(peak_learning_rate, total_steps)
    return schedules.CosineDecay(
        0.0, total_steps - warmup_steps, warmup_target=peak_learning_rate, warmup_steps=warmup_steps
    )


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested models
            yield from _all_layers(layer)


def decay_exclusions(model, *, depthwise=True):
    """Variables spared from weight decay: Batch/LayerNorm's gamma/beta, layer scale's gamma (timm spares
    every 1-D parameter), biases, depthwise kernels unless ``depthwise``.

    Picked by layer type and attribute rather than by name, so renamed layers cannot slip through.
    """
    excluded = []
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization | keras.layers.LayerNormalization):
            excluded += layer.trainable_weights
            continue
        if isinstance(layer, LayerScale):
            excluded.append(layer.gamma)
            continue
        bias = getattr(layer, "bias", None)
        if isinstance(bias, keras.Variable):
            excluded.append(bias)
        if not depthwise and isinstance(layer, keras.layers.DepthwiseConv2D):
            excluded.append(layer.kernel)
    return excluded


def build_optimizer(
    recipe,
    learning_rate,
    model=None,
    *,
    momentum=None,
    keras_module=keras,
    exclusions=None,
    body_variables=None,
    body_rate=1.0,
):
    """The Keras optimizer of ``recipe`` with ``learning_rate`` (float or schedule).

    Weight decay is Keras's decoupled decay with :func:`effective_weight_decay`'s
    coefficient, not applied to :func:`decay_exclusions` of ``model``. EMA uses Keras's
    ``use_ema``: the model gets the averaged weights when ``fit`` ends
    (``optimizer.finalize_variable_values``, which ``Model.fit`` calls).

    ``keras_module`` ``tf_keras`` builds the same optimizer for a tf_keras model (its
    optimizers take the same arguments); ``exclusions`` then replaces
    :func:`decay_exclusions`, which only knows Keras 3 layers.

    ``body_variables`` (variable paths, Keras 3 only): trained at ``body_rate`` times the rate,
    by the recipe optimizer's :mod:`keras_lightnets.transfer` subclass (transfer learning's
    lower rate for the unfrozen body).
    """
    optimizers = keras_module.optimizers
    momentum = recipe.momentum if momentum is None else momentum
    weight_decay = effective_weight_decay(recipe) or None
    common = {
        "learning_rate": learning_rate,
        "global_clipnorm": recipe.clip_norm,
        "use_ema": recipe.ema is not None,
        "ema_momentum": recipe.ema if recipe.ema is not None else 0.99,
    }
    classes = {"sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop, "adamw": optimizers.AdamW}
    if body_variables:
        if keras_module is not keras:
            raise ValueError("`body_variables` needs Keras 3 optimizers (keras_module=keras)")
        classes = {key: body_rate_class(cls) for key, cls in classes.items()}
        common.update(body_rate=body_rate, body_variables=body_variables)
    optimizer_class = classes[recipe.optimizer]
    if recipe.optimizer == "sgd":
        optimizer = optimizer_class(momentum=momentum, nesterov=recipe.nesterov, weight_decay=weight_decay, **common)
    elif recipe.optimizer == "rmsprop":
        optimizer = optimizer_class(
            rho=recipe.rho, momentum=momentum, epsilon=recipe.epsilon, weight_decay=weight_decay, **common
        )
    else:  # AdamW insists on a number
        optimizer = optimizer_class(epsilon=recipe.epsilon, weight_decay=weight_decay or 0.0, **common)
    if weight_decay and exclusions is None and model is not None:
        exclusions = decay_exclusions(model, depthwise=recipe.decay_depthwise)
    if weight_decay and exclusions:
        optimizer.exclude_from_weight_decay(var_list=exclusions)
    return optimizer
