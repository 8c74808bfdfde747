"""Every variant whose table row says ``equals="keras:..."`` reproduces that keras.applications
call exactly: weights copied across, random BatchNorm statistics, a non-square input, max abs
difference <= 1e-5. The cases come from the registry."""

import keras
import numpy as np
import pytest
from golden import seeded_weights
from inference import infer
from reference_diffs import record_reference_diff

import keras_lightnets as kl
from keras_lightnets.weights import copy_keras_weights

INPUT_SHAPE = (161, 190, 3)  # odd and non-square: padding and pooling rules show


CASES = [
    name for name in kl.list_models() if kl.get_entry(name).reference_call[0] == "keras" and kl.get_entry(name).compared
]


def test_the_keras_born_variants_are_compared():
    assert {"mobilenetv1_025", "mobilenetv2_140", "resnet50_v1", "resnet101_v1", "resnet152_v1", "vgg16"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_matches_keras_applications(name, rng):
    _, constructor, kwargs = kl.get_entry(name).reference_call
    reference = getattr(keras.applications, constructor)(
        input_shape=INPUT_SHAPE, weights=None, classifier_activation=None, **kwargs
    )
    ours = kl.create_model(name, input_shape=INPUT_SHAPE, classifier_activation=None)
    seeded_weights(reference)  # random BN statistics included
    copy_keras_weights(reference, ours)
    x = rng.standard_normal((2, *INPUT_SHAPE)).astype("float32")
    expected = infer(reference, x)
    diff = np.abs(expected - infer(ours, x)).max()
    record_reference_diff(name, f"keras.applications.{kl.get_entry(name).equals[6:]}", diff)
    assert diff <= 1e-5 * max(1.0, np.abs(expected).max())  # relative to the output scale, for deep models


def test_copy_refuses_a_different_architecture():
    with pytest.raises(ValueError, match="weighted layers"):
        copy_keras_weights(kl.MobileNet(0.25), kl.MobileNetV2(0.35))
