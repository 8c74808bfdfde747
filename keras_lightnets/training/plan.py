"""How a run trains, decided once: the :class:`TrainingPlan` shared by ``fit``, QAT fine-tuning and ``run.json``.

:func:`make_plan` turns the arguments of :func:`~keras_lightnets.training.fit` (or of
:func:`~keras_lightnets.deploy.fit_quantize_aware`), what the model is (its registry entry, or the
model card of a given model) and the recipe into one frozen :class:`TrainingPlan`. Every argument is
checked there, before a model is built or an image read, and every default is worked out there and
nowhere else: the recipe and its overrides, the image size (a given model's fixed input size, else
the recipe's, else the dataset's), the augmentation preset, the global batch and the learning rate
scaled to it, the schedule's steps, the dtype policy, the dataset's sizes, the preprocessing and
whether the model trains with auxiliary classifiers. ``fit`` builds, compiles, feeds and records
(:attr:`TrainingPlan.hyperparameters` is run.json's ``"hyperparameters"``) from the plan.

QAT fine-tuning makes the same plan with the overrides the QAT literature uses (Jacob et al. 2018;
TF Model Garden's QAT configs), and only those: its own epochs, no warm-up, no EMA
(:data:`QAT_RECIPE_OVERRIDES`) and the peak learning rate times ``learning_rate_scale``.
"""

import math
from dataclasses import dataclass, replace

import tensorflow as tf

from keras_lightnets.checks import check_image_size, check_number, check_positive, check_positive_int
from keras_lightnets.data import BUNDLED_DATASET, dataset_info, num_examples
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.models.describe import auxiliary_outputs, model_family, without_auxiliary_outputs
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.registry import get_entry
from keras_lightnets.training.inputs import default_eval_split, default_image_size, default_preset
from keras_lightnets.training.precision import resolve_policy
from keras_lightnets.training.recipes import (
    AUXILIARY_LOSS_WEIGHT,
    Recipe,
    effective_weight_decay,
    get_recipe,
    scaled_learning_rate,
)
from keras_lightnets.transfer import check_pretrained_weights, parse_transfer

__all__ = ["QAT_RECIPE_OVERRIDES", "RECIPE_OVERRIDES", "TrainingPlan", "make_plan", "resolve_recipe"]

# The recipe fields fit() lets its arguments override (``None``: the recipe's).
RECIPE_OVERRIDES = ("optimizer", "momentum", "weight_decay", "warmup_epochs", "label_smoothing", "epochs", "ema")
# What quantization-aware fine-tuning changes in the recipe: it starts from trained weights, so it
# needs no warm-up, and it keeps no EMA of the weights (the fake-quant ranges are moving averages
# themselves). ``ema=0`` switches a recipe's EMA off.
QAT_RECIPE_OVERRIDES = {"warmup_epochs": 0.0, "ema": 0}


