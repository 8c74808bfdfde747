"""A JPEG-encoded TFDS dataset at ImageNet scale for the input-pipeline benchmark.

The bundled dataset stores 32x32 PNGs; decoding those costs nothing and would
flatter the pipeline. This builder stores the same real digits as 256x256 RGB
JPEGs (the size ImageNet pipelines decode before cropping to 224), so the
benchmark exercises JPEG decode, random resized crop, flip and normalization
as an ImageNet run does. Built offline from scikit-learn's digits.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

NAME = "lightnets_digits_jpeg256"
SIZE = 256


class LightnetsDigitsJpeg256(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 1,797 handwritten digits as 256x256x3 JPEGs, one 'train' split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Benchmark copy of the bundled digits, JPEG at 256x256."}

    def _info(self):
        # DatasetInfo directly: dataset_info_from_configs looks for metadata files in a package
        return tfds.core.DatasetInfo(
            builder=self,
            description="scikit-learn's handwritten digits as 256x256 RGB JPEGs (benchmark data).",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(SIZE, SIZE, 3), encoding_format="jpeg"),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        rng = np.random.default_rng(0)
        for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            pixels = (image / 16.0 * 255.0).astype("float32")[..., None]
            pixels = tf.image.resize(pixels, (SIZE, SIZE), method="bilinear").numpy()
            # a little texture so JPEG has real work to do, as on photographs
            pixels = np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255)
            yield index, {"image": np.repeat(pixels, 3, axis=-1).astype("uint8"), "label": int(label)}
