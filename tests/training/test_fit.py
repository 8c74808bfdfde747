"""fit() on the bundled digits: what the output folder holds, evaluate() agreeing with the history,
non-finite losses, folders of other runs, damaged checkpoints and --overwrite."""

import csv
import io
import json
import math
import shutil

import h5py
import keras
import numpy as np
import pytest
from training_helpers import FAST_MODEL, MODEL, SMALL_RUN

from keras_lightnets.cli import main
from keras_lightnets.training import (
    CheckpointError,
    NonFiniteLossError,
    RunMismatchError,
    evaluate,
    fit,
)


def _history_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_fit_writes_every_artefact(finished_run):
    out = finished_run.output_dir
    rows = _history_rows(out / "history.csv")
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_top5", "learning_rate", "seconds"} <= set(
        rows[0]
    )
    assert list(rows[0])[0] == "epoch"
    for name in ("best.keras", "final.keras"):
        model = keras.saving.load_model(out / name)
        assert model.output_shape == (None, 10) and model.input_shape == (None, 32, 32, 3)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "run.json").read_text())
    assert info["model"] == MODEL and info["dataset"] == "lightnets_digits" and info["image_size"] == 32
    assert info["recipe"] == "default" and info["hyperparameters"]["steps_per_epoch"] == 4
    assert len(info["model_fingerprint"]) == 64 and info["keras_lightnets_version"]
    assert sorted(p.parent.name for p in (out / "logs").rglob("events.out.tfevents.*")) == ["train", "validation"]
    assert json.loads((out / "backup" / "checkpoint.json").read_text()) == {
        "epoch": 2,
        "weights": "epoch-0002.weights.h5",
    }
    assert not list(out.rglob(".*.tmp-*"))  # no temporary file left behind
    # The learning rate followed the default recipe: 1 warm-up epoch (4 steps) to 2e-3, cosine to 0 at step 8.
    assert float(rows[0]["learning_rate"]) == pytest.approx(2e-3, rel=1e-6)
    assert float(rows[1]["learning_rate"]) == pytest.approx(0.0, abs=1e-9)


def test_evaluate_on_final_model_reproduces_the_runs_final_metrics(finished_run, data_dir):
    # MobileNetV2's BatchNorm momentum 0.999 over 8 steps: fit recomputed the moving statistics after
    # the last epoch's validation (precise BN), so the final model is measured by fit's own final evaluation.
    assert finished_run.run_info["precise_bn"] is not None
    final = finished_run.metrics
    for source in (finished_run.output_dir / "final.keras", finished_run.output_dir):
        metrics = evaluate(source, batch_size=32, data_dir=data_dir)
        assert metrics["num_examples"] == 355
        assert metrics["accuracy"] == pytest.approx(final["accuracy"], abs=1e-6)
        assert metrics["top5"] == pytest.approx(final["top5"], abs=1e-6)
        # label_smoothing=0: fit's loss is the same cross-entropy evaluate() computes
        assert metrics["loss"] == pytest.approx(final["loss"], rel=1e-5)


def test_running_a_finished_run_again_trains_nothing(finished_run, data_dir):
    before = (finished_run.output_dir / "history.csv").read_bytes()
    messages = []
    again = fit(MODEL, output_dir=finished_run.output_dir, data_dir=data_dir, log=messages.append, **SMALL_RUN)
    assert again.initial_epoch == 2
    assert messages[0].startswith("resuming from epoch 2 of 2")
    assert any("already complete" in m for m in messages)
    assert (finished_run.output_dir / "history.csv").read_bytes() == before
    assert again.metrics["accuracy"] == pytest.approx(finished_run.metrics["accuracy"], abs=1e-6)


def test_an_output_dir_of_another_run_is_refused(finished_run, data_dir):
    out = finished_run.output_dir
    with pytest.raises(RunMismatchError, match=rf"output dir {out} holds a run of {MODEL} on lightnets_digits at 32px"):
        fit("squeezenet1_1", output_dir=out, data_dir=data_dir, **SMALL_RUN)
    with pytest.raises(RunMismatchError, match=r"image_size 32 there, 48 here"):
        fit(MODEL, output_dir=out, data_dir=data_dir, image_size=48, **SMALL_RUN)
    with pytest.raises(RunMismatchError, match=r"epochs 2 there, 3 here.*--overwrite"):
        fit(MODEL, output_dir=out, data_dir=data_dir, **{**SMALL_RUN, "epochs": 3})


def test_a_folder_with_other_files_is_refused(tmp_path, data_dir):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunMismatchError, match=r"is not empty \(notes.txt\) and holds no keras_lightnets run"):
        fit(MODEL, output_dir=tmp_path, data_dir=data_dir, **SMALL_RUN)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_damaged_checkpoint_is_an_error_not_a_restart_and_overwrite_starts_afresh(finished_run, tmp_path, data_dir):
    out = tmp_path / "run"
    shutil.copytree(finished_run.output_dir, out)
    (out / "backup" / "epoch-0002.weights.h5").write_bytes(b"this is not an HDF5 file")
    with pytest.raises(
        CheckpointError, match=r"the checkpoint .*epoch-0002.weights.h5 cannot be restored .*--overwrite"
    ):
        fit(MODEL, output_dir=out, data_dir=data_dir, **SMALL_RUN)
    (out / "backup" / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"checkpoint.json is unreadable"):
        fit(MODEL, output_dir=out, data_dir=data_dir, **SMALL_RUN)
    # Nothing was touched by the failed attempts.
    assert [row["epoch"] for row in _history_rows(out / "history.csv")] == ["0", "1"]

    # --overwrite replaces the run, even by one of another model.
    fresh = fit(FAST_MODEL, output_dir=out, data_dir=data_dir, overwrite=True, **SMALL_RUN)
    assert fresh.initial_epoch == 0
    assert [row["epoch"] for row in fresh.history] == [0, 1]
    fresh_info = json.loads((out / "run.json").read_text())
    assert fresh_info["model"] == FAST_MODEL
    assert fresh_info["image_size"] == 64  # SqueezeNet's default recipe trains at 64 px
    assert json.loads((out / "backup" / "checkpoint.json").read_text())["epoch"] == 2


