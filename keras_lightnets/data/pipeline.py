"""TFDS -> ``tf.data`` input pipelines yielding ``(images, one-hot labels)`` for Keras ``fit``.

``make_dataset("cifar10", "train", image_size=32, batch_size=128, preset="cifar")`` works
for any TFDS dataset with an image feature and a class-label feature, and for the bundled
offline ``lightnets_digits``. Stages, in order:

1. read the split with TFDS (files shuffled when training), decoding only the image and
   label features; the image decode is our own parallel map (``AUTOTUNE``), so ImageNet
   JPEGs can be decoded straight into their random crop (``decode_and_crop_jpeg``);
2. ``cache()`` when asked: decoded uint8 images, before anything random, so every epoch
   gets fresh augmentation (TFDS's own auto-cache is off: ``cache`` is the one switch);
3. training: ``shuffle`` (``shuffle_buffer``), per-example stateless augmentation with
   seeds from ``tf.data.Dataset.random`` (reproducible when ``seed`` is given),
   optional RandAugment; evaluation: deterministic resize / centre crop, order kept
   (``options.deterministic = True``);
4. normalize ``(x / 255 - mean) / std`` in float32, batch, optional MixUp / CutMix on the
   batch, ``prefetch(AUTOTUNE)``.

No ``repeat()``: Keras ``fit`` iterates the dataset once per epoch. ``batch_size`` is the
*global* batch size; under ``tf.distribute`` (``distributed_dataset`` or an
``input_context``) each input pipeline reads its own ``1/num_input_pipelines`` of the split
and batches ``input_context.get_per_replica_batch_size(batch_size)`` examples.
"""

import difflib
import math
import os
import re
import socket
from dataclasses import dataclass
from numbers import Real

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_lightnets.checks import check_choice, check_int, check_number
from keras_lightnets.data import augment
from keras_lightnets.data.bundled import LightnetsDigits
from keras_lightnets.layers.preprocessing import IMAGENET_PREPROCESSING, INTERPOLATIONS, Preprocessing
from keras_lightnets.models.scaffold import MIN_INPUT_SIZE
from keras_lightnets.preprocessing import resolve_preprocessing

__all__ = [
    "BUNDLED_DATASET",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "DatasetUnavailableError",
    "dataset_info",
    "default_data_dir",
    "distributed_dataset",
    "make_dataset",
    "num_examples",
    "resolve_normalization",
]

BUNDLED_DATASET = LightnetsDigits.name  # "lightnets_digits"
DATA_DIR_ENV = "LIGHTNETS_DATA_DIR"
# rgb_to_grayscale's weights: a luma image's mean is the luma-weighted mean of the RGB means,
# so RGB statistics (ImageNet's, a model's) become one-channel statistics the same way.
_LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


@dataclass(frozen=True)
class DatasetInfo:
    """What a training script needs to know about a classification dataset.

    ``splits`` maps split name -> number of examples (empty when TFDS does not know them
    yet, e.g. under ``tfds.testing.mock_data``); ``image_shape`` is the stored shape, with
    ``None`` for sizes that vary between images.
    """

    name: str
    num_classes: int
    splits: dict
    image_key: str
    label_key: str
    image_shape: tuple
    class_names: tuple


def default_data_dir(data_dir=None):
    """The data directory: ``data_dir``, else ``$LIGHTNETS_DATA_DIR``, else ``None`` (TFDS's default)."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if chosen is not None and not isinstance(chosen, (str, os.PathLike)):
        raise TypeError(f"`data_dir` must be a folder path or None, got {chosen!r}")
    if chosen is not None and os.path.exists(chosen) and not os.path.isdir(chosen):
        what = "`data_dir`" if data_dir else f"${DATA_DIR_ENV}"
        raise ValueError(f"{what} must be a folder (TFDS keeps datasets in it), got a file: {os.fspath(chosen)!r}")
    return chosen


# ---------------------------------------------------------------------------------------
# Argument checks: cheap, run before any file is touched.


def _check_alpha(name, value, maximum=None):
    check_number(value, name, minimum=0, maximum=maximum, hint=" (0 turns it off)")


def _channel_stats(name, value, channels):
    """``value`` (a number or a sequence of ``channels`` numbers) as a tuple of ``channels`` floats."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return (float(value),) * channels
    try:
        values = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a number or {channels} numbers, got {value!r}") from None
    if len(values) != channels:
        raise ValueError(f"`{name}` must have one value per channel ({channels}, `channels={channels}`), got {value!r}")
    return values


