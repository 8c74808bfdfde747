"""Transfer learning: a new head on a pretrained body, the head only or the last blocks trained, a lower
rate for the unfrozen body, through ``keras_lightnets.transfer``, ``fit``, ``lightnets train`` and the
QAT / INT8 export.

Nothing downloads: the "pretrained" weights are a 1000-class ``mobilenetv2_035`` with random weights
and random BatchNorm statistics, saved as a ``.weights.h5`` file (the real EfficientNet-Lite0 weights
go through the same code in tutorial 05 and ``benchmarks/transfer_learning.py``).
"""

import dataclasses
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from batchnorm import randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.cli import main
from keras_lightnets.layers import find_model_card
from keras_lightnets.training import fit
from keras_lightnets.transfer import (
    BodyRateAdamW,
    BodyRateSGD,
    copy_body_weights,
    freeze,
    model_structure,
    new_head,
    parse_transfer,
)

MODEL = "mobilenetv2_035"  # 19 blocks: stem, block1 ... block17, head (the 1x1 conv to 1280)
SIZE = 32
LITE0_BLOCKS = ("stem", "block1a", "block2a", "block2b", "block3a", "block3b", "block4a", "block4b", "block4c")
LITE0_BLOCKS += ("block5a", "block5b", "block5c", "block6a", "block6b", "block6c", "block6d", "block7a", "top")


def _weights(model):
    return {layer.name: [np.array(value) for value in layer.get_weights()] for layer in model.layers}


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """``(path of a .weights.h5 file, {layer name: weights})`` of a 1000-class MODEL with random BN statistics."""
    model = kl.create_model(MODEL, input_shape=(SIZE, SIZE, 3))
    randomize_batchnorm(model)
    path = tmp_path_factory.mktemp("pretrained") / f"{MODEL}.weights.h5"
    model.save_weights(path)
    return path, _weights(model)


def _stateless(model_name, /, **kwargs):
    with keras.StatelessScope(initialize_variables=False):
        return kl.create_model(model_name, **kwargs)


# --- structure: head and blocks from the graph ---------------------------------------------------


def test_head_and_blocks_are_read_from_the_graph_not_the_name():
    lite0 = model_structure(_stateless("efficientnet_lite0", name="mine"))
    assert lite0.block_names == LITE0_BLOCKS  # scaffold.stage_block_name's blocks, the stem and the 1x1 top conv
    assert lite0.head_names == ("avg_pool", "dropout", "predictions") and lite0.body_output == "top_act"
    resnet = model_structure(_stateless("resnet18", name="renamed"))
    assert resnet.block_names == ("stem", "s1_b1", "s1_b2", "s2_b1", "s2_b2", "s3_b1", "s3_b2", "s4_b1", "s4_b2")
    # A residual block is one block, its shortcut included.
    assert {"s2_b1_shortcut_conv", "s2_b1_conv2_conv", "s2_b1_out"} <= set(resnet.blocks[3].layer_names)
    squeezenet = model_structure(_stateless("squeezenet1_1"))
    # Its max pools have no weights and are not counted; its classifier is a convolution before the pooling.
    assert squeezenet.block_names == ("conv1", "fire2", "fire3", "fire4", "fire5", "fire6", "fire7", "fire8", "fire9")
    assert squeezenet.head_names == ("dropout", "conv10_conv", "conv10_act", "avg_pool", "predictions")


# --- freeze -----------------------------------------------------------------------------------------


def test_head_method_trains_the_classifier_only():
    model = _stateless("squeezenet1_1", classes=10, input_shape=(64, 64, 3))
    plan = freeze(model, "head")
    assert [w.path for w in model.trainable_weights] == ["conv10_conv/kernel", "conv10_conv/bias"]
    assert plan.method == "head" and plan.trainable_blocks == () and plan.body_variables == ()
    assert plan.head == ("dropout", "conv10_conv", "conv10_act", "avg_pool", "predictions") and plan.total_blocks == 9


def _trainable_layers(model):
    return [layer.name for layer in model.layers if layer.trainable]


