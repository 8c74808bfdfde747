"""Helpers of the data tests (plain functions; the fixtures live in conftest.py)."""

import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_lightnets.data import BUNDLED_DATASET


def _no_network(*args, **kwargs):
    raise OSError("network access attempted while preparing the bundled dataset")


def prepare_offline(data_dir):
    """Prepares lightnets_digits into ``data_dir`` with sockets disabled; returns the builder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        builder = tfds.builder(BUNDLED_DATASET, data_dir=str(data_dir))
        builder.download_and_prepare()
    return builder


def read_split(builder, split):
    """All ``(images, labels)`` of ``split`` in stored order, as NumPy arrays."""
    examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    return np.stack([ex["image"] for ex in examples]), np.array([ex["label"] for ex in examples])


def collect(ds):
    """``(images, labels)`` of a whole batched dataset, concatenated, and the batch sizes."""
    images, labels, sizes = [], [], []
    for x, y in tfds.as_numpy(ds):
        images.append(x)
        labels.append(y)
        sizes.append(len(x))
    return np.concatenate(images), np.concatenate(labels), sizes
