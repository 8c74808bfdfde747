"""Every evaluation of a model prepares its images as the model card's one Preprocessing says (issue 26).

The model here records an unusual evaluation transform -- a 50 % centre crop resized with
"nearest" -- so any consumer that works the preprocessing out again (ImageNet's 87.5 % bilinear
crop, ``pixel / 255`` for a file without metadata) predicts other classes than the reference
pipeline. The probe network is a fixed random projection of 12x12-average-pooled pixels: its predictions
follow the image layout closely, so a different crop changes them (checked, so the tests keep
their power), and it converts to ``.tflite`` in a second.
"""

import dataclasses
import re

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.data import make_dataset, resolve_normalization
from keras_lightnets.deploy import evaluate_tflite, export_tflite, read_metadata
from keras_lightnets.deploy.report import export_report, keras_accuracy
from keras_lightnets.deploy.tflite_file import read_preprocessing_record, with_preprocessing_record
from keras_lightnets.layers.model_card import ModelCard, find_model_card
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.training import evaluate
from keras_lightnets.training.inputs import preprocessing_for

SIZE = 96
SPLIT = "test[:96]"
CARD = Preprocessing(input_size=(SIZE, SIZE, 3), crop_pct=0.5, interpolation="nearest")


def _probe(card=CARD):
    """A fixed random linear classifier of 12x12-average-pooled pixels, carrying ``card`` (``None``: no card)."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = inputs if card is None else ModelCard("probe", preprocessing=card)(inputs)
    x = keras.layers.AveragePooling2D(12, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    dense = keras.layers.Dense(10, name="logits")
    outputs = dense(x)
    model = keras.Model(inputs, outputs, name="probe")
    rng = np.random.default_rng(0)
    dense.set_weights([rng.normal(size=(8 * 8 * 3, 10)).astype("float32"), np.zeros(10, "float32")])
    return model


def _predictions(classifier, split=SPLIT, **transform):
    data = make_dataset(
        "lightnets_digits", split, image_size=SIZE, batch_size=400, training=False, preset="imagenet", **transform
    )
    images, labels = next(iter(data.as_numpy_iterator()))
    return np.asarray(classifier(images, training=False)).argmax(-1), labels.argmax(-1)


@pytest.fixture(scope="module")
def probe():
    """``(model, reference predictions with the card's crop, labels)``."""
    model = _probe()
    expected, labels = _predictions(model, model=CARD)
    by_hand, _ = _predictions(model, mean=CARD.mean, std=CARD.std, crop_pct=0.5, interpolation="nearest")
    assert np.array_equal(expected, by_hand)  # the card's transform is the 50 % nearest crop
    usual, _ = _predictions(model, mean=CARD.mean, std=CARD.std)  # 87.5 % bilinear: what was assumed before
    assert (usual != expected).mean() > 0.2  # the crop decides the predictions: the tests below can tell
    assert (expected == labels).mean() != (usual == labels).mean()  # ... and the accuracy
    return model, expected, labels


def _accuracy(predictions, labels):
    return float((predictions == labels).mean())


def test_evaluate_keras_accuracy_and_evaluate_tflite_use_the_cards_crop_and_interpolation(probe, tmp_path):
    model, expected, labels = probe
    # evaluate(): what fit's validation runs (inputs.eval_dataset with the resolved preprocessing).
    assert evaluate(model, split=SPLIT)["accuracy"] == pytest.approx(_accuracy(expected, labels))
    # The deploy report's Keras accuracy: before, an 87.5 % bilinear crop of pixel / 255.
    assert keras_accuracy(model, "lightnets_digits", SPLIT) == pytest.approx(_accuracy(expected, labels))
    # The exported file records the card, and evaluate_tflite prepares its images by that record.
    path = export_tflite(model, tmp_path / "probe.tflite").path
    assert read_preprocessing_record(path) == CARD
    result = evaluate_tflite(path, split=SPLIT, return_predictions=True, verbose=False)
    assert np.array_equal(result["labels"], labels)
    assert (result["predictions"] == expected).mean() >= 0.98  # float32 LiteRT vs Keras: ties at most


def test_the_deploy_report_rows_use_the_cards_crop(probe, tmp_path):
    model, _, _ = probe
    expected, labels = _predictions(model, split="test", model=CARD)  # the report's split: all 355
    usual, _ = _predictions(model, split="test", mean=CARD.mean, std=CARD.std)
    assert abs(_accuracy(usual, labels) - _accuracy(expected, labels)) > 0.01  # before: the usual crop
    lines = export_report(
        model,
        output=tmp_path / "probe.tflite",
        quantization=None,
        qat_epochs=0,
        compare=True,
        runs=2,
        verbose=0,
        log=lambda _: None,
    )
    table = "\n".join(lines)
    keras_row = re.search(r"\| Keras FP32 \| ([0-9.]+)% \|", table)
    tflite_row = re.search(r"\| TFLite FP32 \| ([0-9.]+)% \|", table)
    assert keras_row and tflite_row, table
    assert float(keras_row.group(1)) == pytest.approx(100 * _accuracy(expected, labels), abs=0.01)
    assert abs(float(tflite_row.group(1)) - float(keras_row.group(1))) <= 100 / 355 + 0.01
    # The Android metadata's file carries the record too, with in_graph: the app feeds pixel / 255.
    recorded = read_metadata(tmp_path / "probe.tflite")["preprocessing"]
    assert (recorded.crop_pct, recorded.interpolation, recorded.in_graph) == (0.5, "nearest", True)


def test_a_tflite_without_a_record_needs_preprocessing(probe, tmp_path):
    model, expected, _ = probe
    bare = _probe(card=None)  # the same network, no model card: nothing says how it is fed
    path = export_tflite(bare, tmp_path / "bare.tflite").path
    assert read_preprocessing_record(path) is None
    with pytest.raises(ValueError, match=r"`preprocessing`: this \.tflite records no keras_lightnets preprocessing"):
        evaluate_tflite(path, split=SPLIT, verbose=False)  # before: evaluated as pixel / 255
    given = evaluate_tflite(path, split=SPLIT, preprocessing=CARD, return_predictions=True, verbose=False)
    assert (given["predictions"] == expected).mean() >= 0.98
    # A record added afterwards is what the next evaluation goes by.
    path.write_bytes(with_preprocessing_record(path, CARD))
    recorded = evaluate_tflite(path, split=SPLIT, return_predictions=True, verbose=False)
    assert np.array_equal(recorded["predictions"], given["predictions"])
    with pytest.raises(ValueError, match=r"`preprocessing`: 'nope' is neither a registered model name"):
        evaluate_tflite(path, split=SPLIT, preprocessing="nope", verbose=False)


def test_a_create_model_card_change_reaches_every_consumer():
    model = kl.create_model("mobilenetv2_035", input_shape=(SIZE, SIZE, 3), classes=10)
    card = find_model_card(model)
    card.preprocessing = dataclasses.replace(card.preprocessing, crop_pct=0.5, interpolation="nearest")
    resolved = resolve_preprocessing(model)
    assert (resolved.crop_pct, resolved.interpolation) == (0.5, "nearest")
    assert resolve_normalization(model)[2:] == (0.5, "nearest")
    assert preprocessing_for(model) == resolved
    # A model that normalizes inside is fed pixel / 255, whatever its card's statistics.
    wrapped = resolve_preprocessing(dataclasses.replace(resolved, in_graph=True))
    assert resolve_normalization(wrapped)[:2] == ((0.0,) * 3, (1.0,) * 3)
