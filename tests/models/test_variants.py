"""Every registered variant, found through the registry (no hand-kept lists), built once:

- its trainable parameters equal the published count to the integer, its MACs are within 1 %
  of the published figure at the stated input size;
- it is named after itself and its model card says which variant and family it is;
- the graph is flat: standard Keras layers plus the custom layers of the table, no Lambda,
  no nested model, unique names;
- its architecture serializes: its config is plain JSON, and the config round trip rebuilds the
  same graph (once per code path: every ``compared`` variant; the ``.keras`` file round trip with
  outputs is per family, in test_api.py);
- its feature taps (what ``features_only`` returns) sit at their strides.
"""

import dataclasses
import inspect
import json
import math

import keras
import pytest

import keras_lightnets as kl
from keras_lightnets.layers import find_model_card
from keras_lightnets.layers.custom_layers import keras_classes

ALL_MODELS = kl.list_models()
CUSTOM_LAYERS = keras_classes()


def test_registry_covers_the_issue_variants():
    expected = (
        [f"rexnet_{w}" for w in ("090", "100", "130", "150", "200", "220", "300")]
        + [f"rexnet_lite_{w}" for w in ("100", "130", "150", "200")]
        + ["squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass", "squeezenet1_0_complex_bypass"]
        + [f"mobilenetv1_{a}" for a in ("025", "050", "075", "100")]
        + [f"mobilenetv2_{a}" for a in ("035", "050", "075", "100", "130", "140")]
        + [f"efficientnet_b{i}" for i in range(8)]
        + [f"efficientnet_lite{i}" for i in range(5)]
        + [f"mnasnet_b1_{a}" for a in ("050", "075", "100", "130", "140")]
        + [f"mnasnet_a1_{a}" for a in ("035", "050", "075", "100", "140")]
        # issue 27: everything keras.applications has
        + ["xception", "inception_v3", "inception_resnet_v2", "nasnet_mobile", "nasnet_large"]
        + ["resnet50_v2", "resnet101_v2", "resnet152_v2"]
        + [f"mobilenetv3_{s}{m}_{a}" for s in ("large", "small") for m in ("", "_minimal") for a in ("075", "100")]
        + [f"efficientnetv2_{v}" for v in ("b0", "b1", "b2", "b3", "s", "m", "l")]
        + [f"convnext_{size}" for size in ("tiny", "small", "base", "large", "xlarge")]
    )
    assert set(expected) <= set(ALL_MODELS)


def test_every_variant_names_its_reference():
    for name in ALL_MODELS:
        entry = kl.get_entry(name)
        kind, _, target = entry.equals.partition(":")
        assert kind in ("timm", "torchvision", "keras", "pretrainedmodels", "golden"), (name, entry.equals)
        assert target or kind == "golden", (name, entry.equals)
        assert entry.reference.params > 0 and entry.reference.macs_m > 0 and entry.reference.source


@pytest.mark.parametrize("name", ALL_MODELS)
def test_variant(name):
    # Everything checked here is structure (shapes, names, counts, configs), never a value: built in
    # a StatelessScope, the weights are declared but not initialized, 3-5x faster (RegNetY-32GF: 4.5 s
    # to 0.9 s). The outputs are checked per family in test_api.py and against the references.
    with keras.StatelessScope(initialize_variables=False):
        _check_variant(name)


def _constructor_defaults(constructor):
    return {key: parameter.default for key, parameter in inspect.signature(constructor).parameters.items()}


def _check_variant(name):
    entry = kl.get_entry(name)
    model = entry.build(input_shape=tuple(entry.reference.input_size))
    measured = kl.profile(model)
    assert measured.params == entry.reference.params
    assert measured.macs / 1e6 == pytest.approx(entry.reference.macs_m, rel=0.01)
    assert model.name == name
    assert model.output_shape == (None, entry.classes)
    card = find_model_card(model)
    assert (card.variant, card.family) == (name, entry.family)
    # The card stores JSON (tuples as lists).
    stated = {key: list(value) if isinstance(value, tuple) else value for key, value in entry.kwargs.items()}
    assert card.architecture["args"] | stated == card.architecture["args"]
    # The card's one Preprocessing is the variant's, in the graph where the family normalizes inside by
    # default as keras.applications does (MobileNetV3, ConvNeXt), else taken from outside.
    in_graph = {**_constructor_defaults(entry.constructor), **entry.defaults}["include_preprocessing"]
    assert card.preprocessing == dataclasses.replace(entry.preprocessing, in_graph=in_graph)

    for layer in model.layers:
        assert not isinstance(layer, keras.layers.Lambda), layer.name
        assert not isinstance(layer, keras.Model), f"nested model {layer.name}"
        module = type(layer).__module__
        assert module.startswith("keras.") or isinstance(layer, CUSTOM_LAYERS), f"{layer.name}: {type(layer)}"
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))

    # The architecture round-trips through its config (what a .keras file stores): every variant's
    # config is plain JSON that reads back equal (a NumPy number in a computed width would not).
    serialized = keras.saving.serialize_keras_object(model)
    json.dumps(serialized)  # raises TypeError on anything JSON cannot hold
    if entry.compared:
        # Rebuilding from the config costs a second build; a sibling that differs from a compared
        # variant only in its numbers (``compared=False``) is made of the same layer classes and
        # config code, so the rebuild runs once per code path (the 1,000-layer variants: 10-30 s each).
        rebuilt = keras.saving.deserialize_keras_object(serialized)
        assert rebuilt.get_config() == model.get_config()
        assert kl.profile(rebuilt) == measured
        del rebuilt

    # Families with a fused deploy form: its parameters exactly, its MACs within 1 % (built
    # without weight values here; the fused outputs are checked in test_reparameterize.py).
    if entry.reference.deploy_params is not None:
        fused = kl.profile(kl.reparameterize(model))
        assert fused.params == entry.reference.deploy_params
        assert fused.macs / 1e6 == pytest.approx(entry.reference.deploy_macs_m, rel=0.01)
        assert fused.depth == measured.depth

    # Feature taps: strides 2, 4, ... in order (1, 2, 4 for 32-pixel CIFAR layouts), each map the
    # input size over its stride.
    strides = [stride for stride, _ in card.features]
    first = 0 if entry.reference.input_size[0] <= 32 else 1
    stem = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    if tuple(stem.strides) == (4, 4):
        first = 2  # a stride-4 stem (AlexNet's 11x11/4 convolution) has no stride-2 map
    assert strides == [2**i for i in range(first, first + len(strides))] and len(strides) >= (3 if first == 0 else 4)
    height, width = entry.reference.input_size[:2]
    for stride, layer_name in card.features:
        shape = model.get_layer(layer_name).output.shape
        # valid-padded stems and ceil-mode pools lose a few pixels (SqueezeNet: 109 at stride 2 of 224; the
        # Inception stems: 71 at stride 4 of 299, where timm taps them)
        assert abs(shape[1] - math.ceil(height / stride)) <= 4 and abs(shape[2] - math.ceil(width / stride)) <= 4
