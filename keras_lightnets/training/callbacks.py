"""The callbacks ``fit`` runs, in this order at the end of every epoch:

1. :class:`NonFiniteLossGuard` raises :class:`NonFiniteLossError` as soon as the loss is
   NaN or infinite (checked after every batch, and the epoch's validation loss);
2. :class:`HistoryWriter` writes the epoch's row to history.csv and redraws curves.png;
3. :class:`BestCheckpoint` saves best.keras when validation accuracy improved;
4. :class:`EpochSummaries` writes TensorBoard scalars to logs/;
5. :class:`BackupCheckpoint` commits the resumption state to backup/ -- last, so that a
   crash anywhere before it leaves the previous epoch's backup as the valid one, and a
   resumed run redoes (and rewrites the history row of) the interrupted epoch.

Because the guard raises *inside* ``Model.fit``, no later ``on_epoch_end`` runs: a diverged
model never reaches the backup, best.keras or final.keras.

Ctrl-C: while ``fit`` trains, :func:`stop_on_interrupt` replaces Python's SIGINT handler by one
that only sets a flag, and :class:`InterruptGuard` raises :class:`TrainingInterrupted` at the
next batch end, from Python code. The default handler raises ``KeyboardInterrupt`` wherever
the main thread is, often inside a TensorFlow op, which then surfaces as a ``SystemError`` with
a long traceback. A second Ctrl-C gets the default handler back: it stops at once.

:class:`BackupCheckpoint` replaces ``keras.callbacks.BackupAndRestore``, which in Keras 3.15
writes ``latest.weights.h5`` in place and its epoch counter as a second, separate write, so
a kill during a save leaves a torn or inconsistent backup; and which restores inside
``fit``, where a damaged file cannot be reported clearly. Here the weights go to a new
file per epoch, committed by an atomic rename of ``checkpoint.json``, and ``fit`` restores
before training starts (:meth:`RunDir.read_checkpoint`).
"""

import contextlib
import math
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from keras_lightnets.models.describe import without_auxiliary_outputs
from keras_lightnets.training.plots import plot_curves
from keras_lightnets.training.run_dir import atomic_save_model