def _rgb_to_gray_stats(values):
    return (sum(w * v for w, v in zip(_LUMA_WEIGHTS, values, strict=True)),)


def _model_preprocessing(model):
    """``model``'s :class:`Preprocessing` (:func:`~keras_lightnets.preprocessing.resolve_preprocessing`),
    with the errors naming ``model``."""
    # A Keras 3 model, its tf_keras twin or a QAT model: anything with layers may carry a model card.
    if model is not None and not isinstance(model, str | Preprocessing) and not hasattr(model, "layers"):
        raise TypeError(
            "`model` must be a registered model name such as 'rexnet_100', a keras.Model or a Preprocessing, "
            f"got {model!r}"
        )
    try:
        return resolve_preprocessing(model)
    except ValueError as error:
        raise ValueError(f"`model`: {error}") from None


def resolve_normalization(model=None, mean=None, std=None, crop_pct=None, channels=3, interpolation=None):
    """``(mean, std, crop_pct, interpolation)``: explicit arguments, else ``model``'s, else ImageNet's.

    ``model`` is a registered name (its variant's preprocessing), a :class:`Preprocessing`, or
    a built ``keras.Model`` (its model card: a renamed model keeps its normalization). Mean and
    std are what the pipeline applies, :meth:`Preprocessing.fed`: a model that normalizes
    inside takes ``pixel / 255`` (or raw pixels), the others its normalization.
    With ``channels=1``, RGB statistics from a model or the defaults are reduced to luma
    (``0.2989 R + 0.5870 G + 0.1140 B``); explicit ``mean``/``std`` must already have one value.
    """
    preprocessing = _model_preprocessing(model) or IMAGENET_PREPROCESSING
    default_mean, default_std = preprocessing.fed()
    if channels == 1 and len(default_mean) == 3:
        default_mean, default_std = _rgb_to_gray_stats(default_mean), _rgb_to_gray_stats(default_std)
    mean = _channel_stats("mean", default_mean if mean is None else mean, channels)
    std = _channel_stats("std", default_std if std is None else std, channels)
    for name, values in (("mean", mean), ("std", std)):
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"`{name}` values must be finite numbers, got {values}")
    if any(s <= 0 for s in std):
        raise ValueError(f"`std` values must be > 0, got {std}")
    crop_pct = preprocessing.crop_pct if crop_pct is None else crop_pct
    check_number(crop_pct, "crop_pct", minimum=0, maximum=1, exclusive_minimum=True)
    interpolation = preprocessing.interpolation if interpolation is None else interpolation
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    return mean, std, float(crop_pct), interpolation


# ---------------------------------------------------------------------------------------
# The TFDS side: name, features, preparation, splits.


def _known_datasets():
    return sorted(set(tfds.list_builders(with_community_datasets=False)) | {BUNDLED_DATASET})


def _builder(dataset, data_dir):
    """TFDS builder of ``dataset`` ("name", "name/config", "name:version"); else a ValueError with suggestions."""
    if not isinstance(dataset, str):
        raise TypeError(f"`dataset` must be a TFDS dataset name such as 'cifar10', got {dataset!r}")
    if not dataset:
        raise ValueError(f"`dataset` must be a TFDS dataset name such as 'cifar10', got {dataset!r}")
    try:
        return tfds.builder(dataset, data_dir=default_data_dir(data_dir))
    except tfds.core.DatasetNotFoundError:
        base = re.split(r"[/:]", dataset, maxsplit=1)[0]
        close = difflib.get_close_matches(base, _known_datasets(), n=5, cutoff=0.6)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(
            f"unknown `dataset` {dataset!r}.{hint} `tfds.list_builders()` lists the TFDS datasets; "
            f"{BUNDLED_DATASET!r} is bundled and needs no download."
        ) from None