def test_from_back_unfreezes_exactly_the_last_n_blocks():
    model = _stateless("efficientnet_lite0", include_preprocessing=True, input_shape=(64, 64, 3))
    structure = model_structure(model)
    for count in (1, 3, len(LITE0_BLOCKS)):
        plan = freeze(model, f"from-back:{count}")
        unfrozen = [name for block in structure.blocks[-count:] for name in block.layer_names]
        assert _trainable_layers(model) == unfrozen + list(structure.head_names), count
        assert plan.trainable_blocks == LITE0_BLOCKS[-count:] and plan.total_blocks == len(LITE0_BLOCKS)
        # The body's variables are what trains outside the head (the classifier's Dense is not among them).
        assert plan.body_variables == tuple(w.path for w in model.trainable_weights if not w.path.startswith("pred"))
    assert not model.get_layer("input_normalization").trainable  # the in-graph normalization never trains
    # Without N: the last stage, the blocks after the stride-16 feature map; a block or layer name: from there on.
    assert freeze(model, "from-back").trainable_blocks == ("block6a", "block6b", "block6c", "block6d", "block7a", "top")
    assert freeze(model, "from-back", "block6a").trainable_blocks == LITE0_BLOCKS[-6:]
    assert freeze(model, "from-back:top_bn").trainable_blocks == ("top",)
    assert not model.get_layer("top_conv").trainable and model.get_layer("top_bn").trainable
    freeze(model, "head")  # every call re-plans every layer
    assert _trainable_layers(model) == ["avg_pool", "dropout", "predictions"]


def test_bad_arguments_fail_with_clear_messages():
    with pytest.raises(ValueError, match=r"must be 'head' \(train the classifier only\) or 'from-back\[:N\]'"):
        parse_transfer("tail")
    with pytest.raises(TypeError, match="`transfer` must be one of"):
        parse_transfer(3)
    with pytest.raises(ValueError, match="needs at least 1 block, got 0"):
        parse_transfer("from-back:0")
    with pytest.raises(ValueError, match="takes no blocks"):
        parse_transfer("head:2")
    with pytest.raises(ValueError, match="a block count or a layer name"):
        parse_transfer("from-back:")
    model = _stateless("efficientnet_lite0", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"has only 18 blocks \(stem, block1a, .*, block7a, top\)"):
        freeze(model, "from-back:19")
    with pytest.raises(ValueError, match="has no block or layer of that name"):
        freeze(model, "from-back:block8a")
    with pytest.raises(ValueError, match="no keras_lightnets model card"):
        freeze(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), "head")
    with pytest.raises(ValueError, match="no classifier head to train"):
        freeze(_stateless(MODEL, include_top=False, pooling="avg", input_shape=(SIZE, SIZE, 3)), "head")
    with pytest.raises(ValueError, match="`classes` must be an integer > 0, got 0"):
        new_head(model, 0)
    with pytest.raises(ValueError, match="`classes=1` with a softmax always outputs 1.0"):
        new_head(model, 1)
    with pytest.raises(ValueError, match="fine-tunes pretrained weights: pass `weights`"):
        fit(MODEL, transfer="head")
    with pytest.raises(ValueError, match="must be 'head'"):
        fit(MODEL, weights="imagenet", transfer="all")
    with pytest.raises(ValueError, match="`weights` applies to a registered name"):
        fit(_stateless(MODEL, classes=10), weights="imagenet")


# --- new_head -----------------------------------------------------------------------------------------


