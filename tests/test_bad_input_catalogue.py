"""Issue 25, point 6: the bad-input catalogue, Python API. Each case used to fail late or unclearly
(a Keras/TF/converter error naming our internals, or silence); each now fails early with an error
naming the argument, the value and what is allowed. The CLI cases are in tests/test_cli_interrupts.py."""

import os
import signal
import subprocess
import time

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.deploy import export_tflite
from keras_lightnets.training import evaluate, fit

QUICK = dict(epochs=1, batch_size=8, steps_per_epoch=1, verbose=0)


def _tiny(size=32, classes=10):
    """A one-convolution classifier: exports and evaluates in a second."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes)(x), name="tiny")


# --- 1. create_model(model_name=...) -------------------------------------------------------------


def test_create_model_takes_model_name_as_a_keyword_as_timm_does():
    model = kl.create_model(model_name="squeezenet1_1", input_shape=(32, 32, 3), classes=10)
    assert model.name == "squeezenet1_1" and model.output_shape == (None, 10)
    with pytest.raises(ValueError, match=r"unknown model 'squeezenet1_2'\. Closest: squeezenet1_1"):
        kl.create_model(model_name="squeezenet1_2")


# --- 2. profile of a model without a graph -------------------------------------------------------


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = keras.layers.Dense(3)

    def call(self, inputs):
        return self.dense(inputs)


def test_profile_refuses_a_subclassed_model_saying_what_it_needs():
    model = _Subclassed()
    model(np.zeros((1, 4), np.float32))  # built and called: still no graph to read
    with pytest.raises(TypeError, match=r"profile\(\) reads the layer graph of a Functional model, but 'subclassed' "
                       r"is a subclassed model.*keras\.Model\(inputs, outputs\)"):  # fmt: skip
        kl.profile(model)


def test_profile_refuses_an_unbuilt_sequential_model_saying_how_to_build_it():
    model = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(3)], name="seq")
    with pytest.raises(ValueError, match=r"needs a built model, but the Sequential model 'seq' has no input shape yet.*"
                       r"model\.build\(\(None, 224, 224, 3\)\)"):  # fmt: skip
        kl.profile(model)
    model.build((None, 8, 8, 3))
    assert kl.profile(model).macs == 6 * 6 * 9 * 3 * 4 + 144 * 3  # built, it profiles as before


# --- 3. output locations that cannot be written -------------------------------------------------

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux's /proc (not writable, even by root)")


@needs_proc
def test_fit_names_output_dir_and_its_folder_when_it_cannot_be_written():
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"`output_dir` '/proc/x' cannot be written: .*'/proc'"):
        fit("squeezenet1_1", output_dir="/proc/x", image_size=32, **QUICK)
    assert time.perf_counter() - started < 5  # refused before the model is built or data is read


@needs_proc
def test_export_names_the_output_path_and_its_folder_when_it_cannot_be_written():
    with pytest.raises(ValueError, match=r"`path` '/proc/x\.tflite'.*'/proc'"):
        export_tflite(_tiny(), "/proc/x.tflite")


# --- 4. image_size against the model's input size -----------------------------------------------


def test_fit_refuses_an_image_size_the_given_model_does_not_take(tmp_path):
    model = kl.create_model("squeezenet1_1", input_shape=(64, 64, 3), classes=10)
    with pytest.raises(ValueError, match=r"`image_size=32` does not fit 'squeezenet1_1', which takes 64x64 images.*"
                       r"`image_size=64`.*input_shape=\(None, None, 3\) for any size"):  # fmt: skip
        fit(model, output_dir=tmp_path / "run", image_size=32, **QUICK)
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_an_image_size_the_model_does_not_take():
    with pytest.raises(ValueError, match=r"`image_size=64` does not fit 'tiny', which takes 32x32 images"):
        evaluate(_tiny(32), image_size=64)


def test_a_model_with_free_spatial_dims_takes_any_image_size(tmp_path):
    result = evaluate(_tiny(None), image_size=32, split="test[:16]")
    assert result["num_examples"] == 16
    model = kl.create_model("squeezenet1_1", input_shape=(None, None, 3), classes=10, classifier_activation=None)
    assert fit(model, output_dir=tmp_path / "run", image_size=32, **QUICK).run_info["image_size"] == 32


# --- 5. a representative batch of another shape -------------------------------------------------


def test_int8_export_names_the_representative_batch_of_another_shape(tmp_path):
    def batches():
        yield np.zeros((2, 32, 32, 3), np.float32)
        yield np.zeros((2, 16, 16, 3), np.float32)  # drawn by the converter, after the first batch's checks

    with pytest.raises(ValueError, match=r"`representative_data` batch 1 has shape \(2, 16, 16, 3\), but the model "
                       r"takes \(batch, 32, 32, 3\) images"):  # fmt: skip
        export_tflite(
            _tiny(), tmp_path / "m.tflite", quantization="int8", representative_data=batches(), representative_samples=4
        )
    assert not list(tmp_path.iterdir())


# --- 6. callbacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        ("junk", r"`callbacks` must be a list or tuple of keras\.callbacks\.Callback objects \(or None\), got 'junk'"),
        ([object()], r"`callbacks\[0\]` must be a keras\.callbacks\.Callback"),
    ],
)
def test_fit_checks_callbacks_before_any_work(tmp_path, callbacks, message):
    started = time.perf_counter()
    with pytest.raises(TypeError, match=message):
        fit("squeezenet1_1", output_dir=tmp_path / "run", image_size=32, callbacks=callbacks, **QUICK)
    assert time.perf_counter() - started < 5 and not (tmp_path / "run").exists()


# --- 7. list_models patterns ---------------------------------------------------------------------


def test_list_models_ignores_case():
    assert kl.list_models("REXNET_1*") == kl.list_models("rexnet_1*") == ["rexnet_100", "rexnet_130", "rexnet_150"]
    assert kl.list_models("SqueezeNet1_1") == ["squeezenet1_1"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", r"`pattern` must be a non-empty shell-style pattern such as 'rexnet_\*', got ''; pass None"),
        ("  ", r"`pattern` must be a non-empty shell-style pattern"),
        ("[", r"`pattern` '\[' has a '\[' without its '\]'"),
        ("mobilenetv[12", r"`pattern` 'mobilenetv\[12' has a '\[' without its '\]'"),
    ],
)
def test_list_models_refuses_empty_and_unclosed_patterns(pattern, message):
    with pytest.raises(ValueError, match=message):
        kl.list_models(pattern)


def test_list_models_of_a_valid_pattern_that_matches_nothing_is_empty_with_suggestions():
    from keras_lightnets.registry import suggest

    assert kl.list_models("rexnt*") == [] and kl.list_models("[]]") == []  # "[]]" is a valid set: "]"
    assert suggest("rexnt*") and all(name.startswith("rexnet") for name in suggest("rexnt*"))
    assert kl.list_models("mobilenetv[12]_1*") == ["mobilenetv1_100", "mobilenetv2_100", "mobilenetv2_130",
                                                   "mobilenetv2_140"]  # fmt: skip


# --- 8. temporaries of killed exports --------------------------------------------------------------


def _dead_pid():
    """The id of a process that has exited and been reaped."""
    for _ in range(10):
        child = subprocess.Popen(["true"])
        child.wait()
        try:
            os.kill(child.pid, 0)
        except ProcessLookupError:
            return child.pid
    pytest.skip("every reaped pid was reused at once")


def test_every_export_removes_temporaries_of_dead_processes_only(tmp_path):
    dead = _dead_pid()
    stale = [tmp_path / f".old.tflite.tmp-{dead}", tmp_path / f".best.keras.tmp-{dead}.keras"]
    kept = [
        tmp_path / f".other.tflite.tmp-{os.getpid()}",  # a live process's: it may still be writing
        tmp_path / f".notes.tmp-{dead}",  # not a kind of file this package writes
        tmp_path / f"old.tflite.tmp-{dead}",  # no leading dot: not our name
        tmp_path / "mine.txt",
    ]
    for path in stale + kept:
        path.write_bytes(b"x")
    export_tflite(_tiny(), tmp_path / "new.tflite")  # another file than the stale ones were for
    assert [path.name for path in stale if path.exists()] == []
    assert all(path.exists() for path in kept)
    assert (tmp_path / "new.tflite").is_file()


# --- 9. Ctrl-C in fit (the CLI case is in tests/test_cli_interrupts.py) ----------------------------


class _CtrlC(keras.callbacks.Callback):
    """Sends this process SIGINT at the end of the first training batch, as a Ctrl-C would."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_in_fit_stops_at_a_batch_end_with_how_to_resume(tmp_path):
    from keras_lightnets.training.callbacks import TrainingInterrupted

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        fit("squeezenet1_1", output_dir=tmp_path / "run", image_size=32, callbacks=[_CtrlC()], **QUICK | {"epochs": 2})
    assert isinstance(stop.value, KeyboardInterrupt) and stop.value.epoch == 1 and stop.value.epochs_done == 0
    assert str(stop.value).startswith("training interrupted in epoch 1/2; no epoch had finished")
    assert "run the same fit() call again to resume" in str(stop.value)
    assert signal.getsignal(signal.SIGINT) is handler  # the usual Ctrl-C again


# --- 11. a damaged weights file named, also in Python ---------------------------------------------


def test_fit_names_a_weights_file_that_cannot_be_read(tmp_path):
    from keras_lightnets.weights.errors import CheckpointError

    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint\n" * 8)
    with pytest.raises(CheckpointError, match=r"garbage\.pth"):
        fit("squeezenet1_1", output_dir=tmp_path / "run", image_size=32, weights=str(garbage), **QUICK)
    assert not (tmp_path / "run").exists()
