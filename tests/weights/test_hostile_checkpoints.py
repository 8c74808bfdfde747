"""Each hostile or malformed file of issue 25, by name: crafted byte by byte (tests/weights/hostile.py)
or with the formats' own writers, and each refused with a CheckpointError naming the file, before
any out-of-bounds view, oversized allocation or read outside the file; nothing a load does
survives it, and a failed load leaves the model bit-identical."""

import os
import sys
import tracemalloc
import zipfile

import h5py
import keras
import numpy as np
import pytest
from hostile import (
    Build,
    Call,
    Global,
    Persistent,
    Raw,
    floats,
    state_dict,
    tensor,
    torch_legacy,
    torch_zip,
)
from torch_reference import import_reference

import keras_lightnets as kl
from keras_lightnets.weights import (
    CheckpointError,
    UnsafeCheckpointError,
    hdf5_reader,
    load_checkpoint,
    read_checkpoint,
    torch_pickle,
)

FORMATS = ["zip", "legacy"]


def _write(tmp_path, fmt, obj, storages, name="hostile.pth"):
    """``storages``: ``{key: bytes}`` (the legacy count is the bytes' float count)."""
    if fmt == "zip":
        content = torch_zip(obj, storages)
    else:
        content = torch_legacy(obj, {key: (len(data) // 4, data) for key, data in storages.items()})
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _one_tensor(tmp_path, fmt, numel, offset, size, stride):
    obj = state_dict({"bias": tensor("0", numel, offset, size, stride)})
    return _write(tmp_path, fmt, obj, {"0": floats(*range(numel))})


# --- out-of-bounds tensors ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stride_of_2_to_the_40_over_a_4_float_storage_is_refused_before_any_view(tmp_path, fmt):
    path = _one_tensor(tmp_path, fmt, 4, 0, (2,), (2**40,))  # was SIGSEGV in as_strided
    with pytest.raises(CheckpointError, match=r"hostile.pth'.*outside its 4-element storage"):
        read_checkpoint(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_small_overrun_never_reads_the_process_heap(tmp_path, fmt):
    path = _one_tensor(tmp_path, fmt, 4, 0, (10,), (1,))  # loaded heap bytes into a bias before
    with pytest.raises(CheckpointError, match=r"reaches element 9, outside its 4-element storage"):
        read_checkpoint(path)
    offset_overrun = _one_tensor(tmp_path, fmt, 4, 3, (2,), (1,))
    with pytest.raises(CheckpointError, match=r"at offset 3 reaches element 4"):
        read_checkpoint(offset_overrun)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_expansion_by_zero_strides_is_refused(tmp_path, fmt):
    # 661 bytes that asked for 6 GiB: 40000 x 40000 floats over one element.
    path = _one_tensor(tmp_path, fmt, 4, 0, (40000, 40000), (0, 0))
    with pytest.raises(CheckpointError, match=r"reads storage elements more than once"):
        read_checkpoint(path)
    overlapping = _one_tensor(tmp_path, fmt, 4, 0, (2, 2), (1, 1))  # rows overlap by one element
    with pytest.raises(CheckpointError, match=r"more than once"):
        read_checkpoint(overlapping)


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_of_one_storage_are_read_as_the_file_states_them(tmp_path, fmt):
    # A transposed view and a slice with an offset (what torch.save writes for views) are fine.
    obj = state_dict({"t": tensor("0", 6, 0, (3, 2), (1, 3)), "s": tensor("0", 6, 2, (2,), (2,))})
    read = read_checkpoint(_write(tmp_path, fmt, obj, {"0": floats(0, 1, 2, 3, 4, 5)}))
    np.testing.assert_array_equal(read["t"], np.arange(6, dtype="float32").reshape(2, 3).T)
    np.testing.assert_array_equal(read["s"], [2.0, 4.0])
    assert not read["t"].flags.writeable  # views of the file's bytes, not copies


# --- allow-listed objects cannot be changed ---------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        Global("torch", "FloatStorage"),
        Global("torch._utils", "_rebuild_tensor_v2"),
        Global("collections", "OrderedDict"),
    ],
    ids=["storage-type", "rebuild-function", "OrderedDict"],
)
def test_build_on_an_allow_listed_global_is_refused_and_a_later_clean_load_is_unchanged(tmp_path, target):
    clean = _one_tensor(tmp_path, "zip", 4, 0, (4,), (1,))
    hostile = state_dict({"x": Build(target, {"dtype": "<i4", "name": "DoubleStorage"})})
    path = _write(tmp_path, "zip", hostile, {}, name="build.pth")
    with pytest.raises(UnsafeCheckpointError, match=r"build.pth'.*refusing pickle BUILD"):
        read_checkpoint(path)
    np.testing.assert_array_equal(read_checkpoint(clean)["bias"], [0.0, 1.0, 2.0, 3.0])
    assert repr(torch_pickle.ALLOWED_GLOBALS[("torch", "FloatStorage")]) == "torch.FloatStorage"
    with pytest.raises(UnsafeCheckpointError):
        torch_pickle.ALLOWED_GLOBALS[("torch", "FloatStorage")].name = "DoubleStorage"


@pytest.mark.parametrize("fmt", FORMATS)
def test_code_named_by_the_pickle_is_refused_by_name_and_never_runs(tmp_path, fmt):
    marker = tmp_path / "pwned"
    for payload in (
        Call(Global("os", "system"), (f"touch {marker}",)),
        Call(Global("builtins", "eval"), (f"open({str(marker)!r}, 'w')",)),
        Call(Global("subprocess", "Popen"), (["touch", str(marker)],)),
        Call(Global("torch._utils", "_rebuild_tensor_v2"), (Call(Global("os", "system"), ("true",)), 0, (1,), (1,))),
    ):
        path = _write(tmp_path, fmt, state_dict({"w": payload}), {})
        with pytest.raises(UnsafeCheckpointError, match=r"refusing to unpickle (os\.system|builtins\.eval|subprocess)"):
            read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "opcode", [b"\x81", b"\x92", b"\x82\x01", b"\x97"], ids=["NEWOBJ", "NEWOBJ_EX", "EXT1", "NEXT_BUFFER"]
)
def test_opcodes_torch_never_writes_are_refused(tmp_path, opcode):
    obj = state_dict({"w": Raw(b"c" + b"collections\nOrderedDict\n" + b")" + opcode)})
    with pytest.raises(UnsafeCheckpointError, match="an opcode torch never writes"):
        read_checkpoint(_write(tmp_path, "zip", obj, {}))


# --- memory amplification ---------------------------------------------------------------------------


def test_one_storage_under_a_thousand_keys_costs_no_copies(tmp_path):
    numel = 1 << 18  # 1 MB of floats, referenced 1,000 times: 1 GB of copies before
    obj = state_dict({f"w{i}": tensor("0", numel, 0, (numel,), (1,)) for i in range(1000)})
    path = _write(tmp_path, "zip", obj, {"0": np.arange(numel, dtype="<f4").tobytes()})
    tracemalloc.start()
    read = read_checkpoint(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(read) == 1000 and read["w999"][-1] == numel - 1
    assert peak < 3 * path.stat().st_size, f"peak {peak:,} bytes for a {path.stat().st_size:,}-byte file"


def test_a_legacy_storage_larger_than_the_file_is_refused_before_allocation(tmp_path):
    obj = state_dict({"w": tensor("0", 10**11, 0, (10**11,), (1,))})  # 400 GB claimed
    path = tmp_path / "huge.pth"
    path.write_bytes(torch_legacy(obj, {"0": (10**11, floats(1, 2))}))
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=r"huge.pth', '0': truncated checkpoint \(storage needs 400,000,000,000"):
        read_checkpoint(path)
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()


def test_a_compressed_member_a_zip_bomb_is_refused_unread(tmp_path):
    zeros = bytes(64 << 20)  # 64 MB of zeros deflate to ~64 KB
    obj = state_dict({"w": tensor("0", len(zeros) // 4, 0, (len(zeros) // 4,), (1,))})
    path = tmp_path / "bomb.pth"
    path.write_bytes(torch_zip(obj, {"0": zeros}, compression=zipfile.ZIP_DEFLATED))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=r"bomb.pth', 'archive/data/0': member is compressed"):
        read_checkpoint(path)
    assert tracemalloc.get_traced_memory()[1] < 4 << 20
    tracemalloc.stop()


def test_nesting_and_counts_are_bounded(tmp_path):
    # d0["k"] = d1, d1["k"] = d2, ... 100,000 levels, built without a mark (a RecursionError before)
    deep = Raw(b"}" + b"X\x01\x00\x00\x00k}" * 100_000 + b"s" * 100_000)
    with pytest.raises(CheckpointError, match=r"deep.pth'.*dicts nested deeper than 32 levels"):
        read_checkpoint(_write(tmp_path, "zip", deep, {}, name="deep.pth"))
    nested = {"a": 1}
    for _ in range(40):
        nested = {"n": nested}
    with pytest.raises(CheckpointError, match=r"the pickle nests deeper than 32 levels"):  # each dict is a mark
        read_checkpoint(_write(tmp_path, "zip", nested, {}, name="nested.pth"))
    marks = Raw(b"(" * 1000 + b"N")
    with pytest.raises(CheckpointError, match=r"nests deeper than 32 levels"):
        read_checkpoint(_write(tmp_path, "zip", marks, {}, name="marks.pth"))


def test_a_dict_that_contains_itself_is_refused(tmp_path):
    # {} memoized as 0, then d["self"] = d
    cyclic = Raw(b"}q\x00X\x04\x00\x00\x00selfh\x00s")
    with pytest.raises(CheckpointError, match=r"contains itself"):
        read_checkpoint(_write(tmp_path, "zip", cyclic, {}))


# --- malformed files: one error type, naming the file -----------------------------------------------


@pytest.mark.parametrize(
    ("obj", "storages", "expected"),
    [
        # was "not enough values to unpack"
        (
            state_dict({"w": Call(Global("torch._utils", "_rebuild_tensor_v2"), (Persistent(("storage", 1)), 0))}),
            {},
            "unknown persistent id",
        ),
        # was "'_StorageType' object is not callable"
        (state_dict({"w": Call(Global("torch", "FloatStorage"))}), {}, r"torch.FloatStorage is called"),
        (state_dict({"w": tensor("0", 4, "0", (4,), (1,))}), {"0": floats(0, 1, 2, 3)}, "storage offset must be"),
        (state_dict({"w": tensor("0", 4, 0, (4,), (1, 1))}), {"0": floats(0, 1, 2, 3)}, "has 1 sizes but 2 strides"),
        (state_dict({"w": tensor("0", 4, 0, (-4,), (1,))}), {"0": floats(0, 1, 2, 3)}, "must be non-negative integers"),
        (state_dict({"w": Call(Global("torch._utils", "_rebuild_parameter"), (5,))}), {}, "must wrap a tensor"),
        (Raw(b"}X\x01\x00\x00\x00ks"), {}, r"malformed pickle \(IndexError"),  # SETITEM without a value
    ],
    ids=[
        "short-persistent-id",
        "storage-type-called",
        "offset-type",
        "stride-count",
        "negative-size",
        "parameter",
        "stack",
    ],
)
def test_malformed_pickles_are_checkpoint_errors_naming_the_file(tmp_path, obj, storages, expected):
    path = _write(tmp_path, "zip", obj, storages, name="malformed.pth")
    with pytest.raises(CheckpointError, match=rf"malformed.pth'.*{expected}"):
        read_checkpoint(path)


def test_malformed_legacy_files_are_checkpoint_errors_naming_the_file(tmp_path):
    obj = state_dict({"w": tensor("0", 2, 0, (2,), (1,))})
    cases = {
        "cut-count": torch_legacy(obj, {"0": (2, floats(1, 2))})[:-12],  # was struct.error
        "cut-data": torch_legacy(obj, {"0": (2, floats(1, 2))})[:-2],
        "undeclared-key": torch_legacy(obj, {"0": (2, floats(1, 2))}, keys=["0", "9"]),  # was a bare KeyError
        "wrong-count": torch_legacy(obj, {"0": (3, floats(1, 2, 3))}),
        "big-endian": torch_legacy(obj, {"0": (2, floats(1, 2))}, system_info={"little_endian": False}),
    }
    expected = {
        "cut-count": "the storage's size is cut short",
        "cut-data": "storage needs 8 bytes, fewer are left",
        "undeclared-key": "storage list does not match",
        "wrong-count": "storage holds 3 elements, its tensors' record says 2",
        "big-endian": "big-endian",
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.pth"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=rf"{name}.pth'.*{expected[name]}"):
            read_checkpoint(path)


def test_not_a_file_is_named_for_what_it_is(tmp_path):
    (tmp_path / "folder.pth").mkdir()
    with pytest.raises(CheckpointError, match=r"folder.pth': is a folder, not a checkpoint file"):
        read_checkpoint(tmp_path / "folder.pth")
    os.mkfifo(tmp_path / "pipe.safetensors")  # opening it would block forever
    with pytest.raises(CheckpointError, match=r"pipe.safetensors': is not a regular file \(a FIFO"):
        read_checkpoint(tmp_path / "pipe.safetensors")
    with pytest.raises(CheckpointError, match=r"missing.pth': checkpoint file does not exist"):
        read_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "random.h5").write_bytes(os.urandom(2000))  # was h5py's "file signature not found", no path
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(CheckpointError, match=r"random.h5': not an HDF5 file"):
        load_checkpoint(model, tmp_path / "random.h5")


def test_a_truncated_safetensors_file_is_a_checkpoint_error(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.ones((4, 4), "float32")}, tmp_path / "cut.safetensors")
    content = (tmp_path / "cut.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(content[:-10])
    with pytest.raises(CheckpointError, match=r"cut.safetensors': not a readable .safetensors file"):
        read_checkpoint(tmp_path / "cut.safetensors")


# --- HDF5: nothing outside the file is read -------------------------------------------------------


def _keras2_dense_file(path, kernel=None, make_kernel=None):
    """A keras.applications-style file for one Dense(3) layer on 4 inputs."""
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [b"dense"]
        group = file.create_group("dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        if make_kernel is None:
            group.create_dataset("dense/kernel:0", data=np.ones((4, 3), "float32") if kernel is None else kernel)
        else:
            make_kernel(group)
        group.create_dataset("dense/bias:0", data=np.zeros(3, "float32"))


def _dense_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])


def _snapshot(model):
    return [np.array(w) for w in model.weights]


def _assert_unchanged(model, before):
    for value, weight in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(value, np.asarray(weight))


def test_an_external_dataset_pointing_at_a_local_file_is_refused_unread(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(floats(*range(12)))  # stands in for the system's password file
    path = tmp_path / "external.h5"
    _keras2_dense_file(
        path, make_kernel=lambda g: g.create_dataset("dense/kernel:0", (4, 3), "<f4", external=[(str(secret), 0, 48)])
    )
    model = _dense_model()
    before = _snapshot(model)
    with pytest.raises(
        CheckpointError, match=r"external.h5', '/dense/dense/kernel:0': data stored in an external file"
    ):
        load_checkpoint(model, path)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("kind", ["external-link", "soft-link", "virtual"])
def test_links_and_virtual_datasets_are_refused(tmp_path, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as file:
        file.create_dataset("kernel", data=np.full((4, 3), 7, "float32"))

    def make(group):
        if kind == "external-link":
            group["dense/kernel:0"] = h5py.ExternalLink(str(other), "/kernel")
        elif kind == "soft-link":
            group.create_dataset("real", data=np.ones((4, 3), "float32"))
            group["dense/kernel:0"] = h5py.SoftLink("/dense/real")
        else:
            layout = h5py.VirtualLayout(shape=(4, 3), dtype="float32")
            layout[:] = h5py.VirtualSource(str(other), "kernel", shape=(4, 3))
            group.create_virtual_dataset("dense/kernel:0", layout)

    path = tmp_path / f"{kind}.h5"
    _keras2_dense_file(path, make_kernel=make)
    expected = {"external-link": "an external link", "soft-link": "a soft link", "virtual": "a virtual dataset"}[kind]
    with pytest.raises(CheckpointError, match=rf"{kind}.h5'.*{expected}"):
        load_checkpoint(_dense_model(), path)


def test_a_fill_value_dataset_of_another_shape_is_refused_before_it_is_read(tmp_path):
    # 1 MB on disk that grew to 1.9 GB before the shape check: declared (100000, 5000), no data written.
    path = tmp_path / "fill.h5"
    _keras2_dense_file(
        path, make_kernel=lambda g: g.create_dataset("dense/kernel:0", (100_000, 5_000), "<f4", chunks=(1000, 50))
    )
    assert path.stat().st_size < 1 << 20
    with pytest.raises(
        CheckpointError,
        match=r"'/dense/dense/kernel:0': declares shape \(100000, 5000\), dense/kernel expects \(4, 3\)",
    ):
        load_checkpoint(_dense_model(), path)


def test_a_keras2_file_loads_exactly_when_it_fits(tmp_path):
    kernel = np.arange(12, dtype="float32").reshape(4, 3)
    _keras2_dense_file(tmp_path / "ok.h5", kernel=kernel)
    model = load_checkpoint(_dense_model(), tmp_path / "ok.h5")
    np.testing.assert_array_equal(np.asarray(model.get_layer("dense").kernel), kernel)


# --- the child process contains what libhdf5 does -------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", r"crashed reading it \(signal 11\)"),
        ("import time; time.sleep(60)", r"took over 1 s"),
        ("import sys; sys.exit(7)", r"failed \(exit code 7"),
    ],
    ids=["crash", "hang", "exit"],
)
def test_a_crash_or_hang_of_the_hdf5_reader_is_a_checkpoint_error(tmp_path, monkeypatch, script, expected):
    fake = tmp_path / "child.py"
    fake.write_text(script)
    monkeypatch.setattr(hdf5_reader, "CHILD_SCRIPT", fake)
    monkeypatch.setattr(hdf5_reader, "CHILD_TIMEOUT_S", 1)
    _keras2_dense_file(tmp_path / "any.h5")
    with pytest.raises(CheckpointError, match=rf"any.h5': .*{expected}"):
        hdf5_reader.inspect_hdf5(tmp_path / "any.h5")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the address-space cap is Linux's RLIMIT_AS")
def test_the_hdf5_reader_cannot_allocate_past_its_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(hdf5_reader, "INSPECT_MEMORY", 64 << 20)
    fake = tmp_path / "child.py"
    original = hdf5_reader.CHILD_SCRIPT.read_text()
    # The real child, asked to hold 1 GB while inspecting: its cap turns that into a refusal.
    fake.write_text(
        original.replace(
            '            if command == "inspect":',
            '            if command == "inspect":\n                hog = bytearray(1 << 30)',
        )
    )
    monkeypatch.setattr(hdf5_reader, "CHILD_SCRIPT", fake)
    _keras2_dense_file(tmp_path / "any.h5")
    with pytest.raises(CheckpointError, match=r"needs more memory than its declared sizes allow"):
        hdf5_reader.inspect_hdf5(tmp_path / "any.h5")


# --- a failed load leaves the model bit-identical ----------------------------------------------


def _classifier(classes):
    return kl.create_model("mobilenetv2_035", input_shape=(32, 32, 3), classes=classes)


def test_a_7_class_weights_file_into_a_10_class_model_changes_nothing(tmp_path):
    _classifier(7).save_weights(tmp_path / "seven.weights.h5")
    _classifier(7).save(tmp_path / "seven.keras")
    model = _classifier(10)
    before = _snapshot(model)
    for name in ("seven.weights.h5", "seven.keras"):
        with pytest.raises(CheckpointError, match=rf"{name}': does not fit 'mobilenetv2_035'"):
            load_checkpoint(model, tmp_path / name)  # overwrote 27 tensors before failing
        _assert_unchanged(model, before)
    with pytest.raises(CheckpointError, match=r"seven.weights.h5': does not fit"):
        kl.create_model("mobilenetv2_035", input_shape=(32, 32, 3), classes=10, weights=tmp_path / "seven.weights.h5")
    # and the file that fits loads, equal to its source
    source = _classifier(10)
    source.save_weights(tmp_path / "ten.weights.h5")
    load_checkpoint(model, tmp_path / "ten.weights.h5")
    _assert_unchanged(model, _snapshot(source))


def test_a_torch_or_safetensors_checkpoint_that_does_not_fit_changes_nothing(tmp_path):
    from safetensors.numpy import save_file

    model = kl.create_model("squeezenet1_1", input_shape=(32, 32, 3))
    before = _snapshot(model)
    save_file({"features.0.weight": np.ones((64, 3, 3, 3), "float32")}, tmp_path / "part.safetensors")
    with pytest.raises(CheckpointError, match=r"part.safetensors'.*cannot load torch weights"):
        load_checkpoint(model, tmp_path / "part.safetensors")
    _assert_unchanged(model, before)


def test_a_wrapper_prefix_is_named_with_what_to_pass(tmp_path):
    from safetensors.numpy import save_file

    from keras_lightnets.weights import torch_state_dict

    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    state = torch_state_dict(torchvision.models.squeezenet1_1())
    save_file({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.safetensors")
    model = kl.create_model("squeezenet1_1", input_shape=(32, 32, 3))
    with pytest.raises(CheckpointError, match=r"every key starts with 'module\.'.*pass strip_prefix='module\.'"):
        load_checkpoint(model, tmp_path / "ddp.safetensors")
    load_checkpoint(model, tmp_path / "ddp.safetensors", strip_prefix="module.")
    np.testing.assert_array_equal(
        np.asarray(model.get_layer("conv1_conv").kernel), state["features.0.weight"].transpose(2, 3, 1, 0)
    )
