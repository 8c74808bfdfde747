"""Fixtures of the data tests: ``lightnets_digits`` prepared once per session, offline."""

import pytest
from tfds_helpers import prepare_offline

from keras_lightnets.data.bundled import digits_images, split_rows


@pytest.fixture(scope="session")
def digits_builder(tmp_path_factory):
    return prepare_offline(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def digits_dir(digits_builder):
    return str(digits_builder.data_dir_root)


@pytest.fixture(scope="session")
def stored_test_images():
    """uint8 (355, 32, 32, 1) test images in stored order, computed from scikit-learn, not read through TFDS."""
    images, _ = digits_images()
    return images[split_rows("test")]


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Overrides tests/conftest.py's: the data tests build no models, and ``clear_session``
    (a full garbage collection over TensorFlow's and TFDS's objects) cost 0.25 s per test here."""
    yield
