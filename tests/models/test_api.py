"""The keras.applications contract for every family: heads, pooling, shapes, channels,
feature pyramids, stochastic depth, weight files and `.keras` round trips."""

import inspect

import keras
import numpy as np
import pytest
from inference import infer

import keras_lightnets as kl
from keras_lightnets.layers import StochasticDepth
from keras_lightnets.registry import representative_models

# One representative per family, and the (stride, channels) of its feature pyramid.
# RegNetX-200MF as an AnyNet point: what kl.design_space.regnet_stages(24, 36.44, 2.49, 13, 8) gives.
ANYNET_REGNETX_002 = {
    "stem_width": 32,
    "depths": (1, 1, 4, 7),
    "widths": (24, 56, 152, 368),
    "strides": (2, 2, 2, 2),
    "bottleneck_ratios": (1.0, 1.0, 1.0, 1.0),
    "group_widths": (8, 8, 8, 8),
}
REGNETX_002_PYRAMID = {2: 32, 4: 24, 8: 56, 16: 152, 32: 368}
FAMILIES = {
    "rexnet": (kl.ReXNet, {"width": 1.0}, {2: 16, 4: 38, 8: 61, 16: 128, 32: 185}),
    "rexnet_lite": (kl.ReXNetLite, {"width": 1.0}, {2: 16, 4: 40, 8: 64, 16: 128, 32: 184}),
    "squeezenet": (kl.SqueezeNet, {"version": "1.1"}, {2: 64, 4: 128, 8: 256, 16: 512}),
    "squeezenet_bypass": (kl.SqueezeNet, {"version": "1.0", "bypass": "complex"}, {2: 96, 4: 256, 8: 512, 16: 512}),
    "mobilenet": (kl.MobileNet, {"alpha": 0.25}, {2: 16, 4: 32, 8: 64, 16: 128, 32: 256}),
    "mobilenetv2": (kl.MobileNetV2, {"alpha": 0.35}, {2: 8, 4: 8, 8: 16, 16: 32, 32: 112}),
    "resnet": (kl.ResNet, {"depth": 18}, {2: 64, 4: 64, 8: 128, 16: 256, 32: 512}),
    "regnet": (kl.RegNet, {"w0": 24, "wa": 36.44, "wm": 2.49, "depth": 13, "group_width": 8}, REGNETX_002_PYRAMID),
    "anynet": (kl.AnyNet, ANYNET_REGNETX_002, REGNETX_002_PYRAMID),
    # Small widths keep these fast; the stem is min(64, 64a) = 16, the streams' maps stay inside.
    "repvgg": (
        kl.RepVGG,
        {"depths": (1, 1, 1, 1), "width_multipliers": (0.25, 0.25, 0.25, 0.5)},
        {2: 16, 4: 16, 8: 32, 16: 64, 32: 256},
    ),
    "parnet": (kl.ParNet, {"planes": (16, 32, 64), "last_width": 128}, {2: 16, 4: 16, 8: 32, 16: 64, 32: 128}),
    "parnet_cifar": (kl.ParNet, {"planes": (16, 32, 64), "last_width": 48, "layout": "cifar"}, {1: 16, 2: 32, 4: 48}),
    "efficientnet": (kl.EfficientNet, {"coefficient": "b0"}, {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}),
    "efficientnet_lite": (kl.EfficientNet, {"coefficient": "lite0"}, {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}),
    # EfficientNetV2-B0: block1a (stride 1 after the stem), the last fused blocks 2b, 3b, MBConv 5e, 6h.
    "efficientnetv2": (kl.EfficientNetV2, {"config": "b0"}, {2: 16, 4: 32, 8: 48, 16: 112, 32: 192}),
    "mnasnet": (kl.MnasNet, {"alpha": 0.5, "version": "a1"}, {2: 8, 4: 16, 8: 24, 16: 56, 32: 160}),
    # DPN-68: bw + (blocks + 2) inc channels per stage; stride 32 is the final BN-ReLU.
    "dpn": (kl.DPN, {"depth": 68}, {2: 10, 4: 144, 8: 320, 16: 704, 32: 832}),
    # PyramidNet-18 (α 48, 8 basic units): 64 + 6k channels after unit k; CIFAR-20 (α 24): 16 + 8k / 3.
    "pyramidnet": (kl.PyramidNet, {"depth": 18, "alpha": 48}, {2: 64, 4: 76, 8: 88, 16: 100, 32: 112}),
    "pyramidnet_cifar": (kl.PyramidNet, {"depth": 20, "alpha": 24, "layout": "cifar"}, {1: 24, 2: 32, 4: 40}),
    # AlexNet's 11x11/4 stem has no stride-2 map.
    "alexnet": (kl.AlexNet, {"version": "torchvision"}, {4: 64, 8: 192, 16: 256, 32: 256}),
    "alexnet_original": (kl.AlexNet, {"version": "original"}, {4: 96, 8: 256, 16: 256, 32: 256}),
    "vgg": (kl.VGG, {"depth": 11}, {2: 128, 4: 256, 8: 512, 16: 512, 32: 512}),
    # PolyNet with 1, 2, 2 modules (2-way A; poly-3 and 2-way B and C); valid-padded stem and reductions.
    "polynet": (kl.PolyNet, {"modules": (1, 2, 2)}, {2: 64, 4: 160, 8: 384, 16: 1152, 32: 2048}),
    # Inception-ResNet-v2 with one block of each kind (the last C block unscaled, no ReLU): timm's taps
    # (conv2d_2b, conv2d_4a, the A blocks, the B blocks, conv2d_7b).
    "inception_resnet_v2": (kl.InceptionResNetV2, {"blocks": (1, 1, 1)}, {2: 64, 4: 192, 8: 320, 16: 1088, 32: 1536}),
    # conv2b, conv4a, mixed2, mixed7, mixed10 (timm's taps).
    "inception_v3": (kl.InceptionV3, {"version": "keras"}, {2: 64, 4: 192, 8: 288, 16: 768, 32: 2048}),
    # Attention-56's CIFAR layout: three stride-1/2/2 stages, the last map is the final BN-ReLU.
    "resattnet": (kl.ResidualAttentionNet, {"depth": 56, "layout": "cifar"}, {1: 64, 2: 128, 4: 256}),
    # conv1, conv3, inception 3b, 4e, 5b.
    "googlenet": (kl.GoogLeNet, {"version": "torchvision"}, {2: 64, 4: 192, 8: 480, 16: 832, 32: 1024}),
    # NASNet-A Mobile with one normal cell per stack (44, 88, 176 wide): the stem conv, the two stem
    # cells (4 x 11), the stacks' last cells (6 x width); stride 32 is the final ReLU.
    "nasnet": (
        kl.NASNet,
        {"penultimate_filters": 1056, "num_blocks": 1, "stem_filters": 32, "skip_reduction": False},
        {2: 32, 4: 44, 8: 264, 16: 528, 32: 1056},
    ),
    # Xception with one middle-flow block: the stem's second conv, the entry blocks, the middle block, the
    # exit flow's final ReLU.
    "xception": (kl.Xception, {"middle_blocks": 1}, {2: 64, 4: 128, 8: 256, 16: 728, 32: 2048}),
    # Pre-activation ResNet with 2, 1, 1, 1 bottlenecks in keras.applications' layout (a stage strides in its
    # last block: the first stage ends at stride 8); stride 32 is the post-norm ReLU.
    "resnetv2": (kl.ResNetV2, {"blocks": (2, 1, 1, 1)}, {2: 64, 4: 256, 8: 256, 16: 512, 32: 2048}),
    # MobileNetV3-Small 0.75 (keras layout): the stem, block1a (SE, stride 2), the last block of each
    # stride; include_top=False ends at the 1x1 head convolution (576 x 0.75 = 432).
    "mobilenetv3": (kl.MobileNetV3, {"size": "small", "alpha": 0.75}, {2: 16, 4: 16, 8: 24, 16: 40, 32: 72}),
    # ConvNeXt-Atto: a 4x4/4 patchify stem (no stride-2 map); each stage's last block (40, 80, 160, 320).
    "convnext": (kl.ConvNeXt, {"size": "atto"}, {4: 40, 8: 80, 16: 160, 32: 320}),
    # MobileNetV4-Conv-Small at 0.35: timm's stage ends; its stride-32 stage ends with the 1x1 960a conv.
    "mobilenetv4": (kl.MobileNetV4, {"size": "conv_small", "alpha": 0.35}, {2: 32, 4: 16, 8: 24, 16: 32, 32: 336}),
    # GhostNet 0.5: each stride's last block (timm's feature_info); the 1x1 960a conv comes after.
    "ghostnet": (kl.GhostNet, {"width": 0.5, "version": "v1"}, {2: 8, 4: 12, 8: 20, 16: 56, 32: 80}),
    # MobileOne-S1 with one branch: each stage's last block (64, 96, 192, 512, 1280).
    "mobileone": (
        kl.MobileOne,
        {"width_multipliers": (1.5, 1.5, 2.0, 2.5), "num_conv_branches": 1},
        {2: 64, 4: 96, 8: 192, 16: 512, 32: 1280},
    ),
    # A one-layer-per-block DenseNet (k=8, 16 stem channels): each block adds 8, each transition halves.
    "densenet": (
        kl.DenseNet,
        {"growth_rate": 8, "init_features": 16, "blocks": (1, 1, 1, 1)},
        {2: 16, 4: 24, 8: 20, 16: 18, 32: 17},
    ),
}
# Channels of the last feature map (what include_top=False returns).
LAST_CHANNELS = {
    "rexnet": 1280,
    "rexnet_lite": 1280,
    "squeezenet": 512,
    "squeezenet_bypass": 512,
    "mobilenet": 256,
    "resnet": 512,
    "regnet": 368,
    "anynet": 368,
    "mobilenetv2": 1280,
    "repvgg": 256,
    "parnet": 128,
    "parnet_cifar": 48,
    "efficientnet": 1280,
    "efficientnet_lite": 1280,
    "efficientnetv2": 1280,
    "mnasnet": 1280,
    "dpn": 832,
    "pyramidnet": 112,
    "pyramidnet_cifar": 40,
    "alexnet": 256,
    "alexnet_original": 256,
    "vgg": 512,
    "polynet": 2048,
    "inception_resnet_v2": 1536,
    "inception_v3": 2048,
    "resattnet": 256,
    "googlenet": 1024,
    "densenet": 17,
    "nasnet": 1056,
    "xception": 2048,
    "resnetv2": 2048,
    "convnext": 320,
    "mobilenetv4": 336,
    "ghostnet": 480,
    "mobileone": 1280,
    "mobilenetv3": 432,
}
SHAPE = (96, 128, 3)  # non-square, small enough to be fast
# One registered variant per family, found through the registry: a new family is in every check below.
REPRESENTATIVES = representative_models()
# PolyNet's 40 modules cost seconds per build and these checks build it a dozen times: they build it
# with 1, 2 and 2 modules, which run every kind it has (2-way A, B and C; poly-3 B and C).
# DenseNet-121's 58 dense layers likewise: 1, 2, 2, 1 layers per block run every kind it has.
# NASNet-A Mobile with one normal cell per stack builds every cell kind and adjust path.
REPRESENTATIVE_OVERRIDES = {
    "legacy_xception": {"middle_blocks": 1},  # every kind of block
    "resnetv2_50": {"blocks": (1, 1, 1, 1)},  # a projection block per stage
    "polynet": {"modules": (1, 2, 2)},
    "densenet121": {"blocks": (1, 2, 2, 1)},
    "nasnet_mobile": {"num_blocks": 1},
    "inception_resnet_v2": {"blocks": (1, 1, 1)},  # one block of each kind
}


