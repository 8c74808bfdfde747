"""Issue "Nothing silent": bad or unusual inputs that used to be accepted with a wrong result, or
failed with a deep TF / Keras / h5py / struct traceback, now raise a clear error naming the
argument (or file) and what is allowed, before any heavy work. One case per row; the training
and CLI cases are in tests/training/test_fit_errors.py and tests/test_cli.py."""

import keras
import numpy as np
import pytest

import keras_lightnets as kl
from keras_lightnets.data import DatasetUnavailableError, make_dataset, pipeline
from keras_lightnets.deploy import evaluate_tflite, export_tflite, inspect_tflite, quantize_aware

SHAPE = (32, 32, 3)

MODEL_CASES = [
    # silent before: a classifier whose softmax output is always 1.0
    (dict(classes=1), ValueError, r"`classes=1` with classifier_activation='softmax' always outputs 1\.0"),
    # silent before: ignored
    (dict(pooling="max"), ValueError, r"`pooling='max'` applies only with include_top=False"),
    (dict(pooling="avg", features_only=True), ValueError, r"`pooling='avg'` does not apply with features_only"),
    (
        dict(input_tensor=keras.Input((32, 32, 3)), input_shape=(64, 64, 3)),
        ValueError,
        r"`input_shape` \(64, 64, 3\) does not match `input_tensor`'s shape \(32, 32, 3\)",
    ),
    (dict(name=""), ValueError, r"`name` must be a non-empty string without '/'"),
    (dict(name="a/b"), ValueError, r"`name` must be a non-empty string without '/'"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), MODEL_CASES)
def test_model_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        kl.MobileNetV2(0.35, **({"input_shape": SHAPE} | kwargs))


def test_a_binary_classifier_has_its_sigmoid_way():
    model = kl.MobileNetV2(0.35, classes=1, classifier_activation="sigmoid", input_shape=SHAPE)
    assert model.output_shape == (None, 1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: kl.ReXNet(float("nan")), r"`width` must be a finite number, got nan"),
        (lambda: kl.MobileNetV2(float("inf")), r"`alpha` must be a finite number, got inf"),
        # ran out of memory after 38 s before: refused at once, with the size it would have
        (
            lambda: kl.ReXNet(1e6),
            r"`width=1000000\.0` would build a model of about 4\.8e\+18 parameters.*at most 20\.4",
        ),
        (lambda: kl.MobileNet(40.0), r"`alpha=40\.0` would build a model of about 6\.8e\+09 parameters"),
        (lambda: kl.EfficientNet(width_coefficient=100.0), r"`width_coefficient=100\.0` would build.*at most 19\.4"),
    ],
)
def test_non_finite_and_absurd_widths(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_profile_sees_through_a_model_that_wraps_ours():
    inner = kl.MobileNetV2(0.35, input_shape=SHAPE)
    x = keras.Input(SHAPE)
    wrapped = keras.Model(x, inner(x))
    assert kl.profile(wrapped) == kl.profile(inner)  # was macs=0, activations=0, depth=0


DATA_CASES = [
    (dict(batch_size=10**6), ValueError, r"`batch_size` 1000000 is larger than the 1442 examples of 'train'"),
    (dict(mean=float("nan")), ValueError, r"`mean` values must be finite numbers"),
    (dict(split="train[5:2]"), ValueError, r"`split` 'train\[5:2\]' selects no examples"),
    (dict(split="train[:x%]"), ValueError, r"`split` 'train\[:x%\]' is not a valid TFDS split spec"),
    (dict(data_dir=__file__), ValueError, r"`data_dir` must be a folder \(TFDS keeps datasets in it\), got a file"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), DATA_CASES)
def test_dataset_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_dataset(**({"split": "train", "batch_size": 8, "image_size": 32, "training": True} | kwargs))


def test_an_offline_dataset_says_so_at_once_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_PROBE_HOST", ("127.0.0.1", 9))  # no network (nothing listens there)
    with pytest.raises(DatasetUnavailableError, match=r"no network and no local copy of 'mnist' in"):
        make_dataset("mnist", "train", data_dir=str(tmp_path))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # no partial download


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflite")
    model = kl.create_model("mobilenetv2_035", input_shape=SHAPE, classes=10)
    export_tflite(model, folder / "model.tflite")
    features = kl.create_model("mobilenetv2_035", input_shape=SHAPE, features_only=True)
    export_tflite(features, folder / "features.tflite")
    (folder / "truncated.tflite").write_bytes((folder / "model.tflite").read_bytes()[:1000])
    return model, folder


REPRESENTATIVE_CASES = [
    # silent before: calibrated on unnormalized pixels and reported a healthy fully-integer file
    (
        np.random.default_rng(0).integers(0, 256, (4, *SHAPE)).astype("uint8"),
        ValueError,
        r"looks like raw pixels \(largest value 255\), but 'mobilenetv2_035' takes normalized pixels",
    ),
    (np.full((4, *SHAPE), "a"), TypeError, r"must hold numeric image arrays, got dtype <U1"),
    (np.full((4, *SHAPE), np.nan, np.float32), ValueError, r"`representative_data` holds NaN or infinite values"),
]


@pytest.mark.parametrize(("data", "error", "message"), REPRESENTATIVE_CASES)
def test_representative_data(exported, tmp_path, data, error, message):
    model, _ = exported
    with pytest.raises(error, match=message):
        export_tflite(model, tmp_path / "int8.tflite", quantization="int8", representative_data=data)
    assert not list(tmp_path.iterdir())


def test_evaluate_tflite_refuses_a_feature_extractor_and_unknown_names(exported):
    _, folder = exported
    with pytest.raises(ValueError, match=r"needs a classifier with one \(batch, classes\) output; this file has 5"):
        evaluate_tflite(folder / "features.tflite", split="test[:8]", verbose=False)
    with pytest.raises(ValueError, match=r"unknown model 'nope'"):
        evaluate_tflite(folder / "model.tflite", split="test[:8]", model_name="nope", verbose=False)


def test_truncated_tflite_files(exported):
    _, folder = exported
    with pytest.raises(ValueError, match=r"not a readable TFLite model \(1,000 bytes.*truncated or corrupt"):
        inspect_tflite(folder / "truncated.tflite")
    with pytest.raises(ValueError, match=r"truncated.tflite' is not a valid TFLite model \(1,000 bytes"):
        evaluate_tflite(folder / "truncated.tflite", split="test[:8]", verbose=False)


def test_quantize_aware_on_a_sequential_and_twice(exported):
    model, _ = exported
    sequential = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3), keras.layers.Flatten()])
    with pytest.raises(TypeError, match=r"is a keras.Sequential; quantize_aware takes a functional model"):
        quantize_aware(sequential)
    with pytest.raises(ValueError, match=r"is already quantize-aware"):
        quantize_aware(quantize_aware(model))


