"""Session fixtures for the deploy tests: one briefly trained small classifier, ready for export."""

import tempfile

import keras
import pytest
from deploy_helpers import TEST_SIZE, tiny_classifier


def pytest_collection_modifyitems(items):
    # Under pytest-xdist (--dist loadgroup) the tests of the trained session model share one
    # worker, so it is trained once rather than once per worker.
    for item in items:
        if {"trained_tiny", "tiny_qat"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("trained_tiny"))


@pytest.fixture(autouse=True)
def clear_session():
    """Overrides the suite-wide fixture: the session models below must outlive each test."""
    yield


@pytest.fixture(scope="session")
def trained_tiny():
    """``(float model taking pixel / 255 with a softmax, its test top-1)``.

    Trained 12 epochs (about 14 s) to about 85 % top-1 on the bundled digits.
    """
    from keras_lightnets.deploy.preprocessing import with_input_normalization
    from keras_lightnets.deploy.report import keras_accuracy
    from keras_lightnets.training import fit

    keras.utils.set_random_seed(0)
    model = tiny_classifier()
    with tempfile.TemporaryDirectory() as folder:
        result = fit(
            model,
            epochs=12,
            batch_size=32,
            learning_rate=0.02,
            image_size=TEST_SIZE,
            output_dir=folder,
            seed=0,
            verbose=0,
            log=lambda *args: None,
        )
    float_model = with_input_normalization(result.model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    return float_model, keras_accuracy(float_model, "lightnets_digits", "test")


@pytest.fixture(scope="session")
def tiny_qat(trained_tiny, tmp_path_factory):
    """The trained tiny model after 1 QAT epoch, and its INT8 .tflite with Android metadata."""
    from keras_lightnets.deploy import export_tflite, fit_quantize_aware, quantize_aware
    from keras_lightnets.deploy.android import classifier_metadata

    float_model, _ = trained_tiny
    keras.utils.set_random_seed(0)
    qat_model = quantize_aware(float_model)
    fit_quantize_aware(qat_model, epochs=1, batch_size=32, seed=0, verbose=0)
    path = tmp_path_factory.mktemp("qat") / "tiny_int8.tflite"
    metadata = classifier_metadata(float_model, [str(d) for d in range(10)])
    export_tflite(qat_model, path, quantization="int8", metadata=metadata)
    return qat_model, path
