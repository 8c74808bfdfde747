"""Every variant whose table row says ``equals="timm:..."`` or ``"torchvision:..."`` reproduces that
PyTorch model: weights copied across by name through the variant's key map, random BatchNorm
statistics, an odd non-square input, max abs diff <= 1e-4 times the output scale (at least 1). The
cases come from the registry (the variants marked ``compared``); a few
extra cases check knobs (timm's MobileNetV1 conventions) and odd input sizes.

Skips with the reason when the reference cannot be imported (see tests/torch_reference.py)."""

import numpy as np
import pytest
from inference import infer
from reference_diffs import record_reference_diff
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.models.mobilenet import TIMM_KEY_MAP as MOBILENETV1_TIMM
from keras_lightnets.models.squeezenet import TORCHVISION_KEY_MAPS as SQUEEZENET_TORCHVISION
from keras_lightnets.weights import load_torch_weights

pytestmark = pytest.mark.reference
INPUT_SHAPE = (161, 190, 3)
TOLERANCE = 1e-4  # times max(1, largest output): deep random residual stacks reach outputs of 1e3-1e4
# AlexNet and VGG flatten their last map; torchvision's adaptive average pool before the flatten is
# the identity only on the map of the published size (6x6, 7x7), so they compare at an odd,
# non-square input that gives that map.
FIXED_HEAD_INPUT_SHAPES = {"alexnet": (225, 226, 3), "vgg": (225, 239, 3)}


def compare(torch, reference, ours, key_map, input_shape, seed=0):
    reference.eval()
    randomize_batchnorm(torch, reference, seed)
    load_torch_weights(ours, reference, key_map)
    x = np.random.default_rng(seed).standard_normal((2, *input_shape)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    return float(np.abs(expected - infer(ours, x)).max()), float(np.abs(expected).max())


CASES = [
    name
    for name in kl.list_models()
    if kl.get_entry(name).reference_call[0] in ("timm", "torchvision") and kl.get_entry(name).compared
]


def test_the_pytorch_born_variants_are_compared():
    assert {"rexnet_090", "rexnet_100", "rexnet_220", "rexnet_300", "squeezenet1_0", "squeezenet1_1"} <= set(CASES)
    assert {"resnet18", "resnet50", "resnext50_32x4d", "resnet34"} <= set(CASES)
    assert {"regnetx_002", "regnety_002", "regnetx_080", "regnety_040"} <= set(CASES)
    assert {"alexnet", "vgg11_bn"} <= set(CASES)


def within_tolerance(diff, scale):
    return diff <= TOLERANCE * max(1.0, scale)


def reference_model(entry):
    """The PyTorch module ``entry.equals`` names (timm or torchvision)."""
    kind, name, kwargs = entry.reference_call
    torch, library = import_reference(kind)
    torch.manual_seed(0)  # the reference's random init: reproducible diffs from run to run
    if kind == "timm":
        return torch, library.create_model(name, **kwargs)
    return torch, getattr(library.models, name)(**kwargs)


@pytest.mark.parametrize("name", CASES)
def test_matches_its_pytorch_reference(name):
    entry = kl.get_entry(name)
    torch, reference = reference_model(entry)
    input_shape = FIXED_HEAD_INPUT_SHAPES.get(entry.family, INPUT_SHAPE)
    ours = kl.create_model(name, input_shape=input_shape, classifier_activation=None)
    diff, scale = compare(torch, reference, ours, entry.key_map, input_shape)
    # Relative where the output is large (random BN statistics: MobileOne-S0 reaches 1e16): what the tolerance says.
    reference = entry.equals.replace(":", " ") + (f" (relative to {scale:.1e})" if scale > 1 else "")
    record_reference_diff(name, reference, diff / max(1.0, scale))
    assert within_tolerance(diff, scale), (diff, scale)


def test_mobilenetv1_matches_timm():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    # timm pads symmetrically and uses PyTorch's BN epsilon: the knobs reproduce it exactly.
    ours = kl.MobileNet(1.0, padding="symmetric", bn_epsilon=1e-5, input_shape=INPUT_SHAPE, classifier_activation=None)
    diff, scale = compare(torch, timm.create_model("mobilenetv1_100"), ours, MOBILENETV1_TIMM, INPUT_SHAPE)
    record_reference_diff("mobilenetv1_100 (symmetric)", "timm mobilenetv1_100", diff)
    assert within_tolerance(diff, scale), (diff, scale)


@pytest.mark.parametrize(
    "version, input_shape, dynamic",
    [("1.0", (161, 190, 3), False), ("1.1", (225, 224, 3), False), ("1.0", (161, 190, 3), True)],
    ids=["1.0-161x190", "1.1-225x224", "1.0-any-size-at-161x190"],
)
def test_squeezenet_matches_torchvision(version, input_shape, dynamic):
    # Odd and even sizes exercise both rules of the ceil-mode max pooling; built for any size,
    # the pools are CeilMaxPool2D layers and must give the same numbers.
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    name = f"squeezenet{version.replace('.', '_')}"
    reference = getattr(torchvision.models, name)()
    ours = kl.SqueezeNet(version, input_shape=(None, None, 3) if dynamic else input_shape, classifier_activation=None)
    assert any(type(layer).__name__ == "CeilMaxPool2D" for layer in ours.layers) == dynamic
    diff, scale = compare(torch, reference, ours, SQUEEZENET_TORCHVISION[version], input_shape)
    suffix = " any size" if dynamic else ""
    record_reference_diff(f"{name} {input_shape[0]}x{input_shape[1]}{suffix}", f"torchvision {name}", diff)
    assert within_tolerance(diff, scale), (diff, scale)


def test_torch_converter_names_the_layers_the_reference_lacks():
    # torchvision has no bypass: the complex-bypass shortcut convs are named as missing.
    torch, torchvision = import_reference("torchvision")
    ours = kl.SqueezeNet("1.1", bypass="complex")
    with pytest.raises(ValueError, match="missing") as error:
        load_torch_weights(ours, torchvision.models.squeezenet1_1(), SQUEEZENET_TORCHVISION["1.1"])
    for index in (2, 4, 6, 8):
        assert f"fire{index}_bypass_conv (Conv2D: kernel (1, 1, " in str(error.value)
    assert "unexpected" not in str(error.value)
