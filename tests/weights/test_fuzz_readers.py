"""Fuzzing the checkpoint readers (Hypothesis): real checkpoints of every format, mutated byte-wise
and structurally. Every case either loads or raises CheckpointError: never a crash, a hang, a
foreign exception, an allocation past the documented bound, or a model changed by a failed load.

The CI run is bounded (a few seconds per format, derandomized so it is the same run each time);
``LIGHTNETS_FUZZ_EXAMPLES=N`` runs N random cases per format instead.
"""

import io
import json
import os
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_lightnets.weights import CheckpointError, load_checkpoint, read_checkpoint

EXAMPLES = int(os.environ.get("LIGHTNETS_FUZZ_EXAMPLES", "0"))


def fuzz_settings(default):
    return settings(
        max_examples=EXAMPLES or default,
        derandomize=not EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Numbers an attacker writes where a size, count or offset is read.
INTERESTING = [0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 2**31 - 1, 2**32 - 1, 2**40, 2**63 - 1, -1]


@st.composite
def mutated(draw, content):
    """``content`` with 1-4 edits: bit flips, overwritten bytes, large integers written over
    sizes, insertions, deletions, truncation."""
    data = bytearray(content)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "integer", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            data[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "integer":
            fmt = draw(st.sampled_from(["<q", "<i", "<I", "<H"]))
            value = draw(st.sampled_from(INTERESTING))
            low, high = {"<q": (-(2**63), 2**63 - 1), "<i": (-(2**31), 2**31 - 1)}.get(
                fmt, (0, 2 ** (8 * struct.calcsize(fmt)) - 1)
            )
            data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, min(max(value, low), high))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


# --- the real checkpoints (made once) ------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_files():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    weight = torch.randn(4, 6)
    state = {
        "conv.weight": torch.randn(2, 3, 3, 3),
        "strided": weight[:, ::2],  # a view with strides
        "offset": torch.arange(10.0)[3:7],  # a view with an offset
        "tied": weight,  # shares the storage of "strided"
        "half": torch.randn(5).half(),
        "bf16": torch.randn(3).bfloat16(),
        "bn.num_batches_tracked": torch.tensor(3),
    }
    files = {}
    for name, zip_format in (("zip", True), ("legacy", False)):
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=zip_format)
        files[name] = buffer.getvalue()
    return files


@pytest.fixture(scope="module")
def safetensors_file():
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    return save({"a": rng.standard_normal((3, 4)).astype("float32"), "b": np.arange(5, dtype="int64")})


def _dense_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense"), keras.layers.Dense(2, name="out")])


@pytest.fixture(scope="module")
def keras_files():
    """A keras.applications-style .h5 (Keras 2 layout) and a Keras 3 .weights.h5 of the same model."""
    import h5py

    model = _dense_model()
    with tempfile.TemporaryDirectory() as folder:
        model.save_weights(Path(folder) / "m.weights.h5")
        weights_h5 = (Path(folder) / "m.weights.h5").read_bytes()
        with h5py.File(Path(folder) / "m.h5", "w") as file:
            file.attrs["layer_names"] = [b"dense", b"out"]
            for layer in model.layers:
                group = file.create_group(layer.name)
                group.attrs["weight_names"] = [f"{layer.name}/kernel:0".encode(), f"{layer.name}/bias:0".encode()]
                group.create_dataset(f"{layer.name}/kernel:0", data=np.asarray(layer.kernel))
                group.create_dataset(f"{layer.name}/bias:0", data=np.asarray(layer.bias))
        keras2_h5 = (Path(folder) / "m.h5").read_bytes()
    return {"h5": keras2_h5, "weights.h5": weights_h5}


# --- the properties ----------------------------------------------------------------------------


