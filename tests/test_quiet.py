"""The `lightnets` command prints only its own output; --show-warnings brings the libraries' back.

Subprocesses: the quieting changes process-wide state (warnings filters, loggers, file descriptor
2) and applies only when ``main()`` runs as the command.
"""

import subprocess
import sys
from pathlib import Path

import keras
import pytest

from keras_lightnets import quiet

QUIET_SCRIPT = Path(quiet.__file__)

# Runs `lightnets ARGS` (main() as the console script runs it), then, in the same process, emits
# one line of each kind the quieting must hide or keep, each with a marker, and ends with an
# uncaught exception: its traceback is printed at exit and must get through the stderr filter.
COMMAND_THEN_EMIT = """
import os, sys, warnings
from keras_lightnets.cli import main
code = main()
import absl.logging, tensorflow as tf
absl.logging.warning("marker-absl-warning")
tf.get_logger().warning("marker-tensorflow-logger")
warnings.warn_explicit("marker-tfds-future-warning", FutureWarning, "features.py", 1,
                       module="tensorflow_datasets.core.features")
warnings.warn_explicit("marker-tf-keras-user-warning", UserWarning, "layer.py", 1, module="tf_keras.src.layer")
os.write(2, b"I0000 00:00:1796157718.835535    4309 cudart_stub.cc:31] marker-native-info\\n")
os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU. marker-tflite\\n")
warnings.warn_explicit("marker-our-warning", UserWarning, "metadata.py", 1, module="keras_lightnets.deploy.metadata")
os.write(2, b"F0000 00:00:1796157718.835535    4309 check.cc:1] marker-native-fatal\\n")
print("lightnets: error: marker-our-error", file=sys.stderr)
sys.stdout.flush()
raise RuntimeError(f"marker-traceback, exit code of main() {code}")
"""
LIBRARY_MARKERS = [
    "marker-absl-warning",
    "marker-tensorflow-logger",
    "marker-tfds-future-warning",
    "marker-tf-keras-user-warning",
    "marker-native-info",
    "marker-tflite",
]
OUR_MARKERS = ["marker-our-warning", "marker-native-fatal", "marker-our-error", "Traceback (most recent call last)"]


def test_the_stderr_filter_drops_native_library_lines_only():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796157718.835535    4309 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        "W1201 20:41:50.123456   12 cpu_feature_guard.cc:1] This TensorFlow binary is optimized ...",
        "E0000 00:00:1796157718.835535   12 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting ...",
        "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    ]
    kept = [
        "E0000 00:00:1796157718.835535   12 loader.cc:1] Failed to load the model",  # an error of ours, in C++
        "F0000 00:00:1796157718.835535   12 check.cc:1] Check failed: ok",
        "Traceback (most recent call last):",
        "lightnets: error: the model has 10 outputs but cifar100 has 100 classes",
        "WARNING:keras_lightnets:not a library line",
    ]
    text = "\n".join(noise[:2] + kept[:2] + noise[2:] + kept[2:]) + "\r 10%\r 20%\rno newline at the end"
    result = subprocess.run(
        [sys.executable, "-I", str(QUIET_SCRIPT)], input=text.encode(), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "\n".join(kept) + "\r 10%\r 20%\rno newline at the end"


@pytest.fixture(scope="module")
def tiny_model_and_data(tmp_path_factory):
    from keras_lightnets.data import dataset_info

    folder = tmp_path_factory.mktemp("quiet")
    dataset_info(data_dir=str(folder / "tfds"))
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(pooled)).save(folder / "tiny.keras")
    return str(folder / "tiny.keras"), str(folder / "tfds")


def test_library_output_shows_only_with_show_warnings(tiny_model_and_data):
    model, data_dir = tiny_model_and_data
    command = [sys.executable, "-c", COMMAND_THEN_EMIT, "evaluate", model, "--data-dir", data_dir]
    # Both at once: each is mostly TensorFlow's import.
    runs = [
        subprocess.Popen([*command, *flag], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for flag in ([], ["--show-warnings"])
    ]
    try:
        (quiet_out, quiet_err), (shown_out, shown_err) = [process.communicate(timeout=300) for process in runs]
    finally:
        for process in runs:
            process.kill()
    for out, err in ((quiet_out, quiet_err), (shown_out, shown_err)):
        assert "on 355 images (test)" in out, err  # the command's result
        assert "exit code of main() 0" in err, err
        assert all(marker in err for marker in OUR_MARKERS), err  # our warnings and errors, tracebacks
        assert err.rstrip().endswith("RuntimeError: marker-traceback, exit code of main() 0"), err  # flushed at exit
    # By default: no library line of any kind, and none of what TFDS logs while evaluating.
    assert not [marker for marker in LIBRARY_MARKERS if marker in quiet_err], quiet_err
    assert "FeatureConnector" not in quiet_err
    # Nothing at all before our first line but what TensorFlow's shared libraries print while
    # `import keras_lightnets` imports them, before main() can start the filter (scripts/main.sh
    # filters those too).
    visible = [line for line in quiet_err.splitlines() if not quiet.NATIVE_NOISE.fullmatch(line)]
    assert "marker-our-warning" in visible[0], quiet_err
    # --show-warnings: all of them.
    assert [marker for marker in LIBRARY_MARKERS if marker in shown_err] == LIBRARY_MARKERS, shown_err
