"""Bad arguments raise TypeError (wrong type) or ValueError (wrong value) naming the argument, before any
data is prepared or read."""

import re

import pytest
import tensorflow as tf

from keras_lightnets.data import distributed_dataset, make_dataset, num_examples

TWO_REPLICAS = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)

BAD_ARGUMENTS = [
    ({"image_size": 16}, "image_size", ">= 32", ValueError),
    ({"image_size": 64.0}, "image_size", "integer", TypeError),
    ({"image_size": "224"}, "image_size", "integer", TypeError),
    ({"image_size": True}, "image_size", "integer", TypeError),
    ({"batch_size": 0}, "batch_size", ">= 1", ValueError),
    ({"batch_size": 2.5}, "batch_size", "integer", TypeError),
    ({"batch_size": 15, "input_context": TWO_REPLICAS}, "batch_size", "divisible", ValueError),
    ({"preset": "autoaugment"}, "preset", "imagenet", ValueError),
    ({"mean": (0.5, 0.5)}, "mean", "one value per channel", ValueError),
    ({"mean": "abc"}, "mean", "number", TypeError),
    ({"std": (1, 1, 1, 1)}, "std", "one value per channel", ValueError),
    ({"std": 0.0}, "std", "> 0", ValueError),
    ({"channels": 1, "mean": (0.1, 0.2, 0.3)}, "mean", "one value per channel", ValueError),
    ({"channels": 2}, "channels", "(1, 3)", ValueError),
    ({"channels": 3.0}, "channels", "(1, 3)", ValueError),
    ({"crop_pct": 0}, "crop_pct", "(0, 1]", ValueError),
    ({"crop_pct": 1.5}, "crop_pct", "(0, 1]", ValueError),
    ({"mixup_alpha": -0.1}, "mixup_alpha", ">= 0", ValueError),
    ({"cutmix_alpha": -1}, "cutmix_alpha", "[0, 1]", ValueError),
    ({"cutmix_alpha": 2.0}, "cutmix_alpha", "[0, 1]", ValueError),
    ({"model": "rexnet_10"}, "model", "rexnet_100", ValueError),
    ({"model": 100}, "model", "registered model name", TypeError),
    ({"shuffle_buffer": 0}, "shuffle_buffer", ">= 1", ValueError),
    ({"seed": -1}, "seed", ">= 0", ValueError),
    ({"seed": "abc"}, "seed", "integer", TypeError),
    ({"training": "yes"}, "training", "True, False or None", TypeError),
    ({"input_context": "replica0"}, "input_context", "InputContext", TypeError),
]


# One convention (keras_lightnets.checks): TypeError for a value of the wrong type, ValueError
# for a value of the right type that is not allowed.
@pytest.mark.parametrize(("kwargs", "argument", "hint", "error_type"), BAD_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_bad_argument_is_named_before_any_preparation(tmp_path, kwargs, argument, hint, error_type):
    with pytest.raises(error_type, match=re.escape(f"`{argument}`")) as error:
        make_dataset("lightnets_digits", "train", data_dir=str(tmp_path), **kwargs)
    assert hint in str(error.value)
    assert not any(tmp_path.iterdir())  # nothing prepared: the check came first


@pytest.mark.parametrize(("name", "suggestion"), [("cifar_10", "cifar10"), ("lightnets_digit", "lightnets_digits")])
def test_unknown_dataset_suggests_close_names(tmp_path, name, suggestion):
    with pytest.raises(ValueError, match=r"unknown `dataset`") as error:
        make_dataset(name, "train", data_dir=str(tmp_path))
    closest = str(error.value).split("Closest: ", 1)[1].split(".", 1)[0].split(", ")
    assert suggestion in closest


def test_dataset_name_must_be_a_string(tmp_path):
    with pytest.raises(TypeError, match="`dataset`"):
        make_dataset(123, "train", data_dir=str(tmp_path))


def test_dataset_without_image_and_class_label_is_refused_before_download(tmp_path):
    # imdb_reviews: text + ClassLabel. Its features come from code; nothing is downloaded.
    with pytest.raises(ValueError, match=r"`dataset` 'imdb_reviews' is not an image-classification dataset"):
        make_dataset("imdb_reviews", "train", data_dir=str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_missing_split_lists_the_available_ones(digits_dir):
    with pytest.raises(
        ValueError, match=r"`split` 'validation' is not a split of 'lightnets_digits'; available: test, train"
    ):
        make_dataset("lightnets_digits", "validation", data_dir=digits_dir)
    with pytest.raises(ValueError, match=r"`split` 'valid' is not a split"):
        num_examples("lightnets_digits", "train+valid[:10%]", digits_dir)
    with pytest.raises(ValueError, match="`split`"):
        make_dataset("lightnets_digits", None, data_dir=digits_dir)


def test_distributed_dataset_refuses_an_input_context():
    with pytest.raises(ValueError, match="`input_context`"):
        distributed_dataset(tf.distribute.get_strategy(), input_context=TWO_REPLICAS)
