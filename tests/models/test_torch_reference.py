"""ReXNet, MobileNetV1 and SqueezeNet reproduce their PyTorch references (timm, torchvision):
weights copied across by name through each family's key map, random BatchNorm statistics, a
non-square input, max abs diff <= 1e-4.

Skips with the reason when the reference cannot be imported (see tests/torch_reference.py)."""

import numpy as np
import pytest
from reference_diffs import record_reference_diff
from torch_reference import import_reference

import keras_lightnets as kl
from keras_lightnets.models.mobilenet import TIMM_KEY_MAP as MOBILENETV1_TIMM
from keras_lightnets.models.rexnet import TIMM_KEY_MAP as REXNET_TIMM
from keras_lightnets.models.squeezenet import TORCHVISION_KEY_MAPS as SQUEEZENET_TORCHVISION
from keras_lightnets.weights import load_torch_weights

pytestmark = pytest.mark.reference
INPUT_SHAPE = (160, 192, 3)
TOLERANCE = 1e-4


def randomize_batchnorm(torch, module, seed=0):
    """Non-trivial BN statistics and affine terms, so a BN mix-up cannot hide."""
    generator = torch.Generator().manual_seed(seed)
    for child in module.modules():
        if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
            shape = child.running_mean.shape
            child.running_mean.copy_(torch.randn(shape, generator=generator) * 0.1)
            child.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            child.weight.data.copy_(torch.rand(shape, generator=generator) + 0.5)
            child.bias.data.copy_(torch.randn(shape, generator=generator) * 0.1)


def compare(torch, reference, ours, key_map, input_shape, seed=0):
    reference.eval()
    randomize_batchnorm(torch, reference, seed)
    load_torch_weights(ours, reference, key_map)
    x = np.random.default_rng(seed).standard_normal((2, *input_shape)).astype("float32")
    expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    return float(np.abs(expected - ours.predict(x, verbose=0)).max())


@pytest.mark.parametrize("width", [1.0, 1.3, 1.5, 2.0, 3.0])
def test_rexnet_matches_timm(width):
    torch, timm = import_reference("timm")
    torch.manual_seed(0)  # timm's random init: reproducible diffs from run to run
    name = f"rexnet_{round(width * 100):03d}"
    ours = kl.ReXNet(width, input_shape=INPUT_SHAPE, classifier_activation=None)
    diff = compare(torch, timm.create_model(name), ours, REXNET_TIMM, INPUT_SHAPE)
    record_reference_diff(name, f"timm {name}", diff)
    assert diff <= TOLERANCE


def test_mobilenetv1_matches_timm():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    # timm pads symmetrically and uses PyTorch's BN epsilon: the knobs reproduce it exactly.
    ours = kl.MobileNet(1.0, padding="symmetric", bn_epsilon=1e-5, input_shape=INPUT_SHAPE, classifier_activation=None)
    diff = compare(torch, timm.create_model("mobilenetv1_100"), ours, MOBILENETV1_TIMM, INPUT_SHAPE)
    record_reference_diff("mobilenetv1_100 (symmetric)", "timm mobilenetv1_100", diff)
    assert diff <= TOLERANCE


@pytest.mark.parametrize(
    "version, input_shape",
    [("1.0", INPUT_SHAPE), ("1.1", INPUT_SHAPE), ("1.0", (161, 190, 3)), ("1.1", (225, 224, 3))],
    ids=["1.0-160x192", "1.1-160x192", "1.0-161x190", "1.1-225x224"],
)
def test_squeezenet_matches_torchvision(version, input_shape):
    # Odd and even sizes exercise both rules of the ceil-mode max pooling.
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    name = f"squeezenet{version.replace('.', '_')}"
    reference = getattr(torchvision.models, name)()
    ours = kl.SqueezeNet(version, input_shape=input_shape, classifier_activation=None)
    diff = compare(torch, reference, ours, SQUEEZENET_TORCHVISION[version], input_shape)
    record_reference_diff(f"{name} {input_shape[0]}x{input_shape[1]}", f"torchvision {name}", diff)
    assert diff <= TOLERANCE


def test_torch_converter_names_the_layers_the_reference_lacks():
    # torchvision has no bypass: the complex-bypass shortcut convs are named as missing.
    torch, torchvision = import_reference("torchvision")
    ours = kl.SqueezeNet("1.1", bypass="complex")
    with pytest.raises(ValueError, match="missing") as error:
        load_torch_weights(ours, torchvision.models.squeezenet1_1(), SQUEEZENET_TORCHVISION["1.1"])
    for index in (2, 4, 6, 8):
        assert f"fire{index}_bypass_conv (Conv2D: kernel (1, 1, " in str(error.value)
    assert "unexpected" not in str(error.value)
