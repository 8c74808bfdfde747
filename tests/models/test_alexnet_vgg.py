"""AlexNet and VGG beyond the registry-wide checks (test_variants, test_torch_reference,
test_keras_reference, test_golden): local response normalization against PyTorch, AlexNet-2012
against a PyTorch transcription of Caffe's bvlc_alexnet, the NCHW -> NHWC permutation of the first
dense layer, every torchvision VGG key map, VGG-16's torchvision layout, TFLite's float-only LRN,
and the flattening head's input-size rules."""

import re

import keras
import numpy as np
import pytest
from inference import infer
from reference_diffs import record_reference_diff
from torch_reference import import_reference, import_torch

import keras_lightnets as kl
from keras_lightnets.layers import LocalResponseNormalization
from keras_lightnets.models.alexnet import LRN_SETTINGS
from keras_lightnets.models.variant import nchw_flatten_rows
from keras_lightnets.models.vgg import TORCHVISION_KEY_MAPS
from keras_lightnets.weights import load_torch_weights
from keras_lightnets.weights._layers import weighted_layers
from keras_lightnets.weights.torch_port import compile_key_map, map_key

# --- local response normalization ----------------------------------------------------------


@pytest.mark.parametrize(
    "size, alpha, beta, k",
    [(5, 1e-4, 0.75, 1.0), (5, 5e-4, 0.75, 2.0), (4, 0.5, 0.75, 1.0), (1, 1.0, 0.5, 1.0), (20, 1.0, 1.5, 0.5)],
    ids=["caffe", "paper", "even-size", "size-1", "wider-than-the-channels"],
)
def test_lrn_equals_torch(size, alpha, beta, k):
    torch = import_torch()
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 13)).astype("float32") * 3
    expected = torch.nn.functional.local_response_norm(torch.from_numpy(x.transpose(0, 3, 1, 2)), size, alpha, beta, k)
    ours = infer(keras.Sequential([keras.Input((5, 6, 13)), LocalResponseNormalization(size, alpha, beta, k)]), x)
    np.testing.assert_allclose(ours, expected.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-7)


def test_lrn_by_hand():
    # One pixel, channels (1, 2, 3), size 3, alpha 3 (1 per element of the window), beta 1, k 1:
    # windows {0, 1}, {0, 1, 2}, {1, 2} (zero-padded): sums of squares 5, 14, 13.
    x = np.array([[[[1.0, 2.0, 3.0]]]], np.float32)
    y = keras.ops.convert_to_numpy(LocalResponseNormalization(3, alpha=3.0, beta=1.0, k=1.0)(x))
    np.testing.assert_allclose(y[0, 0, 0], [1 / 6, 2 / 15, 3 / 14], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 0}, "`size` must be a positive integer"),
        ({"size": 2.0}, "`size` must be a positive integer"),
        ({"size": True}, "`size` must be a positive integer"),
        ({"alpha": -1e-4}, "`alpha` must be a finite number >= 0.0, got -0.0001"),
        ({"beta": 0}, "`beta` must be a finite number > 0.0, got 0"),
        ({"k": 0.0}, "`k` must be a finite number > 0.0, got 0.0"),
        ({"k": float("nan")}, "`k` must be a finite number > 0.0, got nan"),
        ({"alpha": "1e-4"}, "`alpha` must be a finite number >= 0.0, got '1e-4'"),
    ],
)
def test_lrn_refuses_out_of_range_parameters(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LocalResponseNormalization(**kwargs)


def test_lrn_keras_file_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 7)), LocalResponseNormalization(3, alpha=0.5, beta=0.75, k=2.0)])
    model.save(tmp_path / "lrn.keras")
    restored = keras.models.load_model(tmp_path / "lrn.keras")
    assert restored.layers[0].get_config() | {"name": None} == model.layers[0].get_config() | {"name": None}
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 7)).astype("float32")
    np.testing.assert_array_equal(infer(restored, x), infer(model, x))


