"""Executes every tutorial notebook end to end and checks what it produces.

Slow (each notebook builds real models); run with ``pytest tests/test_tutorials.py``.
The kernel inherits the test's environment: the package must be importable
(installed) there, so the notebooks' install cells do nothing.
"""

from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

from keras_lightnets import representative_models  # noqa: E402

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPRESENTATIVES = representative_models()

# What each notebook must leave behind: PNG files written to $LIGHTNETS_TUTORIAL_OUTPUT
# and text its cells must print. Notebooks without an entry only have to run.
EXPECTED = {
    "01_build_and_inspect.ipynb": {
        "pngs": ["measured_vs_published.png"],
        "texts": [
            # In quick mode the comparison table has one model per family (test_variants.py checks them all).
            *REPRESENTATIVES,
            f"{len(REPRESENTATIVES)}/{len(REPRESENTATIVES)} models match the published params and MACs",
            "stride32",
            "embeddings (2, 1280)",
        ],
    },
    "02_train_with_tfds.ipynb": {
        "pngs": ["digits.png", "training_curves.png"],
        "texts": [
            "lightnets_digits | 10 classes | {'train': 1442, 'test': 355}",
            "images (64, 32, 32, 3) <dtype: 'float32'> | labels (64, 10) <dtype: 'float32'>",
            "'backup', 'best.keras', 'curves.png', 'final.keras', 'history.csv', 'logs', 'run.json'",
            "'num_examples': 355",
        ],
    },
    "03_qat_to_tflite.ipynb": {
        "pngs": ["fp32_vs_int8.png"],
        "texts": [
            "first layers: ['input', 'input_normalization',",
            "| last: probabilities",
            "tf_keras model with",
            "INT8 fully integer: True | built-in ops only: True",
            "labels ('0', '1', '2') ...",
            "TFLite INT8: top-1",
            "MediaPipe top class",
        ],
    },
    "04_regnet_design_space.ipynb": {
        "pngs": ["design_space_edf.png", "design_space_complexity.png"],
        "texts": [
            # pycls's RegNetX-200MF: depths 1, 1, 4, 7 and widths 24, 56, 152, 368, group width 8.
            "RegNetX-200MF stages: [(1, 24, 8), (1, 56, 8), (4, 152, 8), (7, 368, 8)]",
            "regnetx_002 2,684,792 params | regnetx_002: 2,684,792",
            "AnyNetX_A: 1 samples in 50-100 MF",  # 1 sample per space in quick mode, 12 otherwise
            "RegNetX: 1 samples in 50-100 MF",
            "kl.profile of the built model:",
            "| equal: True",
            "AnyNetX_A: errors (%)",
        ],
    },
    "05_transfer_learning.ipynb": {
        "pngs": ["transfer_learning.png"],
        "texts": [
            "checkpoint: efficientnet-lite0-57934424.pth",
            "ImageNet top-3 of the coffee photo: espresso",  # the real weights
            "18 blocks: stem, block1a, block2a, block2b, block3a, block3b, block4a, block4b, block4c, block5a, "
            "block5b, block5c, block6a, block6b, block6c, block6d, block7a, top",
            "head: avg_pool, dropout, predictions | output (None, 10)",
            "body weights copied: True",
            "head only (avg_pool, dropout, predictions); 18 body blocks frozen",
            "trainable parameters: 12,810 of",  # the 1280 x 10 Dense and its bias
            "frozen BatchNorm statistics unchanged: True",
            "trained blocks: block6a, block6b, block6c, block6d, block7a, top (6 of 18)",
            "BodyRateAdamW | body rate 0.1",
            "block6a's BatchNorm statistics moved: True",
            "INT8 fully integer: True | built-in ops only: True",
            "| PTQ INT8: top-1",
            "| QAT INT8: top-1",
        ],
    },
    "06_reparameterize_repvgg_parnet.ipynb": {
        "pngs": ["reparameterized.png"],
        "texts": [
            "blocks fused: 22 | left: 0",  # the stem and 21 stage blocks of RepVGG-A0
            "params 7,840,778 -> 7,041,194",  # RepVGG-A0 with a 10-class head (the table's 1000-class
            # figures 9,108,968 / 8,309,384 minus 990 x 1280 weights and 990 biases)
            "| same top-1 on all 64: True",
            "INT8 fully integer: True",
            "INT8 fused: top-1",
            "parnet_s depth 12 | params 20,930,936 -> 19,128,980",
        ],
    },
}


def _printed_text(nb):
    """Everything the notebook's code cells printed or displayed as text."""
    chunks = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                chunks.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                chunks.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(chunks)


def test_expectations_name_existing_notebooks():
    assert set(EXPECTED) <= {path.name for path in NOTEBOOKS}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    output_dir = tmp_path / "output"
    work_dir = tmp_path / "work"
    output_dir.mkdir()
    work_dir.mkdir()
    monkeypatch.setenv("LIGHTNETS_TUTORIAL_OUTPUT", str(output_dir))
    # Smaller models, fewer epochs and one model per family where a notebook loops over the zoo.
    monkeypatch.setenv("LIGHTNETS_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # An empty user data dir, so a user-level "python3" kernelspec cannot shadow this
    # environment's one (whose "python" argv jupyter_client maps to sys.executable).
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(work_dir)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    expected = EXPECTED.get(path.name, {})
    for png in expected.get("pngs", []):
        png_path = output_dir / png
        assert png_path.is_file(), f"{path.name} did not write {png} to $LIGHTNETS_TUTORIAL_OUTPUT"
        data = png_path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > len(PNG_MAGIC), f"{png} is not a PNG"
    printed = _printed_text(nb)
    missing = [text for text in expected.get("texts", []) if text not in printed]
    assert not missing, f"{path.name} did not print: {missing}"
