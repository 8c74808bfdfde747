"""TFDS input pipelines, preprocessing presets and the bundled offline dataset.

    from keras_lightnets.data import make_dataset
    train = make_dataset("lightnets_digits", "train", image_size=32, batch_size=64, model="rexnet_100")
    test = make_dataset("lightnets_digits", "test", image_size=32, batch_size=64, model="rexnet_100")

Importing this package registers the ``lightnets_digits`` TFDS builder, so
``tfds.load("lightnets_digits")`` works too, offline.
"""

from keras_lightnets.data.bundled import LightnetsDigits
from keras_lightnets.data.pipeline import (
    BUNDLED_DATASET,
    DATA_DIR_ENV,
    DatasetInfo,
    DatasetUnavailableError,
    dataset_info,
    default_data_dir,
    distributed_dataset,
    make_dataset,
    num_examples,
    resolve_normalization,
)

__all__ = [
    "BUNDLED_DATASET",
    "DATA_DIR_ENV",
    "DatasetInfo",
    "DatasetUnavailableError",
    "LightnetsDigits",
    "dataset_info",
    "default_data_dir",
    "distributed_dataset",
    "make_dataset",
    "num_examples",
    "resolve_normalization",
]