def test_lrn_runs_in_float_tflite_and_refuses_int8(tmp_path):
    from keras_lightnets.deploy import TFLiteExportError, export_tflite, predict_tflite

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, name="conv")(inputs)
    x = LocalResponseNormalization(5, alpha=0.5, beta=0.75, k=2.0, name="lrn")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(keras.layers.Flatten()(x)))
    images = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype("float32")

    exported = export_tflite(model, tmp_path / "float.tflite")
    assert exported.summary.builtin_only and "POW" in exported.summary.operators
    np.testing.assert_allclose(predict_tflite(exported.path, images), infer(model, images), rtol=1e-5, atol=1e-6)
    # Dynamic range: int8 weights, and the LRN's ops say they run in float.
    dynamic = export_tflite(model, tmp_path / "dynamic.tflite", quantization="dynamic")
    assert not dynamic.summary.fully_integer and {"POW", "DIV"} <= set(dynamic.summary.float_operators)
    # Full integer: refused before any conversion, naming the layer and why; no file written.
    with pytest.raises(TFLiteExportError, match=r"fully integer.*lrn \(LocalResponseNormalization\): TFLite has no"):
        export_tflite(model, tmp_path / "int8.tflite", quantization="int8", representative_data=[images])
    assert not (tmp_path / "int8.tflite").exists()


# --- AlexNet -------------------------------------------------------------------------------


def _caffe_alexnet(torch, height, width, lrn):
    """Caffe's bvlc_alexnet deploy prototxt in PyTorch: groups=2 on conv2/4/5, LRN after relu1/relu2,
    ceil-mode pools (Caffe's rounding), fc6-fc8."""
    nn = torch.nn
    size, alpha, beta, k = lrn
    features = nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(size, alpha, beta, k),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), nn.LocalResponseNorm(size, alpha, beta, k),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True),
    )  # fmt: skip
    with torch.no_grad():
        last = features(torch.zeros(1, 3, height, width)).shape[2:]
    classifier = nn.Sequential(
        nn.Linear(256 * last[0] * last[1], 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000),
    )  # fmt: skip
    key_map = (
        (r"0\.0", "conv1"),
        (r"0\.4", "conv2"),
        (r"0\.8", "conv3"),
        (r"0\.10", "conv4"),
        (r"0\.12", "conv5"),
        (r"2\.0", "fc1", nchw_flatten_rows(256, *last)),
        (r"2\.3", "fc2"),
        (r"2\.6", "predictions"),
    )
    return nn.Sequential(features, nn.Flatten(), classifier).eval(), key_map


@pytest.mark.parametrize("lrn", ["caffe"])  # the paper's constants: LRN against PyTorch above
def test_alexnet_original_equals_caffe_bvlc_alexnet_in_pytorch(lrn):
    # An odd, non-square input where ceil- and floor-mode pools differ (conv1 gives 17x19).
    torch, _ = import_reference("torchvision")
    torch.manual_seed(0)
    shape = (79, 85, 3)
    reference, key_map = _caffe_alexnet(torch, *shape[:2], LRN_SETTINGS[lrn])
    ours = kl.AlexNet("original", lrn=lrn, input_shape=shape, classifier_activation=None)
    load_torch_weights(ours, reference, key_map)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype("float32") * 50  # LRN acts on large inputs
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    diff = float(np.abs(infer(ours, x) - expected).max())
    record_reference_diff(f"alexnet_original (lrn={lrn!r}) 79x85", "Caffe bvlc_alexnet in PyTorch", diff)
    assert diff <= 1e-4 * max(1.0, float(np.abs(expected).max()))