def test_weights_files_that_are_not_what_they_claim(exported, tmp_path):
    model, _ = exported
    model.save_weights(tmp_path / "mobilenetv2_035.weights.h5")
    with pytest.raises(ValueError, match=r"does not fit 'mobilenetv2_050': it was saved from another architecture"):
        kl.create_model(
            "mobilenetv2_050", input_shape=SHAPE, classes=10, weights=tmp_path / "mobilenetv2_035.weights.h5"
        )
    (tmp_path / "bad.weights.h5").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match=r"bad.weights.h5' is not a Keras .weights.h5 file \(not HDF5: 70 bytes"):
        kl.create_model("mobilenetv2_035", weights=tmp_path / "bad.weights.h5")
    (tmp_path / "bad.keras").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match=r"bad.keras' is not a .keras file \(not a zip archive: 70 bytes"):
        kl.create_model("mobilenetv2_035", weights=tmp_path / "bad.keras")
    with pytest.raises(ValueError, match=r"bad.keras' is not a .keras file"):  # was "File not found"
        export_tflite(tmp_path / "bad.keras", tmp_path / "out.tflite")
    with pytest.raises(ValueError, match=r"bad.keras' is not a .keras file"):
        kl.training.evaluate(tmp_path / "bad.keras")


def test_a_killed_export_leaves_no_temporary_after_the_next_one(exported, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    model, folder = exported
    target = tmp_path / "model.tflite"
    # A process killed with SIGKILL while writing: its temporary stays behind, under its (now dead) PID.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stale = tmp_path / f".model.tflite.tmp-{child.pid}"
    stale.write_bytes(b"half a flatbuffer")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    mine = tmp_path / f".model.tflite.tmp-{os.getpid()}.partial"  # a live process's: left alone
    mine.write_bytes(b"")
    time.sleep(0.1)
    export_tflite(model, target)
    assert target.is_file() and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, mine.name])
