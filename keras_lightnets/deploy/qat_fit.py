"""``fit_quantize_aware``: fine-tune a quantization-aware model with its family's training recipe.

The QAT model is a tf_keras model (tfmot's requirement), so it cannot go through
:func:`keras_lightnets.training.fit`, which compiles Keras 3 objects. This function uses the
same pieces instead: the family's :class:`~keras_lightnets.training.Recipe` (optimizer,
schedule, weight decay with the same exclusions, label smoothing), the same TFDS input
pipeline and preprocessing, and the same optimizer and schedule builders, given
``tf_keras`` as the Keras module.

Both make their settings with :func:`keras_lightnets.training.plan.make_plan`: the same checks,
image size (a fixed-size model's, else the recipe's, else the dataset's), preset, batch (never
larger than the training split), learning-rate scaling, schedule and preprocessing. What differs
from a from-scratch run, as in the QAT literature (Jacob et al. 2018; TF Model Garden's QAT
configs), and nothing else: the model starts from trained weights, so the peak learning rate is
the recipe's times ``learning_rate_scale`` (default 0.1), there is no warm-up and no EMA (the
fake-quant ranges are themselves moving averages,
:data:`~keras_lightnets.training.plan.QAT_RECIPE_OVERRIDES`), and a few epochs are enough.
Afterwards, when the fine-tuning was too short for a BatchNorm's moving averages to forget
the float model's statistics, they are recomputed from the fine-tuned weights (precise BN,
:func:`~keras_lightnets.training.recalibrate_batchnorm`): the convolutions move during QAT,
while MobileNetV2's momentum of 0.999 keeps 91 % of its old averages over 90 steps. Measured
on the bundled digits (30 + 2 epochs): MobileNetV2's QAT-INT8 top-1 92.11 % as trained,
93.52 % recalibrated (FP32 93.80 %; freezing BatchNorm during QAT instead: 92.11 %). ReXNet's
momentum of 0.9 has forgotten them after a few dozen steps; recalibrating it anyway gave
98.31 % against 99.44 % as trained, so it is left alone.
"""

import time
from dataclasses import dataclass

import tensorflow as tf
import tf_keras

from keras_lightnets.checks import check_bool, check_int
from keras_lightnets.data import BUNDLED_DATASET
from keras_lightnets.deploy.qat import is_quantize_aware
from keras_lightnets.deploy.qat_calibration import calibrate_ranges
from keras_lightnets.training import inputs
from keras_lightnets.training.optimizers import build_optimizer, build_schedule
from keras_lightnets.training.plan import QAT_RECIPE_OVERRIDES, TrainingPlan, make_plan
from keras_lightnets.training.precise_bn import DEFAULT_PRECISE_BN_STEPS, has_stale_batchnorm, recalibrate_batchnorm
from keras_lightnets.training.recipes import Recipe

__all__ = ["DEFAULT_QAT_EPOCHS", "QATFitResult", "fit_quantize_aware"]

DEFAULT_QAT_EPOCHS = 2
DEFAULT_LEARNING_RATE_SCALE = 0.1
DEFAULT_CALIBRATION_STEPS = 16


@dataclass
class QATFitResult:
    """``history``: Keras's per-epoch metrics; ``metrics``: the final model on the validation split;
    ``plan``: how it fine-tuned (:class:`~keras_lightnets.training.plan.TrainingPlan`)."""

    model: object
    history: dict
    metrics: dict
    seconds_per_epoch: float
    recipe: Recipe
    learning_rate: float
    plan: TrainingPlan | None = None


def _ends_in_softmax(model):
    last = model.layers[-1]
    inner = getattr(last, "layer", last)  # tfmot wraps layers in QuantizeWrapperV2
    activation = inner.get_config().get("activation")
    return activation == "softmax" or type(inner).__name__ == "Softmax"


def _decay_exclusions(model, recipe):
    """BatchNorm parameters and biases (and depthwise kernels unless the recipe decays them), by variable name.

    Inside tfmot's wrappers the layer types are hidden, and BatchNorm is folded into the
    convolution's wrapper, so the variables are told apart by their names.
    """
    spared = ("bias", "gamma", "beta") + (() if recipe.decay_depthwise else ("depthwise_kernel",))
    return [v for v in model.trainable_variables if any(part in v.name for part in spared)]