def _feature_keys(builder):
    """``(image_key, label_key)``: "image"/"label" when they fit, else the first uint8 Image / ClassLabel feature."""
    features = builder.info.features
    items = list(features.items()) if isinstance(features, tfds.features.FeaturesDict) else []

    def pick(preferred, kind, accept=lambda feature: True):
        candidates = [key for key, feature in items if isinstance(feature, kind) and accept(feature)]
        return preferred if preferred in candidates else (candidates[0] if candidates else None)

    image_key = pick("image", tfds.features.Image, lambda feature: feature.tf_dtype == tf.uint8)
    label_key = pick("label", tfds.features.ClassLabel)
    if image_key is None or label_key is None:
        raise ValueError(
            f"`dataset` {builder.name!r} is not an image-classification dataset: it needs a uint8 "
            f"`tfds.features.Image` and a `tfds.features.ClassLabel` feature, it has {features!r}"
        )
    return image_key, label_key


def _prepare(builder):
    # What tfds.load(download=True) does: the bundled dataset builds offline in a few seconds,
    # others download once into data_dir.
    if not builder.is_prepared():
        if builder.name != BUNDLED_DATASET and not _online():
            # Without this, TFDS retries every URL for minutes and leaves partial downloads behind.
            raise DatasetUnavailableError(
                f"no network and no local copy of {builder.name!r} in {builder.data_dir!r}: prepare it on a "
                f"machine with network (tfds.load({builder.name!r}, data_dir=...)) and copy the folder, or pass "
                f"the `data_dir` that holds it; {BUNDLED_DATASET!r} is bundled and needs none"
            )
        builder.download_and_prepare()


class DatasetUnavailableError(OSError):
    """A dataset that is neither prepared locally nor downloadable (no network)."""


# TFDS downloads from its own bucket or the dataset's URLs; reaching Google's storage host says
# whether there is any network at all (a proxy-only or air-gapped machine answers quickly "no").
_PROBE_HOST = ("storage.googleapis.com", 443)


