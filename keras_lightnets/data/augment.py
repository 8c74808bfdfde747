"""Preprocessing presets: per-image training augmentation, evaluation resizing, batch mixing.

Two presets, each a (training, evaluation) pair working on one image of pixels in [0, 255]:

- ``"imagenet"`` (timm / torchvision recipe): training = random resized crop (area
  scale (0.08, 1), aspect ratio (3/4, 4/3)) to ``image_size`` + horizontal flip;
  evaluation = resize the shorter side to ``floor(image_size / crop_pct)``, keep the
  aspect ratio, centre-crop ``image_size``.
- ``"cifar"`` (the ResNet-on-CIFAR recipe, torchvision ``RandomCrop(32, padding=4)``):
  training = resize to ``image_size``, zero-pad 4 pixels, random crop back, flip;
  evaluation = resize to ``image_size``.

Crops and flips are *stateless*: every training example carries its own ``[2]`` int64
seed (made by the pipeline from ``tf.data.Dataset.random``), split here into one seed per
random op, so a seeded pipeline crops and flips reproducibly even with parallel maps.
RandAugment, MixUp and CutMix are the Keras layers, which draw from their own seed
generators.
Resizes are antialiased, like the PIL resizes behind published accuracies, and clipped
back to [0, 255] because bicubic overshoots. Images leave as float32 whatever Keras's
global dtype policy says (a ``mixed_bfloat16`` policy must not reach the input pipeline).
"""

import math

import keras
import tensorflow as tf

__all__ = [
    "PRESETS",
    "BatchMixer",
    "decode_and_random_resized_crop",
    "eval_transform",
    "make_randaugment",
    "normalize",
    "random_resized_crop",
    "to_channels",
    "train_transform",
]

PRESETS = ("imagenet", "cifar")

# Random resized crop ranges (Inception / timm / torchvision defaults).
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
CROP_MAX_ATTEMPTS = 10
CIFAR_PADDING = 4


