"""ChannelPadAdd's old name, PartialResidualAdd, still loads: configs and .keras files saved before the rename."""

import json
import zipfile

import keras
import numpy as np

from keras_lightnets.layers import ChannelPadAdd, PartialResidualAdd

OLD_LAYER = {
    "module": "keras_lightnets.layers.partial_residual",
    "class_name": "PartialResidualAdd",
    "config": {"name": "block_add", "trainable": True, "dtype": "float32"},
    "registered_name": "keras_lightnets>PartialResidualAdd",
}


def padded_model():
    y, x = keras.Input((5, 5, 6), name="y"), keras.Input((5, 5, 4), name="x")
    return keras.Model([y, x], ChannelPadAdd(name="block_add")([y, x]))


def test_old_registered_name_deserializes_to_a_channel_pad_add(rng):
    layer = keras.saving.deserialize_keras_object(OLD_LAYER)
    assert isinstance(layer, ChannelPadAdd) and isinstance(layer, PartialResidualAdd)
    assert layer.name == "block_add"
    y = rng.standard_normal((2, 5, 5, 6)).astype("float32")
    x = rng.standard_normal((2, 5, 5, 4)).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer([y, x])), np.asarray(ChannelPadAdd()([y, x])))


def test_keras_file_saved_with_the_old_name_loads(tmp_path, rng):
    from keras_lightnets.deploy import to_tf_keras

    model = padded_model()
    new_path, old_path = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new_path)
    # Rewrite the archive as the code before the rename wrote it.
    with zipfile.ZipFile(new_path) as source, zipfile.ZipFile(old_path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                (layer,) = [layer for layer in config["config"]["layers"] if layer["name"] == "block_add"]
                layer.update({key: OLD_LAYER[key] for key in ("module", "class_name", "registered_name")})
                data = json.dumps(config).encode()
            target.writestr(item, data)
    loaded = keras.saving.load_model(old_path)
    assert type(loaded.get_layer("block_add")) is PartialResidualAdd
    inputs = [rng.standard_normal((2, 5, 5, c)).astype("float32") for c in (6, 4)]
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), np.asarray(model(inputs)))
    # the old name maps to the same tf_keras twin
    np.testing.assert_array_equal(to_tf_keras(loaded)(inputs).numpy(), np.asarray(model(inputs)))
