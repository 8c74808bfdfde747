"""Stochastic depth in a frozen block does not drop: the block computes in training what it computes at
inference (the tf_keras twin's side: tests/deploy/test_twin.py)."""

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.layers.stochastic_depth import StochasticDepth
from keras_lightnets.transfer import freeze

FROZEN, UNFROZEN = "block6c", "block6d"  # from-back:3 trains block6d, block7a and top of EfficientNet-Lite0
BATCH = 16


@pytest.fixture(scope="module")
def frozen_lite0():
    """EfficientNet-Lite0 with drop connect 0.5 (block6c drops 41 %, block6d 44 % of samples), the last
    three blocks unfrozen."""
    model = kl.create_model("efficientnet_lite0", input_shape=(32, 32, 3), classes=10, drop_connect_rate=0.5)
    plan = freeze(model, "from-back:3")
    assert plan.trainable_blocks == (UNFROZEN, "block7a", "top")
    return model


def _drop_path_ends(model, block):
    """The input and output tensors of ``block``'s drop path, and its block's output (the residual add)."""
    drop = model.get_layer(f"{block}_drop_path")
    return [drop.input, drop.output, model.get_layer(f"{block}_add").output]


def _dropped_samples(inputs, outputs, rate):
    """Which samples the drop path zeroed; asserts the others were scaled by ``1 / (1 - rate)``."""
    dropped = np.all(outputs == 0, axis=(1, 2, 3))
    np.testing.assert_allclose(outputs[~dropped], inputs[~dropped] / (1 - rate), rtol=1e-6)
    return dropped


def test_freeze_marks_the_drop_path_of_frozen_blocks_non_trainable(frozen_lite0):
    drop_paths = {layer.name: layer.trainable for layer in frozen_lite0.layers if isinstance(layer, StochasticDepth)}
    assert drop_paths[f"{FROZEN}_drop_path"] is False
    assert drop_paths[f"{UNFROZEN}_drop_path"] is True
    assert [name for name, trainable in drop_paths.items() if trainable] == [f"{UNFROZEN}_drop_path"]


def test_frozen_block_does_not_drop_in_training(frozen_lite0):
    keras.utils.set_random_seed(0)
    probe = keras.Model(
        frozen_lite0.input, _drop_path_ends(frozen_lite0, FROZEN) + _drop_path_ends(frozen_lite0, UNFROZEN)
    )
    images = np.random.default_rng(0).random((BATCH, 32, 32, 3), dtype=np.float32)
    frozen_in, frozen_out, frozen_add, unfrozen_in, unfrozen_out, _ = (
        np.asarray(t) for t in probe(images, training=True)
    )
    # The frozen block: the drop path is the identity and the block's output is its inference output.
    np.testing.assert_array_equal(frozen_out, frozen_in)
    np.testing.assert_array_equal(frozen_add, np.asarray(probe(images, training=False)[2]))
    # The unfrozen block still drops whole samples (44 %: a batch of 16 keeps all with probability 1e-4).
    dropped = _dropped_samples(unfrozen_in, unfrozen_out, frozen_lite0.get_layer(f"{UNFROZEN}_drop_path").rate)
    assert 0 < dropped.sum() < BATCH


def test_unfreezing_makes_the_drop_path_drop_again(frozen_lite0):
    layer = frozen_lite0.get_layer(f"{FROZEN}_drop_path")
    images = np.random.default_rng(1).random((BATCH, 1, 1, 8), dtype=np.float32) + 1.0
    assert not layer.trainable
    np.testing.assert_array_equal(np.asarray(layer(images, training=True)), images)
    layer.trainable = True
    try:
        keras.utils.set_random_seed(0)
        dropped = _dropped_samples(images, np.asarray(layer(images, training=True)), layer.rate)
        assert 0 < dropped.sum() < BATCH
    finally:
        layer.trainable = False
