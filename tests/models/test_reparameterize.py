"""``kl.reparameterize``: the fused deploy form of RepVGG and ParNet equals the training form.

- every registered RepVGG / ParNet variant, random BN statistics, a non-square input: fused
  outputs equal the training form's inference outputs (1e-4 of the output scale), and the
  fused model has only kxk convolutions left in its blocks (its parameter and MAC counts
  against the tables are in test_variants.py);
- RepVGG's fused outputs equal timm's ``reparameterize_model`` of the same weights (MobileOne's:
  tests/models/test_mobileone.py);
- heads and cuts: another number of classes (flat and nested), ``include_top=False``,
  ``features_only``; a fused or block-free model comes back equal, with a warning;
- a block changed so that fusing would be wrong raises a ``ValueError`` naming it; bad input.
"""

import re
import warnings

import keras
import numpy as np
import pytest
from batchnorm import randomize_batchnorm
from inference import infer
from torch_reference import import_reference
from torch_reference import randomize_batchnorm as randomize_torch_batchnorm

import keras_lightnets as kl
from keras_lightnets.layers.rep_branches import rep_branches
from keras_lightnets.models.repvgg import TIMM_KEY_MAP
from keras_lightnets.reparameterize import fusable_blocks
from keras_lightnets.weights import load_torch_weights

TOLERANCE = 1e-4
FUSED_FAMILIES = [name for name in kl.list_models() if kl.get_entry(name).reference.deploy_params is not None]
INPUT = (2, 64, 80, 3)


def assert_same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= TOLERANCE * max(1.0, float(np.abs(a).max())), np.abs(a - b).max()


def outputs(model, x):
    result = model(x, training=False)
    return [np.asarray(r) for r in result] if isinstance(result, (list, tuple)) else [np.asarray(result)]


def test_the_fused_families_are_registered():
    assert {f"repvgg_{v}" for v in ("a0", "a1", "a2", "b0", "b1", "b1g2", "b1g4", "b2", "b2g4", "b3", "b3g4")} <= set(
        FUSED_FAMILIES
    )
    assert {"parnet_s", "parnet_m", "parnet_l", "parnet_xl", "parnet_cifar10", "parnet_cifar100"} <= set(FUSED_FAMILIES)


@pytest.mark.parametrize("name", FUSED_FAMILIES)
def test_fused_equals_training_form(name):
    entry = kl.get_entry(name)
    size = INPUT if entry.reference.input_size[0] > 32 else (2, 40, 56, 3)
    model = randomize_batchnorm(kl.create_model(name, input_shape=(None, None, 3), classifier_activation=None))
    fused = kl.reparameterize(model)
    assert fusable_blocks(model) and not fusable_blocks(fused)
    assert fused.name == model.name and model.get_layer("predictions").name == fused.get_layer("predictions").name
    # Only the kxk convolutions of the blocks remain, with biases; every other layer keeps its name.
    kept = {layer.name for layer in fused.layers}
    assert not any(name.endswith(("_conv_1x1_conv", "_conv_1x1_bn", "_conv_kxk_bn")) for name in kept)
    dropped = {layer.name for layer in model.layers} - kept
    assert all(
        name.endswith(("_conv_1x1_conv", "_conv_1x1_bn", "_conv_kxk_bn", "_add", "_pool", "_pool_pad"))
        or name.endswith(("_identity", "_conv_scale_conv", "_conv_scale_bn"))
        or re.search(r"_conv_kxk_\d+_(conv|bn)$", name)  # MobileOne's parallel kxk branches (all but the kept conv)
        for name in dropped
    ), sorted(dropped)[:5]
    x = np.random.default_rng(1).standard_normal(size).astype("float32")
    assert_same(infer(model, x), infer(fused, x))


def test_repvgg_fused_equals_timm_reparameterized():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("repvgg_a0").eval()
    randomize_torch_batchnorm(torch, reference, 0)
    ours = kl.create_model("repvgg_a0", input_shape=(None, None, 3), classifier_activation=None)
    load_torch_weights(ours, reference, TIMM_KEY_MAP)
    fused_reference = timm.utils.reparameterize_model(reference)
    assert not any("conv_1x1" in key for key in fused_reference.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 161, 190, 3)).astype("float32")
    with torch.no_grad():
        expected = fused_reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert_same(expected, infer(kl.reparameterize(ours), x))


def small_parnet(**kwargs):
    return randomize_batchnorm(kl.ParNet((16, 32, 64), 64, layout="cifar", input_shape=(None, None, 3), **kwargs))


