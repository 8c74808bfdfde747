"""The custom-layer table: every entry's Keras class, tf_keras twin, QuantizeConfig, MAC rule and
weight port, checked for every entry; and every custom Layer of keras_lightnets.layers has an entry."""

import dataclasses
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lightnets as kl
import keras_lightnets.layers
from keras_lightnets.layers import custom_layers
from keras_lightnets.layers.channel_pad_add import ChannelPadAdd
from keras_lightnets.layers.channel_shuffle import ChannelShuffle
from keras_lightnets.layers.custom_layers import CUSTOM_LAYERS, custom_layer, find_custom_layer, keras_classes
from keras_lightnets.layers.interp import AlignedBilinearResize
from keras_lightnets.layers.layer_scale import LayerScale
from keras_lightnets.layers.lrn import LocalResponseNormalization
from keras_lightnets.layers.model_card import ModelCard
from keras_lightnets.layers.nearest_resize import NearestResize
from keras_lightnets.layers.padding import SamePadding2D
from keras_lightnets.layers.pooling import CeilMaxPool2D
from keras_lightnets.layers.stochastic_depth import StochasticDepth

SIZE = 9  # odd: CeilMaxPool2D keeps a last partial window
# One example per custom layer: a factory and the channels of each input (all SIZE x SIZE).
EXAMPLES = {
    StochasticDepth: (lambda: StochasticDepth(0.2, seed=3), [4]),
    ChannelPadAdd: (lambda: ChannelPadAdd(), [8, 4]),
    CeilMaxPool2D: (lambda: CeilMaxPool2D(3, 2), [4]),
    ChannelShuffle: (lambda: ChannelShuffle(2), [6]),
    SamePadding2D: (lambda: SamePadding2D(5, 2), [4]),
    AlignedBilinearResize: (lambda: AlignedBilinearResize(), [4, 2]),  # resized to the 2nd's size
    NearestResize: (lambda: NearestResize(), [4, 2]),  # same sizes here; odd ones: tests/models/test_ghostnet.py
    LocalResponseNormalization: (lambda: LocalResponseNormalization(5, alpha=0.5, beta=0.75, k=2.0), [7]),
    LayerScale: (lambda: LayerScale(0.5), [4]),
    ModelCard: (
        lambda: ModelCard(
            "rexnet",
            variant="rexnet_100",
            architecture={"constructor": "ReXNet", "args": {"width": 1.0}},
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            input_size=(224, 224, 3),
            crop_pct=0.875,
            interpolation="bicubic",
            features=[[2, "stem_act"], [4, "stage1_block1_add"]],
        ),
        [4],
    ),
}
ENTRIES = pytest.mark.parametrize("entry", CUSTOM_LAYERS, ids=lambda entry: entry.name)


def example(entry):
    if entry.keras_class not in EXAMPLES:
        pytest.fail(f"add an example of {entry.name} to EXAMPLES in {__file__}")
    factory, channels = EXAMPLES[entry.keras_class]
    return factory, channels


def example_model(entry, head=True):
    """image -> one 1x1 conv per layer input -> the layer [-> GAP -> Dense]."""
    factory, channels = example(entry)
    image = keras.Input((SIZE, SIZE, 3), name="image")
    branches = [keras.layers.Conv2D(c, 1, name=f"conv{i}")(image) for i, c in enumerate(channels)]
    layer = factory()
    x = layer(branches if len(branches) > 1 else branches[0])
    if head:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        x = keras.layers.Dense(3, name="fc")(x)
    return keras.Model(image, x), layer


def plain(value):
    """Config values with tuples and lists made alike."""
    return json.loads(json.dumps(value))


def test_every_custom_layer_class_has_an_entry():
    known = set(keras_classes())
    missing = []
    for module_info in pkgutil.iter_modules(keras_lightnets.layers.__path__):
        module = importlib.import_module(f"keras_lightnets.layers.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, keras.layers.Layer)
                and value.__module__ == module.__name__
                and value not in known
            ):
                missing.append(f"{module.__name__}.{value.__name__}")
    assert not missing, f"custom layers without an entry in custom_layers.CUSTOM_LAYERS: {missing}"


def test_entries_are_distinct_and_found_by_name():
    names = [name for entry in CUSTOM_LAYERS for name in entry.class_names]
    assert len(names) == len(set(names))
    for entry in CUSTOM_LAYERS:
        for name in entry.class_names:
            assert custom_layer(name) is entry
    assert custom_layer("Conv2D") is None
    assert find_custom_layer(keras.layers.Add()) is None