def fit_quantize_aware(
    qat_model,
    *,
    dataset=BUNDLED_DATASET,
    epochs=DEFAULT_QAT_EPOCHS,
    batch_size=None,
    image_size=None,
    recipe="default",
    learning_rate=None,
    learning_rate_scale=DEFAULT_LEARNING_RATE_SCALE,
    steps_per_epoch=None,
    validation_split="auto",
    calibration_steps=DEFAULT_CALIBRATION_STEPS,
    precise_bn_steps=DEFAULT_PRECISE_BN_STEPS,
    preset=None,
    data_dir=None,
    seed=None,
    run_eagerly=False,
    verbose=1,
):
    """Fine-tunes ``qat_model`` (from :func:`~keras_lightnets.deploy.quantize_aware`) on ``dataset``.

    Args:
        qat_model: a quantization-aware model. Its model card (kept from the Keras 3 model it was
            made of) names its family, which picks the recipe, and its preprocessing; its name plays
            no part. A model without a card (a foreign one) gets the shared ``"*"`` recipes and
            ImageNet's normalization.
        dataset, image_size, batch_size, preset, data_dir, steps_per_epoch, validation_split:
            as in :func:`keras_lightnets.training.fit`: the image size defaults to the model's fixed
            input size, else the recipe's, else the dataset's; a batch larger than the training
            split is refused.
        epochs: QAT epochs (default 2).
        recipe: the family's recipe name ("default", "paper") or a ``Recipe``.
        learning_rate: the peak rate; default the recipe's (linearly scaled to the batch)
            times ``learning_rate_scale``.
        calibration_steps: batches of (unaugmented) training images that set the activation
            ranges before fine-tuning (:func:`~keras_lightnets.deploy.calibrate_ranges`);
            0 leaves tfmot's initial [-6, 6] ranges to its slow moving average.
        precise_bn_steps: batches of (unaugmented) training images whose average statistics
            become every BatchNorm's moving mean/variance after fine-tuning, when the moving
            averages still give more than 5 % to their pre-QAT values (``momentum ** steps``);
            0 always keeps the moving averages of training.
        run_eagerly: run the train steps eagerly instead of tracing them into a graph. Tracing
            a QAT model's train step takes 15-40 s on 2 cores and pays off after some tens of
            steps; eager steps are about 5x slower each. For a handful of steps, or debugging.

    Returns a :class:`QATFitResult`; the model is trained in place.
    """
    if not is_quantize_aware(qat_model):
        raise TypeError(
            "`qat_model` must be a model from keras_lightnets.deploy.quantize_aware(); train Keras 3 models "
            "with keras_lightnets.training.fit"
        )
    for name, value in (("calibration_steps", calibration_steps), ("precise_bn_steps", precise_bn_steps)):
        check_int(value, name, 0)
    check_bool(run_eagerly, "run_eagerly")
    plan = make_plan(
        qat_model,
        strategy=tf.distribute.get_strategy(),
        dataset=dataset,
        data_dir=data_dir,
        recipe=recipe,
        recipe_overrides={"epochs": epochs, **QAT_RECIPE_OVERRIDES},
        batch_size=batch_size,
        image_size=image_size,
        learning_rate=learning_rate,
        learning_rate_scale=learning_rate_scale,
        preset=preset,
        steps_per_epoch=steps_per_epoch,
        validation_split=validation_split,
        seed=seed,
    )
    if seed is not None:
        tf_keras.utils.set_random_seed(seed)
    _compile(qat_model, plan, run_eagerly=run_eagerly)
    train, unaugmented_train, validation = _datasets(plan)
    if calibration_steps:
        calibrate_ranges(qat_model, unaugmented_train.as_numpy_iterator(), steps=calibration_steps)
    started = time.perf_counter()
    history = qat_model.fit(
        train, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch, validation_data=validation, verbose=verbose
    )
    seconds_per_epoch = (time.perf_counter() - started) / plan.epochs
    if precise_bn_steps and has_stale_batchnorm(qat_model, plan.epochs * plan.steps_per_epoch):
        recalibrate_batchnorm(qat_model, unaugmented_train.as_numpy_iterator(), steps=precise_bn_steps)
    final = {}
    if validation is not None:
        final = qat_model.evaluate(validation, verbose=0, return_dict=True)
    return QATFitResult(
        model=qat_model,
        history=dict(history.history),
        metrics=final,
        seconds_per_epoch=seconds_per_epoch,
        recipe=plan.recipe,
        learning_rate=plan.learning_rate,
        plan=plan,
    )


def _compile(qat_model, plan, *, run_eagerly):
    """Compiles the tf_keras model with the plan's schedule, optimizer and loss, and builds the optimizer."""
    recipe = plan.recipe
    schedule = build_schedule(recipe, plan.learning_rate, plan.steps_per_epoch, plan.epochs, keras_module=tf_keras)
    optimizer = build_optimizer(
        recipe, schedule, keras_module=tf_keras, exclusions=_decay_exclusions(qat_model, recipe)
    )
    metrics = [tf_keras.metrics.CategoricalAccuracy(name="accuracy")]
    if plan.num_classes > 5:
        metrics.append(tf_keras.metrics.TopKCategoricalAccuracy(5, name="top5"))
    qat_model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.CategoricalCrossentropy(
            from_logits=not _ends_in_softmax(qat_model), label_smoothing=recipe.label_smoothing
        ),
        metrics=metrics,
        run_eagerly=run_eagerly,
    )
    # Slot variables made before fit(): a first trace that creates variables makes tf.function
    # trace the train step a second time (17 of 37 s of a ReXNet QAT fit's start on 2 cores).
    optimizer.build(qat_model.trainable_variables)


def _datasets(plan):
    """``(train, unaugmented train, validation or None)``, made as fit makes them."""
    arguments = plan.pipeline_arguments()
    train = inputs.train_dataset(
        tf.distribute.get_strategy(),
        batch_size=plan.batch_size,
        randaugment=plan.recipe.randaugment,
        seed=plan.seed,
        **arguments,
    )
    unaugmented_train = inputs.eval_dataset("train", batch_size=plan.batch_size, **arguments)
    validation = None
    if plan.validation_split:
        validation = inputs.eval_dataset(plan.validation_split, batch_size=plan.batch_size, **arguments)
    return train, unaugmented_train, validation
