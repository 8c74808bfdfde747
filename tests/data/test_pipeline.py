"""make_dataset / distributed_dataset on the bundled digits: shapes, numbers, order, sharding."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tfds_helpers import collect

from keras_lightnets.data import (
    dataset_info,
    default_data_dir,
    distributed_dataset,
    make_dataset,
    num_examples,
    resolve_normalization,
)
from keras_lightnets.data.bundled import split_rows
from keras_lightnets.registry import IMAGENET_MEAN, IMAGENET_STD

MEAN = np.array(IMAGENET_MEAN, np.float32)
STD = np.array(IMAGENET_STD, np.float32)


@pytest.fixture
def digits(digits_dir):
    """make_dataset on the bundled digits at 32x32, the session's prepared copy."""

    def make(split="train", **kwargs):
        kwargs.setdefault("image_size", 32)
        return make_dataset("lightnets_digits", split, data_dir=digits_dir, **kwargs)

    return make


def pixels(images, mean=MEAN, std=STD):
    """Undo the normalization: pixel values in [0, 255]."""
    return (images * std + mean) * 255.0


def assert_one_hot(labels, num_classes=10):
    assert labels.dtype == np.float32 and labels.shape[1:] == (num_classes,)
    assert set(np.unique(labels).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(labels.sum(axis=1), 1.0)


def test_dataset_info_and_num_examples(digits_dir):
    info = dataset_info(data_dir=digits_dir)
    assert (info.name, info.num_classes, info.image_key, info.label_key) == ("lightnets_digits", 10, "image", "label")
    assert info.splits == {"train": 1442, "test": 355}
    assert info.image_shape == (32, 32, 1)
    assert info.class_names == tuple("0123456789")
    assert num_examples("lightnets_digits", "train", digits_dir) == 1442
    assert num_examples("lightnets_digits", "test[:20%]", digits_dir) == 71
    assert num_examples("lightnets_digits", "train+test", digits_dir) == 1797


def test_training_batches_shapes_dtypes_one_hot(digits):
    images, labels, sizes = collect(digits("train", batch_size=64, seed=0))
    # 1442 = 22 * 64 + 34: training drops the remainder by default.
    assert sizes == [64] * 22
    assert images.shape == (22 * 64, 32, 32, 3) and images.dtype == np.float32
    assert_one_hot(labels)
    restored = pixels(images)
    assert restored.min() >= -1e-3 and restored.max() <= 255 + 1e-3
    # Grayscale repeated to RGB before normalization: the three channels hold the same pixels.
    np.testing.assert_allclose(restored[..., 0], restored[..., 2], atol=1e-3)


def test_eval_batches_keep_every_example_in_stored_order(digits, digits_builder):
    images, labels, sizes = collect(digits("test", batch_size=64))
    assert sizes == [64] * 5 + [35]  # drop_remainder=False when evaluating: all 355 examples
    assert images.shape == (355, 32, 32, 3)
    assert_one_hot(labels)
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(labels.argmax(axis=1), load_digits().target[split_rows("test")])


def test_eval_order_is_deterministic_across_iterations(digits):
    ds = digits("test", batch_size=50)
    first, labels_first, _ = collect(ds)
    second, labels_second, _ = collect(ds)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(labels_first, labels_second)
    assert ds.options().deterministic


def test_eval_normalization_is_exact(digits, stored_test_images):
    # "imagenet" eval with crop_pct=1 at the stored size: resize and crop are identities.
    images, _, _ = collect(digits("test", batch_size=128, crop_pct=1.0))
    expected = (stored_test_images.astype(np.float32) / 255.0 - MEAN) / STD  # 1 channel broadcast to 3
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-6)
    # The "cifar" eval preset at the stored size is the same identity.
    cifar, _, _ = collect(digits("test", batch_size=128, preset="cifar"))
    np.testing.assert_allclose(cifar, expected, rtol=0, atol=1e-6)


def test_model_supplies_mean_std_and_arguments_override(digits, stored_test_images):
    x = stored_test_images[:8].astype(np.float32) / 255.0
    images, _, _ = collect(digits("test", batch_size=8, crop_pct=1.0, model="mobilenetv2_100").take(1))
    np.testing.assert_allclose(images, np.broadcast_to((x - 0.5) / 0.5, images.shape), atol=1e-6)
    images, _, _ = collect(digits("test", batch_size=8, crop_pct=1.0, model="mobilenetv2_100", mean=0.25).take(1))
    np.testing.assert_allclose(images, np.broadcast_to((x - 0.25) / 0.5, images.shape), atol=1e-6)


