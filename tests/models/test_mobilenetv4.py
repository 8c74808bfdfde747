"""MobileNetV4 (conv and hybrid): what the registry-wide tests do not check.

timm's parameter count for every variant, the mobile multi-query attention block against timm's
``MobileAttention`` (with and without the strided key/value downsampling, a layer scale that does not
hide the branch), the hybrid against timm with every layer scale randomized (the registry's comparison
keeps timm's 1e-5 init, under which the attention barely shows), the hybrids' static input size, and the
attention in fully integer INT8 TFLite (post-training, and quantization-aware on one attention block).
Outputs of conv-small and hybrid-medium against timm are in test_torch_reference.py.
"""

import re

import keras
import numpy as np
import pytest
from inference import infer
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets.deploy import export_tflite, fit_quantize_aware, quantize_aware
from keras_lightnets.layers.anti_aliasing import anti_aliased_downsample
from keras_lightnets.layers.mobile_attention import mobile_attention
from keras_lightnets.models.mobilenetv4 import _TIMM_PARTS, FAMILY, block_plan, timm_name
from keras_lightnets.weights import load_torch_weights

TOLERANCE = 1e-5


def _randomize_layer_scales(torch, module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("layer_scale.gamma"):
                parameter.copy_(0.5 + torch.rand(parameter.shape, generator=generator))


def _compare(torch, reference, ours, key_map, x):
    reference.eval()
    randomize_batchnorm(torch, reference, 0)
    _randomize_layer_scales(torch, reference)
    load_torch_weights(ours, reference, key_map)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    if expected.ndim == 4:
        expected = expected.transpose(0, 2, 3, 1)
    return float(np.abs(expected - infer(ours, x)).max()), float(np.abs(expected).max())


def test_every_variant_has_timms_parameter_count():
    torch, timm = import_reference("timm")
    for variant in FAMILY.variants:
        size, alpha, aa = variant.kwargs["size"], variant.kwargs["alpha"], variant.kwargs.get("anti_aliasing")
        assert variant.name == timm_name(size, alpha, aa)
        reference = timm.create_model(variant.name, pretrained=False)
        params = sum(p.numel() for p in reference.parameters() if p.requires_grad)
        assert variant.reference.params == params, variant.name  # ours == Reference: test_variants.py


@pytest.mark.parametrize("kv_stride", [1, 2])
def test_mobile_attention_matches_timm(kv_stride):
    torch, timm = import_reference("timm")
    torch.manual_seed(kv_stride)
    reference = timm.models._efficientnet_blocks.MobileAttention(
        32, 32, num_heads=4, key_dim=16, value_dim=8, kv_stride=kv_stride, use_multi_query=True,
        layer_scale_init_value=1e-5,
    )  # fmt: skip
    inputs = keras.Input((9, 11, 32))
    outputs = mobile_attention(
        inputs, 32, num_heads=4, key_dim=16, value_dim=8, kv_stride=kv_stride, layer_scale=1e-5, name="mqa"
    )
    ours = keras.Model(inputs, outputs)
    parts = _TIMM_PARTS["mqa"]
    key_map = (("(" + "|".join(map(re.escape, parts)) + ")", lambda m: f"mqa_{parts[m[1]]}"),)
    x = np.random.default_rng(kv_stride).standard_normal((2, 9, 11, 32)).astype("float32")
    diff, scale = _compare(torch, reference, ours, key_map, x)
    assert diff <= TOLERANCE * max(1.0, scale), (diff, scale)
    assert scale > 1.0  # the attention branch, scaled by ~1, shows in the output


def test_hybrid_medium_with_random_layer_scales_matches_timm():
    torch, timm = import_reference("timm")
    torch.manual_seed(0)
    reference = timm.create_model("mobilenetv4_hybrid_medium")
    ours = kl.create_model("mobilenetv4_hybrid_medium", input_shape=(64, 72, 3), classifier_activation=None)
    x = np.random.default_rng(0).standard_normal((2, 64, 72, 3)).astype("float32")
    diff, scale = _compare(torch, reference, ours, kl.get_entry("mobilenetv4_hybrid_medium").key_map, x)
    assert diff <= 1e-4 * max(1.0, scale), (diff, scale)


@pytest.mark.parametrize(("ours", "theirs"), [("avg", "avg"), ("blur", "blurpc")])
def test_anti_aliased_downsampling_matches_timm(ours, theirs):
    """The two low-pass pools against timm's ``create_aa`` on odd and even sizes (7x8: floor for the
    average pool, ceil for the padded blur), and in a model: the strided convolutions run at stride 1."""
    torch, timm = import_reference("timm")
    x = np.random.default_rng(0).standard_normal((2, 7, 8, 3)).astype("float32")
    reference = timm.layers.create_aa(theirs, channels=3, stride=2)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    inputs = keras.Input((7, 8, 3))
    actual = infer(keras.Model(inputs, anti_aliased_downsample(inputs, ours, name="aa")), x)
    assert expected.shape == actual.shape == ((2, 3, 4, 3) if ours == "avg" else (2, 4, 4, 3))
    assert np.abs(expected - actual).max() <= 1e-6
    with keras.StatelessScope(initialize_variables=False):
        model = kl.MobileNetV4("conv_medium", anti_aliasing=ours, input_shape=(64, 64, 3))
    strided = [layer.name for layer in model.layers if getattr(layer, "strides", (1, 1)) != (1, 1)]
    assert "stem_conv" in strided  # timm's stem is not anti-aliased
    assert all(name == "stem_conv" or name.endswith("_aa") for name in strided), strided
    assert len(strided) == 1 + 4  # the stem and one downsampling block per stage


def test_anti_aliasing_is_checked():
    with pytest.raises(ValueError, match=r"`anti_aliasing`.*'avg', 'blur'"):
        kl.MobileNetV4("conv_medium", anti_aliasing="blurpc")


def test_block_plans_and_layer_names():
    kinds = {
        size: [kind for stage in block_plan(size) for kind, _ in stage] for size in ("conv_small", "hybrid_medium")
    }
    assert kinds["conv_small"].count("cn") == 5 and kinds["conv_small"].count("uir") == 12
    # "uir_r4_a5_k5_s2_e4_c512" (conv-large's stride-32 stage): one stride-2 block, then three of stride 1
    assert [options["s"] for _, options in block_plan("conv_large")[3][:5]] == [2, 1, 1, 1, 1]
    plan = block_plan("hybrid_medium")
    attention = [options for stage in plan for kind, options in stage if kind == "mqa"]
    assert len(attention) == 8 and [options.get("v", 1) for options in attention] == [2] * 4 + [1] * 4
    assert kinds["hybrid_medium"].count("uir") == 2 + 8 + 12 and kinds["hybrid_medium"].count("er") == 1
    with keras.StatelessScope(initialize_variables=False):
        model = kl.create_model("mobilenetv4_hybrid_medium", input_shape=(64, 64, 3))
    names = {layer.name for layer in model.layers}
    assert {
        "block3e_attn_key_down_conv",
        "block3e_attn_scores",
        "block3e_attn_softmax",
        "block4i_attn_context",
    } <= names
    assert "block4i_attn_key_down_conv" not in names  # stage 4's attention: no key/value downsampling
    # Standard layers only, but for the layer scales (one per uir / mqa block) and the model card.
    custom = {type(layer).__name__ for layer in model.layers if type(layer).__module__.startswith("keras_lightnets")}
    assert custom <= {"LayerScale", "ModelCard"}


def test_hybrids_need_a_static_input_size_the_conv_models_do_not():
    with keras.StatelessScope(initialize_variables=False):
        with pytest.raises(ValueError, match=r"static input height.*multi-query attention"):
            kl.create_model("mobilenetv4_hybrid_medium", input_shape=(None, None, 3))
        model = kl.create_model("mobilenetv4_conv_small", input_shape=(None, None, 3))
    assert model.input_shape == (None, None, None, 3)


def test_hybrid_exports_to_fully_integer_int8(tmp_path):
    model = kl.create_model(
        "mobilenetv4_hybrid_medium_075", input_shape=(64, 64, 3), classes=10, classifier_activation=None
    )
    images = [np.random.default_rng(i).standard_normal((1, 64, 64, 3)).astype("float32") for i in range(4)]
    result = export_tflite(model, tmp_path / "hybrid.tflite", quantization="int8", representative_data=images)
    assert result.float_operator_count == 0 and result.summary.builtin_only
    assert result.summary.float_tensors_inside == ()
    # Each of the 8 attention blocks: two int8 BATCH_MATMULs and one int8 SOFTMAX.
    assert result.summary.operators.count("BATCH_MATMUL") == 16 and result.summary.operators.count("SOFTMAX") == 8


def test_one_attention_block_through_quantization_aware_training_to_int8(tmp_path):
    inputs = keras.Input((32, 32, 3))  # QAT's fit takes 32 px or more
    x = kl.layers.conv_bn_act(inputs, 16, 3, 4, name="stem")
    x = mobile_attention(x, 16, num_heads=2, key_dim=8, value_dim=8, kv_stride=2, layer_scale=1e-5, name="mqa")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="predictions")(x))
    qat_model = quantize_aware(model)
    fit_quantize_aware(
        qat_model, epochs=1, steps_per_epoch=1, batch_size=8, validation_split=None, calibration_steps=1,
        precise_bn_steps=1, run_eagerly=True, verbose=0,
    )  # fmt: skip
    result = export_tflite(qat_model, tmp_path / "mqa.tflite", quantization="int8")
    assert result.float_operator_count == 0 and result.summary.builtin_only
    assert result.summary.operators.count("BATCH_MATMUL") == 2 and result.summary.operators.count("SOFTMAX") == 1
