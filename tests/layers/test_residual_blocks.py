"""residual_block and bn_act_conv against their references: torchvision ResNet blocks, timm's ResNet-D and
RegNet blocks and keras.applications ResNet v1 (weights copied, random BatchNorm statistics, max abs
diff <= 1e-5), exact parameter counts, layer placement and option validation."""

import functools
import re

import keras
import numpy as np
import pytest
from keras import layers
from reference_diffs import record_reference_diff
from torch_reference import import_reference, randomize_batchnorm

from keras_lightnets.layers import StochasticDepth, bn_act_conv, residual_block, squeeze_excite

TOLERANCE = 1e-5


def build(input_shape, block, **options):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, block(inputs, name="b", **options))


def infer(model, x):
    """Inference-mode output; an eager call, cheaper than ``predict`` for these tiny inputs."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --- copying PyTorch weights, written out ------------------------------------------------------------


def copy_conv(torch_conv, keras_conv):
    # PyTorch (out, in / groups, kh, kw) → Keras (kh, kw, in / groups, out)
    weights = [torch_conv.weight.numpy().transpose(2, 3, 1, 0)]
    if torch_conv.bias is not None:
        weights.append(torch_conv.bias.numpy())
    keras_conv.set_weights(weights)


def copy_bn(torch_bn, keras_bn):
    keras_bn.set_weights(
        [t.numpy() for t in (torch_bn.weight, torch_bn.bias, torch_bn.running_mean, torch_bn.running_var)]
    )


def copy_weights(torch, model, mapping):
    """``mapping``: Keras layer name → the PyTorch ``Conv2d`` or ``BatchNorm2d`` whose weights it gets."""
    for layer_name, module in mapping.items():
        copy = copy_conv if isinstance(module, torch.nn.Conv2d) else copy_bn
        copy(module, model.get_layer(layer_name))


def unit(prefix, conv, bn):
    return {f"{prefix}_conv": conv, f"{prefix}_bn": bn}


def max_abs_diff(torch, reference, model, input_shape, seed=0):
    x = np.random.default_rng(seed).standard_normal((2, *input_shape)).astype("float32")
    expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    actual = infer(model, x)
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max())


def prepare(torch, reference, seed=0):
    reference.eval()
    randomize_batchnorm(torch, reference, seed)
    return reference


# Each reference test loops over its cases instead of being parametrized: with torch and timm imported,
# the per-test keras.backend.clear_session() (a full gc.collect) costs about a second.

# --- torchvision ResNet v1.5 / ResNeXt ---------------------------------------------------------------


def test_basic_block_matches_torchvision():
    torch, torchvision = import_reference("torchvision")
    from torchvision.models.resnet import BasicBlock, conv1x1

    torch.manual_seed(0)
    for inplanes, planes, stride, size in [(16, 16, 1, 8), (16, 32, 2, 8), (16, 32, 2, 7)]:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = torch.nn.Sequential(conv1x1(inplanes, planes, stride), torch.nn.BatchNorm2d(planes))
        reference = prepare(torch, BasicBlock(inplanes, planes, stride, downsample))
        model = build((size, size, inplanes), residual_block, filters=planes, strides=stride, kind="basic")
        mapping = {**unit("b_conv1", reference.conv1, reference.bn1), **unit("b_conv2", reference.conv2, reference.bn2)}
        if downsample is not None:
            mapping.update(unit("b_shortcut", *downsample))
        copy_weights(torch, model, mapping)
        assert (downsample is None) == ("b_shortcut_conv" not in [layer.name for layer in model.layers])
        assert trainable_params(model) == sum(p.numel() for p in reference.parameters())
        diff = max_abs_diff(torch, reference, model, (size, size, inplanes))
        record_reference_diff(
            f"residual_block basic {inplanes}-{planes}/{stride} {size}px", "torchvision BasicBlock", diff
        )
        assert diff <= TOLERANCE, (inplanes, planes, stride, size)


def test_bottleneck_matches_torchvision():
    torch, torchvision = import_reference("torchvision")
    from torchvision.models.resnet import Bottleneck, conv1x1

    torch.manual_seed(0)
    # (inplanes, planes, stride, groups, base_width, size): ResNet identity, ResNet /2 on an odd size, ResNeXt 32x4d /2
    for inplanes, planes, stride, groups, base_width, size in [
        (64, 16, 1, 1, 64, 8),
        (32, 16, 2, 1, 64, 7),
        (64, 32, 2, 32, 4, 8),
    ]:
        out = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or inplanes != out:
            downsample = torch.nn.Sequential(conv1x1(inplanes, out, stride), torch.nn.BatchNorm2d(out))
        reference = prepare(
            torch, Bottleneck(inplanes, planes, stride, downsample, groups=groups, base_width=base_width)
        )
        width = int(planes * base_width / 64) * groups  # torchvision's rule
        model = build(
            (size, size, inplanes), residual_block, filters=out, strides=stride, bottleneck_width=width, groups=groups
        )
        assert model.get_layer("b_conv2_conv").groups == groups
        mapping = {}
        for i in (1, 2, 3):
            mapping.update(unit(f"b_conv{i}", getattr(reference, f"conv{i}"), getattr(reference, f"bn{i}")))
        if downsample is not None:
            mapping.update(unit("b_shortcut", *downsample))
        copy_weights(torch, model, mapping)
        assert trainable_params(model) == sum(p.numel() for p in reference.parameters())
        diff = max_abs_diff(torch, reference, model, (size, size, inplanes))
        case = f"{inplanes}-{out}/{stride} g{groups} {size}px"
        record_reference_diff(f"residual_block bottleneck {case}", "torchvision Bottleneck", diff)
        assert diff <= TOLERANCE, case


# --- timm: ResNet-D (avg_down) and RegNet X / Y -----------------------------------------------------------


def test_avg_down_matches_timm_resnet_d():
    # 7 px: the pool's last window is partial (PyTorch ceil_mode=True, count_include_pad=False).
    torch, timm = import_reference("timm")
    from timm.models.resnet import Bottleneck, downsample_avg

    torch.manual_seed(0)
    inplanes, planes = 32, 16
    for size in (8, 7):
        downsample = downsample_avg(inplanes, planes * 4, kernel_size=1, stride=2)
        reference = prepare(torch, Bottleneck(inplanes, planes, stride=2, downsample=downsample))
        model = build((size, size, inplanes), residual_block, filters=planes * 4, strides=2, avg_down=True)
        mapping = unit("b_shortcut", downsample[1], downsample[2])
        for i in (1, 2, 3):
            mapping.update(unit(f"b_conv{i}", getattr(reference, f"conv{i}"), getattr(reference, f"bn{i}")))
        copy_weights(torch, model, mapping)
        diff = max_abs_diff(torch, reference, model, (size, size, inplanes))
        record_reference_diff(f"residual_block avg_down {size}px", "timm resnet Bottleneck+downsample_avg", diff)
        assert diff <= TOLERANCE, size


def test_regnet_block_matches_timm():
    # timm's RegNet Bottleneck is pycls's ResBottleneckBlock (bot_mul 1, SE after the 3x3, width round(se_r * w_in)).
    torch, timm = import_reference("timm")
    from timm.models.regnet import Bottleneck

    torch.manual_seed(0)
    # (w_in, w_out, stride, group_width, se_ratio): Y /2, Y identity, X /2
    for w_in, w_out, stride, group_width, se_ratio in [
        (24, 56, 2, 8, 0.25),
        (56, 56, 1, 8, 0.25),
        (32, 64, 2, 16, 0.0),
    ]:
        reference = prepare(torch, Bottleneck(w_in, w_out, stride, group_size=group_width, se_ratio=se_ratio))
        se = functools.partial(squeeze_excite, hidden=int(round(se_ratio * w_in))) if se_ratio else None
        model = build(
            (8, 8, w_in),
            residual_block,
            filters=w_out,
            strides=stride,
            bottleneck_width=w_out,
            group_width=group_width,
            se=se,
        )
        assert model.get_layer("b_conv2_conv").groups == w_out // group_width
        mapping = {}
        for i in (1, 2, 3):
            mapping.update(unit(f"b_conv{i}", getattr(reference, f"conv{i}").conv, getattr(reference, f"conv{i}").bn))
        if se is not None:
            mapping.update(b_se_reduce=reference.se.fc1, b_se_expand=reference.se.fc2)
        if stride != 1 or w_in != w_out:
            mapping.update(unit("b_shortcut", reference.downsample.conv, reference.downsample.bn))
        copy_weights(torch, model, mapping)
        assert trainable_params(model) == sum(p.numel() for p in reference.parameters())
        diff = max_abs_diff(torch, reference, model, (8, 8, w_in))
        case = f"{w_in}-{w_out}/{stride} se{se_ratio}"
        record_reference_diff(f"residual_block regnet {case}", "timm regnet Bottleneck", diff)
        assert diff <= TOLERANCE, case


# --- keras.applications ResNet v1 ------------------------------------------------------------------------


def test_keras_resnet_v1_options_match_keras_applications():
    # keras.applications ResNet50 is v1: stride on the first 1x1, biased convs, BN eps 1.001e-5, "same" padding.
    reference = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    for layer in reference.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            shape = gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape),
                    rng.normal(0, 0.1, shape),
                    rng.normal(0, 0.1, shape),
                    rng.uniform(0.5, 1.5, shape),
                ]
            )
    keras_v1 = dict(stride_on="1x1", use_bias=True, bn_epsilon=1.001e-5, bn_momentum=0.99, padding="same")
    inputs = keras.Input((8, 8, 256))
    x = residual_block(inputs, 512, 2, bottleneck_width=128, name="block1", **keras_v1)
    x = residual_block(x, 512, bottleneck_width=128, name="block2", **keras_v1)
    ours = keras.Model(inputs, x)
    unit = {"0": "shortcut", "1": "conv1", "2": "conv2", "3": "conv3"}
    for block in ("block1", "block2"):
        for index, ours_unit in unit.items():
            if block == "block2" and index == "0":
                continue
            for kind in ("conv", "bn"):
                weights = reference.get_layer(f"conv3_{block}_{index}_{kind}").get_weights()
                ours.get_layer(f"{block}_{ours_unit}_{kind}").set_weights(weights)
    assert ours.get_layer("block1_conv1_bn").momentum == reference.get_layer("conv3_block1_1_bn").momentum
    stage = keras.Model(reference.get_layer("conv2_block3_out").output, reference.get_layer("conv3_block2_out").output)
    assert trainable_params(ours) == trainable_params(stage)
    x = rng.standard_normal((2, 8, 8, 256)).astype("float32")
    diff = float(np.abs(infer(ours, x) - infer(stage, x)).max())
    record_reference_diff("residual_block keras v1 (2 blocks)", "keras.applications ResNet50 conv3", diff)
    assert diff <= TOLERANCE


# --- exact parameter counts ----------------------------------------------------------------------------


def bn(c):
    return 2 * c  # gamma, beta (PyTorch's convention: moving statistics are not parameters)


PARAMETER_COUNTS = {
    # case: (input channels, options, expected count written out)
    # 3x3 64→128 /2, 3x3 128→128, projection 1x1 64→128
    "resnet18 layer2.0": (
        64,
        dict(filters=128, strides=2, kind="basic"),
        9 * 64 * 128 + bn(128) + 9 * 128 * 128 + bn(128) + 64 * 128 + bn(128),
    ),
    # 1x1 64→64, 3x3 64→64, 1x1 64→256, projection 64→256
    "resnet50 layer1.0": (
        64,
        dict(filters=256),
        64 * 64 + bn(64) + 9 * 64 * 64 + bn(64) + 64 * 256 + bn(256) + 64 * 256 + bn(256),
    ),
    # width int(64 * 4 / 64) * 32 = 128, 3x3 with 32 groups of 4 channels
    "resnext50_32x4d layer1.0": (
        64,
        dict(filters=256, bottleneck_width=128, groups=32),
        64 * 128 + bn(128) + 9 * (128 // 32) * 128 + bn(128) + 128 * 256 + bn(256) + 64 * 256 + bn(256),
    ),
    # the same as ResNet-50 layer1.0 plus the four conv biases
    "keras ResNet50 conv2_block1": (
        64,
        dict(filters=256, stride_on="1x1", use_bias=True, padding="same"),
        (64 * 64 + 64) + bn(64) + (9 * 64 * 64 + 64) + bn(64) + (64 * 256 + 256) + bn(256) + (64 * 256 + 256) + bn(256),
    ),
    # w_in 32, w_out 48, group width 8 (6 groups), SE width round(0.25 * 32) = 8 with biases
    "regnety_004 stage1 block1": (
        32,
        dict(filters=48, strides=2, bottleneck_width=48, group_width=8, se=functools.partial(squeeze_excite, hidden=8)),
        32 * 48 + bn(48) + 9 * 8 * 48 + bn(48) + (48 * 8 + 8) + (8 * 48 + 48) + 48 * 48 + bn(48) + 32 * 48 + bn(48),
    ),
    # identity shortcut: no projection parameters
    "resnet50 layer1.1": (256, dict(filters=256), 256 * 64 + bn(64) + 9 * 64 * 64 + bn(64) + 64 * 256 + bn(256)),
}


def test_exact_parameter_counts():
    for case, (input_channels, options, expected) in PARAMETER_COUNTS.items():
        model = build((8, 8, input_channels), residual_block, **options)
        assert trainable_params(model) == expected, case


# --- where things are ----------------------------------------------------------------------------------


def test_stride_on_puts_the_stride_there():
    for stride_on, conv1_stride, conv2_stride in [("3x3", 1, 2), ("1x1", 2, 1)]:
        model = build((8, 8, 16), residual_block, filters=32, strides=2, stride_on=stride_on)
        assert model.get_layer("b_conv1_conv").strides == (conv1_stride, conv1_stride), stride_on
        assert model.get_layer("b_conv2_conv").strides == (conv2_stride, conv2_stride), stride_on
        assert model.get_layer("b_conv3_conv").strides == (1, 1)
        assert model.get_layer("b_shortcut_conv").strides == (2, 2)
        assert model.output_shape == (None, 4, 4, 32)
    # basic: the first 3x3 strides
    model = build((8, 8, 16), residual_block, filters=16, strides=2, kind="basic")
    assert model.get_layer("b_conv1_conv").strides == (2, 2)
    assert model.get_layer("b_conv2_conv").strides == (1, 1)
    assert model.get_layer("b_shortcut_conv").strides == (2, 2)  # stride alone needs a projection


def test_zero_init_last_bn_starts_as_the_activated_shortcut(rng):
    for kind, input_channels, strides in [("bottleneck", 32, 1), ("bottleneck", 16, 2), ("basic", 32, 1)]:
        options = dict(filters=32, strides=strides, kind=kind)
        model = build((8, 8, input_channels), residual_block, zero_init_last_bn=True, **options)
        last = "b_conv3_bn" if kind == "bottleneck" else "b_conv2_bn"
        np.testing.assert_array_equal(model.get_layer(last).gamma.numpy(), 0.0)
        projected = input_channels != 32 or strides != 1
        x = rng.standard_normal((2, 8, 8, input_channels)).astype("float32")
        shortcut = x
        if projected:  # the shortcut's BN is not zero-initialized
            np.testing.assert_array_equal(model.get_layer("b_shortcut_bn").gamma.numpy(), 1.0)
            shortcut = infer(keras.Model(model.input, model.get_layer("b_shortcut_bn").output), x)
        np.testing.assert_array_equal(infer(model, x), np.maximum(shortcut, 0.0))
        default = build((8, 8, input_channels), residual_block, **options)
        np.testing.assert_array_equal(default.get_layer(last).gamma.numpy(), 1.0)


def test_avg_down_layers():
    model = build((8, 8, 16), residual_block, filters=32, strides=2, avg_down=True)
    pool = model.get_layer("b_shortcut_pool")
    assert isinstance(pool, layers.AveragePooling2D) and pool.pool_size == (2, 2) and pool.strides == (2, 2)
    assert model.get_layer("b_shortcut_conv").strides == (1, 1)
    # stride 1 with a width change: a plain 1x1 projection, no pool (timm: Identity)
    names = [layer.name for layer in build((8, 8, 16), residual_block, filters=32, avg_down=True).layers]
    assert "b_shortcut_conv" in names and "b_shortcut_pool" not in names


def test_drop_path_only_when_rate_is_positive():
    model = build((8, 8, 32), residual_block, filters=32, drop_path_rate=0.2)
    layer = model.get_layer("b_drop_path")
    assert isinstance(layer, StochasticDepth) and layer.rate == 0.2
    assert model.get_layer("b_add").input[1] is layer.output  # the Add takes [shortcut, residual branch]
    names = [layer.name for layer in build((8, 8, 32), residual_block, filters=32).layers]
    assert not any(name.endswith("drop_path") for name in names)


def test_layer_names_and_final_activation():
    se = functools.partial(squeeze_excite, hidden=4)
    model = build((8, 8, 16), residual_block, filters=32, strides=2, se=se, drop_path_rate=0.1)
    assert {layer.name for layer in model.layers[1:]} == {
        "b_conv1_conv", "b_conv1_bn", "b_conv1_act",
        "b_conv2_pad", "b_conv2_conv", "b_conv2_bn", "b_conv2_act",
        "b_se_pool", "b_se_reduce", "b_se_act", "b_se_expand", "b_se_gate", "b_se",
        "b_conv3_conv", "b_conv3_bn", "b_shortcut_conv", "b_shortcut_bn",
        "b_drop_path", "b_add", "b_out",
    }  # fmt: skip
    assert model.layers[-1].name == "b_out"
    assert model.get_layer("b_conv1_bn").epsilon == 1e-5 and model.get_layer("b_conv1_bn").momentum == 0.9
    linear = build((8, 8, 32), residual_block, filters=32, final_activation=False)
    assert linear.layers[-1].name == "b_add"
    silu = build((8, 8, 32), residual_block, filters=32, activation="silu")
    assert silu.get_layer("b_out").get_config()["activation"] == "silu"


# --- pre-activation unit -------------------------------------------------------------------------------


def numpy_conv(x, kernel, stride, pad, groups):
    """NHWC cross-correlation with ``pad`` zeros on every side, grouped, written out."""
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw, cin_g, cout = kernel.shape
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    cout_g = cout // groups
    out = np.zeros((x.shape[0], out_h, out_w, cout), np.float64)
    for g in range(groups):
        xs = x[..., g * cin_g : (g + 1) * cin_g]
        ks = kernel[..., g * cout_g : (g + 1) * cout_g]
        for i in range(out_h):
            for j in range(out_w):
                window = xs[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
                out[:, i, j, g * cout_g : (g + 1) * cout_g] = np.einsum("nhwc,hwco->no", window, ks)
    return out


def test_bn_act_conv_equals_numpy(rng):
    # (kernel, stride, groups, activation, size): 1x1; 3x3 /2 grouped on an odd size (symmetric padding); no activation
    for kernel_size, strides, groups, activation, size in [
        (1, 1, 1, "relu", 6),
        (3, 2, 2, "relu", 7),
        (3, 1, 1, None, 6),
    ]:
        options = dict(kernel_size=kernel_size, strides=strides, groups=groups, activation=activation, use_bias=True)
        model = build((size, size, 4), bn_act_conv, filters=6, **options)
        gamma, beta, mean, var = (
            rng.uniform(0.5, 1.5, 4),
            rng.normal(0, 0.1, 4),
            rng.normal(0, 0.1, 4),
            rng.uniform(0.5, 1.5, 4),
        )
        model.get_layer("b_bn").set_weights([gamma, beta, mean, var])
        kernel = rng.standard_normal((kernel_size, kernel_size, 4 // groups, 6)) * 0.3
        bias = rng.normal(0, 0.1, 6)
        model.get_layer("b_conv").set_weights([kernel, bias])
        x = rng.standard_normal((2, size, size, 4)).astype("float32")
        y = (x - mean) / np.sqrt(var + 1e-5) * gamma + beta
        if activation == "relu":
            y = np.maximum(y, 0.0)
        expected = numpy_conv(y, kernel, strides, kernel_size // 2, groups) + bias
        np.testing.assert_allclose(infer(model, x), expected, rtol=0, atol=TOLERANCE, err_msg=str(options))
        names = [layer.name for layer in model.layers[1:]]
        assert names[0] == "b_bn" and names[-1] == "b_conv" and ("b_act" in names) == (activation is not None)


# --- validation ----------------------------------------------------------------------------------------


BAD_RESIDUAL_BLOCK_OPTIONS = [
    (dict(kind="wide"), "kind"),
    (dict(filters=0), "filters"),
    (dict(strides=3), "strides"),
    (dict(stride_on="2x2"), "stride_on"),
    (dict(bottleneck_width=0), "bottleneck_width"),
    (dict(groups=3), "groups"),  # 64 // 4 = 16 channels do not split into 3 groups
    (dict(group_width=5), "group_width"),
    (dict(groups=2, group_width=8), "group_width"),
    (dict(kind="basic", groups=2), "groups"),
    (dict(kind="basic", bottleneck_width=16), "bottleneck_width"),
    (dict(kind="basic", stride_on="1x1"), "stride_on"),
    (dict(se="squeeze_excite"), "se"),
    (dict(drop_path_rate=1.0), "drop_path_rate"),
    (dict(activation="mish"), "activation"),
    (dict(padding="reflect"), "padding"),
]


def assert_value_error_names(option, block, *args, **kwargs):
    try:
        block(*args, **kwargs)
    except ValueError as error:
        assert re.search(rf"\b{option}\b", str(error)), f"{option} not named in: {error}"
    else:
        pytest.fail(f"bad {option} did not raise ValueError")


def test_bad_options_raise_naming_the_option():
    for options, option in BAD_RESIDUAL_BLOCK_OPTIONS:
        assert_value_error_names(
            option, residual_block, keras.Input((8, 8, 16)), **{"filters": 64, **options}, name="b"
        )
    for options, option in [
        (dict(activation="mish"), "activation"),
        (dict(groups=3), "groups"),
        (dict(padding="reflect"), "padding"),
    ]:
        assert_value_error_names(option, bn_act_conv, keras.Input((8, 8, 16)), 32, 3, **options, name="b")