def test_alexnet_layouts():
    with keras.StatelessScope(initialize_variables=False):
        torchvision = kl.AlexNet()
        original = kl.AlexNet("original")
    assert torchvision.input_shape == (None, 224, 224, 3) and original.input_shape == (None, 227, 227, 3)
    grouped = {layer.name: layer.groups for layer in original.layers if isinstance(layer, keras.layers.Conv2D)}
    assert grouped == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}
    lrn = [layer for layer in original.layers if isinstance(layer, LocalResponseNormalization)]
    assert [(layer.name, layer.size, layer.alpha, layer.beta, layer.k) for layer in lrn] == [
        ("lrn1", 5, 1e-4, 0.75, 1.0),
        ("lrn2", 5, 1e-4, 0.75, 1.0),
    ]
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in torchvision.layers)
    assert torchvision.get_layer("fc1").kernel.shape == (256 * 6 * 6, 4096)
    assert original.get_layer("fc1").kernel.shape == (256 * 6 * 6, 4096)
    assert kl.AlexNet(version="original", lrn="paper", input_shape=(64, 64, 3)).name == "alexnet_original_custom"


def test_nchw_flatten_rows_reorders_a_linear_for_nhwc():
    channels, height, width = 3, 2, 4
    weight = np.arange(5 * channels * height * width, dtype=np.float32).reshape(5, -1)
    nhwc = nchw_flatten_rows(channels, height, width)("weight", weight)
    feature_map = np.random.default_rng(0).standard_normal((channels, height, width)).astype("float32")
    # The Linear on the NCHW-flattened map equals the reordered weight on the NHWC-flattened one.
    np.testing.assert_allclose(
        weight @ feature_map.reshape(-1), nhwc @ feature_map.transpose(1, 2, 0).reshape(-1), rtol=1e-5
    )
    assert sorted(nhwc[0]) == sorted(weight[0]) and not np.array_equal(nhwc, weight)  # a permutation
    np.testing.assert_array_equal(nchw_flatten_rows(channels, height, width)("bias", weight[:, 0]), weight[:, 0])
    with pytest.raises(ValueError, match=r"reading a flattened 3x2x4 \(C x H x W\) map"):
        nchw_flatten_rows(channels, height, width)("weight", weight[:, :-1])


def test_a_torchvision_checkpoint_for_another_input_size_is_refused_by_name():
    torch, torchvision = import_reference("torchvision")
    state = {k: v.numpy() for k, v in torchvision.models.alexnet().state_dict().items()}
    state["classifier.1.weight"] = state["classifier.1.weight"][:, :1024]  # a Linear for a 256x2x2 map
    model = kl.AlexNet(input_shape=(224, 224, 3))
    before = np.asarray(model.get_layer("conv1").kernel).copy()
    with pytest.raises(ValueError, match=r"classifier\.1\.weight \(4096, 1024\).*reading a flattened 256x6x6"):
        load_torch_weights(model, state, kl.get_entry("alexnet").key_map)
    np.testing.assert_array_equal(np.asarray(model.get_layer("conv1").kernel), before)  # nothing written


# --- VGG -----------------------------------------------------------------------------------


# The key maps the outputs do not check (vgg11_bn is compared with torchvision, vgg16's convolutions
# below): one per layout, at the depths that differ from those (one function writes all eight).
@pytest.mark.parametrize("depth, batch_norm", [(13, True), (19, False)])
def test_torchvision_vgg_key_maps_pair_the_layers_in_order(depth, batch_norm):
    # Each torchvision module maps to our weighted layer of the same rank, with the same shapes.
    torch, torchvision = import_reference("torchvision")
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")
    with torch.device("meta"):
        state = getattr(torchvision.models, name)().state_dict()
    modules = list(dict.fromkeys(key.rpartition(".")[0] for key in state if "num_batches" not in key))
    rules = compile_key_map(TORCHVISION_KEY_MAPS[(depth, batch_norm)])
    with keras.StatelessScope(initialize_variables=False):
        ours = weighted_layers(kl.VGG(depth, batch_norm=batch_norm))
    assert [map_key(rules, module)[0] for module in modules] == [layer.name for layer in ours], name
    for module, layer in zip(modules, ours, strict=True):
        kernel = state.get(f"{module}.weight")
        if isinstance(layer, keras.layers.Conv2D):
            assert tuple(kernel.shape) == tuple(np.array(layer.kernel.shape)[[3, 2, 0, 1]]), module
        elif isinstance(layer, keras.layers.Dense):
            assert tuple(kernel.shape) == tuple(layer.kernel.shape)[::-1], module
        assert tuple(state[f"{module}.bias"].shape) == tuple(layer.weights[1].shape), module  # bias, BN's beta