def test_resolve_normalization_from_registry():
    assert resolve_normalization() == (IMAGENET_MEAN, IMAGENET_STD, 0.875, "bilinear")
    assert resolve_normalization("rexnet_100") == (IMAGENET_MEAN, IMAGENET_STD, 0.875, "bicubic")
    assert resolve_normalization("mobilenetv2_100") == ((0.5,) * 3, (0.5,) * 3, 0.875, "bilinear")
    assert resolve_normalization("rexnet_100", std=(1, 2, 3), crop_pct=0.95)[1:3] == ((1.0, 2.0, 3.0), 0.95)
    # One channel: RGB statistics reduce with the luma weights of rgb_to_grayscale.
    mean, std, _, _ = resolve_normalization(channels=1)
    assert mean == pytest.approx((0.2989 * 0.485 + 0.5870 * 0.456 + 0.1140 * 0.406,))
    assert std == pytest.approx((0.2989 * 0.229 + 0.5870 * 0.224 + 0.1140 * 0.225,))


def test_one_channel_output(digits, stored_test_images):
    images, _, _ = collect(digits("test", batch_size=128, crop_pct=1.0, channels=1, mean=0.5, std=0.25))
    assert images.shape == (355, 32, 32, 1)
    np.testing.assert_allclose(images, (stored_test_images / 255.0 - 0.5) / 0.25, atol=1e-6)


