"""``lightnets_digits``: a real image dataset that prepares without a network.

The images are scikit-learn's copy of the UCI "Optical Recognition of Handwritten
Digits" test set (``sklearn.datasets.load_digits``: 1797 grayscale 8x8 digits, values
0..16, shipped inside the scikit-learn wheel). They become a TFDS dataset so that the
quickstart, the tutorials and the tests run the same ``tfds`` code path as CIFAR-10 or
ImageNet, offline.

How the stored images are made:

- **Values**: each 8x8 cell counts the "on" pixels of a 4x4 block of the original 32x32
  NIST bitmap (0..16), so ``round(count * 255 / 16)`` is the block's ink density as a
  uint8 intensity (0 -> 0, 16 -> 255).
- **Size 32x32, nearest-neighbour**: 32 is the smallest input every registered model
  accepts (``MIN_INPUT_SIZE``). Nearest-neighbour replication by the integer factor 4
  puts each count back over the very 4x4 block it was measured on, invents no values
  (every pixel is one of the 17 levels, the 8x8 original is recovered exactly by taking
  every 4th pixel) and is pure NumPy, so the stored bytes cannot drift with the
  resampling conventions of a TF or PIL release, which bilinear would.

Splits: a fixed, stratified 80/20 split. Within each class, the examples are ordered by
``sha256("lightnets_digits/<row>")`` of their row in ``load_digits()`` and the first
``count // 5`` go to ``test``. A hash rather than a seeded NumPy permutation because
NumPy does not promise identical random streams across releases; the hash does.
Each split stores its examples in increasing row order (``disable_shuffling=True``), so the
k-th example of ``train`` is row ``split_rows("train")[k]`` of ``load_digits()``.

=====  =====================================================  =====
split  examples per class (digits 0..9)                       total
=====  =====================================================  =====
train  143, 146, 142, 147, 145, 146, 145, 144, 140, 144          1442
test   35, 36, 35, 36, 36, 36, 36, 35, 34, 36                     355
=====  =====================================================  =====
"""

import hashlib

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

__all__ = ["IMAGE_SIZE", "LightnetsDigits", "SPLIT_SIZES", "digits_images", "split_rows"]

IMAGE_SIZE = 32  # keras_lightnets.models.scaffold.MIN_INPUT_SIZE; checked by a test
SPLIT_SIZES = {"train": 1442, "test": 355}
_TEST_FRACTION_DENOMINATOR = 5  # test = count // 5 per class: 20 %, rounded down

_DESCRIPTION = """\
Handwritten digits 0-9 from the UCI "Optical Recognition of Handwritten Digits" data set
(scikit-learn's bundled copy, `sklearn.datasets.load_digits`: 1797 images). Each 8x8
image of 4x4-block ink counts (0..16) is scaled to uint8 (x * 255 / 16) and upsampled to
32x32 by nearest-neighbour replication. Fixed stratified split: 1442 train, 355 test.
Prepared entirely offline; bundled with keras_lightnets for quickstarts and tests.
"""

_CITATION = """\
@misc{alpaydin1998optdigits,
  author       = {Alpaydin, E. and Kaynak, C.},
  title        = {Optical Recognition of Handwritten Digits},
  year         = {1998},
  howpublished = {UCI Machine Learning Repository},
  url          = {https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits}
}
"""


def _load_digits():
    # Imported here: scikit-learn is only needed to *prepare* the dataset, not to read it.
    from sklearn.datasets import load_digits

    return load_digits()


def digits_images():
    """``(images, labels)``: all 1797 digits as stored, uint8 ``(1797, 32, 32, 1)`` and int64 ``(1797,)``.

    Rows are in ``load_digits()`` order. The builder writes exactly these arrays.
    """
    digits = _load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)  # counts 0..16 -> 0..255
    factor = IMAGE_SIZE // images.shape[1]
    images = images.repeat(factor, axis=1).repeat(factor, axis=2)  # nearest-neighbour, see module doc
    return images[..., None], digits.target.astype(np.int64)


def _hash_key(row):
    return hashlib.sha256(f"lightnets_digits/{row}".encode()).hexdigest()


def split_rows(split):
    """Rows of ``load_digits()`` in ``split`` ("train" or "test"), ascending: the stored order."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"`split` must be one of {sorted(SPLIT_SIZES)}, got {split!r}")
    labels = _load_digits().target
    rows = []
    for digit in range(10):
        members = sorted(np.flatnonzero(labels == digit).tolist(), key=_hash_key)
        num_test = len(members) // _TEST_FRACTION_DENOMINATOR
        rows.extend(members[:num_test] if split == "test" else members[num_test:])
    return np.array(sorted(rows), dtype=np.int64)


class LightnetsDigits(tfds.core.GeneratorBasedBuilder):
    """TFDS builder of ``lightnets_digits``; subclassing registers it, so ``tfds.load("lightnets_digits")`` works."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 32x32x1 PNG, stratified 1442/355 train/test split."}
    # TFDS 4.9.10 computes the inherited `code_path` through `importlib_resources`, which it
    # only declares for Python < 3.9 (tensorflow/datasets#11212), so preparing fails without
    # that package. This file is the code path; stating it keeps the offline promise.
    code_path = epath.Path(__file__)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), encoding_format="png"),
                    "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits",
            citation=_CITATION,
            # Write examples in generation order (ascending row) instead of TFDS's key-hash
            # order, so the stored order is the documented one; training pipelines shuffle anyway.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the data ship with scikit-learn
        images, labels = digits_images()
        return {split: self._generate_examples(images, labels, split_rows(split)) for split in SPLIT_SIZES}

    def _generate_examples(self, images, labels, rows):
        for row in rows:
            yield int(row), {"image": images[row], "label": int(labels[row])}