def test_vgg16_body_equals_torchvision_vgg16():
    # vgg16's table row compares it with keras.applications' VGG16; here its torchvision layout
    # (the first weights source): the convolutions through the key map (the classifier's NCHW rows
    # are compared through vgg11_bn, same rule).
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    with torch.device("meta"):  # the 124M classifier weights are never made
        reference = torchvision.models.vgg16()
    features = reference.features.to_empty(device="cpu").eval()
    for module in features.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.normal_(module.bias, std=0.1)
    shape = (65, 79, 3)
    ours = kl.create_model("vgg16", include_top=False, input_shape=shape)
    key_map = kl.weights.checkpoint_layouts(kl.get_entry("vgg16"))["torchvision"]
    load_torch_weights(ours, {f"features.{k}": v for k, v in features.state_dict().items()}, key_map)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype("float32")
    with torch.no_grad():
        expected = features(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert (expected > 0).mean() > 0.3
    diff = float(np.abs(infer(ours, x) - expected).max())
    record_reference_diff("vgg16 features 65x79", "torchvision vgg16", diff)
    assert diff <= 1e-4 * max(1.0, float(np.abs(expected).max()))


# --- the flattening head's input size -------------------------------------------------------


def test_flattening_head_sizes():
    with keras.StatelessScope(initialize_variables=False):
        # keras.applications' rule: a classifier at a reduced size, its fc1 sized to the map.
        assert kl.VGG(11, input_shape=(64, 64, 3), classes=10).get_layer("fc1").kernel.shape == (2 * 2 * 512, 4096)
        assert kl.AlexNet(input_shape=(63, 63, 3)).get_layer("fc1").kernel.shape == (256, 4096)
        assert kl.AlexNet("original", input_shape=(55, 55, 3)).get_layer("fc1").kernel.shape == (256, 4096)
        # without the classifier, any size
        assert kl.VGG(11, include_top=False, input_shape=(None, None, 3)).output_shape == (None, None, None, 512)


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (kl.VGG, {"input_shape": (None, None, 3)}, "`include_top=True` needs a fixed input size"),
        (kl.AlexNet, {"input_shape": (None, 227, 3)}, "Pass input_shape=(224, 224, 3)"),
        (kl.AlexNet, {"version": "original", "input_shape": (None, None, 3)}, "Pass input_shape=(227, 227, 3)"),
        # The published classifier takes the map of a 224 input only, keras.applications' rule;
        # named before any download.
        (kl.VGG, {"weights": "imagenet", "input_shape": (200, 200, 3)}, "needs input_shape=(224, 224, 3)"),
        (kl.AlexNet, {"weights": "imagenet", "input_shape": (227, 227, 3)}, "needs input_shape=(224, 224, 3)"),
        (kl.AlexNet, {"input_shape": (62, 100, 3)}, "input height must be at least 63 pixels"),
        (kl.AlexNet, {"version": "original", "input_shape": (100, 54, 3)}, "input width must be at least 55 pixels"),
        (kl.AlexNet, {"lrn": "caffe"}, "`lrn` applies to version='original' only"),
        (kl.AlexNet, {"version": "original", "lrn": "torch"}, "`lrn` must be one of ('caffe', 'paper')"),
        (kl.AlexNet, {"version": "2012"}, "`version` must be one of ('torchvision', 'original')"),
        (kl.VGG, {"depth": 12}, "`depth` must be one of (11, 13, 16, 19)"),
        (kl.VGG, {"batch_norm": 1}, "`batch_norm` must be True or False"),
        (kl.VGG, {"dropout_rate": 1.0}, "`dropout_rate`"),
    ],
)
def test_bad_input_is_named_before_any_layer(builder, kwargs, message, monkeypatch):
    def fail(*args, **kw):
        raise AssertionError("a layer was built before the arguments were checked")

    monkeypatch.setattr(keras.layers.Layer, "__init__", fail)
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        builder(**kwargs)