@dataclass(frozen=True)
class TrainingPlan:
    """How one run trains. Made by :func:`make_plan`; read, never recomputed, by ``fit`` and QAT.

    Attributes:
        model_name: the registered name fit builds, or the given model's name (run.json's ``"model"``).
        family: the model's family (registry or model card), ``None`` for a foreign model.
        builds_model: whether fit builds the registered model (a name) or trains the given one.
        recipe: the family's recipe with the arguments' overrides applied (its ``epochs`` are the run's).
        dataset: the TFDS name as given (what the pipelines open); ``dataset_name``: TFDS's name for it.
        data_dir: the TFDS data folder (``None``: TFDS's default).
        num_classes: the dataset's classes.
        train_examples, validation_examples: sizes of the training and validation splits.
        validation_split: evaluated after every epoch and at the end (``None``: none).
        image_size: the training and evaluation resolution.
        preset: the pipelines' augmentation preset ("cifar" or "imagenet").
        batch_size: the global batch; ``replicas``: the strategy's replicas (each takes an equal share).
        learning_rate: the peak rate (given, or the recipe's scaled linearly to ``batch_size``, times
            ``learning_rate_scale``).
        learning_rate_scale: 1 for fit; QAT fine-tuning's fraction of the recipe's rate.
        steps_per_epoch: optimizer steps per epoch.
        dtype_policy: the Keras dtype policy the model is built under ("float32", "mixed_float16", ...).
        preprocessing: the model's :class:`Preprocessing` (:func:`resolve_preprocessing`), ``None`` for
            a foreign model (ImageNet's statistics); pipelines feed ``preprocessing.fed()``.
        auxiliary_loss_weight: each auxiliary classifier's share of the loss when the model trains
            with them (GoogLeNet: a recipe fact for the models fit builds), else ``None``.
        weights, transfer, transfer_method, body_rate: pretrained weights and what trains
            (:func:`keras_lightnets.transfer.parse_transfer`); ``body_rate`` only with ``transfer``.
        seed: seeds initialization, shuffling and augmentation (``None``: not seeded).
    """

    model_name: str
    family: str | None
    builds_model: bool
    recipe: Recipe
    dataset: str
    dataset_name: str
    data_dir: str | None
    num_classes: int
    train_examples: int
    validation_split: str | None
    validation_examples: int
    image_size: int
    preset: str
    batch_size: int
    replicas: int
    learning_rate: float
    learning_rate_scale: float
    steps_per_epoch: int
    dtype_policy: str
    preprocessing: Preprocessing | None
    auxiliary_loss_weight: float | None
    weights: object = None
    transfer: str | None = None
    transfer_method: tuple | None = None
    body_rate: float | None = None
    seed: int | None = None

    @property
    def epochs(self):
        return self.recipe.epochs

    def build_overrides(self):
        """The arguments fit builds the registered model with, on top of its variant's: the recipe's
        dropout, and the auxiliary classifiers when the plan trains with them."""
        overrides = {} if self.recipe.dropout_rate is None else {"dropout_rate": self.recipe.dropout_rate}
        if self.auxiliary_loss_weight is not None and self.builds_model:
            overrides["aux_logits"] = True
        return overrides

    def pipeline_arguments(self):
        """What every input pipeline of the run is made with (``make_dataset``'s keywords)."""
        return {
            "dataset": self.dataset,
            "image_size": self.image_size,
            "preset": self.preset,
            "model": self.preprocessing,
            "data_dir": self.data_dir,
        }

    @property
    def hyperparameters(self):
        """run.json's ``"hyperparameters"``: the settings that must match for a run folder to resume."""
        recipe = self.recipe
        return {
            "optimizer": recipe.optimizer,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": recipe.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "momentum": recipe.momentum if recipe.optimizer != "adamw" else None,
            "nesterov": recipe.nesterov if recipe.optimizer == "sgd" else None,
            "weight_decay": recipe.weight_decay,
            "weight_decay_mode": recipe.weight_decay_mode,
            "keras_weight_decay": effective_weight_decay(recipe),
            "schedule": recipe.schedule,
            "warmup_epochs": recipe.warmup_epochs,
            "decay_rate": recipe.decay_rate if recipe.schedule in ("exponential", "multistep") else None,
            "decay_epochs": recipe.decay_epochs if recipe.schedule == "exponential" else None,
            "milestones": list(recipe.milestones) if recipe.schedule == "multistep" else None,
            "label_smoothing": recipe.label_smoothing,
            "ema": recipe.ema,
            "clip_norm": recipe.clip_norm,
            "randaugment": recipe.randaugment,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,  # absent (None) in runs of 0.1.0
            "dtype_policy": self.dtype_policy,
            "preset": self.preset,
            "validation_split": self.validation_split,
            "weights": None if self.weights is None else str(self.weights),
            "transfer": self.transfer,
            "body_rate": self.body_rate,
        }


def resolve_recipe(family, recipe, overrides=None):
    """``recipe`` (a name for ``family``, or a :class:`Recipe`) with ``overrides`` applied (``None`` values
    keep the recipe's; ``ema=0`` or ``False`` switches a recipe's EMA off)."""
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(family, recipe)
    overrides = dict(overrides or {})
    ema = overrides.pop("ema", None)
    recipe = recipe.with_overrides(**overrides)
    if ema is not None:
        recipe = replace(recipe, ema=float(ema) if ema else None)
    return recipe


