"""``fit``: train a registered model (or a Keras model) with a recipe, resumably, into an output folder.

    from keras_lightnets.training import fit
    result = fit("squeezenet1_1", epochs=5)                     # bundled digits, 32 px, default recipe
    result = fit("rexnet_100", dataset="imagenet2012", recipe="paper", strategy="auto")
    result = fit("efficientnet_lite0", weights="imagenet", transfer="from-back:3", image_size=128)

Running the same call again after a crash resumes from the last finished epoch (see
:mod:`keras_lightnets.training.run_dir` for the folder and :mod:`.callbacks` for the
order in which an epoch's outputs are committed).
"""

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import keras
import tensorflow as tf

from keras_lightnets.checks import (
    check_bool,
    check_image_size,
    check_number,
    check_positive,
    check_positive_int,
    check_writable_folder,
)
from keras_lightnets.data import BUNDLED_DATASET, dataset_info, num_examples
from keras_lightnets.models.describe import model_family, model_identity, without_auxiliary_outputs
from keras_lightnets.registry import get_entry
from keras_lightnets.training import inputs
from keras_lightnets.training.callbacks import (
    BackupCheckpoint,
    BestCheckpoint,
    EpochSummaries,
    HistoryWriter,
    InterruptGuard,
    NonFiniteLossGuard,
    TrainingInterrupted,
    stop_on_interrupt,
)
from keras_lightnets.training.modeling import build_model, compile_with_recipe, float32_outputs
from keras_lightnets.training.multiworker import patch_for_multi_worker
from keras_lightnets.training.precision import global_policy, resolve_policy
from keras_lightnets.training.recipes import Recipe, effective_weight_decay, get_recipe, scaled_learning_rate
from keras_lightnets.training.run_dir import CheckpointError, RunDir, atomic_save_model, model_fingerprint
from keras_lightnets.training.strategy import get_strategy, is_chief, is_multi_worker, worker_id
from keras_lightnets.transfer import (
    check_pretrained_weights,
    copy_body_weights,
    freeze,
    load_pretrained,
    parse_transfer,
)
from keras_lightnets.weights.errors import CheckpointError as WeightsFileError

__all__ = ["FitResult", "default_output_dir", "fit", "summary"]


@dataclass
class FitResult:
    """What ``fit`` returns.

    ``history``: every epoch's row of history.csv (including epochs of an earlier,
    interrupted invocation); ``metrics``: the final model evaluated on the validation split
    (``loss`` includes label smoothing, as in training; ``accuracy``, ``top5``,
    ``num_examples``), empty without a validation split; ``seconds_per_epoch``: mean wall
    time of the epochs this call ran (validation included, the first epoch's tracing too);
    ``initial_epoch``: epochs already done when this call started (0 for a fresh run).
    With EMA, ``metrics`` are those of the averaged weights (the final model), while the
    history's ``val_`` columns were measured on the raw weights at each epoch's end.
    """

    model: keras.Model
    history: list
    output_dir: Path
    metrics: dict
    seconds_per_epoch: float | None
    initial_epoch: int = 0
    recipe: Recipe | None = None
    run_info: dict = field(default_factory=dict)

    @property
    def final_accuracy(self):
        return self.metrics.get("accuracy")


def default_output_dir(model_name, dataset):
    """``runs/MODEL-DATASET`` under the working directory."""
    return Path("runs") / f"{model_name}-{dataset.replace('/', '_').replace(':', '_')}"


def _jsonable_preprocessing(preprocessing):
    """run.json's record of how inputs were prepared (``None``: ImageNet's defaults)."""
    if preprocessing is None:
        return None
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(preprocessing).items()}


def _resolve_recipe(family, recipe, overrides):
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(family, recipe)
    ema = overrides.pop("ema", None)
    recipe = recipe.with_overrides(**overrides)
    if ema is not None:  # ema=0 / False switches a recipe's EMA off
        recipe = replace(recipe, ema=float(ema) if ema else None)
    return recipe