def _tiny_classifier():
    """A 4-layer Keras model (fast to trace) whose logits come straight from a Dense layer."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="predictions")(x), name="tiny")


class _PoisonWeights(keras.callbacks.Callback):
    """Makes the model diverge at a chosen (epoch, batch): a layer's kernel becomes NaN."""

    def __init__(self, layer, epoch, batch):
        super().__init__()
        self.layer = layer
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            kernel = self.model.get_layer(self.layer).kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


# What the guard reports when the poison lands in epoch 2 (history.csv epoch 1), batch 3.
_NAN_LOSS = "loss became nan in epoch 2/3 (history.csv epoch 1), batch 3"
_NAN_WEIGHT = "weight {layer}/kernel became nan in epoch 2/3 (history.csv epoch 1)"


@pytest.mark.parametrize(
    ("layer", "detectors"),
    [
        # NaN logits: the running loss is NaN after that very batch, whatever the CPU kernels.
        ("predictions", [_NAN_LOSS]),
        # NaN before a ReLU: whether the ReLU passes NaN on (the loss is NaN after that batch) or
        # maps it to 0 (the loss stays finite and the end-of-epoch weight check catches it) depends
        # on the CPU kernel (oneDNN or Eigen), so either report is right; both name the epoch.
        ("conv", [_NAN_LOSS, _NAN_WEIGHT]),
    ],
)
def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(layer, detectors, tmp_path, data_dir):
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as caught:
        fit(
            _tiny_classifier(),
            output_dir=out,
            data_dir=data_dir,
            callbacks=[_PoisonWeights(layer, 1, 2)],
            **{**SMALL_RUN, "epochs": 3},
        )
    message = str(caught.value)
    expected = [detector.format(layer=layer) for detector in detectors]
    assert any(message.startswith(prefix) for prefix in expected), (message, expected)
    assert f"the last good checkpoint (after epoch 1) is kept in {out / 'backup'}" in message
    # The backup is epoch 1's, and finite; epoch 1 never reached history, best or final.
    assert json.loads((out / "backup" / "checkpoint.json").read_text()) == {
        "epoch": 1,
        "weights": "epoch-0001.weights.h5",
    }
    with h5py.File(out / "backup" / "epoch-0001.weights.h5") as weights:
        arrays = []
        weights.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    assert arrays and all(np.all(np.isfinite(a)) for a in arrays)
    assert [row["epoch"] for row in _history_rows(out / "history.csv")] == ["0"]
    assert not (out / "final.keras").exists()
    best = keras.saving.load_model(out / "best.keras")
    assert all(np.all(np.isfinite(np.asarray(w))) for w in best.weights)
    assert math.isfinite(float(_history_rows(out / "history.csv")[0]["loss"]))


def test_lightnets_evaluate_prints_the_runs_accuracy(finished_run, data_dir):
    out = io.StringIO()
    code = main(["evaluate", str(finished_run.output_dir), "--data-dir", data_dir, "--batch-size", "32"], out=out)
    assert code == 0
    accuracy = 100 * finished_run.metrics["accuracy"]
    assert f"top-1 {accuracy:.2f}%" in out.getvalue() and "on 355 images (test)" in out.getvalue()


def test_mixed_precision_and_ema(tmp_path, data_dir):
    result = fit(
        FAST_MODEL, output_dir=tmp_path, data_dir=data_dir, mixed_precision="mixed_float16", ema=0.5,
        **{**SMALL_RUN, "epochs": 1, "steps_per_epoch": 3},
    )  # fmt: skip
    model = result.model
    assert keras.config.dtype_policy().name == "float32"  # fit() did not leave its policy behind
    assert model.dtype_policy.name == "mixed_float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # added by compile for float16
    assert model.output.dtype == "float32" and model.layers[-1].name == "predictions_float32"
    assert result.run_info["hyperparameters"]["dtype_policy"] == "mixed_float16"
    # EMA: the final model holds the averaged weights, not the last step's (kept in the backup).
    raw = keras.models.clone_model(model)
    raw.load_weights(tmp_path / "backup" / "epoch-0001.weights.h5", skip_mismatch=True)
    pairs = list(zip(model.get_weights(), raw.get_weights(), strict=True))
    assert all(np.allclose(a, b, atol=1e-2) for a, b in pairs)  # the backup did load: same neighbourhood
    assert any(not np.array_equal(a, b) for a, b in pairs)  # but not the same point
    final = evaluate(tmp_path / "final.keras", batch_size=32, data_dir=data_dir)
    assert final["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