@ENTRIES
def test_registered_serializable_and_config_round_trip(entry):
    for cls in (entry.keras_class, *entry.aliases):
        registered = f"keras_lightnets>{cls.__name__}"
        assert keras.saving.get_registered_name(cls) == registered
        assert keras.saving.get_registered_object(registered) is cls
    _, layer = example_model(entry)
    config = layer.get_config()
    restored = entry.keras_class.from_config(config)
    assert type(restored) is entry.keras_class
    assert plain(restored.get_config()) == plain(config)
    assert find_custom_layer(layer) is entry


@ENTRIES
def test_twin_has_the_config_and_computes_the_same(entry):
    from keras_lightnets.deploy import to_tf_keras

    model, layer = example_model(entry, head=False)
    twin = to_tf_keras(model)
    twin_layer = twin.get_layer(layer.name)
    assert isinstance(twin_layer, entry.twin_class())
    twin_config = plain(twin_layer.get_config())
    base_keys = set(keras.layers.Layer.get_config(layer))  # name, dtype, ...: Keras 3's own
    for key, value in plain(layer.get_config()).items():
        if key not in base_keys:
            assert key in twin_config and twin_config[key] == value, f"{entry.name}.{key}"
    x = np.random.default_rng(0).standard_normal((2, SIZE, SIZE, 3)).astype("float32") - 0.5
    np.testing.assert_allclose(twin(x, training=False).numpy(), np.asarray(model(x, training=False)), rtol=0, atol=1e-6)


@ENTRIES
def test_quantize_config_resolves_and_qat_accepts_the_layer(entry):
    import tensorflow_model_optimization as tfmot

    from keras_lightnets.deploy import quantize_aware
    from keras_lightnets.deploy.quantize_configs import custom_objects

    config_class = entry.quantize_config_class()
    assert issubclass(config_class, tfmot.quantization.keras.QuantizeConfig)
    objects = custom_objects()
    assert objects[config_class.__name__] is config_class
    assert objects[entry.twin_class().__name__] is entry.twin_class()

    model, layer = example_model(entry)
    if entry.float_only:
        # TFLite cannot run it in INT8: QAT, which only prepares an INT8 file, refuses it at once.
        from keras_lightnets.deploy import UnsupportedLayerError

        with pytest.raises(UnsupportedLayerError, match=re.escape(f"{layer.name} ({entry.name}): {entry.float_only}")):
            quantize_aware(model)
        return
    qat = quantize_aware(model)
    wrapper = qat.get_layer(f"quant_{layer.name}")
    assert isinstance(wrapper.layer, entry.twin_class())
    # tfmot's quantize_scope puts its own NoOpQuantizeConfig (the same: no quantizers) in place of ours
    assert type(wrapper.quantize_config).__name__ == config_class.__name__
    expected = config_class().get_output_quantizers(wrapper.layer)
    actual = wrapper.quantize_config.get_output_quantizers(wrapper.layer)
    assert [type(q) for q in actual] == [type(q) for q in expected]


@ENTRIES
def test_profile_counts_the_rule(entry, monkeypatch):
    model, layer = example_model(entry)
    conv_and_dense = SIZE * SIZE * 3 * sum(example(entry)[1]) + layer.output.shape[-1] * 3
    assert kl.profile(model).macs == conv_and_dense + entry.macs(layer)
    # profile() reads the rule from the table: a different rule, a different count.
    patched = dataclasses.replace(entry, macs=lambda counted: 1000 + counted.output.shape[-1])
    monkeypatch.setattr(custom_layers, "CUSTOM_LAYERS", tuple(patched if e is entry else e for e in CUSTOM_LAYERS))
    assert kl.profile(model).macs == conv_and_dense + 1000 + layer.output.shape[-1]


@ENTRIES
def test_weight_port(entry):
    _, layer = example_model(entry)
    if entry.weight_port is None:
        assert layer.weights == [], f"{entry.name} has weights: give it a weight_port"
    else:
        assert callable(custom_layers.resolve(entry.weight_port))


def test_model_code_imports_neither_tf_keras_nor_tfmot():
    code = (
        "import sys, keras_lightnets as kl\n"
        "from keras_lightnets.layers.custom_layers import CUSTOM_LAYERS\n"
        "kl.profile(kl.SqueezeNet('1.1', input_shape=(64, 64, 3)))\n"
        "print(sorted(m for m in ('tf_keras', 'tensorflow_model_optimization') if m in sys.modules))\n"
    )
    # tfmot sets TF_USE_LEGACY_KERAS=1 in this process once imported, which would load tf_keras in the child
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip().splitlines()[-1] == "[]"
