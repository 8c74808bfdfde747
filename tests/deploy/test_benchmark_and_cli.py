"""benchmark_tflite, `lightnets bench-tflite` and `lightnets export`."""

import io

import pytest

import keras_lightnets as kl
from keras_lightnets.cli import main
from keras_lightnets.deploy import benchmark_tflite, export_tflite, read_metadata


@pytest.fixture(scope="module")
def float_file(tmp_path_factory):
    model = kl.create_model("squeezenet1_1", input_shape=(32, 32, 3), classes=10)
    return export_tflite(model, tmp_path_factory.mktemp("bench") / "squeezenet.tflite").path


def test_benchmark_reports_median_and_p90(float_file):
    result = benchmark_tflite(float_file, threads=1, runs=12, warmup=2)
    assert result.runs == 12 and result.threads == 1 and result.delegated  # XNNPACK took the graph
    assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert result.size_bytes == float_file.stat().st_size


def test_benchmark_bad_arguments(float_file, tmp_path):
    with pytest.raises(ValueError, match="`threads` must be an integer >= 1"):
        benchmark_tflite(float_file, threads=0)
    with pytest.raises(ValueError, match="`runs`"):
        benchmark_tflite(float_file, runs=0)
    with pytest.raises(FileNotFoundError, match="no TFLite file"):
        benchmark_tflite(tmp_path / "missing.tflite")
    (tmp_path / "fake.tflite").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not a TFLite model"):
        benchmark_tflite(tmp_path / "fake.tflite")


def test_bench_tflite_cli(float_file):
    out = io.StringIO()
    assert main(["bench-tflite", str(float_file), "--threads", "1", "2", "--runs", "5"], out) == 0
    rows = [line for line in out.getvalue().splitlines() if line.startswith(f"| {float_file}")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "2"]


def test_export_cli_for_a_registered_name_and_a_keras_file(tmp_path):
    out = io.StringIO()
    target = tmp_path / "sq_float.tflite"
    assert main(["export", "squeezenet1_1", "--quantization", "float32", "--output", str(target)], out) == 0
    metadata = read_metadata(target)
    assert len(metadata["labels"]) == 1000 and metadata["labels"][0] == "n01440764"  # ImageNet, offline
    assert "wrote" in out.getvalue() and "built-in only: yes" in out.getvalue()

    model = kl.create_model("squeezenet1_1", input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    model.save(tmp_path / "squeezenet1_1.keras")
    out = io.StringIO()
    int8 = tmp_path / "sq_int8.tflite"
    args = ["export", str(tmp_path / "squeezenet1_1.keras"), "--qat-epochs", "0", "--output", str(int8), "--report"]
    assert main(args, out) == 0
    text = out.getvalue()
    assert "fully integer: yes" in text and "| TFLite INT8 |" in text and "| Keras FP32 |" in text
    assert "INT8/FP32: size" in text and (tmp_path / "sq_int8_float32.tflite").is_file()


def test_export_cli_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nothing.keras"), "--output", str(tmp_path / "x.tflite")]) == 2
    assert "neither a .keras file nor a run folder" in capsys.readouterr().err
    assert main(["export", "squeezenet1_1", "--output", str(tmp_path / "x.onnx")]) == 2
    assert "must end in .tflite" in capsys.readouterr().err
