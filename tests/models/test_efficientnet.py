"""EfficientNet B0-B7 and EfficientNet-Lite0-4: what the registry-wide tests do not check.

Parameters against keras.applications itself (not only the table), its raw-pixel input
convention, the compound-scaling rules, Lite's differences and the argument checks. Outputs
against timm are in test_torch_reference.py (B0, B3, Lite0, Lite2).
"""

import dataclasses

import keras
import numpy as np
import pytest
from golden import seeded_weights
from inference import infer

import keras_lightnets as kl
from keras_lightnets.deploy.android import classifier_metadata
from keras_lightnets.models.describe import input_pixel_max, model_preprocessing
from keras_lightnets.models.efficientnet import COEFFICIENTS, round_filters, round_repeats, stage_plan
from keras_lightnets.models.variant import IMAGENET_MEAN, IMAGENET_STD

INPUT_SHAPE = (161, 190, 3)
# keras.applications' Normalization layer holds mean (3), variance (3) and count (1).
KERAS_NORMALIZATION_WEIGHTS = 7


@pytest.mark.parametrize("index", range(8))
def test_parameters_equal_keras_applications(index):
    with keras.StatelessScope(initialize_variables=False):
        reference = getattr(keras.applications, f"EfficientNetB{index}")(weights=None, input_shape=(64, 64, 3))
        ours = kl.EfficientNet(f"b{index}", input_shape=(64, 64, 3))
        trainable = sum(int(np.prod(w.shape)) for w in reference.trainable_weights)
        assert kl.profile(ours).params == trainable == kl.get_entry(f"efficientnet_b{index}").reference.params
        assert ours.count_params() == reference.count_params() - KERAS_NORMALIZATION_WEIGHTS


def _copy_from_keras(reference, ours):
    """keras.applications' weights into ours, skipping its Normalization (ours has none)."""
    normalization = keras.layers.Normalization
    source = [layer for layer in reference.layers if layer.weights and not isinstance(layer, normalization)]
    target = [layer for layer in ours.layers if layer.weights and layer.name != "input_normalization"]
    assert len(source) == len(target)
    for src, dst in zip(source, target, strict=True):
        dst.set_weights(src.get_weights())