def test_new_head_keeps_body_weights_card_and_normalization():
    source = randomize_batchnorm(kl.create_model(MODEL, include_preprocessing=True, input_shape=(SIZE, SIZE, 3)))
    # Weights trained with another normalization than the variant's carry theirs in the card: it travels too.
    source_card = find_model_card(source)
    source_card.preprocessing = dataclasses.replace(
        source_card.preprocessing, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop_pct=0.95
    )
    model = new_head(source, 5, name="digits")
    assert model.output_shape == (None, 5) and model.name == "digits" and source.output_shape == (None, 1000)
    assert kl.model_identity(model) == kl.model_identity(source)
    card = find_model_card(model)
    recorded = card.preprocessing
    assert (recorded.mean, recorded.std, recorded.crop_pct) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0.95)
    assert recorded.in_graph  # the new model normalizes inside, as the source does
    before = _weights(source)
    head = set(model_structure(model).head_names)
    for layer in model.layers:
        if layer.name not in head:
            assert _same(before[layer.name], layer.get_weights()), layer.name  # input_normalization too
    assert model.get_layer("predictions").kernel.shape == (1280, 5)
    # A body (include_top=False) takes a head as well, SqueezeNet's classifier convolution included.
    body = kl.create_model("squeezenet1_1", include_top=False, pooling="avg", input_shape=(64, 64, 3))
    squeezenet = new_head(body, 3)
    assert squeezenet.get_layer("conv10_conv").kernel.shape == (1, 1, 512, 3)
    assert _same(
        squeezenet.get_layer("fire9_expand3x3_conv").get_weights(), body.get_layer("fire9_expand3x3_conv").get_weights()
    )
    with pytest.raises(
        ValueError,
        match=r"layer 'block2_project_conv': the pretrained model's weights have shapes \[\(1, 1, 48, 16\)\]",
    ):
        copy_body_weights(kl.create_model("mobilenetv2_050", input_shape=(SIZE, SIZE, 3)), model)


# --- the lower rate of the body -------------------------------------------------------------------------


def _two_layer_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="body")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))


def test_the_body_moves_at_body_rate_times_the_rate():
    keras.utils.set_random_seed(0)
    model = _two_layer_model()
    start = [np.array(w) for w in model.trainable_weights]
    x, y = np.random.default_rng(0).normal(size=(8, 4)).astype("float32"), np.ones((8, 2), "float32")

    def step(optimizer):
        for weight, value in zip(model.trainable_weights, start, strict=True):
            weight.assign(value)
        optimizer.build(model.trainable_weights)
        with tf.GradientTape() as tape:
            loss = keras.ops.mean((model(x) - y) ** 2)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        return [np.array(w) - s for w, s in zip(model.trainable_weights, start, strict=True)]

    full = step(keras.optimizers.SGD(0.1))
    scaled = step(BodyRateSGD(0.1, body_rate=0.1, body_variables=["body/kernel", "body/bias"]))
    paths = [w.path for w in model.trainable_weights]
    assert paths == ["body/kernel", "body/bias", "head/kernel", "head/bias"]
    for path, a, b in zip(paths, full, scaled, strict=True):
        # Exact up to the float32 rounding of the weights (|w| < 1: half an ulp is below 6e-8).
        np.testing.assert_allclose(b, a * (0.1 if path.startswith("body") else 1.0), rtol=1e-6, atol=1e-7, err_msg=path)
    # Decoupled weight decay (lr * wd * w) gets the body's rate too: with zero gradients it is all that moves.
    optimizer = BodyRateSGD(0.1, weight_decay=0.5, body_rate=0.1, body_variables=["body/kernel"])
    optimizer.build(model.trainable_weights)
    kernels = [np.array(model.get_layer(name).kernel) for name in ("body", "head")]
    optimizer.apply([keras.ops.zeros_like(w) for w in model.trainable_weights], model.trainable_weights)
    for name, kernel, rate in zip(("body", "head"), kernels, (0.01, 0.1), strict=True):
        decayed = kernel - np.array(model.get_layer(name).kernel)
        np.testing.assert_allclose(decayed, kernel * rate * 0.5, rtol=1e-6, atol=1e-7, err_msg=name)
    # The split is plain strings: the optimizer round-trips through its config (final.keras keeps it).
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(BodyRateAdamW(1e-3, body_variables=["a/b"])))
    assert type(restored) is BodyRateAdamW and restored.body_variables == ("a/b",) and restored.body_rate == 0.1


# --- fit, the CLI and the deploy path -------------------------------------------------------------------