def _online(timeout=5):
    try:
        socket.create_connection(_PROBE_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def _check_split(builder, split):
    if not isinstance(split, str) or not split:
        raise ValueError(f"`split` must be a split name such as 'train' or 'test[:10%]', got {split!r}")
    available = sorted(builder.info.splits)
    if not available:  # split names unknown (mocked metadata): let TFDS decide
        return
    for part in split.split("+"):
        name = part.split("[", 1)[0].strip()
        if name not in available:
            raise ValueError(f"`split` {name!r} is not a split of {builder.name!r}; available: {', '.join(available)}")
    if builder.info.splits[available[0]].num_examples == 0:
        return  # split sizes unknown before preparation
    try:
        selected = builder.info.splits[split].num_examples
    except Exception as error:  # noqa: BLE001 - TFDS raises assorted errors for malformed slices
        raise ValueError(
            f"`split` {split!r} is not a valid TFDS split spec ({error}); examples: 'train', 'train[:90%]', "
            "'train[100:200]', 'train+test'"
        ) from None
    if selected <= 0:
        raise ValueError(f"`split` {split!r} selects no examples of {builder.name!r} (an empty slice)")
    return selected


def _open(dataset, data_dir):
    """Prepared builder and its feature keys, with every check that needs TFDS."""
    builder = _builder(dataset, data_dir)
    image_key, label_key = _feature_keys(builder)  # from code: before any download
    _prepare(builder)
    return builder, image_key, label_key


def dataset_info(dataset=BUNDLED_DATASET, data_dir=None):
    """:class:`DatasetInfo` of ``dataset``, preparing it first if needed (offline for the bundled one)."""
    builder, image_key, label_key = _open(dataset, data_dir)
    label = builder.info.features[label_key]
    return DatasetInfo(
        name=builder.name,
        num_classes=label.num_classes,
        splits={name: split.num_examples for name, split in builder.info.splits.items()},
        image_key=image_key,
        label_key=label_key,
        image_shape=tuple(builder.info.features[image_key].shape),
        class_names=tuple(label.names),
    )


def num_examples(dataset, split, data_dir=None):
    """Number of examples in ``split`` ("train", "test[:10%]", "train+test") of ``dataset``."""
    builder, _, _ = _open(dataset, data_dir)
    _check_split(builder, split)
    return builder.info.splits[split].num_examples


# ---------------------------------------------------------------------------------------
# The pipeline.


def _decode_image(feature, encoded, channels):
    if feature.shape[-1] is None:  # depth unknown from the metadata: let the decoder convert
        return tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    return augment.to_channels(feature.decode_example(encoded), channels)


def _seeds(seed):
    """An endless dataset of ``[2]`` int64 seeds for stateless ops, different every epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2, drop_remainder=True)


@dataclass(frozen=True)
class _ImagePreparation:
    """What every image of one pipeline goes through: the preset's resizing, then normalization."""

    image_size: int
    preset: str
    channels: int
    mean: tuple
    std: tuple
    crop_pct: float
    interpolation: str

    def evaluation(self, image, label):
        image = augment.eval_transform(
            image,
            preset=self.preset,
            image_size=self.image_size,
            crop_pct=self.crop_pct,
            interpolation=self.interpolation,
        )
        return augment.normalize(image, self.mean, self.std), label


def _check_arguments(
    split, training, image_size, batch_size, shuffle_buffer, channels, preset, mixup_alpha, cutmix_alpha, seed
):
    """``training`` resolved (``None``: ``split`` starts with "train"), after every check that needs no data."""
    if not isinstance(split, str) or not split:
        raise ValueError(f"`split` must be a split name such as 'train' or 'test[:10%]', got {split!r}")
    if training is None:
        training = split.startswith("train")
    if not isinstance(training, bool):
        raise TypeError(f"`training` must be True, False or None, got {training!r}")
    check_int(image_size, "image_size", MIN_INPUT_SIZE, " (the smallest input the models accept)")
    check_int(batch_size, "batch_size", 1)
    check_int(shuffle_buffer, "shuffle_buffer", 1)
    check_choice(channels, "channels", (1, 3))
    if preset not in augment.PRESETS:
        raise ValueError(f"`preset` must be one of {augment.PRESETS}, got {preset!r}")
    _check_alpha("mixup_alpha", mixup_alpha)
    _check_alpha("cutmix_alpha", cutmix_alpha, maximum=1)
    if seed is not None:
        check_int(seed, "seed", 0)
    return training


def _per_replica(batch_size, input_context, seed):
    """``(per-replica batch size, seed of this input pipeline)``."""
    if input_context is None:
        return batch_size, seed
    if not isinstance(input_context, tf.distribute.InputContext):
        raise TypeError(f"`input_context` must be a tf.distribute.InputContext or None, got {input_context!r}")
    replicas = input_context.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"`batch_size` {batch_size} (global) is not divisible by the {replicas} replicas in sync")
    if seed is not None:  # each pipeline its own streams, still reproducible
        seed += input_context.input_pipeline_id
    return input_context.get_per_replica_batch_size(batch_size), seed


def _check_batches(builder, split, batch_size, per_replica_batch_size, input_context, drop_remainder):
    selected = _check_split(builder, split)
    if not drop_remainder or selected is None:
        return
    pipelines = 1 if input_context is None else input_context.num_input_pipelines
    if selected // pipelines < per_replica_batch_size:
        raise ValueError(
            f"`batch_size` {batch_size} is larger than the {selected} examples of {split!r}"
            + (f" ({selected // pipelines} per input pipeline)" if pipelines > 1 else "")
            + ": dropping the incomplete batch would leave no batch at all; use a smaller batch_size "
            "or drop_remainder=False"
        )


def _shard(split, input_context, drop_remainder):
    """The part of ``split`` this input pipeline reads."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return split
    # Example-level shards (works with single-file datasets, unlike TFDS's file-level
    # input_context sharding); equal sizes when dropping remainders, so that every
    # worker runs the same number of steps.
    return tfds.even_splits(split, n=input_context.num_input_pipelines, drop_remainder=drop_remainder)[
        input_context.input_pipeline_id
    ]


def _decoded(builder, read_split, image_key, label_key, training, seed):
    """The split's examples with the image still encoded (decoded by our own parallel map)."""
    return builder.as_dataset(
        split=read_split,
        # Ordered datasets (disable_shuffling, e.g. lightnets_digits) refuse shuffled files;
        # the shuffle buffer below mixes them anyway.
        shuffle_files=training and not builder.info.disable_shuffling,
        decoders=tfds.decode.PartialDecoding(
            {image_key: True, label_key: True}, decoders={image_key: tfds.decode.SkipDecoding()}
        ),
        read_config=tfds.ReadConfig(
            shuffle_seed=seed,
            try_autocache=False,  # `cache` decides, after decoding
            skip_prefetch=True,  # one prefetch, at the end
        ),
    )