def make_plan(
    model_or_name,
    *,
    strategy=None,
    dataset=BUNDLED_DATASET,
    data_dir=None,
    recipe="default",
    recipe_overrides=None,
    batch_size=None,
    image_size=None,
    learning_rate=None,
    learning_rate_scale=1.0,
    mixed_precision=None,
    preset=None,
    steps_per_epoch=None,
    validation_split="auto",
    weights=None,
    transfer=None,
    body_rate=0.1,
    seed=None,
):
    """The :class:`TrainingPlan` of a run; every argument checked before a model is built or data read.

    Args:
        model_or_name: a registered name (fit builds it) or a model to train (Keras 3, or a
            quantization-aware tf_keras model): what it is comes from its model card, never its name.
        strategy: the ``tf.distribute.Strategy`` the run trains under (default: the current one).
        recipe_overrides: recipe fields to replace (:data:`RECIPE_OVERRIDES`, ``None`` values ignored).
        learning_rate_scale: multiplies the recipe's scaled rate (QAT fine-tuning: 0.1); not a given
            ``learning_rate``.
        The others: as :func:`keras_lightnets.training.fit` documents them.

    Raises:
        TypeError, ValueError: a bad argument, named; a model that does not fit the dataset, the
        image size, the strategy or the precision; a batch larger than the training split.
    """
    strategy = strategy or tf.distribute.get_strategy()
    overrides = _check_recipe_overrides(recipe_overrides)
    _check_numbers(batch_size, image_size, steps_per_epoch, learning_rate_scale, body_rate)
    transfer_method = None if transfer is None else parse_transfer(transfer)  # bad values fail before any work
    if weights is not None:
        check_pretrained_weights(weights)
    given_model, model_name, family = _identify(model_or_name, strategy)
    _check_weights_and_transfer(given_model, image_size, weights, transfer)
    recipe = resolve_recipe(family, recipe, overrides)
    batch_size = batch_size or recipe.batch_size
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"`batch_size` {batch_size} (global) must be divisible by the {replicas} replicas")
    peak = (
        learning_rate if learning_rate is not None else scaled_learning_rate(recipe, batch_size) * learning_rate_scale
    )
    if isinstance(peak, bool) or not (isinstance(peak, int | float) and math.isfinite(peak) and peak > 0):
        raise ValueError(f"`learning_rate` must be a number > 0, got {learning_rate!r}")
    policy = resolve_policy(mixed_precision, strategy)
    _check_given_policy(given_model, policy, mixed_precision)
    preprocessing = resolve_preprocessing(model_or_name)

    info = dataset_info(dataset, data_dir)
    _check_classes(given_model, info)
    image_size = image_size or default_image_size(info.name, given_model, recipe, preprocessing)
    if validation_split == "auto":
        validation_split = default_eval_split(info.splits)
    train_examples = num_examples(dataset, "train", data_dir)
    if batch_size > train_examples:
        # Without this, steps_per_epoch=1 would train on repeated images with a learning rate
        # scaled up for a batch that does not exist.
        raise ValueError(
            f"`batch_size` {batch_size} is larger than the {train_examples} training examples of {info.name}: "
            f"use at most {train_examples}"
        )
    return TrainingPlan(
        model_name=model_name,
        family=family,
        builds_model=given_model is None,
        recipe=recipe,
        dataset=dataset,
        dataset_name=info.name,
        data_dir=data_dir,
        num_classes=info.num_classes,
        train_examples=train_examples,
        validation_split=validation_split,
        validation_examples=num_examples(dataset, validation_split, data_dir) if validation_split else 0,
        image_size=image_size,
        preset=preset or default_preset(image_size),
        batch_size=batch_size,
        replicas=replicas,
        learning_rate=peak,
        learning_rate_scale=learning_rate_scale,
        steps_per_epoch=steps_per_epoch or train_examples // batch_size,
        dtype_policy=policy,
        preprocessing=preprocessing,
        auxiliary_loss_weight=_auxiliary_loss_weight(given_model, recipe, transfer),
        weights=weights,
        transfer=transfer,
        transfer_method=transfer_method,
        body_rate=body_rate if transfer is not None else None,
        seed=seed,
    )