__all__ = [
    "BackupCheckpoint",
    "BestCheckpoint",
    "EpochSummaries",
    "HistoryWriter",
    "InterruptGuard",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "TrainingInterrupted",
    "stop_on_interrupt",
]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C (SIGINT) at a batch end; what was committed to the backup stays.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C keeps doing so. ``epoch``: the epoch
    that was running (1-based); ``epochs``: the run's total; ``epochs_done``: epochs committed
    to the backup, where a rerun resumes; ``output_dir``: the run's folder (set by ``fit``).
    """

    def __init__(self, epoch, epochs, epochs_done=0, output_dir=None):
        super().__init__(epoch, epochs, epochs_done, output_dir)
        self.epoch, self.epochs, self.epochs_done, self.output_dir = epoch, epochs, epochs_done, output_dir

    def __str__(self):
        return self.describe("the same fit() call")

    def describe(self, rerun):
        """Where training stopped and how to resume, in one line; ``rerun``: what to run again."""
        where = f"training interrupted in epoch {self.epoch}/{self.epochs}"
        if self.output_dir is None:
            return where
        if self.epochs_done:
            saved = f"{self.epochs_done} finished epoch(s) are saved in {self.output_dir}"
            then = f"to resume from epoch {self.epochs_done + 1}"
        else:
            saved = f"no epoch had finished, so {self.output_dir} holds nothing to resume from"
            then = "to resume, which starts again from epoch 1"
        return f"{where}; {saved}; run {rerun} again {then}"


class _Interrupts:
    """The SIGINT flag :func:`stop_on_interrupt` sets and :class:`InterruptGuard` reads."""

    requested = False


@contextlib.contextmanager
def stop_on_interrupt(notice=None):
    """While inside: the first Ctrl-C sets a flag (:class:`InterruptGuard` stops at the next batch end)
    and restores the previous handler, so a second Ctrl-C acts as usual. ``notice(message)`` is told.

    Only the main thread can install signal handlers; elsewhere (a notebook's worker thread) this
    does nothing and Ctrl-C behaves as it always does.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler installed from C (an embedding program): Python's default stands in
        previous = signal.default_int_handler

    def handler(signum, frame):
        _Interrupts.requested = True
        signal.signal(signal.SIGINT, previous)
        if notice is not None:
            notice("stopping at the end of this batch (press Ctrl-C again to stop at once)")

    _Interrupts.requested = False
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _Interrupts.requested = False


class InterruptGuard(keras.callbacks.Callback):
    """Raises :class:`TrainingInterrupted` at the first batch end (training or validation) after a
    Ctrl-C caught by :func:`stop_on_interrupt`: from Python, between TensorFlow calls."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._check()

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_test_batch_end(self, batch, logs=None):
        self._check()

    def _check(self):
        if _Interrupts.requested:
            _Interrupts.requested = False
            raise TrainingInterrupted(self._epoch + 1, self.epochs)


def _scalar(value):
    return float(np.asarray(value))


def _current_learning_rate(optimizer):
    try:
        return _scalar(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raises :class:`NonFiniteLossError` on the first batch whose running loss is not finite,
    or at the end of an epoch whose validation loss or any trainable weight is not finite.

    Keras's ``TerminateOnNaN`` only sets ``stop_training``, after which the epoch still ends
    normally and every ``on_epoch_end`` (backup included) would save the diverged weights.
    ``run_dir`` is only used for the message (where the last good checkpoint is).
    """

    def __init__(self, run_dir=None, epochs=None):
        super().__init__()
        self.run_dir = run_dir
        self.epochs = epochs
        self._epoch = 0

    def _fail(self, what, value, batch=None):
        where = f"epoch {self._epoch + 1}" + (f"/{self.epochs}" if self.epochs else "")
        where += f" (history.csv epoch {self._epoch})"
        if batch is not None:
            where += f", batch {batch + 1}"
        kept = ""
        if self.run_dir is not None:
            state = self.run_dir.read_checkpoint()
            kept = (
                f"; the last good checkpoint (after epoch {state[0]}) is kept in {self.run_dir.backup}"
                if state
                else f"; no checkpoint was written yet in {self.run_dir.backup}"
            )
        raise NonFiniteLossError(
            f"{what} became {value} in {where}{kept}. Lower the learning rate (or check the data) and start again "
            "with --overwrite (overwrite=True) or another output folder."
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            loss = _scalar(logs["loss"])
            if not math.isfinite(loss):
                self._fail("loss", loss, batch)

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            if logs and key in logs and not math.isfinite(_scalar(logs[key])):
                self._fail("validation loss" if key == "val_loss" else "loss", _scalar(logs[key]))
        # NaN weights can hide behind a finite loss (oneDNN's ReLU maps NaN to 0), so the
        # weights themselves are checked before anything is saved: one pass, a few ms.
        for variable in self.model.trainable_variables:
            values = keras.ops.convert_to_numpy(variable)
            if not np.isfinite(values).all():
                bad = values[~np.isfinite(values)].flat[0]
                self._fail(f"weight {variable.path}", bad)


class HistoryWriter(keras.callbacks.Callback):
    """history.csv (one row per epoch, keyed by ``epoch``) and curves.png, rewritten atomically each epoch.

    Rows of epochs ``>= start_epoch`` are dropped at the start: they belong to an attempt
    that was interrupted before its backup, and are redone. A resumed run therefore ends
    with every epoch exactly once. Columns: the epoch's logs, ``learning_rate`` (at the
    end of the epoch) and ``seconds`` (wall time of the epoch, validation included).
    """

    def __init__(self, run_dir, start_epoch=0, *, title=None):
        super().__init__()
        self.run_dir = run_dir
        self.start_epoch = start_epoch
        self.title = title
        self.rows = []
        self._started = None

    def on_train_begin(self, logs=None):
        self.rows = [row for row in self.run_dir.read_history() if row["epoch"] < self.start_epoch]

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{key: _scalar(value) for key, value in (logs or {}).items()}}
        row["learning_rate"] = _current_learning_rate(self.model.optimizer)
        row["seconds"] = time.perf_counter() - self._started
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + [row]
        self.run_dir.write_history(self.rows)
        plot_curves(self.rows, self.run_dir.curves_png, title=self.title)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to best.keras (atomically) whenever ``monitor`` beats its best so far.

    The saved model is the inference model, as final.keras is: auxiliary classifiers (GoogLeNet's)
    train only and are dropped.

    Unlike ``keras.callbacks.ModelCheckpoint(save_best_only=True)``, the best value survives
    a restart: it is read back from history.csv's rows of the epochs before ``start_epoch``.
    """

    def __init__(self, run_dir, monitor="val_accuracy", start_epoch=0):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.start_epoch = start_epoch
        self.best = -math.inf

    def on_train_begin(self, logs=None):
        previous = [
            row[self.monitor]
            for row in self.run_dir.read_history()
            if row["epoch"] < self.start_epoch and row.get(self.monitor) is not None
        ]
        self.best = max(previous, default=-math.inf)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = _scalar(value)
        if value > self.best:
            self.best = value
            atomic_save_model(without_auxiliary_outputs(self.model), self.run_dir.best)


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars per epoch: logs/train and logs/validation, tags ``epoch_<metric>`` as Keras names them.

    Written with TensorFlow's core ``tf.summary.write`` and the scalars plugin's metadata,
    so no ``tensorboard`` package is needed to write them (TensorFlow 2.21 does not install
    it, and ``keras.callbacks.TensorBoard`` then fails); only to view them.
    """

    _SCALAR = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = tf.summary.create_file_writer(str(self.log_dir / name))
        return self._writers[name]

    def on_epoch_end(self, epoch, logs=None):
        values = {key: _scalar(value) for key, value in (logs or {}).items()}
        learning_rate = _current_learning_rate(self.model.optimizer)
        if learning_rate is not None:
            values["learning_rate"] = learning_rate
        for key, value in values.items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(split).as_default():
                tf.summary.write(f"epoch_{tag}", tf.constant(value, tf.float32), step=epoch, metadata=self._SCALAR)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class BackupCheckpoint(keras.callbacks.Callback):
    """Commits model + optimizer state after every epoch to backup/ (see :meth:`RunDir.save_checkpoint`)."""

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        self.run_dir.save_checkpoint(self.model, epoch + 1)
