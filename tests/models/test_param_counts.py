"""Every registered model builds; its trainable parameters equal the published count to the
integer and its MACs are within 1 % of the published figure. The graph is flat: standard Keras
layers plus our registered custom layers, no Lambda, no nested model."""

import keras
import pytest

import keras_lightnets as kl
from keras_lightnets.layers import PartialResidualAdd, StochasticDepth

ALL_MODELS = kl.list_models()
CUSTOM_LAYERS = (PartialResidualAdd, StochasticDepth)


def test_registry_covers_the_issue_variants():
    expected = (
        [f"rexnet_{w}" for w in ("090", "100", "130", "150", "200", "220", "300")]
        + [f"rexnet_lite_{w}" for w in ("100", "130", "150", "200")]
        + ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass", "squeezenet1_0_complex_bypass"]
        + [f"mobilenetv1_{a}" for a in ("025", "050", "075", "100")]
        + [f"mobilenetv2_{a}" for a in ("035", "050", "075", "100", "130", "140")]
    )
    assert sorted(expected) == ALL_MODELS


@pytest.mark.parametrize("name", ALL_MODELS)
def test_params_and_macs_match_reference(name):
    entry = kl.get_entry(name)
    model = entry.build()
    measured = kl.profile(model)
    assert measured.params == entry.reference.params
    assert measured.macs / 1e6 == pytest.approx(entry.reference.macs_m, rel=0.01)
    assert model.name == name
    assert model.output_shape == (None, 1000)

    for layer in model.layers:
        assert not isinstance(layer, keras.layers.Lambda), layer.name
        assert not isinstance(layer, keras.Model), f"nested model {layer.name}"
        module = type(layer).__module__
        assert module.startswith("keras.") or isinstance(layer, CUSTOM_LAYERS), f"{layer.name}: {type(layer)}"
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