def _check_recipe_overrides(overrides):
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(RECIPE_OVERRIDES))
    if unknown:
        raise TypeError(f"`recipe_overrides` may replace {', '.join(RECIPE_OVERRIDES)}; got {', '.join(unknown)}")
    check_positive_int("epochs", overrides.get("epochs"))
    smoothing = overrides.get("label_smoothing")
    if smoothing is not None:
        check_number(smoothing, "label_smoothing", minimum=0, maximum=1, hint=" (0 turns it off)")
        if smoothing == 1:
            raise ValueError("`label_smoothing` must be below 1 (1 makes every target uniform), got 1")
    return overrides


def _check_numbers(batch_size, image_size, steps_per_epoch, learning_rate_scale, body_rate):
    for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
        check_positive_int(name, value)
    check_positive_int("image_size", image_size)
    check_positive(learning_rate_scale, "learning_rate_scale")
    check_positive(body_rate, "body_rate")


def _identify(model_or_name, strategy):
    """``(given model or None, model name, family)``: from the registry for a name, from the model's
    card for a model (its name is the user's to change)."""
    if isinstance(model_or_name, str):
        entry = get_entry(model_or_name)
        return None, entry.name, entry.family
    # A Keras 3 model (fit) or its quantization-aware tf_keras twin (QAT): each caller checks its kind.
    if not hasattr(model_or_name, "layers") or not hasattr(model_or_name, "output_shape"):
        raise TypeError(f"`model_or_name` must be a registered model name or a keras.Model, got {model_or_name!r}")
    model = model_or_name
    if strategy is not tf.distribute.get_strategy() and not all(
        strategy.extended.variable_created_in_scope(v.value)
        for v in model.weights  # the tf.Variable
    ):
        raise ValueError(
            "a keras.Model given to fit() under a distribution strategy must be built inside "
            "`strategy.scope()`; pass the registered name instead to have fit() build it"
        )
    return model, model.name, model_family(model)


def _check_weights_and_transfer(given_model, image_size, weights, transfer):
    if given_model is not None and image_size is not None:
        check_image_size(given_model, image_size)  # a fixed-size model takes that size only
    if weights is not None and given_model is not None:
        raise ValueError("`weights` applies to a registered name; load weights into a given keras.Model yourself")
    if transfer is not None and given_model is None and weights is None:
        raise ValueError(
            f"`transfer={transfer!r}` fine-tunes pretrained weights: pass `weights` ('imagenet', a tag or a file)"
        )


def _check_given_policy(given_model, policy, mixed_precision):
    if given_model is not None and policy != "float32" and given_model.dtype_policy.name != policy:
        raise ValueError(
            f"mixed_precision={mixed_precision!r} only applies to models fit() builds; build the given model "
            f"under keras.config.set_dtype_policy({policy!r}) instead"
        )


def _check_classes(given_model, info):
    if given_model is None:
        return
    classes = without_auxiliary_outputs(given_model).output_shape[-1]
    if classes != info.num_classes:
        raise ValueError(f"the model has {classes} outputs but {info.name} has {info.num_classes} classes")


def _auxiliary_loss_weight(given_model, recipe, transfer):
    """Each auxiliary classifier's loss weight, or ``None`` when the model trains without them.

    A model fit builds gets them when its recipe says so (GoogLeNet's), except for transfer learning:
    new auxiliary classifiers on a frozen or partly frozen pretrained body would only push the
    gradients of random heads into it. A given model trains with the ones it has.
    """
    if given_model is None:
        return recipe.auxiliary_loss_weight if transfer is None else None
    if not auxiliary_outputs(given_model):
        return None
    return recipe.auxiliary_loss_weight or AUXILIARY_LOSS_WEIGHT