def _resize(image, height, width, interpolation):
    image = tf.image.resize(tf.cast(image, tf.float32), [height, width], method=interpolation, antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def to_channels(image, channels):
    """``image`` with ``channels`` channels: grayscale repeated to RGB, RGB to luma (``rgb_to_grayscale``)."""
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    raise ValueError(f"cannot convert images with {have} channels to `channels={channels}`")


def normalize(image, mean, std):
    """``(image / 255 - mean) / std`` in float32: the models' expected input."""
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    return (tf.cast(image, tf.float32) / 255.0 - mean) / std


def _sample_crop_window(shape, seed):
    """``(begin, size)`` of a random crop covering 8-100 % of the area with aspect ratio in [3/4, 4/3].

    ``tf.image.stateless_sample_distorted_bounding_box`` tries ``CROP_MAX_ATTEMPTS`` windows and
    falls back to the whole image (timm falls back to a centre crop; both are rare events).
    """
    whole_image = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=0.0,  # only area_range constrains the crop, as in RandomResizedCrop
        aspect_ratio_range=CROP_RATIO,
        area_range=CROP_SCALE,
        max_attempts=CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def random_resized_crop(image, seed, image_size, interpolation="bilinear"):
    """A random crop of ``image`` (see ``_sample_crop_window``) resized to ``image_size`` squared."""
    begin, size = _sample_crop_window(tf.shape(image), seed)
    crop = tf.slice(image, begin, size)
    crop.set_shape([None, None, image.shape[-1]])  # tf.slice forgets the channel count
    return _resize(crop, image_size, image_size, interpolation)


def decode_and_random_resized_crop(encoded_jpeg, seed, image_size, *, image_channels, interpolation="bilinear"):
    """``random_resized_crop`` of a JPEG that decodes only the crop window (ImageNet's speed path).

    Same distribution as decoding first: the window is sampled on the header's shape.
    """
    begin, size = _sample_crop_window(tf.image.extract_jpeg_shape(encoded_jpeg), seed)
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    image = tf.image.decode_and_crop_jpeg(encoded_jpeg, window, channels=image_channels)
    return _resize(image, image_size, image_size, interpolation)


def _imagenet_eval(image, image_size, crop_pct, interpolation):
    # timm / torchvision: Resize(floor(size / crop_pct)) on the shorter side, then CenterCrop(size).
    scale_size = math.floor(image_size / crop_pct)
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    short = tf.cast(tf.minimum(height, width), tf.float64)
    new_height = tf.cast(tf.math.floor(tf.cast(height, tf.float64) * scale_size / short), tf.int32)
    new_width = tf.cast(tf.math.floor(tf.cast(width, tf.float64) * scale_size / short), tf.int32)
    image = _resize(image, new_height, new_width, interpolation)
    # torchvision's int(round((h - size) / 2)); tf.math.round also rounds half to even.
    top = tf.cast(tf.math.round(tf.cast(new_height - image_size, tf.float32) / 2.0), tf.int32)
    left = tf.cast(tf.math.round(tf.cast(new_width - image_size, tf.float32) / 2.0), tf.int32)
    return tf.image.crop_to_bounding_box(image, top, left, image_size, image_size)


def _cifar_train(image, seed, image_size, interpolation):
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    image = _resize(image, image_size, image_size, interpolation)
    # Zero padding as in torchvision RandomCrop(32, padding=4): the border is black before normalization.
    padded = tf.pad(image, [[CIFAR_PADDING, CIFAR_PADDING], [CIFAR_PADDING, CIFAR_PADDING], [0, 0]])
    image = tf.image.stateless_random_crop(padded, [image_size, image_size, image.shape[-1]], seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)


def train_transform(image, seed, *, preset, image_size, interpolation="bilinear"):
    """Training augmentation of one decoded image: float32 ``(image_size, image_size, C)`` in [0, 255]."""
    if preset == "imagenet":
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        image = random_resized_crop(image, crop_seed, image_size, interpolation)
        return tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    if preset == "cifar":
        return _cifar_train(image, seed, image_size, interpolation)
    raise ValueError(f"`preset` must be one of {PRESETS}, got {preset!r}")


def eval_transform(image, *, preset, image_size, crop_pct=0.875, interpolation="bilinear"):
    """Deterministic evaluation resizing of one image: float32 ``(image_size, image_size, C)`` in [0, 255]."""
    if preset == "imagenet":
        return _imagenet_eval(image, image_size, crop_pct, interpolation)
    if preset == "cifar":
        return _resize(image, image_size, image_size, interpolation)
    raise ValueError(f"`preset` must be one of {PRESETS}, got {preset!r}")


def make_randaugment(seed=None):
    """``keras.layers.RandAugment`` for one image of pixels in [0, 255] (called before normalization).

    Applied per image, not per batch: the layer draws its operations once per call, and
    RandAugment picks them per image. float32 explicitly, whatever the global dtype policy.
    """
    return keras.layers.RandAugment(value_range=(0, 255), seed=seed, dtype="float32")


class BatchMixer:
    """MixUp / CutMix on a batch of images and one-hot labels (``keras.layers.MixUp`` / ``CutMix``).

    ``mixup_alpha``: Beta(alpha, alpha) mixing weights, one per example (``MixUp(alpha=...)``).
    ``cutmix_alpha``: Beta(alpha, alpha) box areas; Keras's ``CutMix(factor=(a, a))`` samples
    its Beta parameter uniformly from ``factor``, so a one-point range is the paper's
    Beta(alpha, alpha). Keras bounds ``factor`` to [0, 1]. Labels are mixed by the exact
    pasted area. With both > 0 each batch gets one of the two with probability 1/2,
    as timm's ``Mixup(switch_prob=0.5)``. Both layers take and return a dict
    ``{"images": (B, H, W, C), "labels": (B, K)}`` and act only with ``training=True``.
    """

    def __init__(self, mixup_alpha=0.0, cutmix_alpha=0.0, seed=None):
        self.mixup = keras.layers.MixUp(alpha=mixup_alpha, seed=seed, dtype="float32") if mixup_alpha > 0 else None
        self.cutmix = (
            keras.layers.CutMix(factor=(cutmix_alpha, cutmix_alpha), seed=seed, dtype="float32")
            if cutmix_alpha > 0
            else None
        )

    @property
    def active(self):
        return self.mixup is not None or self.cutmix is not None

    @staticmethod
    def _apply(layer, images, labels):
        # The layers write their outputs into the dict they are given: hand each a fresh one.
        out = layer({"images": images, "labels": labels}, training=True)
        return tf.cast(out["images"], tf.float32), tf.cast(out["labels"], tf.float32)

    def __call__(self, images, labels, seed):
        """Mixed ``(images, labels)``; ``seed`` (``[2]`` int64) picks MixUp or CutMix when both are on."""
        if self.mixup is not None and self.cutmix is not None:
            use_cutmix = tf.random.stateless_uniform([], seed=seed) < 0.5
            return tf.cond(
                use_cutmix,
                lambda: self._apply(self.cutmix, images, labels),
                lambda: self._apply(self.mixup, images, labels),
            )
        layer = self.mixup if self.mixup is not None else self.cutmix
        return self._apply(layer, images, labels)