def test_imagenet_eval_resizes_shorter_side_then_centre_crops(digits, stored_test_images):
    # crop_pct 0.75: resize 32 -> floor(32 / 0.75) = 42, then the central 32x32 (offset round(10 / 2) = 5).
    images, _, _ = collect(digits("test", batch_size=16, crop_pct=0.75).take(1))
    resized = tf.image.resize(stored_test_images[:16].astype(np.float32), [42, 42], antialias=True).numpy()
    expected = (np.clip(resized[:, 5:37, 5:37], 0, 255) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(images, expected, atol=1e-5)
    images, _, _ = collect(digits("test", batch_size=4, image_size=48).take(1))  # 32 -> 54 -> crop 48
    assert images.shape == (4, 48, 48, 3)


def test_drop_remainder_overrides_the_default(digits):
    assert collect(digits("test", batch_size=64, drop_remainder=True))[2] == [64] * 5
    assert collect(digits("train", batch_size=64, drop_remainder=False, seed=0))[2] == [64] * 22 + [34]


def test_training_is_reproducible_with_a_seed_and_varies_across_epochs(digits):
    first = digits("train", batch_size=32, seed=7)
    again = digits("train", batch_size=32, seed=7)
    x1, y1 = next(iter(first))
    x2, y2 = next(iter(again))
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    x1_next_epoch, _ = next(iter(first))  # a second iteration = the next epoch
    assert not np.array_equal(x1.numpy(), x1_next_epoch.numpy())
    # Evaluation of the same split is never augmented: identical to the stored pixels, unlike training.
    train_eval, _, _ = collect(digits("train", batch_size=32, training=False, crop_pct=1.0).take(1))
    assert not np.allclose(train_eval, x1.numpy())


def test_input_context_shards_are_disjoint_halves_with_per_replica_batches(digits):
    full, full_labels, _ = collect(digits("test", batch_size=64))
    # 355 examples, 2 input pipelines. drop_remainder=True: equal shards of 177 (one example
    # dropped), then whole per-replica batches of 8 only (22 * 8 = 176). False: 178 + 177, all kept.
    cases = [(True, [(0, 176), (177, 353)]), (False, [(0, 178), (178, 355)])]
    for drop_remainder, shards in cases:
        for pipeline_id, (start, stop) in enumerate(shards):
            context = tf.distribute.InputContext(
                num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
            )
            images, labels, sizes = collect(
                digits("test", batch_size=16, input_context=context, drop_remainder=drop_remainder)
            )
            assert set(sizes[:-1]) == {8}  # global batch 16 over 2 replicas
            np.testing.assert_array_equal(images, full[start:stop])
            np.testing.assert_array_equal(labels, full_labels[start:stop])


def test_distributed_dataset_batches_per_replica(digits_dir):
    strategy = tf.distribute.get_strategy()  # the default strategy: one replica, one pipeline
    ds = distributed_dataset(strategy, data_dir=digits_dir, split="test", image_size=32, batch_size=64)
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sizes == [64] * 5 + [35]


def test_cifar_preset_shapes(digits):
    images, labels, _ = collect(digits("train", batch_size=64, preset="cifar", image_size=40, seed=1).take(2))
    assert images.shape == (128, 40, 40, 3)
    assert_one_hot(labels)
    restored = pixels(images)
    assert restored.min() >= -1e-3 and restored.max() <= 255 + 1e-3
    eval_images, _, _ = collect(digits("train", batch_size=64, preset="cifar", image_size=40, training=False).take(1))
    assert eval_images.shape == (64, 40, 40, 3)


def test_cifar_training_is_a_shift_over_zero_padding_plus_flip(digits, stored_test_images):
    # shuffle_buffer=1 keeps the stored order, so example k is stored image k, augmented.
    ds = digits("test", batch_size=16, preset="cifar", training=True, shuffle_buffer=1, seed=2)
    augmented = pixels(next(iter(ds))[0].numpy())[..., 0]
    shifts = set()
    for k in range(16):
        padded = np.pad(stored_test_images[k, :, :, 0].astype(np.float32), 4)
        matches = [
            (dy, dx, flip)
            for flip in (False, True)
            for dy in range(9)
            for dx in range(9)
            if np.allclose(augmented[k], (padded[:, ::-1] if flip else padded)[dy : dy + 32, dx : dx + 32], atol=1e-3)
        ]
        assert matches, f"example {k} is not a shifted / flipped copy of its source"
        shifts.add(matches[0])
    assert len(shifts) > 1  # random offsets, not a fixed crop


def test_mixup_and_cutmix_make_soft_labels_that_sum_to_one(digits):
    for kwargs in [{"mixup_alpha": 1.0}, {"cutmix_alpha": 1.0}, {"mixup_alpha": 0.4, "cutmix_alpha": 0.6}]:
        images, labels, _ = collect(digits("train", batch_size=32, seed=3, **kwargs).take(3))
        assert images.shape == (96, 32, 32, 3) and images.dtype == np.float32
        assert labels.dtype == np.float32
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
        assert (labels >= 0).all()
        assert ((labels > 0).sum(axis=1) <= 2).all()  # each example mixes with one partner
        assert ((labels > 0) & (labels < 1)).any(axis=1).mean() > 0.5, kwargs  # mostly soft
        again, again_labels, _ = collect(digits("train", batch_size=32, seed=3, **kwargs).take(3))
        np.testing.assert_array_equal(images, again)  # seeded: reproducible
        np.testing.assert_array_equal(labels, again_labels)


def test_images_stay_float32_under_a_mixed_precision_policy(digits):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        ds = digits("train", batch_size=8, randaugment=True, mixup_alpha=0.2, cutmix_alpha=0.5, seed=0)
        images, labels = next(iter(ds))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert images.dtype == tf.float32 and labels.dtype == tf.float32


def test_mixing_and_randaugment_only_apply_when_training(digits):
    plain, plain_labels, _ = collect(digits("test", batch_size=64))
    mixed, mixed_labels, _ = collect(digits("test", batch_size=64, randaugment=True, mixup_alpha=1.0, cutmix_alpha=1.0))
    np.testing.assert_array_equal(plain, mixed)
    np.testing.assert_array_equal(plain_labels, mixed_labels)


def test_randaugment_keeps_shape_and_pixel_range(digits):
    images, labels, _ = collect(digits("train", batch_size=64, randaugment=True, seed=5).take(2))
    assert images.shape == (128, 32, 32, 3) and images.dtype == np.float32
    assert_one_hot(labels)
    restored = pixels(images)
    assert restored.min() >= -1e-3 and restored.max() <= 255 + 1e-3
    plain, _, _ = collect(digits("train", batch_size=64, seed=5).take(2))
    assert not np.allclose(images, plain)  # it did change the images


def test_cache_gives_the_same_eval_data(digits):
    plain, _, _ = collect(digits("test", batch_size=100))
    ds = digits("test", batch_size=100, cache=True)
    np.testing.assert_array_equal(collect(ds)[0], plain)
    np.testing.assert_array_equal(collect(ds)[0], plain)  # second epoch from the cache


def test_data_dir_defaults_to_the_environment_variable(digits_dir, monkeypatch):
    monkeypatch.setenv("LIGHTNETS_DATA_DIR", digits_dir)
    assert default_data_dir() == digits_dir
    assert default_data_dir("/elsewhere") == "/elsewhere"
    assert num_examples("lightnets_digits", "test") == 355  # read from $LIGHTNETS_DATA_DIR
    monkeypatch.delenv("LIGHTNETS_DATA_DIR")
    assert default_data_dir() is None  # TFDS's own default