def create(name, **kwargs):
    """The representative ``name`` as the per-family checks build it."""
    return kl.create_model(name, **REPRESENTATIVE_OVERRIDES.get(name, {}), **kwargs)


def at_least(name, size):
    """``size``, or the smallest input ``name``'s family builds at (PolyNet's reductions: 75)."""
    return max(size, kl.get_family(kl.get_entry(name).family).min_input_size)


def build(family, **kwargs):
    builder, family_kwargs, _ = FAMILIES[family]
    return builder(**family_kwargs, **kwargs)


def test_every_family_states_its_feature_pyramid():
    # The pyramid facts above are per family; a new family must state its own.
    stated = {builder.__name__ for builder, _, _ in FAMILIES.values()}
    assert {kl.get_family(family).constructor.__name__ for family in kl.list_families()} <= stated


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_classifier_on_non_square_input(name, rng):
    model = create(name, input_shape=(160, 192, 3), classes=7)
    probabilities = infer(model, rng.standard_normal((2, 160, 192, 3)).astype("float32"))
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_last_feature_map_channels(family):
    with keras.StatelessScope(initialize_variables=False):  # structure only: weights declared, not initialized
        assert build(family, include_top=False, input_shape=SHAPE).output_shape[-1] == LAST_CHANNELS[family]


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_include_top_false_pooling(name, rng):
    # One unpooled model, its weights given to the pooled ones: three builds per family, not five.
    unpooled = create(name, include_top=False, input_shape=SHAPE)
    x = rng.standard_normal((1, *SHAPE)).astype("float32")
    spatial = infer(unpooled, x)
    assert spatial.ndim == 4
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        model = create(name, include_top=False, pooling=pooling, input_shape=SHAPE)
        model.set_weights(unpooled.get_weights())
        features = infer(model, x)
        assert features.ndim == 2, pooling
        np.testing.assert_allclose(features, reduce(spatial, axis=(1, 2)), rtol=1e-5, atol=1e-5, err_msg=pooling)


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_one_channel_input(name, rng):
    size = at_least(name, 64)
    model = create(name, input_shape=(size, size, 1), classes=10, classifier_activation=None)
    assert model.get_layer(model.layers[1].name).input.shape[-1] == 1
    assert infer(model, rng.standard_normal((1, size, size, 1)).astype("float32")).shape == (1, 10)