def _decoder(image_feature, image_key, label_key, num_classes, channels, fused_crop):
    """The map from an example to ``(image, one-hot label)``; a fused crop's image stays encoded."""

    def decode(example):
        label = tf.one_hot(example[label_key], num_classes, dtype=tf.float32)
        if fused_crop:
            return example[image_key], label  # decoded inside the augmentation map
        return _decode_image(image_feature, example[image_key], channels), label

    return decode


def _train_map(images, image_feature, fused_crop, randaug):
    """The per-example training map: augmentation (seeded per element), RandAugment, normalization."""

    def train_map(example, element_seed):
        image, label = example
        if fused_crop:
            crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(element_seed, num=2))
            image = augment.decode_and_random_resized_crop(
                image,
                crop_seed,
                images.image_size,
                image_channels=image_feature.shape[-1],
                interpolation=images.interpolation,
            )
            image = augment.to_channels(image, images.channels)
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        else:
            image = augment.train_transform(
                image,
                element_seed,
                preset=images.preset,
                image_size=images.image_size,
                interpolation=images.interpolation,
            )
        if randaug is not None:
            image = tf.clip_by_value(tf.cast(randaug(image, training=True), tf.float32), 0.0, 255.0)
        return augment.normalize(image, images.mean, images.std), label

    return train_map


def _mixed(ds, mixer, seed):
    """Training batches after MixUp / CutMix, when either is on."""
    if not mixer.active:
        return ds
    batch_seeds = _seeds(None if seed is None else seed + 1)
    # The Keras layers draw from a stateful seed generator: calls in sequence keep a seeded
    # run reproducible (mixing a batch is cheap next to augmenting it).
    return tf.data.Dataset.zip((ds, batch_seeds)).map(
        lambda batch, batch_seed: mixer(*batch, batch_seed),
        num_parallel_calls=None if seed is not None else tf.data.AUTOTUNE,
    )


