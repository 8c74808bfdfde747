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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import keras
import tensorflow as tf

from keras_lightnets import __version__
from keras_lightnets.checks import check_bool, check_writable_folder
from keras_lightnets.data import BUNDLED_DATASET
from keras_lightnets.models.describe import model_identity, without_auxiliary_outputs
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
from keras_lightnets.training.plan import TrainingPlan, make_plan
from keras_lightnets.training.precise_bn import (
    DEFAULT_PRECISE_BN_STEPS,
    batchnorm_memory,
    has_stale_batchnorm,
    recalibrate_batchnorm,
)
from keras_lightnets.training.precision import global_policy
from keras_lightnets.training.recipes import Recipe
from keras_lightnets.training.run_dir import CheckpointError, RunDir, atomic_save_model, model_fingerprint
from keras_lightnets.training.strategy import get_strategy, is_chief, is_multi_worker, worker_id
from keras_lightnets.transfer import copy_body_weights, freeze, load_pretrained
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
    history's ``val_`` columns were measured on the raw weights at each epoch's end. Likewise when a
    run was too short for its BatchNorm moving averages to forget their initial values (run.json's
    ``precise_bn``): ``metrics`` and final.keras have them recomputed from the final weights, the
    history's ``val_`` columns and best.keras (chosen by them) keep those of training.
    ``plan``: how the run trained (:class:`~keras_lightnets.training.plan.TrainingPlan`).
    """

    model: keras.Model
    history: list
    output_dir: Path
    metrics: dict
    seconds_per_epoch: float | None
    initial_epoch: int = 0
    recipe: Recipe | None = None
    run_info: dict = field(default_factory=dict)
    plan: TrainingPlan | None = None

    @property
    def final_accuracy(self):
        return self.metrics.get("accuracy")


def default_output_dir(model_name, dataset):
    """``runs/MODEL-DATASET`` under the working directory."""
    return Path("runs") / f"{model_name}-{dataset.replace('/', '_').replace(':', '_')}"


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
        recipe: a recipe name for the model's family ("default", "paper") or a :class:`Recipe`. A
            recipe with ``auxiliary_loss_weight`` (GoogLeNet's) trains a model built here with its
            auxiliary classifiers, as the paper does (not with ``transfer``); the final model drops them.
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
    if not isinstance(model_or_name, str | keras.Model):  # fit compiles Keras 3 models (QAT: fit_quantize_aware)
        raise TypeError(f"`model_or_name` must be a registered model name or a keras.Model, got {model_or_name!r}")
    check_bool(overwrite, "overwrite")
    callbacks = _check_callbacks(callbacks)
    if output_dir is not None:
        _check_output_dir(output_dir)
    plan = make_plan(
        model_or_name,
        strategy=strategy,
        dataset=dataset,
        data_dir=data_dir,
        recipe=recipe,
        recipe_overrides={
            "optimizer": optimizer,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "warmup_epochs": warmup_epochs,
            "label_smoothing": label_smoothing,
            "epochs": epochs,
            "ema": ema,
        },
        batch_size=batch_size,
        image_size=image_size,
        learning_rate=learning_rate,
        mixed_precision=mixed_precision,
        preset=preset,
        steps_per_epoch=steps_per_epoch,
        validation_split=validation_split,
        weights=weights,
        transfer=transfer,
        body_rate=body_rate,
        seed=seed,
    )
    if output_dir is None:  # the default folder is checked as a given one is, before any model is built
        output_dir = default_output_dir(plan.model_name, plan.dataset_name)
        _check_output_dir(output_dir)
    model, frozen = _build_and_compile(model_or_name, plan, strategy, jit_compile=jit_compile)
    return _run(
        model,
        plan,
        frozen,
        strategy,
        Path(output_dir),
        overwrite=overwrite,
        callbacks=callbacks,
        verbose=verbose,
        log=log,
    )


def _build_and_compile(model_or_name, plan, strategy, *, jit_compile):
    """The model to train, compiled with the plan's recipe, inside the strategy and the dtype policy;
    and its :class:`~keras_lightnets.transfer.TransferPlan` (``None`` without ``transfer``)."""
    if plan.seed is not None:
        keras.utils.set_random_seed(plan.seed)
    with global_policy(plan.dtype_policy), strategy.scope():
        if plan.builds_model:
            model = build_model(
                plan.model_name, num_classes=plan.num_classes, image_size=plan.image_size, **plan.build_overrides()
            )
        else:
            model = model_or_name
        # Frozen first: a block count the model does not have fails before any weights are loaded.
        frozen = None if plan.transfer_method is None else freeze(model, *plan.transfer_method)
        if plan.weights is not None:
            copy_body_weights(_load_pretrained(plan.model_name, plan.weights, plan.image_size), model)
        model = float32_outputs(model)
        compile_with_recipe(
            model,
            plan.recipe,
            learning_rate=plan.learning_rate,
            steps_per_epoch=plan.steps_per_epoch,
            epochs=plan.epochs,
            num_classes=plan.num_classes,
            jit_compile=jit_compile,
            body_variables=None if frozen is None else frozen.body_variables,
            body_rate=plan.body_rate or 1.0,  # None without transfer: no body variables to slow down
            auxiliary_loss_weight=plan.auxiliary_loss_weight,
        )
    if is_multi_worker(strategy):
        patch_for_multi_worker(model, strategy)
    return model, frozen


def _run(model, plan, frozen, strategy, output_dir, *, overwrite, callbacks, verbose, log):
    """Claims ``output_dir`` for the run (or finds it there), resumes, trains and finishes."""
    chief_dir = RunDir(output_dir)
    if is_chief(strategy):
        run_dir = chief_dir
    else:  # non-chief workers write the same files, to a scratch folder of their own
        task_type, task_id = worker_id(strategy)
        run_dir = RunDir(output_dir / "workers" / f"{task_type}_{task_id}")
    claimed_now = run_dir.read_run_info() is None or overwrite  # this call writes run.json
    run_info = run_dir.prepare(_run_info(plan, model, frozen), overwrite=overwrite)
    try:
        # Every worker restores the chief's committed state, so that all start at the same epoch.
        fresh = overwrite and run_dir is not chief_dir
        initial_epoch = 0 if fresh else _restore(model, chief_dir, strategy, plan.epochs, log)
        train, validation = _datasets(plan, strategy, model)
        _log_start(log, plan, frozen, output_dir)
        elapsed = _train(
            model,
            plan,
            train,
            validation,
            callbacks=callbacks,
            initial_epoch=initial_epoch,
            chief_dir=chief_dir,
            run_dir=run_dir,
            verbose=verbose,
            log=log,
        )
        _recalibrate_stale_batchnorm(model, plan, strategy, log)
        return _finish(model, plan, run_dir, validation, initial_epoch, elapsed, run_info, output_dir)
    except BaseException:
        # A run that failed before finishing its first epoch leaves the folder as it found it
        # (unclaimed): the corrected rerun must not meet a run.json of settings that never trained.
        if claimed_now and not run_dir.read_history():
            run_dir.clear()
        raise


def _run_info(plan, model, frozen):
    """run.json: what the folder trains (the keys of ``IDENTITY_KEYS`` must match to resume) and with what."""
    return {
        "model": plan.model_name,
        **model_identity(model),
        "preprocessing": None if plan.preprocessing is None else plan.preprocessing.to_config(),
        "model_fingerprint": model_fingerprint(model),
        "dataset": plan.dataset_name,
        "image_size": plan.image_size,
        "num_classes": plan.num_classes,
        "recipe": plan.recipe.name,
        "recipe_source": plan.recipe.source,
        "hyperparameters": plan.hyperparameters,
        "transfer": None if frozen is None else _transfer_record(frozen, plan.weights, plan.body_rate),
        "precise_bn": _precise_bn_record(model, plan),
        "keras_lightnets_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _precise_bn_record(model, plan):
    """run.json's ``"precise_bn"``: ``None`` when the run is long enough for every BatchNorm's moving
    averages to forget their initial values, else how the end of training recomputes them."""
    steps = plan.epochs * plan.steps_per_epoch
    if not has_stale_batchnorm(model, steps):
        return None
    return {"batches": DEFAULT_PRECISE_BN_STEPS, "batchnorm_memory": round(batchnorm_memory(model, steps), 4)}


def _recalibrate_stale_batchnorm(model, plan, strategy, log):
    """Precise BN at the end of training, by the rule ``fit_quantize_aware`` follows too
    (:func:`~keras_lightnets.training.precise_bn.has_stale_batchnorm`): a BatchNorm momentum of
    0.999 (keras.applications' MobileNetV2/V3) keeps 74 % of its initial mean 0 / variance 1 over
    300 steps, so the model trains well and predicts nothing at inference (MobileNetV3-Small on
    the digits: 9.9 % top-1, recalibrated 59.4 %). The moving averages are then recomputed from the
    final weights (EMA's, with EMA) over unaugmented training batches; nothing else changes. A
    resumed complete run recomputes the same averages from the same weights. best.keras, saved during
    training, keeps the moving averages of training."""
    record = _precise_bn_record(model, plan)
    if record is None:
        return
    batches = inputs.eval_dataset("train", batch_size=plan.batch_size, **plan.pipeline_arguments())
    with strategy.scope():
        used = recalibrate_batchnorm(model, batches, steps=record["batches"])
    log(
        f"BatchNorm moving statistics recomputed from {used} training batches (precise BN): over "
        f"{plan.epochs * plan.steps_per_epoch} steps their momentum kept {100 * record['batchnorm_memory']:.0f} % "
        "of their initial values"
    )


def _restore(model, chief_dir, strategy, epochs, log):
    """The epochs already done: the chief's committed backup loaded into ``model``, or 0 without one."""
    state = chief_dir.read_checkpoint()
    if state is None:
        return 0
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
    return initial_epoch


def _datasets(plan, strategy, model):
    """The training dataset and the validation one (``None`` without a validation split)."""
    # Labels once per output: auxiliary classifiers (GoogLeNet) learn them too.
    arguments = {**plan.pipeline_arguments(), "outputs": len(model.outputs)}
    train = inputs.train_dataset(
        strategy, batch_size=plan.batch_size, randaugment=plan.recipe.randaugment, seed=plan.seed, **arguments
    )
    validation = None
    if plan.validation_split:
        validation = inputs.eval_dataset(plan.validation_split, batch_size=plan.batch_size, **arguments)
    return train, validation


def _log_start(log, plan, frozen, output_dir):
    if frozen is not None:
        log(f"transfer learning from {plan.weights or 'the given model'}: training {frozen.describe()}")
    validation = f"{plan.validation_examples} {plan.validation_split}" if plan.validation_split else "0 no"
    auxiliary = ""
    if plan.auxiliary_loss_weight is not None:
        auxiliary = f", auxiliary classifiers weighted {plan.auxiliary_loss_weight:g}"
    log(
        f"training {plan.model_name} on {plan.dataset_name} ({plan.train_examples} train / {validation} examples, "
        f"{plan.num_classes} classes) at {plan.image_size}px: recipe {plan.recipe.name!r}, {plan.recipe.optimizer} "
        f"lr {plan.learning_rate:.4g} (batch {plan.batch_size}){auxiliary}, {plan.epochs} epochs x "
        f"{plan.steps_per_epoch} steps, {plan.replicas} replica(s), {plan.dtype_policy}; output {output_dir}"
    )


def _train(model, plan, train, validation, *, callbacks, initial_epoch, chief_dir, run_dir, verbose, log):
    """Runs Keras's fit from ``initial_epoch`` to the plan's end; returns the seconds it took."""
    monitor = "val_accuracy" if validation is not None else "accuracy"
    title = f"{plan.model_name}, {plan.dataset_name}, {plan.image_size}px, {plan.recipe.name}"
    all_callbacks = callbacks + [
        InterruptGuard(plan.epochs),
        NonFiniteLossGuard(chief_dir, plan.epochs),
        HistoryWriter(run_dir, initial_epoch, title=title),
        BestCheckpoint(run_dir, monitor, initial_epoch),
        EpochSummaries(run_dir.logs),
        BackupCheckpoint(run_dir),
    ]
    started = time.perf_counter()
    if initial_epoch >= plan.epochs:
        log(f"the run in {chief_dir.path} is already complete ({plan.epochs} epochs)")
        model.optimizer.finalize_variable_values(model.trainable_variables)  # what fit does at its end (EMA)
        return time.perf_counter() - started
    try:
        with stop_on_interrupt(log):
            model.fit(
                train,
                epochs=plan.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=plan.steps_per_epoch,
                validation_data=validation,
                shuffle=False,  # the pipeline shuffles; Keras would only warn that it cannot
                callbacks=all_callbacks,
                verbose=verbose,
            )
    except TrainingInterrupted as stop:
        committed = chief_dir.read_checkpoint()
        stop.epochs_done, stop.output_dir = (committed[0] if committed else 0), chief_dir.path
        raise
    return time.perf_counter() - started


def _finish(model, plan, run_dir, validation, initial_epoch, elapsed, run_info, output_dir):
    """Saves the final (inference) model, evaluates it and gathers the :class:`FitResult`."""
    # The final model is the inference model: auxiliary classifiers (GoogLeNet's) are dropped.
    inference = without_auxiliary_outputs(model)
    atomic_save_model(inference, run_dir.final)
    metrics = {}
    if validation is not None:
        metrics = {key: float(value) for key, value in model.evaluate(validation, verbose=0, return_dict=True).items()}
        metrics["num_examples"] = plan.validation_examples
    history = run_dir.read_history()
    ran = [row["seconds"] for row in history if row["epoch"] >= initial_epoch and row.get("seconds") is not None]
    seconds_per_epoch = sum(ran) / len(ran) if ran else None
    if seconds_per_epoch is None and initial_epoch < plan.epochs:
        seconds_per_epoch = elapsed / (plan.epochs - initial_epoch)
    return FitResult(
        model=inference,
        history=history,
        output_dir=output_dir,
        metrics=metrics,
        seconds_per_epoch=seconds_per_epoch,
        initial_epoch=initial_epoch,
        recipe=plan.recipe,
        run_info=run_info,
        plan=plan,
    )


def _transfer_record(frozen, weights, body_rate):
    """run.json's record of what a transfer-learning run trained."""
    return {
        "method": frozen.method,
        "blocks": frozen.blocks,
        "trainable_blocks": list(frozen.trainable_blocks),
        "total_blocks": frozen.total_blocks,
        "head": list(frozen.head),
        "weights": None if weights is None else str(weights),
        "body_rate": body_rate,
    }


def _package_version():
    """This package's version. deploy/android.py still imports it from here; ``keras_lightnets.__version__``
    is the fact's home."""
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