@pytest.mark.parametrize("family", FAMILIES)
def test_features_only_strides_and_channels(family, rng):
    _, _, expected = FAMILIES[family]
    model = build(family, features_only=True, input_shape=(160, 192, 3))
    predicted = infer(model, rng.standard_normal((1, 160, 192, 3)).astype("float32"))
    assert model.output_names == [f"stride{s}" for s in sorted(expected)]  # stride order
    outputs = dict(zip(model.output_names, predicted, strict=True))
    for stride, channels in expected.items():
        height, width = outputs[f"stride{stride}"].shape[1:3]
        # SqueezeNet's unpadded 7x7 conv1 and ceil-mode pools lose a few pixels (77 at stride 2), the
        # Inception stems' five unpadded convolutions and pools 4 (36 at stride 4)
        assert abs(height - 160 / stride) <= 4 and abs(width - 192 / stride) <= 4, (stride, height, width)
        assert outputs[f"stride{stride}"].shape[-1] == channels


def test_features_only_is_the_backbone_of_the_classifier(rng):
    # The stride-32 map of features_only is the input of the head in the classifier.
    x = rng.standard_normal((1, 96, 96, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    features = kl.ReXNet(1.0, features_only=True, input_shape=(96, 96, 3))
    keras.utils.set_random_seed(0)
    classifier = kl.ReXNet(1.0, input_shape=(96, 96, 3))
    tapped = keras.Model(classifier.inputs, classifier.get_layer("block16_project_bn").output)
    np.testing.assert_allclose(infer(features, x)[-1], infer(tapped, x), rtol=1e-5, atol=1e-6)


def test_weights_argument_loads_a_weights_file(tmp_path, rng):
    model = kl.MobileNetV2(0.35, input_shape=SHAPE, classes=3)
    path = tmp_path / "mnv2.weights.h5"
    model.save_weights(path)
    x = rng.standard_normal((1, *SHAPE)).astype("float32")
    loaded = kl.MobileNetV2(0.35, input_shape=SHAPE, classes=3, weights=str(path))
    np.testing.assert_array_equal(infer(loaded, x), infer(model, x))


def test_input_tensor_is_used(rng):
    inputs = keras.Input((64, 64, 3))
    model = kl.ReXNet(0.9, input_tensor=inputs, include_top=False, pooling="avg")
    assert model.inputs[0] is inputs
    assert model.output_shape == (None, 1152)


def test_dynamic_spatial_size(rng):
    model = kl.MobileNetV2(0.5, input_shape=(None, None, 3), include_top=False, pooling="avg")
    for size in (64, 96):
        assert infer(model, np.zeros((1, size, size, 3), "float32")).shape == (1, 1280)


def test_stochastic_depth_rises_linearly_and_only_drops_in_training(rng):
    model = kl.ReXNet(1.0, input_shape=(64, 64, 3), drop_path_rate=0.2, classifier_activation=None)
    rates = [layer.rate for layer in model.layers if isinstance(layer, StochasticDepth)]
    # only blocks with a shortcut get the layer; block i (0-based) drops with rate 0.2 * i / 15
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.2) and rates[0] > 0
    x = rng.standard_normal((4, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_no_drop_path_layers_by_default():
    with keras.StatelessScope(initialize_variables=False):
        assert not any(isinstance(layer, StochasticDepth) for layer in kl.ReXNet(1.0).layers)


def test_partial_residual_uses_plain_add_when_widths_match():
    with keras.StatelessScope(initialize_variables=False):
        model = kl.ReXNet(1.0)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers if layer.name.endswith("_add")}
    # width 1.0: blocks 2..16 with stride 1 widen (partial), none keeps its width
    assert kinds and set(kinds.values()) <= {"ChannelPadAdd", "Add"}
    assert "block1_add" not in kinds  # 32 -> 16 channels: no shortcut


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_any_input_size_without_top(name):
    # keras.applications' rule: include_top=False takes (None, None, C)
    model = create(name, include_top=False, pooling="avg", input_shape=(None, None, 3))
    for height, width in ((at_least(name, 64), at_least(name, 64)), (97, at_least(name, 71))):
        out = infer(model, np.zeros((1, height, width, 3), "float32"))
        assert out.shape == (1, model.output_shape[-1])


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_features_only_outputs_are_the_model_card_taps(name, rng):
    keras.utils.set_random_seed(0)
    size = at_least(name, 64)
    features = create(name, features_only=True, input_shape=(size, size, 3))
    keras.utils.set_random_seed(0)
    classifier = create(name, input_shape=(size, size, 3))
    card = kl.layers.find_model_card(classifier)
    assert features.output_names == [f"stride{stride}" for stride, _ in card.features]
    tapped = keras.Model(classifier.inputs, [classifier.get_layer(layer).output for _, layer in card.features])
    x = rng.standard_normal((1, size, size, 3)).astype("float32")
    for got, expected in zip(infer(features, x), infer(tapped, x), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_include_preprocessing_and_the_keras_file_round_trip(name, tmp_path, rng):
    # pixel / 255 for every family but EfficientNet, which takes raw 0-255 pixels (pixel_max 255)
    # as keras.applications' does. The model with its normalization inside (and stochastic depth where
    # the family has it) is the one saved to a .keras file: one build and one file per family for both facts.
    preprocessing = kl.get_entry(name).preprocessing
    pixel_max = preprocessing.pixel_max
    size = at_least(name, 64)
    has_drop_path = "drop_path_rate" in inspect.signature(kl.get_entry(name).constructor).parameters
    architecture = {
        "input_shape": (size, size + 32, 3),
        "classes": 5,
        **({"drop_path_rate": 0.1} if has_drop_path else {}),
    }
    inside = create(name, include_preprocessing=True, **architecture)
    plain = create(name, **architecture)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(inside.get_layer(layer.name).get_weights())
    pixels = rng.random((2, size, size + 32, 3), dtype=np.float32) * np.float32(pixel_max)
    normalized = (pixels / np.float32(pixel_max) - np.array(preprocessing.mean, np.float32)) / np.array(
        preprocessing.std, np.float32
    )
    expected = infer(plain, normalized)
    computed = infer(inside, pixels)
    np.testing.assert_allclose(computed, expected, rtol=1e-4, atol=1e-5)
    # the normalization is frozen and travels in the .keras file, with every layer, bit for bit
    assert not inside.get_layer("input_normalization").trainable
    inside.save(tmp_path / "inside.keras")
    restored = keras.models.load_model(tmp_path / "inside.keras")
    np.testing.assert_array_equal(infer(restored, pixels), computed)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in inside.layers]
    # what the pipeline feeds it, read back from the file: (pixel / 255 - 0) / (1 / pixel_max)
    assert kl.model_preprocessing(restored).mean == (0.0, 0.0, 0.0)
    assert kl.model_preprocessing(restored).std == pytest.approx((1.0 / pixel_max,) * 3)


def test_classifier_weights_load_into_features_only_and_headless_models(tmp_path, rng):
    classifier = kl.create_model("mobilenetv2_035", input_shape=(64, 64, 3), classes=3)
    path = tmp_path / "classifier.weights.h5"
    classifier.save_weights(path)
    x = rng.standard_normal((1, 64, 64, 3)).astype("float32")
    card = kl.layers.find_model_card(classifier)
    tapped = keras.Model(classifier.inputs, [classifier.get_layer(layer).output for _, layer in card.features])
    features = kl.create_model("mobilenetv2_035", input_shape=(64, 64, 3), classes=3, features_only=True, weights=path)
    for got, expected in zip(infer(features, x), infer(tapped, x), strict=True):
        np.testing.assert_array_equal(got, expected)
    headless = kl.create_model("mobilenetv2_035", input_shape=(64, 64, 3), classes=3, include_top=False, weights=path)
    head_input = keras.Model(classifier.inputs, classifier.get_layer("head_act").output)
    np.testing.assert_array_equal(infer(headless, x), infer(head_input, x))
    # and a file saved from a headless model loads into a headless model
    headless.save_weights(tmp_path / "headless.weights.h5")
    again = kl.create_model(
        "mobilenetv2_035", input_shape=(64, 64, 3), include_top=False, weights=tmp_path / "headless.weights.h5"
    )
    np.testing.assert_array_equal(infer(again, x), infer(head_input, x))


def test_a_flattening_head_needs_a_fixed_input_size():
    # VGG / AlexNet heads flatten the last map; the scaffold enforces keras.applications' rule for them.
    from functools import partial

    from keras_lightnets.models.scaffold import build_model
    from keras_lightnets.models.variant import Family, Preprocessing

    def body(x):
        x = keras.layers.Conv2D(4, 3, strides=32, name="conv")(x)
        return x, {32: x}

    def head(x, *, classes, classifier_activation):
        x = keras.layers.Flatten(name="flatten")(x)
        return keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)

    def Toy(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=10,
        classifier_activation="softmax",
        name=None,
        *,
        features_only=False,
        include_preprocessing=False,
    ):
        return build_model(TOY, locals(), body=body, head=partial(head), default_name="toy", fixed_size_for_top=True)

    # A family whose default input is not 224 (EfficientNet-B7: 600, PolyNet: 331) gets it by default.
    TOY = Family(
        name="toy",
        constructor=Toy,
        variants=(),
        architecture_args=(),
        preprocessing=Preprocessing(input_size=(96, 128, 3)),
    )
    with pytest.raises(ValueError, match="`include_top=True` needs a fixed input size"):
        Toy(input_shape=(None, None, 3))
    assert Toy(include_top=False, input_shape=(None, None, 3)).output_shape == (None, None, None, 4)
    assert Toy(input_shape=(64, 64, 3)).output_shape == (None, 10)
    assert Toy().input_shape == (None, 96, 128, 3)
    assert kl.model_preprocessing(Toy()).input_size == (96, 128, 3)


def test_an_architecture_override_never_keeps_a_published_name():
    assert kl.create_model("rexnet_100", width=2.0).name == "rexnet_200"  # what it is
    custom = kl.create_model("rexnet_100", activation="relu", input_shape=(64, 64, 3))
    assert custom.name == "rexnet_100_custom"
    identity = kl.model_identity(custom)
    assert identity["variant"] is None and identity["family"] == "rexnet"
    assert identity["architecture"] == {"constructor": "ReXNet", "args": {"width": 1.0, "activation": "relu"}}
    assert kl.ReXNet(1.7, input_shape=(64, 64, 3)).name == "rexnet_170"
    # renaming keeps what the model is
    renamed = kl.create_model("mobilenetv2_100", name="mine", input_shape=(64, 64, 3))
    assert renamed.name == "mine" and kl.model_identity(renamed)["variant"] == "mobilenetv2_100"
    assert kl.model_preprocessing(renamed).mean == (0.5, 0.5, 0.5)
    # head, input and regularization are not architecture: the variant keeps its name
    assert kl.create_model("rexnet_100", classes=10, dropout_rate=0.1, input_shape=(64, 64, 3)).name == "rexnet_100"
