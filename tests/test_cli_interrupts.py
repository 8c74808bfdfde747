"""Issue 25, point 6, CLI cases: Ctrl-C during `lightnets train`, `lightnets export`'s input and output
checks, `lightnets list` patterns, and damaged weights files. Each prints one line on stderr (no
traceback) and exits non-zero: 2 for bad input, 130 for Ctrl-C."""

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import keras
import pytest

import keras_lightnets as kl
from keras_lightnets.cli import main
from keras_lightnets.quiet import NATIVE_NOISE

# A small run that cannot finish before the test interrupts it: 50 epochs of 5 steps.
TRAIN = ["--epochs", "50", "--steps-per-epoch", "5", "--batch-size", "16", "--image-size", "32", "--seed", "0"]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    env.pop("TF_CONFIG", None)
    return env


def _lightnets(*args):
    return [sys.executable, "-m", "keras_lightnets", *args]


def _run(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def _one_error_line(err):
    # A subprocess's TensorFlow prints C++ start-up lines before any setting applies (scripts/main.sh
    # filters them with keras_lightnets/quiet.py): they are not ours.
    lines = [line for line in err.splitlines() if line.strip() and not NATIVE_NOISE.fullmatch(line)]
    assert len(lines) == 1 and lines[0].startswith("lightnets: error: "), err
    return lines[0]


# --- 7. lightnets list ------------------------------------------------------------------------------


def test_list_ignores_case():
    code, text = _run(["list", "REXNET_1*"])
    assert code == 0 and text.split() == ["rexnet_100", "rexnet_130", "rexnet_150"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("[", r"lightnets: error: `pattern` '\[' has a '\[' without its '\]'"),
        ("", r"lightnets: error: `pattern` must be a non-empty shell-style pattern"),
        ("rexnt*", r"lightnets: error: no registered model matches 'rexnt\*'; closest names: rexnet_\d+"),
    ],
)
def test_list_of_a_pattern_that_matches_nothing_says_so(capsys, pattern, message):
    code, text = _run(["list", pattern])
    assert code == 2 and text == ""
    assert re.match(message, _one_error_line(capsys.readouterr().err))


def test_info_of_a_pattern_that_matches_nothing_suggests_names(capsys):
    code, _ = _run(["info", "squeezenet2*"])
    assert code == 2
    assert "no registered model matches 'squeezenet2*'; closest names: squeezenet1_" in _one_error_line(
        capsys.readouterr().err
    )


# --- 10. lightnets export: the input first, and no silent overwrite ----------------------------------


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "tiny.keras"
    kl.create_model("squeezenet1_1", input_shape=(32, 32, 3), classes=10).save(path)
    keras.backend.clear_session()
    return path


