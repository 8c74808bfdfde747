"""Issue "Nothing silent", training and CLI cases: arguments fit() used to accept (or reject only
after building the model), and a failed start that used to leave the run folder claimed."""

import keras
import pytest

from keras_lightnets.cli import main
from keras_lightnets.training import fit

QUICK = dict(epochs=1, image_size=32, verbose=0, steps_per_epoch=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # silent before: trained on repeated images with a learning rate scaled to 0.31
        (dict(batch_size=5000), ValueError, r"`batch_size` 5000 is larger than the 1442 training examples"),
        (dict(label_smoothing=2), ValueError, r"`label_smoothing` must be a number in \[0, 1\]"),
        (dict(label_smoothing=1), ValueError, r"`label_smoothing` must be below 1"),
        (dict(overwrite="yes"), TypeError, r"`overwrite` must be True or False, got 'yes'"),
    ],
)
def test_fit_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit("mobilenetv2_035", output_dir=tmp_path / "run", **QUICK | kwargs)
    assert not (tmp_path / "run").exists()


def test_an_output_dir_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(ValueError, match=r"`output_dir` .*afile' is a file; the run needs a folder"):
        fit("mobilenetv2_035", output_dir=tmp_path / "afile", **QUICK)
    code = main(
        ["train", "mobilenetv2_035", "--epochs", "1", "--image-size", "32", "--output", str(tmp_path / "afile")]
    )
    assert code == 2 and "lightnets: error: `output_dir`" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "mine"


class _FailsAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        raise RuntimeError("out of memory, say")


def test_a_run_that_fails_before_its_first_epoch_leaves_the_folder_unclaimed(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="out of memory"):
        fit("mobilenetv2_035", output_dir=run, callbacks=[_FailsAtStart()], **QUICK)
    assert not (run / "run.json").exists()
    # The corrected rerun (other settings) starts afresh instead of failing with RunMismatchError.
    result = fit("mobilenetv2_035", output_dir=run, learning_rate=0.01, **QUICK)
    assert result.run_info["hyperparameters"]["learning_rate"] == 0.01 and (run / "final.keras").is_file()


def test_export_refuses_qat_epochs_without_int8(capsys):
    code = main(["export", "mobilenetv2_035", "--quantization", "float32", "--qat-epochs", "2"])
    assert code == 2
    assert "--qat-epochs applies to --quantization int8 only, not float32" in capsys.readouterr().err