def test_fine_tuned_heads_and_cuts():
    x = np.random.default_rng(2).standard_normal((2, 24, 30, 3)).astype("float32")
    # Another number of classes, in the constructor and as a new head on a backbone (flat and nested).
    for model in (
        small_parnet(classes=7),
        keras.Model(
            (backbone := small_parnet(include_top=False, pooling="avg")).input,
            keras.layers.Dense(7, name="new_head")(backbone.output),
        ),
        keras.Sequential(
            [keras.Input((None, None, 3)), small_parnet(include_top=False, pooling="avg"), keras.layers.Dense(7)]
        ),
    ):
        fused = kl.reparameterize(model)
        assert_same(outputs(model, x)[0], outputs(fused, x)[0])
    for model in (small_parnet(include_top=False), small_parnet(features_only=True)):
        fused = kl.reparameterize(model)
        for a, b in zip(outputs(model, x), outputs(fused, x), strict=True):
            assert_same(a, b)


def test_nothing_to_fuse_returns_an_equal_model_and_says_so():
    model = small_parnet()
    fused = kl.reparameterize(model)
    x = np.random.default_rng(3).standard_normal((1, 32, 32, 3)).astype("float32")
    for source in (fused, kl.create_model("mobilenetv1_025", input_shape=(32, 32, 3))):
        with pytest.warns(UserWarning, match="no RepVGG-style block"):
            again = kl.reparameterize(source)
        assert_same(outputs(source, x)[0], outputs(again, x)[0])
        assert [layer.name for layer in again.layers] == [layer.name for layer in source.layers]


def block_model(change):
    """One RepVGG block on a 4x4x8 input, with ``change`` applied to its branches."""
    inputs = keras.Input((6, 6, 8))
    kxk, one, identity = rep_branches(inputs, 8, 1, name="block")
    branches = change(inputs, kxk, one, identity)
    out = keras.layers.Add(name="block_add")(branches)
    return randomize_batchnorm(keras.Model(inputs, out))


def test_a_changed_block_raises_naming_it():
    def activation_in_branch(inputs, kxk, one, identity):
        conv = keras.layers.Conv2D(8, 1, activation="relu", use_bias=False, name="relu_conv")(inputs)
        return [kxk, keras.layers.BatchNormalization(name="relu_bn")(conv), identity]

    def dilated(inputs, kxk, one, identity):
        conv = keras.layers.Conv2D(8, 3, padding="same", dilation_rate=2, use_bias=False, name="dilated")(inputs)
        return [keras.layers.BatchNormalization(name="dilated_bn")(conv), one, identity]

    def read_elsewhere(inputs, kxk, one, identity):
        keras.layers.ReLU(name="extra_reader")(one)
        return [kxk, one, identity]

    def tf_same_at_stride_2(inputs, kxk, one, identity):
        conv = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="same_s2")(inputs)
        one = keras.layers.Conv2D(8, 1, strides=2, use_bias=False, name="one_s2")(inputs)
        return [keras.layers.BatchNormalization(name="a")(conv), keras.layers.BatchNormalization(name="b")(one)]

    for change, reason in (
        (activation_in_branch, "activation"),
        (dilated, "dilated"),
        (read_elsewhere, "read outside the block"),
        (tf_same_at_stride_2, "'same' padding"),
    ):
        model = block_model(change)
        with pytest.raises(ValueError, match=rf"block 'block_add'.*{reason}"):
            kl.reparameterize(model)


def test_a_well_formed_block_fuses_exactly():
    model = block_model(lambda inputs, kxk, one, identity: [kxk, one, identity])
    fused = kl.reparameterize(model)
    assert [type(layer).__name__ for layer in fused.layers] == ["InputLayer", "Conv2D"]
    x = np.random.default_rng(4).standard_normal((2, 6, 6, 8)).astype("float32")
    assert_same(outputs(model, x)[0], outputs(fused, x)[0])


def test_bad_input():
    with pytest.raises(TypeError, match="Keras model"):
        kl.reparameterize("parnet_s")

    class Refuse(keras.callbacks.Callback):
        error = None

        def on_train_batch_end(self, batch, logs=None):
            try:
                kl.reparameterize(self.model)
            except ValueError as error:
                Refuse.error = error
            self.model.stop_training = True

    model = small_parnet(classes=3)
    model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.zeros((2, 32, 32, 3), "float32"), np.zeros(2), epochs=1, verbose=0, callbacks=[Refuse()])
    assert Refuse.error is not None and "being trained" in str(Refuse.error)


def test_a_subclassed_model_is_refused():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    model = Subclassed()
    model(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(TypeError, match="subclassed Subclassed"):
        kl.reparameterize(model)