def read_within_bounds(content, suffix):
    """Reads ``content`` as a checkpoint: a dict of arrays or CheckpointError, and the reader's
    peak allocation within the documented bound (tensor data at most twice the file, bfloat16
    widened; the pickle's objects at most 64 bytes per byte of file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(content)
        tracemalloc.start()
        try:
            result = read_checkpoint(path)
        except CheckpointError as error:
            assert "fuzzed" in str(error)  # names the file
            result = None
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peak <= 64 * len(content) + (1 << 20), f"peak {peak:,} bytes reading a {len(content):,}-byte file"
    if result is not None:
        assert all(isinstance(key, str) and isinstance(value, np.ndarray) for key, value in result.items())
    return result


def load_atomically(content, suffix):
    """Loads ``content`` into the small model: it loads, or CheckpointError leaves it bit-identical."""
    model = _dense_model()
    before = [np.array(w) for w in model.weights]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(content)
        try:
            load_checkpoint(model, path)
        except CheckpointError as error:
            assert "fuzzed" in str(error)
            for value, weight in zip(before, model.weights, strict=True):
                np.testing.assert_array_equal(value, np.asarray(weight))
            return False
    return True


def test_the_unmutated_files_load(torch_files, safetensors_file, keras_files):
    torch = pytest.importorskip("torch")
    for name, content in torch_files.items():
        expected = torch.load(io.BytesIO(content), weights_only=True)
        read = read_within_bounds(content, ".pth")
        assert set(read) == set(expected), name
        for key, value in expected.items():
            np.testing.assert_array_equal(read[key], value.float().numpy() if key == "bf16" else value.numpy())
    assert set(read_within_bounds(safetensors_file, ".safetensors")) == {"a", "b"}
    assert load_atomically(keras_files["h5"], ".h5") and load_atomically(keras_files["weights.h5"], ".weights.h5")


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_fuzzed_torch_checkpoints_load_or_raise_the_checkpoint_error(torch_files, fmt):
    @fuzz_settings(150)
    @given(data=st.data())
    def run(data):
        read_within_bounds(data.draw(mutated(torch_files[fmt])), ".pth")

    run()


def _rezip_with(content, member_suffix, new_member):
    """``content`` (a torch zip) with one member replaced, the zip itself valid (CRCs right), so the
    mutation reaches the pickle / storage reader rather than stopping at the zip's checksum."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = new_member if info.filename.endswith(member_suffix) else source.read(info)
            target.writestr(zipfile.ZipInfo(info.filename), data, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def test_fuzzed_pickles_inside_valid_zips_load_or_raise_the_checkpoint_error(torch_files):
    with zipfile.ZipFile(io.BytesIO(torch_files["zip"])) as archive:
        pickle_name = next(name for name in archive.namelist() if name.endswith("data.pkl"))
        original = archive.read(pickle_name)

    @fuzz_settings(200)
    @given(data=st.data())
    def run(data):
        read_within_bounds(_rezip_with(torch_files["zip"], "data.pkl", data.draw(mutated(original))), ".pth")

    run()


def test_fuzzed_safetensors_load_or_raise_the_checkpoint_error(safetensors_file):
    (length,) = struct.unpack("<Q", safetensors_file[:8])
    header = json.loads(safetensors_file[8 : 8 + length])
    body = safetensors_file[8 + length :]

    @st.composite
    def structurally_mutated(draw):
        changed = json.loads(json.dumps(header))
        key = draw(st.sampled_from(sorted(k for k in changed if k != "__metadata__")))
        field = draw(st.sampled_from(["shape", "data_offsets", "dtype"]))
        if field == "dtype":
            changed[key]["dtype"] = draw(st.sampled_from(["F32", "F64", "I64", "BF16", "U8", "BOOL", "X9"]))
        else:
            changed[key][field] = draw(st.lists(st.sampled_from(INTERESTING[:9] + [3, 4, 12, 48]), max_size=4))
        encoded = json.dumps(changed).encode()
        return struct.pack("<Q", len(encoded)) + encoded + body

    @fuzz_settings(100)
    @given(content=st.one_of(mutated(safetensors_file), structurally_mutated()))
    def run(content):
        read_within_bounds(content, ".safetensors")

    run()


@pytest.mark.parametrize("suffix", [".h5", ".weights.h5"])
def test_fuzzed_hdf5_weights_load_or_raise_the_checkpoint_error_and_change_nothing(keras_files, suffix):
    # Each case starts the HDF5 child process (~0.5 s): fewer cases, the same property.
    @fuzz_settings(12)
    @given(content=mutated(keras_files[suffix.lstrip(".")]))
    def run(content):
        load_atomically(content, suffix)

    run()
