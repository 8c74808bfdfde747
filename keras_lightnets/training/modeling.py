"""How training builds, finishes and compiles a classifier.

Registered models are built with ``classifier_activation=None``: they output logits and the
loss is ``CategoricalCrossentropy(from_logits=True)`` (numerically safer than softmax then
log, and what mixed precision wants). A ``keras.Model`` given by the caller may end in a
softmax instead; :func:`outputs_probabilities` tells which, and compile/evaluate pick
``from_logits`` to match, so both kinds train and evaluate correctly.

Under a mixed policy the classifier computes in float16/bfloat16; :func:`float32_outputs`
appends a float32 ``Activation("linear")`` so that the logits reach the loss in float32
(the Keras mixed-precision guide's advice). The appended layer has no weights and is kept
in the saved model.
"""

import keras

from keras_lightnets.models.describe import auxiliary_outputs
from keras_lightnets.registry import get_entry
from keras_lightnets.training.optimizers import build_optimizer, build_schedule
from keras_lightnets.training.recipes import AUXILIARY_LOSS_WEIGHT

__all__ = ["AUXILIARY_LOSS_WEIGHT", "build_model", "compile_classifier", "float32_outputs", "outputs_probabilities"]


def build_model(name, *, num_classes, image_size, **overrides):
    """The registered model ``name`` for ``num_classes`` classes at ``image_size`` px, outputting logits."""
    entry = get_entry(name)
    return entry.build(
        classes=num_classes,
        input_shape=(image_size, image_size, 3),
        classifier_activation=None,
        **overrides,
    )


def outputs_probabilities(model):
    """Whether ``model`` ends in a softmax (probabilities) rather than logits."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", None) == "softmax"


def float32_outputs(model):
    """``model`` itself when its outputs are float32, else ``model`` followed by float32 identities."""
    if all(keras.backend.standardize_dtype(output.dtype) == "float32" for output in model.outputs):
        return model
    outputs = [
        keras.layers.Activation("linear", dtype="float32", name=f"{name}_float32")(output)
        for name, output in zip(["predictions", *auxiliary_outputs(model)], model.outputs, strict=False)
    ]
    return keras.Model(model.input, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def compile_classifier(
    model,
    *,
    optimizer,
    num_classes,
    label_smoothing=0.0,
    jit_compile=False,
    auxiliary_loss_weight=AUXILIARY_LOSS_WEIGHT,
):
    """Compiles for one-hot labels: cross-entropy (``from_logits`` as the model needs), accuracy, top-5.

    Top-5 accuracy is reported only for more than 5 classes (with 5 or fewer it is always 1).
    ``auxiliary_loss_weight``: each auxiliary classifier's share of the loss (GoogLeNet's, see
    :func:`~keras_lightnets.models.describe.auxiliary_outputs`); unused without them.
    """
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if num_classes > 5:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    loss = keras.losses.CategoricalCrossentropy(
        from_logits=not outputs_probabilities(model), label_smoothing=label_smoothing
    )
    auxiliary = len(auxiliary_outputs(model))
    if auxiliary:
        # Auxiliary classifiers (GoogLeNet): every output learns the labels, the auxiliary losses
        # weigh auxiliary_loss_weight each, the metrics are the main output's. The data gives the
        # labels once per output (inputs.train_dataset(outputs=...)).
        model.compile(
            optimizer=optimizer,
            loss=[loss] * (1 + auxiliary),
            loss_weights=[1.0] + [auxiliary_loss_weight] * auxiliary,
            metrics=[metrics] + [[] for _ in range(auxiliary)],
            jit_compile=jit_compile,
        )
        # Keras names the metrics of a multi-output model after the output ("predictions_accuracy");
        # without output names they keep the names fit, its callbacks and history.csv use.
        model._compile_metrics.output_names = None
        # Without a strategy Keras builds a multi-output loss (a Mean tracker per output) inside the
        # first train step; a tf.function that creates variables is traced twice, which added 30-60 s
        # to a GoogLeNet run's start on 2 cores. Built here, from the outputs' shapes, it is traced once.
        model._compile_loss.build(tuple(model.outputs), list(model.outputs))
        return model
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model


def compile_with_recipe(
    model,
    recipe,
    *,
    learning_rate,
    steps_per_epoch,
    epochs,
    num_classes,
    jit_compile=False,
    body_variables=None,
    body_rate=1.0,
    auxiliary_loss_weight=AUXILIARY_LOSS_WEIGHT,
):
    """Compiles ``model`` with ``recipe``'s schedule, optimizer and loss, and builds the optimizer's slots.

    The slots are built here rather than inside the first train step: a ``tf.function`` that
    creates variables is traced twice, which doubled the start-up time of short runs.
    ``body_variables`` / ``body_rate``: see :func:`~keras_lightnets.training.build_optimizer`;
    ``auxiliary_loss_weight``: see :func:`compile_classifier`.
    """
    schedule = build_schedule(recipe, learning_rate, steps_per_epoch, epochs)
    compile_classifier(
        model,
        optimizer=build_optimizer(recipe, schedule, model, body_variables=body_variables, body_rate=body_rate),
        num_classes=num_classes,
        label_smoothing=recipe.label_smoothing,
        jit_compile=jit_compile,
        auxiliary_loss_weight=auxiliary_loss_weight,
    )
    model.optimizer.build(model.trainable_variables)  # the LossScaleOptimizer too, under mixed_float16
    return model
