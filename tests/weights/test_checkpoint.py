"""Checkpoint files: PyTorch pickles read without torch (and without running their code),
safetensors, layout recognition and conversion by name (keras_lightnets.weights.checkpoint)."""

import os

import numpy as np
import pytest
from inference import infer
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.weights import (
    UnsafeCheckpointError,
    detect_layout,
    load_checkpoint,
    read_checkpoint,
    read_torch_checkpoint,
)

INPUT_SHAPE = (97, 113, 3)


def _torch():
    return pytest.importorskip("torch")


def _sample_state(torch):
    return {
        "strided": torch.randn(4, 6)[:, ::2],  # a view: storage offset and strides
        "offset": torch.arange(10.0)[3:7],
        "scalar": torch.tensor(3),
        "half": torch.randn(5).half(),
        "long": torch.arange(7),
        "nested.bn.running_var": torch.rand(3),
    }


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_pickles_read_without_torch_equal_torch_load(zip_format, tmp_path):
    torch = _torch()
    state = _sample_state(torch)
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    read = read_torch_checkpoint(path)
    assert set(read) == set(state)
    for key, tensor in state.items():
        assert read[key].dtype == tensor.numpy().dtype and np.array_equal(read[key], tensor.numpy()), key
    # a {"state_dict": ...} wrapper (Lightning, many training scripts) is unwrapped
    torch.save({"state_dict": state, "epoch": 3}, path, _use_new_zipfile_serialization=zip_format)
    assert set(read_torch_checkpoint(path)) == set(state)


def test_bfloat16_is_widened_to_float32(tmp_path):
    torch = _torch()
    value = torch.randn(3, 4).bfloat16()
    torch.save({"w": value}, tmp_path / "bf16.pth")
    np.testing.assert_array_equal(read_torch_checkpoint(tmp_path / "bf16.pth")["w"], value.float().numpy())


class _Payload:
    """Pickles to ``os.system(...)``: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(zip_format, tmp_path):
    torch = _torch()
    marker = tmp_path / "pwned"
    torch.save({"weight": torch.zeros(2), "evil": _Payload(marker)}, tmp_path / "evil.pth",
               _use_new_zipfile_serialization=zip_format)  # fmt: skip
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to unpickle (posix|os|nt)\.system"):
        read_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_not_a_checkpoint_and_unknown_suffixes_are_named(tmp_path):
    (tmp_path / "notes.pth").write_bytes(b"\x80\x04K\x05.")  # a pickle of the number 5
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        read_checkpoint(tmp_path / "notes.pth")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"unknown checkpoint type 'weights.npz'.*\.safetensors"):
        read_checkpoint(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.safetensors")


def _timm_lite0(tmp_path, torch, timm):
    torch.manual_seed(0)
    reference = timm.create_model("tf_efficientnet_lite0").eval()
    randomize_batchnorm(torch, reference, 0)
    return reference


def test_safetensors_in_timm_layout_load_and_equal_timm(tmp_path):
    from safetensors.numpy import save_file

    torch, timm = import_reference("timm")
    reference = _timm_lite0(tmp_path, torch, timm)
    state = {key: value.detach().numpy() for key, value in reference.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    assert set(read_checkpoint(tmp_path / "model.safetensors")) == set(state)

    ours = kl.create_model("efficientnet_lite0", input_shape=INPUT_SHAPE, classifier_activation=None)
    load_checkpoint(ours, tmp_path / "model.safetensors")
    x = np.random.default_rng(0).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(infer(ours, x) - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_layout_is_recognised_from_the_keys():
    layouts = kl.weights.checkpoint_layouts(kl.get_entry("efficientnet_lite0"))
    assert list(layouts) == ["timm", "efficientnet_pytorch"]
    assert detect_layout({"conv_stem.weight": 0, "blocks.0.0.conv_dw.weight": 0}, layouts) == "timm"
    assert detect_layout({"_conv_stem.weight": 0, "_blocks.15._bn2.bias": 0, "_fc.bias": 0}, layouts) == (
        "efficientnet_pytorch"
    )
    with pytest.raises(ValueError, match=r"match no known layout.*timm: no layer for 'features\.0'"):
        detect_layout({"features.0.weight": 0}, layouts)


def test_a_checkpoint_of_another_variant_names_the_mismatch_and_writes_nothing(tmp_path):
    from safetensors.numpy import save_file

    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    other = timm.create_model("tf_efficientnet_lite1")  # deeper: blocks lite0 does not have
    save_file({k: v.detach().numpy() for k, v in other.state_dict().items()}, tmp_path / "lite1.safetensors")
    ours = kl.create_model("efficientnet_lite0", input_shape=(32, 32, 3))
    before = [np.array(w) for w in ours.weights]
    with pytest.raises(
        ValueError,
        match=r"(?s)cannot load torch weights into 'efficientnet_lite0'.*'blocks.1.2.bn1' maps to 'block2c_expand_bn'",
    ):
        load_checkpoint(ours, tmp_path / "lite1.safetensors")
    assert all(np.array_equal(b, np.asarray(w)) for b, w in zip(before, ours.weights, strict=True))


def test_an_unregistered_model_and_a_wrong_layout_name_are_refused(tmp_path):
    custom = kl.EfficientNet("lite0", width_coefficient=1.05, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="not a registered variant"):
        load_checkpoint(custom, tmp_path / "x.safetensors")
    model = kl.create_model("efficientnet_lite0", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"`layout` must be one of \['efficientnet_pytorch', 'timm'\]"):
        load_checkpoint(model, tmp_path / "x.safetensors", layout="torchvision")


def test_our_own_weights_file_loads_too(tmp_path):
    model = kl.create_model("mnasnet_a1_035", input_shape=(32, 32, 3))
    model.save_weights(tmp_path / "mine.weights.h5")
    fresh = kl.create_model("mnasnet_a1_035", input_shape=(32, 32, 3))
    load_checkpoint(fresh, tmp_path / "mine.weights.h5")
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(model.weights, fresh.weights, strict=True))
