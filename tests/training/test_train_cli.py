"""`lightnets train` / `lightnets evaluate`: arguments to fit() keywords, and usage errors (exit code 2)."""

import io

import pytest

from keras_lightnets.cli import build_parser, main, train_kwargs


def _kwargs(*argv):
    return train_kwargs(build_parser().parse_args(["train", *argv]))


def test_every_train_option_reaches_fit():
    kwargs = _kwargs(
        "rexnet_100", "--dataset", "imagenet2012", "--recipe", "paper", "--epochs", "3", "--batch-size", "64",
        "--image-size", "160", "--strategy", "mirrored", "--output", "out", "--learning-rate", "0.1",
        "--optimizer", "sgd", "--mixed-precision", "--jit-compile", "--data-dir", "tfds", "--seed", "7",
        "--steps-per-epoch", "9", "--overwrite", "--verbose", "2", "--weights", "imagenet", "--transfer",
        "from-back:3", "--body-rate", "0.2",
    )  # fmt: skip
    assert kwargs == {
        "dataset": "imagenet2012",
        "recipe": "paper",
        "weights": "imagenet",
        "transfer": "from-back:3",
        "body_rate": 0.2,
        "epochs": 3,
        "batch_size": 64,
        "image_size": 160,
        "strategy": "mirrored",
        "output_dir": "out",
        "learning_rate": 0.1,
        "optimizer": "sgd",
        "mixed_precision": "auto",  # the bare flag
        "jit_compile": True,
        "data_dir": "tfds",
        "seed": 7,
        "steps_per_epoch": 9,
        "overwrite": True,
        "verbose": 2,
    }


def test_train_defaults_are_the_bundled_dataset_and_the_recipe():
    kwargs = _kwargs("squeezenet1_1")
    assert kwargs["dataset"] == "lightnets_digits" and kwargs["recipe"] == "default"
    assert kwargs["strategy"] == "auto" and kwargs["verbose"] in (1, 2)  # progress bar on a terminal only
    assert kwargs["mixed_precision"] is None and kwargs["jit_compile"] is False and kwargs["overwrite"] is False
    assert kwargs["body_rate"] == 0.1
    for name in (
        "epochs", "batch_size", "image_size", "output_dir", "learning_rate", "optimizer", "seed", "weights", "transfer",
    ):  # fmt: skip
        assert kwargs[name] is None, name  # fit() picks: the recipe's, 32 px for the bundled data, runs/MODEL-DATASET
    assert _kwargs("squeezenet1_1", "--mixed-precision", "mixed_bfloat16")["mixed_precision"] == "mixed_bfloat16"


def _run(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_unknown_model_is_a_usage_error(capsys):
    code, _ = _run(["train", "squeezenet1_2"])
    assert code == 2
    assert "lightnets: error: unknown model 'squeezenet1_2'. Closest: squeezenet1_1" in capsys.readouterr().err


def test_bad_strategy_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "squeezenet1_1", "--strategy", "gpu"])
    assert exit_info.value.code == 2
    assert "argument --strategy: invalid choice: 'gpu'" in capsys.readouterr().err


def test_unknown_recipe_is_a_usage_error_listing_the_recipes(capsys, data_dir):
    code, _ = _run(["train", "squeezenet1_1", "--recipe", "fast", "--data-dir", data_dir, "--strategy", "cpu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "lightnets: error: unknown recipe 'fast' for model family 'squeezenet'; available: default, paper" in err


def test_evaluate_of_a_missing_run_is_a_usage_error(tmp_path, capsys):
    code, _ = _run(["evaluate", str(tmp_path / "nowhere")])
    assert code == 2
    assert "is neither a .keras file nor a run folder" in capsys.readouterr().err


def test_transfer_errors_are_usage_errors_before_any_training(capsys):
    code, _ = _run(["train", "squeezenet1_1", "--transfer", "head"])
    assert code == 2 and "`transfer='head'` fine-tunes pretrained weights: pass `weights`" in capsys.readouterr().err
    code, _ = _run(["train", "squeezenet1_1", "--weights", "imagenet", "--transfer", "sideways"])
    assert code == 2 and "`transfer` must be 'head' (train the classifier only) or 'from-back[:N]'" in (
        capsys.readouterr().err
    )
    code, _ = _run(["train", "squeezenet1_1", "--weights", "missing.pth", "--transfer", "from-back:2"])
    assert code == 2 and "`weights` file does not exist: 'missing.pth'" in capsys.readouterr().err
