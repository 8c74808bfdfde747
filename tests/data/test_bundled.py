"""The bundled ``lightnets_digits`` TFDS dataset: offline, documented, deterministic."""

import numpy as np
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits
from tfds_helpers import prepare_offline, read_split

from keras_lightnets.data import BUNDLED_DATASET, LightnetsDigits
from keras_lightnets.data.bundled import IMAGE_SIZE, SPLIT_SIZES, digits_images, split_rows
from keras_lightnets.models.scaffold import MIN_INPUT_SIZE

# The figures documented in keras_lightnets/data/bundled.py.
TRAIN_PER_CLASS = [143, 146, 142, 147, 145, 146, 145, 144, 140, 144]
TEST_PER_CLASS = [35, 36, 35, 36, 36, 36, 36, 35, 34, 36]
# Stored order = ascending row of sklearn's load_digits(): the first rows of each split.
FIRST_TRAIN_ROWS = [0, 1, 2, 4, 5, 6, 9, 10]
FIRST_TEST_ROWS = [3, 7, 8, 14, 15, 24, 26, 28]
# Every stored pixel is one of the 17 block counts scaled to uint8.
LEVELS = set(np.rint(np.arange(17) * 255 / 16).astype(int).tolist())


def test_registered_under_its_name():
    assert BUNDLED_DATASET == "lightnets_digits" == LightnetsDigits.name
    assert BUNDLED_DATASET in tfds.list_builders()
    assert str(LightnetsDigits.VERSION) == "1.0.0"
    assert IMAGE_SIZE == MIN_INPUT_SIZE == 32


def test_prepared_offline_with_documented_metadata(digits_builder):
    # digits_builder was prepared with sockets disabled (conftest.prepare_offline).
    info = digits_builder.info
    assert (
        {name: split.num_examples for name, split in info.splits.items()} == SPLIT_SIZES == {"train": 1442, "test": 355}
    )
    assert sum(SPLIT_SIZES.values()) == 1797 == len(load_digits().target)
    assert info.features["label"].names == [str(d) for d in range(10)]
    assert info.features["image"].shape == (32, 32, 1)
    assert info.features["image"].encoding_format == "png"
    assert "Alpaydin" in info.citation and "Optical Recognition of Handwritten Digits" in info.citation
    assert info.description


def test_tfds_load_reads_the_prepared_dataset(digits_dir):
    ds = tfds.load(BUNDLED_DATASET, split="test", data_dir=digits_dir, as_supervised=True, download=False)
    assert ds.cardinality().numpy() == 355


def test_stratified_split_counts_and_partition():
    labels = load_digits().target
    train, test = split_rows("train"), split_rows("test")
    assert np.bincount(labels[train], minlength=10).tolist() == TRAIN_PER_CLASS
    assert np.bincount(labels[test], minlength=10).tolist() == TEST_PER_CLASS
    assert all(n > 0 for n in TRAIN_PER_CLASS + TEST_PER_CLASS)  # every class in both splits
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    # Close to 80/20 within every class.
    assert all(0.19 <= t / (t + r) <= 0.21 for r, t in zip(TRAIN_PER_CLASS, TEST_PER_CLASS, strict=True))


def test_stored_examples_are_sklearn_rows_in_documented_order(digits_builder):
    digits = load_digits()
    for split, first_rows in [("train", FIRST_TRAIN_ROWS), ("test", FIRST_TEST_ROWS)]:
        images, labels = read_split(digits_builder, split)
        rows = split_rows(split)
        assert rows[: len(first_rows)].tolist() == first_rows
        assert labels[: len(first_rows)].tolist() == digits.target[first_rows].tolist()
        np.testing.assert_array_equal(labels, digits.target[rows])
        np.testing.assert_array_equal(images, digits_images()[0][rows])
        # Nearest-neighbour upsampling: every 4th pixel is the original 8x8 image scaled to 0..255.
        np.testing.assert_array_equal(images[:, ::4, ::4, 0], np.rint(digits.images[rows] * 255 / 16))


def test_images_are_uint8_32x32x1_visible_digits(digits_builder):
    images, labels = read_split(digits_builder, "train")
    assert images.dtype == np.uint8 and images.shape == (1442, 32, 32, 1)
    assert set(np.unique(images).tolist()) <= LEVELS
    assert images.min() == 0 and images.max() == 255
    per_image_mean = images.reshape(len(images), -1).mean(axis=1)
    per_image_max = images.reshape(len(images), -1).max(axis=1)
    assert (per_image_mean > 10).all() and (per_image_max >= 191).all()  # ink on every digit
    assert (images[:, :, :4].max(axis=(1, 2, 3)) == 0).mean() > 0.5  # mostly blank left margin
    assert set(labels.tolist()) == set(range(10))


def test_two_preparations_store_identical_examples(digits_builder, tmp_path):
    again = prepare_offline(tmp_path)
    for split in SPLIT_SIZES:
        images_a, labels_a = read_split(digits_builder, split)
        images_b, labels_b = read_split(again, split)
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
