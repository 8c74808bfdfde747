"""MobileNet and MobileNetV2 reproduce keras.applications exactly: weights copied across,
random BatchNorm statistics, a non-square input, max abs difference <= 1e-5."""

import keras
import numpy as np
import pytest
from golden import seeded_weights
from reference_diffs import record_reference_diff

import keras_lightnets as kl
from keras_lightnets.weights import copy_keras_weights

INPUT_SHAPE = (160, 192, 3)


CASES = [("MobileNet", alpha) for alpha in (0.25, 0.5, 0.75, 1.0)] + [
    ("MobileNetV2", alpha) for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
]


@pytest.mark.parametrize("family, alpha", CASES, ids=[f"{family}-{alpha}" for family, alpha in CASES])
def test_matches_keras_applications(family, alpha, rng):
    reference = getattr(keras.applications, family)(
        input_shape=INPUT_SHAPE, alpha=alpha, weights=None, classifier_activation=None
    )
    ours = getattr(kl, family)(alpha, input_shape=INPUT_SHAPE, classifier_activation=None)
    seeded_weights(reference)  # random BN statistics included
    copy_keras_weights(reference, ours)
    x = rng.standard_normal((2, *INPUT_SHAPE)).astype("float32")
    diff = np.abs(reference.predict(x, verbose=0) - ours.predict(x, verbose=0)).max()
    record_reference_diff(f"{family}({alpha})", f"keras.applications.{family}", diff)
    assert diff <= 1e-5


def test_copy_refuses_a_different_architecture():
    with pytest.raises(ValueError, match="weighted layers"):
        copy_keras_weights(kl.MobileNet(0.25), kl.MobileNetV2(0.35))