class _Initial(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = _weights(self.model)


def test_fit_from_back_trains_the_last_blocks_and_keeps_the_rest(pretrained, tmp_path, data_dir):
    path, original = pretrained
    initial = _Initial()
    result = fit(
        MODEL, weights=path, transfer="from-back:2", image_size=SIZE, epochs=1, steps_per_epoch=3, batch_size=32,
        seed=0, verbose=0, data_dir=data_dir, output_dir=tmp_path / "run", callbacks=[initial],
    )  # fmt: skip
    model = result.model
    unfrozen = {"block17", "head"}  # the last 2 of 19 blocks
    for layer in model.layers:
        block = layer.name.split("_")[0]
        if layer.name in ("predictions", "avg_pool") or not layer.weights:
            continue
        if block in unfrozen:
            assert not _same(original[layer.name], layer.get_weights()), layer.name  # moving statistics too
        else:
            # Loaded from the file and untouched by training: BatchNorm in inference mode kept its statistics.
            assert _same(original[layer.name], layer.get_weights()), layer.name
    assert not _same(initial.weights["predictions"], model.get_layer("predictions").get_weights())
    optimizer = model.optimizer
    assert type(optimizer) is BodyRateAdamW and optimizer.body_rate == 0.1
    assert (
        set(optimizer.body_variables) == {w.path for w in model.trainable_weights if w.path.split("_")[0] in unfrozen}
        and len(optimizer.body_variables) == 12
    )  # expand / depthwise / project convs and BNs, the head conv and BN
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["transfer"] == {
        "method": "from-back", "blocks": 2, "trainable_blocks": ["block17", "head"], "total_blocks": 19,
        "head": ["avg_pool", "predictions"], "weights": str(path), "body_rate": 0.1,
    }  # fmt: skip
    assert run["hyperparameters"]["transfer"] == "from-back:2" and run["hyperparameters"]["weights"] == str(path)
    reloaded = keras.saving.load_model(tmp_path / "run" / "final.keras")  # compiled: the optimizer class is registered
    assert type(reloaded.optimizer) is BodyRateAdamW and reloaded.optimizer.body_variables == optimizer.body_variables


def test_cli_head_only_then_qat_and_int8_export(pretrained, tmp_path, data_dir):
    from keras_lightnets.deploy import export_tflite, fit_quantize_aware, quantize_aware
    from keras_lightnets.deploy.android import classifier_metadata, load_deployable
    from keras_lightnets.deploy.metadata import read_metadata
    from keras_lightnets.training.precise_bn import _batchnorm_layers

    path, original = pretrained
    run = tmp_path / "run"
    out = io.StringIO()
    argv = ["train", MODEL, "--weights", str(path), "--transfer", "head", "--image-size", str(SIZE), "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "32", "--seed", "0", "--verbose", "0", "--data-dir", data_dir,
            "--output", str(run)]  # fmt: skip
    assert main(argv, out=out) == 0
    assert f"transfer learning from {path}: training head only (avg_pool, predictions); 19 body blocks frozen" in (
        out.getvalue()
    )
    assert json.loads((run / "run.json").read_text())["transfer"]["method"] == "head"
    trained = keras.saving.load_model(run / "final.keras")
    changed = [
        layer.name for layer in trained.layers if layer.weights and not _same(original[layer.name], layer.get_weights())
    ]
    assert changed == ["predictions"]

    # The deploy path: normalization inside and a softmax, QAT (a few eager steps), fully integer INT8 with metadata.
    float_model, _ = load_deployable(run)
    qat_model = quantize_aware(float_model)
    statistics = {layer.name: np.array(layer.moving_mean) for layer in _batchnorm_layers(qat_model)}
    fit_quantize_aware(
        qat_model, epochs=1, steps_per_epoch=2, batch_size=32, run_eagerly=True, calibration_steps=1,
        precise_bn_steps=2, validation_split=None, verbose=0, data_dir=data_dir,
    )  # fmt: skip
    # The frozen BatchNorm layers stay in inference mode through QAT (and its precise-BN pass).
    assert all(
        np.array_equal(np.array(layer.moving_mean), statistics[layer.name]) for layer in _batchnorm_layers(qat_model)
    )
    labels = [str(digit) for digit in range(10)]
    exported = export_tflite(
        qat_model, tmp_path / "int8.tflite", quantization="int8", metadata=classifier_metadata(float_model, labels)
    )
    assert exported.summary.fully_integer and exported.summary.builtin_only
    assert list(read_metadata(exported.path)["labels"]) == labels