def make_dataset(
    dataset=BUNDLED_DATASET,
    split="train",
    *,
    image_size=224,
    batch_size=32,
    training=None,
    preset="imagenet",
    model=None,
    mean=None,
    std=None,
    crop_pct=None,
    channels=3,
    data_dir=None,
    shuffle_buffer=10_000,
    cache=False,
    randaugment=False,
    mixup_alpha=0.0,
    cutmix_alpha=0.0,
    drop_remainder=None,
    input_context=None,
    seed=None,
    interpolation=None,
):
    """Batches ``(images, labels)`` of ``split`` of the TFDS ``dataset``, ready for ``model.fit``/``evaluate``.

    images: float32 ``(B, image_size, image_size, channels)``, ``(x / 255 - mean) / std``.
    labels: float32 one-hot ``(B, num_classes)`` (soft after MixUp / CutMix), for
    ``CategoricalCrossentropy`` (label smoothing works too).

    Args:
        dataset: TFDS name ("cifar10", "imagenet2012", "mnist", "name/config:version");
            prepared (downloaded) into ``data_dir`` on first use like ``tfds.load``.
            Default: the bundled offline ``lightnets_digits``.
        split: TFDS split spec: "train", "test", "train[:90%]", "train+test".
        image_size: output height and width, at least 32 (the smallest input the models accept).
        batch_size: the global batch size (split across replicas with ``input_context``).
        training: augment and shuffle; ``None`` means ``split.startswith("train")``.
        preset: "imagenet" (random resized crop + flip / resize + centre crop) or "cifar"
            (pad 4 + random crop + flip / resize); see :mod:`keras_lightnets.data.augment`.
        model: a registered model name, a built model (its model card) or a
            :class:`Preprocessing`, resolved by
            :func:`~keras_lightnets.preprocessing.resolve_preprocessing`: it gives mean and std
            (:meth:`Preprocessing.fed`: ``pixel / 255`` for a model that normalizes inside),
            crop_pct and the resize interpolation; ``mean``, ``std``, ``crop_pct``,
            ``interpolation`` override it. Without it: ImageNet mean/std, crop_pct 0.875, bilinear.
        mean, std: per-channel statistics of [0, 1] pixels (a number or ``channels`` numbers).
        crop_pct: evaluation centre-crop ratio of the "imagenet" preset, in (0, 1].
        interpolation: the resize method (``tf.image.resize``'s: "bilinear", "bicubic", "nearest", ...).
        channels: 3 (grayscale images repeated) or 1 (RGB images converted to luma).
        data_dir: TFDS data directory; default ``$LIGHTNETS_DATA_DIR`` or TFDS's.
        shuffle_buffer: training shuffle buffer, in examples.
        cache: keep decoded images in memory after the first epoch (small datasets).
        randaugment: apply ``keras.layers.RandAugment`` per training image.
        mixup_alpha, cutmix_alpha: Beta parameters of MixUp / CutMix on training batches
            (0 = off; CutMix's must be <= 1, a Keras bound); both on: one of the two per batch.
        drop_remainder: drop the last incomplete batch; default True when training (TPUs
            need static batch shapes, and MixUp / CutMix partners come from the same batch),
            False otherwise (evaluation sees every example).
        input_context: a ``tf.distribute.InputContext``: read only this input pipeline's
            shard of the split and batch per-replica. ``distributed_dataset`` passes it.
        seed: makes file order, shuffling, crops, flips, MixUp and CutMix reproducible.
            RandAugment draws from a Keras seed generator shared by parallel map calls:
            seeded, but not bit-reproducible.

    Raises:
        ValueError: naming the argument at fault, before any data is read.
    """
    # Everything that needs no TFDS first, so a typo fails in milliseconds.
    training = _check_arguments(
        split, training, image_size, batch_size, shuffle_buffer, channels, preset, mixup_alpha, cutmix_alpha, seed
    )
    drop_remainder = training if drop_remainder is None else drop_remainder
    mean, std, crop_pct, interpolation = resolve_normalization(model, mean, std, crop_pct, channels, interpolation)
    images = _ImagePreparation(image_size, preset, channels, mean, std, crop_pct, interpolation)
    per_replica_batch_size, seed = _per_replica(batch_size, input_context, seed)

    builder, image_key, label_key = _open(dataset, data_dir)
    _check_batches(builder, split, batch_size, per_replica_batch_size, input_context, drop_remainder)
    image_feature = builder.info.features[image_key]
    # ImageNet speed path: decode only the random crop of each JPEG. Not with cache (which
    # must hold whole decoded images) nor for images of unknown depth.
    fused_crop = (
        training
        and preset == "imagenet"
        and not cache
        and image_feature.encoding_format == "jpeg"
        and image_feature.shape[-1] is not None
    )
    ds = _decoded(builder, _shard(split, input_context, drop_remainder), image_key, label_key, training, seed)
    num_classes = builder.info.features[label_key].num_classes
    decode = _decoder(image_feature, image_key, label_key, num_classes, channels, fused_crop)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, _seeds(seed)))
        train_map = _train_map(
            images, image_feature, fused_crop, augment.make_randaugment(seed) if randaugment else None
        )
        ds = ds.map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(images.evaluation, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(per_replica_batch_size, drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        ds = _mixed(ds, augment.BatchMixer(mixup_alpha, cutmix_alpha, seed), seed)
    options = tf.data.Options()
    # Evaluation order is part of the contract; a seeded training run is reproducible;
    # an unseeded one may let parallel maps hand out elements as they finish.
    options.deterministic = (not training) or seed is not None
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def distributed_dataset(strategy, **make_dataset_kwargs):
    """``make_dataset(**make_dataset_kwargs)`` for every input pipeline of ``strategy``.

    ``batch_size`` stays global; each pipeline reads its own shard and batches per replica.
    Works for Mirrored, MultiWorkerMirrored and TPU strategies alike.
    """
    if "input_context" in make_dataset_kwargs:
        raise ValueError("`input_context` is supplied by the strategy; do not pass it to distributed_dataset")
    return strategy.distribute_datasets_from_function(
        lambda input_context: make_dataset(**make_dataset_kwargs, input_context=input_context)
    )