def test_export_of_a_missing_model_names_it_not_the_output_folder(tmp_path, capsys):
    missing = tmp_path / "gone" / "nope.keras"  # its default output, gone/nope_float32.tflite, has no folder either
    code, _ = _run(["export", str(missing), "--quantization", "float32"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and line == (
        f"lightnets: error: MODEL_OR_PATH '{missing}' does not exist: it is neither a .keras file nor a run folder, "
        "nor a registered model name"
    )


def test_export_of_a_misspelt_name_suggests_registered_ones(capsys):
    code, _ = _run(["export", "squeezenet1_2", "--quantization", "float32"])
    assert code == 2 and "registered names close to it: squeezenet1_1" in _one_error_line(capsys.readouterr().err)


def test_export_refuses_to_overwrite_without_overwrite(keras_file, tmp_path, capsys):
    output = tmp_path / "out.tflite"
    output.write_bytes(b"mine")
    started = time.perf_counter()
    code, _ = _run(["export", str(keras_file), "--quantization", "float32", "--output", str(output)])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and f"output file {output} already exists; use another --output, or --overwrite" in line
    assert output.read_bytes() == b"mine" and time.perf_counter() - started < 5  # before loading the model

    code, text = _run(["export", str(keras_file), "--quantization", "float32", "--output", str(output), "--overwrite"])
    assert code == 0 and f"wrote {output}" in text and output.read_bytes()[4:8] == b"TFL3"


def test_export_report_checks_the_float32_file_it_also_writes(keras_file, tmp_path, capsys):
    (tmp_path / "out_float32.tflite").write_bytes(b"mine")
    code, _ = _run(["export", str(keras_file), "--quantization", "dynamic", "--output", str(tmp_path / "out.tflite"),
                    "--report"])  # fmt: skip
    assert code == 2 and "out_float32.tflite already exists" in _one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux's /proc")
def test_export_names_an_output_that_cannot_be_written(keras_file, capsys):
    code, _ = _run(["export", str(keras_file), "--quantization", "float32", "--output", "/proc/x.tflite"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "`--output` '/proc/x.tflite' cannot be written: the folder '/proc'" in line


# --- 11. damaged weights files, and multi-line messages, as one line ---------------------------------


def test_train_with_a_garbage_weights_file_is_one_line_naming_it(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x02}q\x00(X\x01\x00\x00\x00a" + b"\xff" * 64)  # a pickle that breaks off
    result = subprocess.run(
        _lightnets("train", "squeezenet1_1", "--weights", str(garbage), "--output", str(tmp_path / "run"), *TRAIN),
        capture_output=True, text=True, timeout=300, env=_env(),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert str(garbage) in _one_error_line(result.stderr)


def test_a_multi_line_error_is_printed_as_one_line(monkeypatch, capsys):
    from keras_lightnets.weights.errors import CheckpointError

    def fails(*args, **kwargs):
        raise CheckpointError("w.pth", "line one\nline two\n")

    monkeypatch.setattr("keras_lightnets.cli.fit", fails)  # the name the CLI calls
    code, _ = _run(["train", "squeezenet1_1"])
    assert code == 2 and _one_error_line(capsys.readouterr().err) == "lightnets: error: 'w.pth': line one; line two"


def test_predict_with_a_garbage_weights_file_is_one_line_naming_it(tmp_path, capsys):
    import tensorflow as tf

    image = tmp_path / "grey.png"
    image.write_bytes(tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(128, tf.uint8))).numpy())
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint\n" * 8)
    code, _ = _run(["predict", str(image), "--model", "squeezenet1_1", "--weights", str(garbage)])
    assert code == 2 and str(garbage) in _one_error_line(capsys.readouterr().err)


# --- 9. Ctrl-C during lightnets train -------------------------------------------------------------------


def _lines(stream, into):
    for line in stream:
        into.put(line)
    into.put(None)


def _wait_for(lines, needle, process, timeout):
    """Reads ``lines`` until one contains ``needle``; fails (after killing ``process``) on a timeout or EOF."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if needle in line:
            return seen
    process.kill()
    process.wait()
    pytest.fail(f"no {needle!r} in the output of lightnets train within {timeout} s:\n{''.join(seen)}")


def test_ctrl_c_during_train_says_where_it_stopped_and_how_to_resume(tmp_path):
    output = tmp_path / "run"
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            _lightnets("train", "squeezenet1_1", "--output", str(output), "--verbose", "2", *TRAIN),
            stdout=subprocess.PIPE, stderr=err, text=True, env=_env(), start_new_session=True,
        )  # fmt: skip
        lines = queue.Queue()
        threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
        # Keras prints "Epoch 2/50" once epoch 1 has ended (and its backup was committed).
        seen = _wait_for(lines, "Epoch 2/50", process, timeout=400)
        os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the whole process group
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("lightnets train did not stop within 120 s of Ctrl-C")
    stdout = "".join(seen) + "".join(iter(lines.get, None))
    errors = "\n".join(line for line in stderr.read_text().splitlines() if not NATIVE_NOISE.fullmatch(line))
    assert code == 130, errors
    assert "Traceback" not in stdout + errors, errors
    resume = [line for line in (stdout + errors).splitlines() if "resume" in line]
    assert len(resume) == 1 and resume[0] in errors.splitlines(), stdout + errors
    # Epoch 2 or, on a loaded machine that read the output late, a later one: the line says which.
    stopped = re.fullmatch(
        r"lightnets: training interrupted in epoch (\d+)/50; (\d+) finished epoch\(s\) are saved in (.+); "
        r"run the same lightnets train command again to resume from epoch (\d+)",
        resume[0],
    )
    assert stopped, resume[0]
    epoch, done, folder, next_epoch = stopped.groups()
    assert int(epoch) >= 2 and int(done) == int(epoch) - 1 and int(next_epoch) == int(epoch) and folder == str(output)
    assert f'"epoch": {done}' in (output / "backup" / "checkpoint.json").read_text()
