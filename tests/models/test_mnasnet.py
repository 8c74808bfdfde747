"""MnasNet specifics the registry-wide tests do not check: the Keras totals (BatchNorm statistics
included), where A1's squeeze-excite sits and how wide it is, the width rounding torchvision, timm
and TF share, the no-skip blocks, and the argument errors. Exact parameters and MACs of every
variant are in test_variants.py, the outputs against torchvision/timm in test_torch_reference.py,
A1 x0.35 (TF's reference only) against golden tensors in test_golden.py.

Only structure is checked here: models are built in a StatelessScope (no weight values)."""

import keras
import pytest

import keras_lightnets as kl
from keras_lightnets.models import mnasnet

# model.count_params(): trainable parameters plus the BatchNorm moving mean/variance.
KERAS_TOTALS = {
    "mnasnet_b1_050": 2_239_136,
    "mnasnet_b1_075": 3_200_016,
    "mnasnet_b1_100": 4_421_232,
    "mnasnet_b1_130": 6_331_072,
    "mnasnet_b1_140": 7_168_176,
    "mnasnet_a1_100": 3_920_526,
}
# A1's SE stages (1-based, as in the block names) and their repeats: 40-, 112- and 160-wide.
A1_SE_STAGES = {3: 3, 5: 2, 6: 3}


def build(*args, **kwargs):
    with keras.StatelessScope(initialize_variables=False):
        return mnasnet.MnasNet(*args, **kwargs)


def se_layers(model):
    """The SE ``Multiply`` layers (named ``block{stage}{repeat}_se``)."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Multiply)]


def filters(model, name):
    return model.get_layer(name).output.shape[-1]


@pytest.mark.parametrize("name", sorted(KERAS_TOTALS))
def test_keras_totals(name):
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model(name)
    assert model.count_params() == KERAS_TOTALS[name]


def test_a1_has_se_in_three_stages_b1_none():
    a1 = se_layers(build(1.0, "a1"))
    assert len(a1) == sum(A1_SE_STAGES.values())
    assert {name[len("block")] for name in a1} == {str(stage) for stage in A1_SE_STAGES}
    assert all(name.endswith("_se") for name in a1)
    assert se_layers(build(1.0, "b1")) == []


def test_se_hidden_width_comes_from_the_block_input():
    # A1 x1.0 block3a: input 24, expanded 3x to 72; hidden max(1, int(24 * 0.25)) = 6, not 18.
    # block3b: input 40, expanded 120, hidden 10. The SE uses ReLU and a sigmoid gate.
    model = build(1.0, "a1")
    assert filters(model, "block2b_project_bn") == 24
    assert filters(model, "block3a_expand_conv") == 72
    assert filters(model, "block3a_se_reduce") == 6
    assert filters(model, "block3a_se_expand") == 72
    assert filters(model, "block3b_se_reduce") == 10
    assert isinstance(model.get_layer("block3a_se_act"), keras.layers.ReLU)
    assert model.get_layer("block3a_se_gate").get_config()["activation"] == "sigmoid"


def test_torchvision_depth_rounding_at_half_width():
    # torchvision _get_depths(0.5): 32, 16, 24, 40, 80, 96, 192, 320 times 0.5, rounded to a
    # multiple of 8 never more than 10 % down: 16, 8, 16 (12 rounds up), 24 (20 rounds up),
    # 40, 48, 96, 160; the stem scales with alpha, the 1280-wide head does not.
    model = build(0.5, "b1")
    assert filters(model, "stem_conv") == 16
    assert filters(model, "block1a_project_bn") == 8
    widths = [filters(model, f"block{stage}a_project_bn") for stage in range(2, 8)]
    assert widths == [16, 24, 40, 48, 96, 160]
    assert filters(model, "head_conv") == 1280
    # the first stacks expand their input 3x: block2a 8 -> 24, block3a 16 -> 48
    assert filters(model, "block2a_expand_conv") == 24
    assert filters(model, "block3a_expand_conv") == 48


def test_no_skip_blocks():
    # The separable first block never adds its input, even at alpha 0.25 where the stem and
    # its output are both 8 wide; neither does B1's last block (TF/timm "noskip"), while A1's
    # does where the widths meet (alpha 0.02: 160 and 320 both round up to 8).
    names = lambda model: {layer.name for layer in model.layers}  # noqa: E731
    quarter = build(0.25, "b1", input_shape=(32, 32, 3))
    assert filters(quarter, "stem_conv") == filters(quarter, "block1a_project_bn") == 8
    assert "block1a_add" not in names(quarter)
    assert "block2b_add" in names(quarter)
    b1, a1 = (build(0.02, version, input_shape=(32, 32, 3)) for version in ("b1", "a1"))
    assert filters(b1, "block6d_project_bn") == filters(b1, "block7a_project_bn") == 8
    assert "block7a_add" not in names(b1)
    assert filters(a1, "block6c_project_bn") == filters(a1, "block7a_project_bn") == 8
    assert "block7a_add" in names(a1)


def test_default_names():
    assert build(0.5, "a1").name == "mnasnet_a1_050"
    assert build(1.0).name == "mnasnet_b1_100"
    assert build(0.6, "b1").name == "mnasnet_b1_060"  # not a published width


@pytest.mark.parametrize("version", ["c1", "B1", "a2", None, 1])
def test_unknown_version(version, monkeypatch):
    monkeypatch.setattr(mnasnet, "build_model", _no_build)
    with pytest.raises(ValueError, match="version") as error:
        mnasnet.MnasNet(1.0, version)
    assert "'a1'" in str(error.value) and "'b1'" in str(error.value)


@pytest.mark.parametrize("alpha", [0, 0.0, -1.0])
def test_non_positive_alpha(alpha, monkeypatch):
    monkeypatch.setattr(mnasnet, "build_model", _no_build)
    with pytest.raises(ValueError, match="alpha"):
        mnasnet.MnasNet(alpha)


def _no_build(*args, **kwargs):
    raise AssertionError("the arguments must be checked before the model is built")