def fit(
    model_or_name,
    *,
    dataset=BUNDLED_DATASET,
    epochs=None,
    batch_size=None,
    image_size=None,
    recipe="default",
    weights=None,
    transfer=None,
    body_rate=0.1,
    optimizer=None,
    learning_rate=None,
    momentum=None,
    weight_decay=None,
    warmup_epochs=None,
    label_smoothing=None,
    ema=None,
    mixed_precision=None,
    jit_compile=False,
    strategy="auto",
    output_dir=None,
    data_dir=None,
    preset=None,
    seed=None,
    steps_per_epoch=None,
    validation_split="auto",
    overwrite=False,
    callbacks=None,
    verbose=1,
    log=None,
):
    """Trains ``model_or_name`` on ``dataset`` with ``recipe`` and writes the run to ``output_dir``.

    Args:
        model_or_name: a registered name (built here, inside the strategy's scope and the
            dtype policy, with the dataset's classes, ``input_shape=(S, S, 3)`` and logits
            out) or a ``keras.Model`` taking ``(S, S, 3)`` images with the dataset's number of
            classes (logits or softmax). A given model must have been built inside
            ``strategy.scope()`` when the strategy is not the default one, and keeps its own
            dtype policy (``mixed_precision`` only applies to models built here). It is
            compiled here (its previous compile settings are replaced).
        dataset: a TFDS name; default the bundled offline digits.
        epochs, batch_size: default the recipe's. ``batch_size`` is the global batch.
        image_size: default a given model's fixed input size, else the recipe's (SqueezeNet's
            default recipe: 64), else 32 for the bundled dataset, else the registry's input size.
        recipe: a recipe name for the model's family ("default", "paper") or a :class:`Recipe`.
        weights: for a registered name: pretrained weights for the body, ``"imagenet"`` / a published
            tag, or a file (a checkpoint :func:`keras_lightnets.weights.load_checkpoint` reads, or a
            Keras weights file of the architecture); the classifier is new, for the dataset's classes
            (:func:`keras_lightnets.transfer.load_pretrained`, :func:`~keras_lightnets.transfer.copy_body_weights`).
            Without ``transfer`` every layer trains.
        transfer: ``None`` (every layer trains), ``"head"`` (only the classifier trains) or
            ``"from-back"`` / ``"from-back:N"`` / ``"from-back:NAME"`` (the classifier and the last N
            blocks, the last stage, or every block from a block or layer name on); the rest is frozen,
            BatchNorm included (inference mode), see :func:`keras_lightnets.transfer.freeze`. Needs
            ``weights`` with a registered name; a given model is frozen as it is.
        body_rate: with ``transfer``: the unfrozen body's learning rate as a fraction of the head's.
        optimizer, learning_rate, momentum, weight_decay, warmup_epochs, label_smoothing,
            ema: override the recipe. Without ``learning_rate`` the recipe's rate is scaled
            linearly from its batch size to ``batch_size``. ``ema=0`` turns EMA off.
        mixed_precision: None/"float32", "mixed_float16", "mixed_bfloat16" or "auto"
            (float16 on GPUs, bfloat16 on TPUs, none on CPUs).
        jit_compile: compile train/eval steps with XLA.
        strategy: "auto", "cpu", "mirrored", "multiworker", "tpu" or a ``tf.distribute.Strategy``.
        output_dir: the run's folder; default ``runs/MODEL-DATASET``.
        preset: the data pipeline's augmentation preset; default "cifar" up to 64 px, else "imagenet".
        seed: seeds weight initialization, shuffling and augmentation.
        steps_per_epoch: default ``train examples // batch_size``.
        validation_split: evaluated after every epoch and at the end; "auto": "validation" when the
            dataset has that split (ImageNet), else "test"; ``None`` for none.
        overwrite: start afresh in an ``output_dir`` that holds another (or the same) run.
        callbacks: extra Keras callbacks (a list or tuple of ``keras.callbacks.Callback``), run before
            this package's.
        verbose: Keras's progress output (0 silent, 1 progress bar, 2 one line per epoch).
        log: where messages go (a ``print``-like callable); default stdout, nothing when ``verbose=0``.

    Raises:
        ValueError: bad arguments; :class:`RunMismatchError` when ``output_dir`` holds
            another run; :class:`CheckpointError` when its backup cannot be read.
        NonFiniteLossError: the loss became NaN or infinite (the last good backup stays).
        TrainingInterrupted: Ctrl-C (SIGINT) while training, raised at the next batch end; the same
            call again resumes from the last finished epoch (a ``KeyboardInterrupt``).
    """
    if log is None:
        log = print if verbose else (lambda *args, **kwargs: None)
    strategy = get_strategy(strategy)  # first: multi-worker and TPU strategies must precede other TF work
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch)):
        check_positive_int(name, value)
    check_positive_int("image_size", image_size)
    transfer_method = None if transfer is None else parse_transfer(transfer)  # bad values fail before any work
    check_positive(body_rate, "body_rate")
    check_bool(overwrite, "overwrite")
    callbacks = _check_callbacks(callbacks)
    if label_smoothing is not None:
        check_number(label_smoothing, "label_smoothing", minimum=0, maximum=1, hint=" (0 turns it off)")
        if label_smoothing == 1:
            raise ValueError("`label_smoothing` must be below 1 (1 makes every target uniform), got 1")
    if output_dir is not None:
        _check_output_dir(output_dir)
    if weights is not None:
        check_pretrained_weights(weights)

    # --- model identity and recipe ------------------------------------------------------
    # What the model is comes from the registry for a name, and from the model itself
    # (its model card) for a keras.Model -- never from its name, which users change.
    given_model = None
    if isinstance(model_or_name, str):
        entry = get_entry(model_or_name)
        model_name, family, preprocessing = entry.name, entry.family, entry.preprocessing
    elif isinstance(model_or_name, keras.Model):
        given_model = model_or_name
        model_name = given_model.name
        family = model_family(given_model)
        preprocessing = inputs.preprocessing_for(given_model)
        if strategy is not tf.distribute.get_strategy() and not all(
            strategy.extended.variable_created_in_scope(v.value)
            for v in given_model.weights  # the tf.Variable
        ):
            raise ValueError(
                "a keras.Model given to fit() under a distribution strategy must be built inside "
                "`strategy.scope()`; pass the registered name instead to have fit() build it"
            )
    else:
        raise TypeError(f"`model_or_name` must be a registered model name or a keras.Model, got {model_or_name!r}")
    if given_model is not None and image_size is not None:
        check_image_size(given_model, image_size)  # a fixed-size model takes that size only
    if weights is not None and given_model is not None:
        raise ValueError("`weights` applies to a registered name; load weights into a given keras.Model yourself")
    if transfer is not None and given_model is None and weights is None:
        raise ValueError(
            f"`transfer={transfer!r}` fine-tunes pretrained weights: pass `weights` ('imagenet', a tag or a file)"
        )
    recipe = _resolve_recipe(
        family,
        recipe,
        {
            "optimizer": optimizer,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "warmup_epochs": warmup_epochs,
            "label_smoothing": label_smoothing,
            "epochs": epochs,
            "ema": ema,
        },
    )
    epochs = recipe.epochs
    global_batch = batch_size or recipe.batch_size
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"`batch_size` {global_batch} (global) must be divisible by the {replicas} replicas")
    peak_learning_rate = learning_rate if learning_rate is not None else scaled_learning_rate(recipe, global_batch)
    if not (isinstance(peak_learning_rate, int | float) and peak_learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a number > 0, got {learning_rate!r}")
    policy = resolve_policy(mixed_precision, strategy)
    if given_model is not None and policy != "float32" and given_model.dtype_policy.name != policy:
        raise ValueError(
            f"mixed_precision={mixed_precision!r} only applies to models fit() builds; build the given model "
            f"under keras.config.set_dtype_policy({policy!r}) instead"
        )

    # --- data ---------------------------------------------------------------------------
    info = dataset_info(dataset, data_dir)
    if output_dir is None:  # the default folder is checked as a given one is, before any model is built
        output_dir = default_output_dir(model_name, info.name)
        _check_output_dir(output_dir)
    output_dir = Path(output_dir)
    given_classes = None if given_model is None else without_auxiliary_outputs(given_model).output_shape[-1]
    if given_model is not None and given_classes != info.num_classes:
        raise ValueError(f"the model has {given_classes} outputs but {info.name} has {info.num_classes} classes")
    image_size = image_size or inputs.default_image_size(info.name, given_model, recipe, preprocessing)
    preset = preset or inputs.default_preset(image_size)
    train_examples = num_examples(dataset, "train", data_dir)
    if validation_split == "auto":
        validation_split = inputs.default_eval_split(info.splits)
    if validation_split:
        val_examples = num_examples(dataset, validation_split, data_dir)
    if global_batch > train_examples:
        # Without this, steps_per_epoch=1 would train on repeated images with a learning rate
        # scaled up for a batch that does not exist.
        raise ValueError(
            f"`batch_size` {global_batch} is larger than the {train_examples} training examples of {info.name}: "
            f"use at most {train_examples}"
        )
    steps_per_epoch = steps_per_epoch or train_examples // global_batch

    hyperparameters = {
        "optimizer": recipe.optimizer,
        "learning_rate": peak_learning_rate,
        "batch_size": global_batch,
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
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
        "dtype_policy": policy,
        "preset": preset,
        "validation_split": validation_split,
        "weights": None if weights is None else str(weights),
        "transfer": transfer,
        "body_rate": body_rate if transfer is not None else None,
    }

    # --- model, optimizer, compile, inside the strategy and the dtype policy ---------------
    if seed is not None:
        keras.utils.set_random_seed(seed)
    with global_policy(policy), strategy.scope():
        if given_model is None:
            overrides = {"dropout_rate": recipe.dropout_rate} if recipe.dropout_rate is not None else {}
            model = build_model(model_name, num_classes=info.num_classes, image_size=image_size, **overrides)
        else:
            model = given_model
        # Frozen first: a block count the model does not have fails before any weights are loaded.
        plan = None if transfer_method is None else freeze(model, *transfer_method)
        if weights is not None:
            copy_body_weights(_load_pretrained(model_name, weights, image_size), model)
        model = float32_outputs(model)
        compile_with_recipe(
            model,
            recipe,
            learning_rate=peak_learning_rate,
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            num_classes=info.num_classes,
            jit_compile=jit_compile,
            body_variables=None if plan is None else plan.body_variables,
            body_rate=body_rate,
        )
    if is_multi_worker(strategy):
        patch_for_multi_worker(model, strategy)
    # The built model has the final word (a registered model built with include_preprocessing=True takes pixel / 255).
    preprocessing = inputs.preprocessing_for(model) or preprocessing

    # --- output folder: check it holds this run (or nothing), then resume ------------------
    chief_dir = RunDir(output_dir)
    if is_chief(strategy):
        run_dir = chief_dir
    else:  # non-chief workers write the same files, to a scratch folder of their own
        task_type, task_id = worker_id(strategy)
        run_dir = RunDir(output_dir / "workers" / f"{task_type}_{task_id}")
    run_info = {
        "model": model_name,
        **model_identity(model),
        "preprocessing": _jsonable_preprocessing(preprocessing),
        "model_fingerprint": model_fingerprint(model),
        "dataset": info.name,
        "image_size": image_size,
        "num_classes": info.num_classes,
        "recipe": recipe.name,
        "recipe_source": recipe.source,
        "hyperparameters": hyperparameters,
        "transfer": None if plan is None else _transfer_record(plan, weights, body_rate),
        "keras_lightnets_version": _package_version(),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    claimed_now = run_dir.read_run_info() is None or overwrite  # this call writes run.json
    run_info = run_dir.prepare(run_info, overwrite=overwrite)
    try:
        # Every worker restores the chief's committed state, so that all start at the same epoch.
        state = None if (overwrite and run_dir is not chief_dir) else chief_dir.read_checkpoint()
        initial_epoch = 0
        if state is not None:
            initial_epoch, weights = state
            try:
                with strategy.scope():
                    model.load_weights(weights)
            except Exception as error:  # h5py/Keras raise many kinds; all mean "cannot restore"
                raise CheckpointError(
                    f"the checkpoint {weights} cannot be restored ({type(error).__name__}: {error}); "
                    f"delete {chief_dir.backup} to start over, or use --overwrite"
                ) from error
            log(f"resuming from epoch {initial_epoch} of {epochs} (checkpoint {weights})")

        # --- train ------------------------------------------------------------------------
        data_kwargs = {
            "dataset": dataset,
            "image_size": image_size,
            "preset": preset,
            "model": preprocessing,
            "data_dir": data_dir,
            "outputs": len(model.outputs),  # labels once per output: auxiliary classifiers (GoogLeNet) learn them too
        }
        train = inputs.train_dataset(
            strategy, batch_size=global_batch, randaugment=recipe.randaugment, seed=seed, **data_kwargs
        )
        validation = None
        if validation_split:
            validation = inputs.eval_dataset(validation_split, batch_size=global_batch, **data_kwargs)
        monitor = "val_accuracy" if validation is not None else "accuracy"
        all_callbacks = callbacks + [
            InterruptGuard(epochs),
            NonFiniteLossGuard(chief_dir, epochs),
            HistoryWriter(run_dir, initial_epoch, title=f"{model_name}, {info.name}, {image_size}px, {recipe.name}"),
            BestCheckpoint(run_dir, monitor, initial_epoch),
            EpochSummaries(run_dir.logs),
            BackupCheckpoint(run_dir),
        ]
        if plan is not None:
            log(f"transfer learning from {weights or 'the given model'}: training {plan.describe()}")
        log(
            f"training {model_name} on {info.name} ({train_examples} train / "
            f"{val_examples if validation_split else 0} {validation_split or 'no'} examples, "
            f"{info.num_classes} classes) "
            f"at {image_size}px: recipe {recipe.name!r}, {recipe.optimizer} lr {peak_learning_rate:.4g} "
            f"(batch {global_batch}), {epochs} epochs x {steps_per_epoch} steps, {replicas} replica(s), "
            f"{policy}; output {output_dir}"
        )
        started = time.perf_counter()
        if initial_epoch < epochs:
            try:
                with stop_on_interrupt(log):
                    model.fit(
                        train,
                        epochs=epochs,
                        initial_epoch=initial_epoch,
                        steps_per_epoch=steps_per_epoch,
                        validation_data=validation,
                        shuffle=False,  # the pipeline shuffles; Keras would only warn that it cannot
                        callbacks=all_callbacks,
                        verbose=verbose,
                    )
            except TrainingInterrupted as stop:
                committed = chief_dir.read_checkpoint()
                stop.epochs_done, stop.output_dir = (committed[0] if committed else 0), output_dir
                raise
        else:
            log(f"the run in {output_dir} is already complete ({epochs} epochs)")
            model.optimizer.finalize_variable_values(model.trainable_variables)  # what fit does at its end (EMA)
        elapsed = time.perf_counter() - started

        # --- final model and metrics -------------------------------------------------------
        # The final model is the inference model: auxiliary classifiers (GoogLeNet's) are dropped.
        atomic_save_model(without_auxiliary_outputs(model), run_dir.final)
        metrics = {}
        if validation is not None:
            metrics = {
                key: float(value) for key, value in model.evaluate(validation, verbose=0, return_dict=True).items()
            }
            metrics["num_examples"] = val_examples
        history = run_dir.read_history()
        ran = [row["seconds"] for row in history if row["epoch"] >= initial_epoch and row.get("seconds") is not None]
        seconds_per_epoch = sum(ran) / len(ran) if ran else None
        if seconds_per_epoch is None and initial_epoch < epochs:
            seconds_per_epoch = elapsed / (epochs - initial_epoch)
        return FitResult(
            model=without_auxiliary_outputs(model),
            history=history,
            output_dir=output_dir,
            metrics=metrics,
            seconds_per_epoch=seconds_per_epoch,
            initial_epoch=initial_epoch,
            recipe=recipe,
            run_info=run_info,
        )

    except BaseException:
        # A run that failed before finishing its first epoch leaves the folder as it found it
        # (unclaimed): the corrected rerun must not meet a run.json of settings that never trained.
        if claimed_now and not run_dir.read_history():
            run_dir.clear()
        raise


def _transfer_record(plan, weights, body_rate):
    """run.json's record of what a transfer-learning run trained."""
    return {
        "method": plan.method,
        "blocks": plan.blocks,
        "trainable_blocks": list(plan.trainable_blocks),
        "total_blocks": plan.total_blocks,
        "head": list(plan.head),
        "weights": None if weights is None else str(weights),
        "body_rate": body_rate,
    }


def _package_version():
    from keras_lightnets import __version__

    return __version__


def summary(result):
    """The lines ``lightnets train`` prints at the end of a run."""
    lines = []
    metrics = result.metrics
    split = result.run_info.get("hyperparameters", {}).get("validation_split")
    if metrics:
        text = f"top-1 accuracy on {split}: {100 * metrics['accuracy']:.2f}% ({metrics['num_examples']} images)"
        if "top5" in metrics:
            text += f", top-5 {100 * metrics['top5']:.2f}%"
        lines.append(text)
    if result.seconds_per_epoch is not None:
        lines.append(f"time per epoch: {result.seconds_per_epoch:.1f} s")
    out = Path(result.output_dir)
    lines.append(f"outputs in {out}: final.keras, best.keras, history.csv, curves.png, run.json, logs/")
    if metrics and not math.isfinite(metrics.get("loss", 0.0)):
        lines.append("warning: the final validation loss is not finite")
    return lines


def _check_output_dir(output_dir):
    if not isinstance(output_dir, str | os.PathLike):
        raise TypeError(f"`output_dir` must be a folder path, got {output_dir!r}")
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"`output_dir` {str(path)!r} is a file; the run needs a folder (new, or holding this run)")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"`output_dir` {str(path)!r} cannot be written: {str(existing)!r} is not writable")
    check_writable_folder(path, "output_dir", path)  # root passes os.access everywhere, /proc included


def _check_callbacks(callbacks):
    """``callbacks`` as a list, checked before any work (Keras would fail on a string after the model is built)."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, list | tuple):
        raise TypeError(
            f"`callbacks` must be a list or tuple of keras.callbacks.Callback objects (or None), got {callbacks!r}"
        )
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(
                f"`callbacks[{index}]` must be a keras.callbacks.Callback (Keras 3, not tf.keras), got {callback!r}"
            )
    return list(callbacks)


def _load_pretrained(model_name, weights, image_size):
    """The pretrained model of ``weights``. A reader that fails on a damaged file without naming it
    (an unpickling or struct error deep inside) is answered by a :class:`CheckpointError` that names
    the file, which ``lightnets train --weights FILE`` prints as one line."""
    try:
        return load_pretrained(model_name, weights, input_shape=(image_size, image_size, 3))
    except WeightsFileError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure on a user's file means "cannot load it"
        path = os.fspath(weights)
        if not os.path.isfile(path) or path in str(error):
            raise  # a tag (download problems) or a message that already says which file
        raise WeightsFileError(
            path, f"cannot be loaded as weights for {model_name} ({type(error).__name__}: {error})"
        ) from error
