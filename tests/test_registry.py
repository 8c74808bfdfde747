"""The registry: names, wildcards, overrides, reference figures, and the README table."""

import os
import re

import pytest

import keras_lightnets as kl
from keras_lightnets.registry import markdown_table, weights_table

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def test_list_models_wildcards():
    assert kl.list_models("squeezenet*") == [
        "squeezenet1_0",
        "squeezenet1_0_complex_bypass",
        "squeezenet1_0_simple_bypass",
        "squeezenet1_1",
    ]
    assert kl.list_models("mobilenetv1_0?5") == ["mobilenetv1_025", "mobilenetv1_075"]
    assert kl.list_models("rexnet_[0-9]*") == [f"rexnet_{w}" for w in ("090", "100", "130", "150", "200", "220", "300")]
    assert kl.list_models("nothing*") == []
    with pytest.raises(TypeError, match="pattern"):
        kl.list_models(3)


def test_create_model_overrides_and_name():
    model = kl.create_model("mobilenetv2_035", classes=10, input_shape=(96, 96, 3), name="tiny")
    assert model.output_shape == (None, 10) and model.name == "tiny"
    assert kl.create_model("squeezenet1_1").name == "squeezenet1_1"


def test_entries_carry_reference_and_preprocessing():
    for name in kl.list_models():
        entry = kl.get_entry(name)
        assert entry.reference.params > 0 and entry.reference.macs_m > 0 and entry.reference.source
        prep = entry.preprocessing
        assert len(prep.input_size) == 3 and len(prep.mean) == 3 and len(prep.std) == 3
        assert 0 < prep.crop_pct <= 1
    # keras.applications MobileNets scale to [-1, 1]; the PyTorch-born families use ImageNet statistics.
    assert kl.get_entry("mobilenetv2_100").preprocessing.mean == (0.5, 0.5, 0.5)
    assert kl.get_entry("rexnet_100").preprocessing.std == (0.229, 0.224, 0.225)


def test_readme_model_table_is_generated_from_the_registry():
    with open(README, encoding="utf-8") as handle:
        readme = handle.read()
    match = re.search(r"<!-- models:start -->\n(.*?)\n<!-- models:end -->", readme, re.S)
    assert match, "README.md lacks the generated model table markers"
    assert match.group(1) == markdown_table(), "README model table is stale: run python scripts/model_table.py"
    listed = re.findall(r"^\| `([a-z0-9_]+)` \|", match.group(1), re.M)
    assert listed == kl.list_models()


def test_readme_weights_table_is_generated_from_the_registry():
    with open(README, encoding="utf-8") as handle:
        readme = handle.read()
    match = re.search(r"<!-- weights:start -->\n(.*?)\n<!-- weights:end -->", readme, re.S)
    assert match, "README.md lacks the generated weights table markers"
    assert match.group(1) == weights_table(), "README weights table is stale: run python scripts/model_table.py"
    listed = re.findall(r"^\| `([a-z0-9_]+)` \|", match.group(1), re.M)
    assert listed == [name for name in kl.list_models() if kl.list_weights(name)]
    assert (
        "| `resnet50` | `tv_in1k` 76.13 · `tv2_in1k` 80.85 · `a1_in1k` 80.38 | torchvision / timm (HF Hub) |" in readme
    )


def test_every_family_file_is_found_and_holds_its_own_variants():
    # The registry indexes the family modules; it holds no family data of its own.
    models_dir = os.path.join(os.path.dirname(kl.models.__file__))
    family_files = sorted(
        name[:-3]
        for name in os.listdir(models_dir)
        if name.endswith(".py")
        and re.search(r"^FAMILY = Family\(", open(os.path.join(models_dir, name), encoding="utf-8").read(), re.M)
    )
    assert [module.__name__.rsplit(".", 1)[1] for module in kl.models.family_modules()] == family_files
    for module in kl.models.family_modules():
        family = module.FAMILY
        assert getattr(kl, family.constructor.__name__) is family.constructor  # exported without a list
        for variant in family.variants:
            assert kl.get_entry(variant.name) is variant and variant.family == family.name
    registry_source = open(os.path.join(models_dir, "..", "registry.py"), encoding="utf-8").read()
    assert "Reference(" not in registry_source and "_register(" not in registry_source


def test_representative_models_are_each_familys_smallest():
    representatives = kl.registry.representative_models()
    # A family without registered variants (AnyNet: a constructor only) has no representative.
    with_variants = [family for family in kl.list_families() if kl.get_family(family).variants]
    assert "anynet" in kl.list_families() and "anynet" not in with_variants
    assert [kl.get_entry(name).family for name in representatives] == with_variants
    for name in representatives:
        entry = kl.get_entry(name)
        assert all(entry.reference.params <= v.reference.params for v in kl.get_family(entry.family).variants)