def test_include_preprocessing_takes_raw_pixels_like_keras_applications(rng):
    reference = keras.applications.EfficientNetB0(weights=None, input_shape=INPUT_SHAPE, classifier_activation=None)
    seeded_weights(reference)
    normalization = next(layer for layer in reference.layers if isinstance(layer, keras.layers.Normalization))
    # weights=None leaves Keras's Normalization at mean 0, variance 1: give it ImageNet's statistics.
    normalization.set_weights(
        [np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD) ** 2, np.float32(1)][: len(normalization.get_weights())]
    )
    bare = kl.EfficientNet("b0", input_shape=INPUT_SHAPE, classifier_activation=None)
    raw = kl.EfficientNet("b0", input_shape=INPUT_SHAPE, classifier_activation=None, include_preprocessing=True)
    _copy_from_keras(reference, bare)
    _copy_from_keras(reference, raw)

    pixels = rng.integers(0, 256, (2, *INPUT_SHAPE)).astype("float32")
    normalized = (pixels / 255.0 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    expected = infer(bare, normalized)
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(infer(raw, pixels) - expected).max() <= 1e-5 * scale
    assert np.abs(infer(reference, pixels) - expected).max() <= 1e-5 * scale
    # What the rest of the package reads from it: the pipeline feeds pixel / 255 / (1 / 255) = the
    # raw pixel, and the Android metadata tells the app to feed (pixel - 0) / 1.
    assert input_pixel_max(raw) == 255.0 and input_pixel_max(bare) is None
    assert model_preprocessing(raw).std == pytest.approx((1 / 255,) * 3)
    metadata = classifier_metadata(raw, [str(i) for i in range(1000)])
    assert metadata.mean == (0.0,) and metadata.std == (1.0,)


def test_the_input_pipeline_feeds_it_raw_pixels(tmp_path):
    from keras_lightnets.data import dataset_info, make_dataset

    dataset_info(data_dir=str(tmp_path))  # prepares the bundled digits offline
    raw = kl.EfficientNet("lite0", input_shape=(32, 32, 3), classes=10, include_preprocessing=True)
    common = {"split": "test", "image_size": 32, "batch_size": 16, "training": False, "data_dir": str(tmp_path)}
    fed = next(iter(make_dataset("lightnets_digits", model=raw, **common)))[0].numpy()
    # The same resize and crop, on pixel / 255:
    unit_range = dataclasses.replace(model_preprocessing(raw), std=(1.0, 1.0, 1.0))
    unit = next(iter(make_dataset("lightnets_digits", model=unit_range, **common)))[0].numpy()
    assert fed.max() > 100.0  # raw pixels, not pixel / 255
    np.testing.assert_allclose(fed, unit * 255.0, rtol=1e-5, atol=1e-3)


def test_other_families_keep_pixel_over_255():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.MobileNetV2(0.35, input_shape=(32, 32, 3), include_preprocessing=True)
    assert input_pixel_max(model) == 1.0
    assert model_preprocessing(model).std == (1.0,) * 3


def test_compound_scaling_rules():
    # TF-slim rounding: to a multiple of 8, never more than 10 % down.
    assert [round_filters(32, w) for w in (1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0)] == [32, 32, 40, 48, 48, 56, 64]
    assert round_filters(1280, 1.2) == 1536 and round_filters(16, 1.1) == 16
    # Depth rounds up: B7's stages grow from [1, 2, 2, 3, 3, 4, 1] to:
    assert [round_repeats(r, 3.1) for r in (1, 2, 2, 3, 3, 4, 1)] == [4, 7, 7, 10, 10, 13, 4]
    # Lite keeps its first and last stage at one block.
    assert [repeats for _, repeats, *_ in stage_plan(1.4, 1.8, lite=True)] == [1, 4, 4, 6, 6, 8, 1]
    assert [repeats for _, repeats, *_ in stage_plan(1.4, 1.8)] == [2, 4, 4, 6, 6, 8, 2]


def test_b_and_lite_differ_as_published():
    with keras.StatelessScope(initialize_variables=False):
        b4 = kl.EfficientNet("b4", input_shape=(64, 64, 3))
        lite4 = kl.EfficientNet("lite4", input_shape=(64, 64, 3))
    # B scales stem and head with the width (1.4: 48 and 1792), Lite does not (32 and 1280).
    assert b4.get_layer("stem_conv").filters == 48 and b4.get_layer("top_conv").filters == 1792
    assert lite4.get_layer("stem_conv").filters == 32 and lite4.get_layer("top_conv").filters == 1280
    b_blocks = {layer.name[: layer.name.index("_")] for layer in b4.layers if layer.name.startswith("block")}
    se_gates = [layer for layer in b4.layers if layer.name.endswith("_se")]
    assert len(se_gates) == len(b_blocks) == 32  # one SE per block in B
    assert not [layer for layer in lite4.layers if "_se" in layer.name]
    activations = {type(layer).__name__ + str(layer.get_config().get("activation", "")) for layer in lite4.layers}
    assert not any("silu" in a or "swish" in a for a in activations)
    assert lite4.get_layer("stem_act").get_config()["max_value"] == 6.0


def test_se_width_comes_from_the_block_input():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.EfficientNet("b0", input_shape=(64, 64, 3))
    # block2a: 16 channels in, expanded to 96; the SE squeezes to 16 * 0.25 = 4, not 96 * 0.25.
    assert model.get_layer("block2a_expand_conv").filters == 96
    assert model.get_layer("block2a_se_reduce").filters == 4
    assert model.get_layer("block2a_se_act").get_config()["activation"] == "silu"


def test_drop_connect_rises_linearly_like_keras():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.EfficientNet("b0", input_shape=(64, 64, 3))
    rates = {layer.name: layer.rate for layer in model.layers if layer.name.endswith("_drop_path")}
    # 16 blocks; block b (from 0) drops with 0.2 * b / 16, only where it has a shortcut.
    assert rates["block2b_drop_path"] == pytest.approx(0.2 * 2 / 16)
    assert rates["block6d_drop_path"] == pytest.approx(0.2 * 14 / 16)
    assert "block2a_drop_path" not in rates  # stride 2: no shortcut
    assert "block7a_drop_path" not in rates  # 192 -> 320 channels: no shortcut


def test_an_unpublished_coefficient_builds_and_says_so():
    with keras.StatelessScope(initialize_variables=False):
        named = kl.EfficientNet("b0", width_coefficient=1.0, input_shape=(64, 64, 3))
        custom = kl.EfficientNet("b0", width_coefficient=1.05, depth_coefficient=1.05, input_shape=(64, 64, 3))
    assert named.name == "efficientnet_b0"
    assert custom.name == "efficientnet_b0_custom"
    assert kl.profile(custom).params > kl.profile(named).params
    assert custom.get_layer("block2c_project_conv").filters == round_filters(24, 1.05)


def test_variant_input_sizes_follow_the_coefficients():
    for coefficient, (_, _, resolution, _) in COEFFICIENTS.items():
        entry = kl.get_entry(f"efficientnet_{coefficient}")
        assert entry.preprocessing.input_size == (resolution, resolution, 3)
        assert entry.reference.input_size == (resolution, resolution, 3)
    assert kl.get_entry("efficientnet_lite0").preprocessing.mean == (0.5, 0.5, 0.5)


def test_dropout_follows_the_coefficient_unless_given():
    with keras.StatelessScope(initialize_variables=False):
        b7 = kl.EfficientNet("b7", input_shape=(32, 32, 3))
        lite4 = kl.EfficientNet("lite4", input_shape=(32, 32, 3))
        b0 = kl.EfficientNet("b0", input_shape=(32, 32, 3), dropout_rate=0.0)
    assert b7.get_layer("dropout").rate == COEFFICIENTS["b7"][3] == 0.5
    assert lite4.get_layer("dropout").rate == COEFFICIENTS["lite4"][3] == 0.3
    assert "dropout" not in {layer.name for layer in b0.layers}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coefficient": "b8"}, "coefficient.*b0.*lite4"),
        ({"coefficient": "B0"}, "coefficient"),
        ({"width_coefficient": 0.0}, "width_coefficient"),
        ({"width_coefficient": -1.0}, "width_coefficient"),
        ({"depth_coefficient": 0}, "depth_coefficient"),
        ({"dropout_rate": 1.5}, "dropout_rate"),
        ({"drop_connect_rate": -0.1}, "drop_connect_rate"),
        ({"input_shape": (31, 64, 3)}, "at least 32"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kl.EfficientNet(**kwargs)
