"""Every family with published weights, loaded through ``weights=TAG`` exactly as a user would,
from a 127.0.0.1 host laid out like the real one (:mod:`publisher`): a randomly initialized
reference's checkpoint, in the publisher's format, at the URL path of the variant's real source.

- timm's safetensors on the Hugging Face Hub, verified against the SHA-256 the Hub states: one
  variant per family (ReXNet, RegNet X and Y, RepVGG, MnasNet A1 and timm's B1, EfficientNet and
  -Lite, ResNet); outputs equal timm's model (<= 1e-4 of the output scale), a second load is
  offline (no request at all), a file corrupted on the host is rejected and removed.
- torchvision's ``.pth`` (pinned digest prefix): ResNet, MnasNet-B1 (SqueezeNet: test_pretrained.py).
- keras.applications' ``.h5`` (Keras 2 layout, in graph order): MobileNet, MobileNetV2 (the MD5
  GCS states), ResNet50 v1 (a pinned MD5; BGR input reversed to RGB) and EfficientNet-B0.
"""

import dataclasses
import hashlib
import io

import numpy as np
import pytest
from inference import infer
from publisher import Publisher
from torch_reference import import_reference, randomize_batchnorm

import keras_lightnets as kl
from keras_lightnets import registry
from keras_lightnets.models.variant import IMAGENET_MEAN, IMAGENET_STD
from keras_lightnets.weights.download import MIRROR_ENV, cache_dir

INPUT_SHAPE = (97, 130, 3)  # odd and non-square
TOLERANCE = 1e-4


@pytest.fixture
def publisher(tmp_path, monkeypatch):
    host = Publisher(tmp_path / "host")
    monkeypatch.setenv(MIRROR_ENV, host.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    yield host
    host.close()


def _source(name, tag):
    return next(source for source in kl.list_weights(name) if source.tag == tag)


def _x(seed=0):
    return np.random.default_rng(seed).standard_normal((2, *INPUT_SHAPE)).astype("float32")


def _timm_checkpoint(timm_name):
    """A random timm model (random BN statistics too) and its state dict as safetensors bytes."""
    torch, timm = import_reference("timm")
    from safetensors.torch import save

    torch.manual_seed(0)
    reference = timm.create_model(timm_name).eval()
    randomize_batchnorm(torch, reference)
    return torch, reference, save({k: v.contiguous() for k, v in reference.state_dict().items()})


def _torch_outputs(torch, reference, x):
    with torch.no_grad():
        return reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def _assert_close(ours, expected):
    assert np.abs(ours - expected).max() <= TOLERANCE * max(1.0, np.abs(expected).max())


# (variant, tag, timm model): one per family and code path with timm weights on the Hub.
HUB_CASES = [
    ("rexnet_100", "nav_in1k", "rexnet_100"),
    ("regnetx_002", "pycls_in1k", "regnetx_002"),
    ("regnety_002", "pycls_in1k", "regnety_002"),
    ("repvgg_a0", "rvgg_in1k", "repvgg_a0"),
    ("mnasnet_a1_075", "rmsp_in1k", "semnasnet_075"),
    ("mnasnet_b1_100", "rmsp_in1k", "mnasnet_100"),  # timm's layout of a torchvision-born variant
    ("efficientnet_b0", "aa_in1k", "tf_efficientnet_b0"),
    ("efficientnet_lite0", "in1k", "tf_efficientnet_lite0"),
    ("resnet18", "a1_in1k", "resnet18"),
    ("dpn68b", "ra_in1k", "dpn68b"),  # DPN-b's layout (c1x1_c1, c1x1_c2); dpn68's split c1x1_c: the reference test
    ("ghostnetv2_100", "in1k", "ghostnetv2_100"),  # GhostNet V1 / V2 / V3: one layout, V2 its DFC gate
]


@pytest.mark.parametrize(("name", "tag", "timm_name"), HUB_CASES)
def test_timm_weights_from_the_hub_equal_timm(publisher, name, tag, timm_name):
    torch, reference, content = _timm_checkpoint(timm_name)
    source = _source(name, tag)
    publisher.publish(source.url, content)
    x = _x()
    model = kl.create_model(name, weights=tag, input_shape=INPUT_SHAPE, classifier_activation=None)
    _assert_close(infer(model, x), _torch_outputs(torch, reference, x))
    digest = hashlib.sha256(content).hexdigest()
    assert (cache_dir() / f"{name}.{tag}.{digest[:8]}.weights.h5").is_file()
    assert [method for method, _ in publisher.requests] == ["HEAD", "GET", "GET"]  # digest, redirect, file

    # Offline afterwards: the conversion is found in the cache, the Hub is not even asked.
    publisher.close()
    again = kl.create_model(name, weights=tag, input_shape=INPUT_SHAPE, classifier_activation=None)
    np.testing.assert_array_equal(infer(again, x), infer(model, x))
    assert len(publisher.requests) == 3


def test_a_hub_file_that_does_not_match_the_hubs_digest_is_rejected(publisher):
    _, _, content = _timm_checkpoint("rexnet_100")
    source = _source("rexnet_100", "nav_in1k")
    local = publisher.publish(source.url, content)
    local.write_bytes(content[:-1000])  # truncated on the storage host after publishing
    with pytest.raises(ValueError, match=r"failed its SHA-256 check.*was removed"):
        kl.create_model("rexnet_100", weights="imagenet")
    assert not any(cache_dir().iterdir())  # neither the download nor a conversion stayed


def test_a_checkpoint_of_another_variant_names_the_first_mismatching_tensor(publisher):
    _, _, content = _timm_checkpoint("rexnet_130")
    publisher.publish(_source("rexnet_100", "nav_in1k").url, content)  # the wrong file on the host
    with pytest.raises(ValueError) as raised:
        kl.create_model("rexnet_100", weights="imagenet")
    lines = str(raised.value).splitlines()
    assert lines[1:3] == [
        "shape mismatches and conflicts:",
        "  features.0.conv_dw.bn.weight (42,) → block1_dw_bn.gamma (32,): expected torch shape (32,)",
    ]
    assert lines[-1] == "  ... and 342 more" and len(lines) == 11
    assert not list(cache_dir().glob("*.weights.h5"))


# (variant, torchvision model): the families whose first source is torchvision's host.
TORCHVISION_CASES = [("resnet18", "resnet18"), ("mnasnet_b1_100", "mnasnet1_0")]


@pytest.mark.parametrize(("name", "tv_name"), TORCHVISION_CASES)
def test_torchvision_weights_equal_torchvision(publisher, monkeypatch, name, tv_name):
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    reference = getattr(torchvision.models, tv_name)().eval()
    randomize_batchnorm(torch, reference)
    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    content = buffer.getvalue()
    # torchvision's real file name carries its digest: publish ours under one that carries ours
    real = _source(name, "tv_in1k")
    digest = hashlib.sha256(content).hexdigest()[:8]
    source = dataclasses.replace(real, url=real.url.replace(real.file_hash, digest), file_hash=digest, filename="")
    entry = registry.get_entry(name)
    monkeypatch.setitem(entry.__dict__, "weights", (source,) + entry.weights[1:])  # the one store: the family's variant
    publisher.publish(source.url, content)
    x = _x()
    model = kl.create_model(name, weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None)
    _assert_close(infer(model, x), _torch_outputs(torch, reference, x))


def _keras_h5(reference):
    """``reference``'s weights in keras.applications' file layout (Keras 2 ``.h5``), as bytes."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, reference)
    return buffer.getvalue()


def _keras_reference(name, constructor=None, **kwargs):
    import keras
    from golden import seeded_weights

    kind, own, arguments = kl.get_entry(name).reference_call
    if constructor is None:
        assert kind == "keras", name
        constructor = own
    reference = getattr(keras.applications, constructor)(weights=None, **arguments, **kwargs)
    seeded_weights(reference)  # random BN statistics included
    return reference


# keras.applications' own layouts through weights="imagenet" (their graph order): MobileNet V1/V2, the
# pre-activation ResNet (biases, a stem without BN) and Inception-v3 (BatchNorm without a learned scale);
# the other keras.applications families' files are loaded in their own test files.
@pytest.mark.parametrize("name", ["mobilenetv1_025", "mobilenetv2_035", "resnet50_v2", "inception_v3"])
def test_keras_applications_files_equal_keras_applications(publisher, monkeypatch, name):
    reference = _keras_reference(name, input_shape=INPUT_SHAPE, classifier_activation=None)
    source = _source(name, "keras_in1k")
    content = _keras_h5(reference)
    pinned = source.file_hash is not None
    if pinned:
        # keras.applications pins this file's MD5: publish ours under its own (the check is the same code)
        assert len(source.file_hash) == 32 and source.hash_algorithm == "md5"
        source = dataclasses.replace(source, file_hash=hashlib.md5(content).hexdigest())
        entry = registry.get_entry(name)
        monkeypatch.setitem(entry.__dict__, "weights", (source,) + entry.weights[1:])
    # else keras.applications states none: GCS's MD5 is checked
    publisher.publish(source.url, content)
    x = _x()
    model = kl.create_model(name, weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None)
    np.testing.assert_allclose(
        infer(model, x), infer(reference, x), atol=1e-5 * max(1.0, np.abs(infer(reference, x)).max())
    )
    # the host's digest is asked for (HEAD) only where keras.applications pins none
    assert [method for method, _ in publisher.requests] == (["GET"] if pinned else ["HEAD", "GET"])


def test_load_checkpoint_reads_keras_files_and_refuses_another_architectures(tmp_path):
    reference = _keras_reference("mobilenetv2_035", input_shape=(64, 64, 3))
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"
    path.write_bytes(_keras_h5(reference))
    model = kl.weights.load_checkpoint(kl.create_model("mobilenetv2_035", input_shape=(64, 64, 3)), path)
    x = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(infer(model, x), infer(reference, x), atol=1e-6)
    other = kl.create_model("mobilenetv1_025", input_shape=(64, 64, 3))
    before = [np.asarray(w).copy() for w in other.weights]
    with pytest.raises(
        ValueError, match=r"holds 105 weighted layers, 'mobilenetv1_025' has 55: the file is for another"
    ):
        kl.weights.load_checkpoint(other, path)
    for value, weight in zip(before, other.weights, strict=True):
        np.testing.assert_array_equal(value, np.asarray(weight))  # nothing written
    (tmp_path / "not_keras.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 100)
    with pytest.raises(kl.weights.CheckpointError, match=r"not_keras.h5': HDF5 cannot read it \(.*superblock"):
        kl.weights.load_checkpoint(other, tmp_path / "not_keras.h5")


def test_keras_resnet50_takes_rgb_where_the_keras_file_takes_bgr(publisher, monkeypatch):
    reference = _keras_reference("resnet50_v1", input_shape=INPUT_SHAPE, classifier_activation=None)
    content = _keras_h5(reference)
    real = _source("resnet50_v1", "keras_in1k")
    assert real.hash_algorithm == "md5" and len(real.file_hash) == 32  # pinned from keras.applications' source
    source = dataclasses.replace(real, file_hash=hashlib.md5(content).hexdigest())
    entry = registry.get_entry("resnet50_v1")
    monkeypatch.setitem(entry.__dict__, "weights", (source,))  # the one store: the family's variant
    publisher.publish(source.url, content)
    x = _x()
    model = kl.create_model("resnet50_v1", weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None)
    expected = infer(reference, x[..., ::-1])  # keras.applications' caffe mode: BGR channels
    _assert_close(infer(model, x), expected)

    # A corrupt file on the host fails the pinned MD5 and is removed.
    monkeypatch.setitem(entry.__dict__, "weights", (source,))  # the one store: the family's variant
    for path in cache_dir().iterdir():
        path.unlink()
    publisher.publish(source.url, content[:-10] + b"corrupt!!!")
    publisher.md5.clear()
    with pytest.raises(ValueError, match=r"failed its MD5 check"):
        kl.create_model("resnet50_v1", weights="imagenet")
    assert not any(cache_dir().iterdir())


def test_keras_efficientnet_file_equals_keras_applications_on_raw_pixels(publisher, monkeypatch):
    # keras.applications' EfficientNet normalizes inside and stores its Normalization's mean,
    # variance and count in the file: those are skipped (ours is set from the model card), every
    # other weight is loaded in graph order.
    import keras

    reference = _keras_reference(
        "efficientnet_b0", "EfficientNetB0", input_shape=INPUT_SHAPE, classifier_activation=None
    )
    normalization = next(layer for layer in reference.layers if isinstance(layer, keras.layers.Normalization))
    statistics = [np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD) ** 2, np.float32(1)]  # as "imagenet" sets them
    normalization.set_weights(statistics[: len(normalization.get_weights())])
    content = _keras_h5(reference)
    real = _source("efficientnet_b0", "keras_in1k")
    assert real.hash_algorithm == "md5" and len(real.file_hash) == 32  # pinned from keras.applications' source
    source = dataclasses.replace(real, file_hash=hashlib.md5(content).hexdigest())
    entry = registry.get_entry("efficientnet_b0")
    monkeypatch.setitem(entry.__dict__, "weights", (source,))  # the one store: the family's variant
    publisher.publish(source.url, content)
    model = kl.create_model(
        "efficientnet_b0", weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None,
        include_preprocessing=True,
    )  # fmt: skip
    pixels = np.random.default_rng(0).integers(0, 256, (2, *INPUT_SHAPE)).astype("float32")
    _assert_close(infer(model, pixels), infer(reference, pixels))


def test_weights_with_their_own_preprocessing_carry_it(publisher):
    # timm's AdvProp EfficientNet weights were trained on [-1, 1] inputs, unlike the variant's default.
    torch, reference, content = _timm_checkpoint("tf_efficientnet_b0")
    publisher.publish(_source("efficientnet_b0", "ap_in1k").url, content)
    model = kl.create_model("efficientnet_b0", weights="ap_in1k", include_preprocessing=True, input_shape=INPUT_SHAPE)
    bare = kl.create_model("efficientnet_b0", weights="ap_in1k", input_shape=INPUT_SHAPE)  # from the cache
    assert kl.model_preprocessing(bare).mean == (0.5, 0.5, 0.5)  # what the input pipeline will use
    assert kl.model_preprocessing(kl.create_model("efficientnet_b0")).mean == IMAGENET_MEAN
    pixels = np.random.default_rng(0).uniform(0, 255, (2, *INPUT_SHAPE)).astype("float32")
    expected = _torch_outputs(torch, reference, pixels / 127.5 - 1)
    probabilities = np.exp(expected - expected.max(-1, keepdims=True))
    _assert_close(infer(model, pixels), probabilities / probabilities.sum(-1, keepdims=True))


def _publish_torchvision_file(publisher, monkeypatch, name, state_dict):
    """``state_dict`` saved as torchvision saves its files, published as ``name``'s first source under a
    file name that carries its digest (as torchvision's do)."""
    import torch

    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    content = buffer.getvalue()
    real = _source(name, "tv_in1k")
    digest = hashlib.sha256(content).hexdigest()[:8]
    source = dataclasses.replace(real, url=real.url.replace(real.file_hash, digest), file_hash=digest, filename="")
    entry = registry.get_entry(name)
    monkeypatch.setitem(entry.__dict__, "weights", (source,) + entry.weights[1:])  # the one store: the family's variant
    publisher.publish(source.url, content)


def test_torchvision_densenet_file_with_its_old_key_names_equals_torchvision(publisher, monkeypatch):
    # torchvision's DenseNet files predate PyTorch's ban on dots in module names: "denselayer1.norm.1.weight"
    # where the model has "norm1" (torchvision renames them on load; the key map takes both).
    import re

    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.densenet121().eval()
    randomize_batchnorm(torch, reference)
    old_style = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key): value
        for key, value in reference.state_dict().items()
    }
    assert "features.denseblock4.denselayer16.norm.2.running_var" in old_style
    _publish_torchvision_file(publisher, monkeypatch, "densenet121", old_style)
    x = _x()
    model = kl.create_model("densenet121", weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None)
    _assert_close(infer(model, x), _torch_outputs(torch, reference, x))


def test_torchvision_googlenet_file_loads_without_its_untrained_auxiliary_classifiers(publisher, monkeypatch):
    # torchvision's file holds auxiliary classifiers it says are not trained: the inference model skips
    # them, and a model built with aux_logits=True gets the network's weights and new auxiliary heads.
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(aux_logits=True, init_weights=True).eval()
    randomize_batchnorm(torch, reference)
    assert any(key.startswith("aux1.") for key in reference.state_dict())
    _publish_torchvision_file(publisher, monkeypatch, "googlenet", reference.state_dict())
    x = _x()
    expected = _torch_outputs(torch, reference, x)
    model = kl.create_model("googlenet", weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None)
    _assert_close(infer(model, x), expected)
    assert kl.model_preprocessing(model).mean == (0.5, 0.5, 0.5)  # what torchvision's transform_input did
    with_aux = kl.create_model(
        "googlenet", weights="imagenet", aux_logits=True, input_shape=INPUT_SHAPE, classifier_activation=None
    )  # from the cache
    _assert_close(infer(with_aux, x)[0], expected)


def _publish_as_first_source(publisher, monkeypatch, name, tag, content, hash_algorithm="sha256"):
    """``content`` published as ``name``'s ``tag`` file, made its first source ("imagenet") with the
    digest of ``content`` pinned (torchvision's: the first sha256 digits in its file name)."""
    real = _source(name, tag)
    if tag == "tv_in1k":
        digest = hashlib.sha256(content).hexdigest()[:8]
        source = dataclasses.replace(real, url=real.url.replace(real.file_hash, digest), file_hash=digest, filename="")
    else:
        source = dataclasses.replace(real, file_hash=hashlib.new(hash_algorithm, content).hexdigest())
    entry = registry.get_entry(name)
    others = tuple(s for s in entry.weights if s.tag != tag)
    monkeypatch.setitem(entry.__dict__, "weights", (source, *others))  # the one store: the family's variant
    publisher.publish(source.url, content)
    return source


def test_torchvision_alexnet_file_equals_torchvision_with_its_fc1_rows_permuted(publisher, monkeypatch):
    # torchvision's classifier.1 reads the flattened NCHW 256x6x6 map; the converted Dense reads NHWC.
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.alexnet().eval()
    with torch.no_grad():
        for name, value in reference.named_parameters():
            if name.endswith("bias"):
                value.normal_(0, 0.1)  # torchvision's biases start at 0: make a mix-up show
    buffer = io.BytesIO()
    torch.save(reference.state_dict(), buffer)
    _publish_as_first_source(publisher, monkeypatch, "alexnet", "tv_in1k", buffer.getvalue())
    x = np.random.default_rng(0).standard_normal((2, 224, 224, 3)).astype("float32")
    model = kl.create_model("alexnet", weights="imagenet", classifier_activation=None)
    _assert_close(infer(model, x), _torch_outputs(torch, reference, x))
    # At another size the classifier cannot take the published fc1 (named before any work); without
    # it, any size loads the convolutions from the cached conversion.
    with pytest.raises(ValueError, match=r"needs input_shape=\(224, 224, 3\)"):
        kl.create_model("alexnet", weights="imagenet", input_shape=INPUT_SHAPE)
    requests = len(publisher.requests)
    headless = kl.create_model("alexnet", weights="imagenet", include_top=False, input_shape=INPUT_SHAPE)
    with torch.no_grad():
        expected = reference.features(torch.from_numpy(_x().transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    _assert_close(infer(headless, _x()), expected)
    assert len(publisher.requests) == requests  # offline: the cache


def test_keras_vgg16_file_takes_bgr_and_equals_keras_applications(publisher, monkeypatch):
    # keras.applications' VGG16 (caffe mode: BGR pixels minus the ImageNet mean) through weights="keras_in1k":
    # loaded in graph order with the first convolution's input channels reversed, so the model takes RGB.
    import keras

    reference = keras.applications.VGG16(weights=None, classifier_activation=None)
    for layer in reference.layers:
        if layer.weights:  # Keras initializes biases to zero: random ones make a mix-up show
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.random.default_rng(len(bias)).normal(0, 0.1, bias.shape).astype("float32")])
    real = _source("vgg16", "keras_in1k")
    assert real.hash_algorithm == "md5" and real.file_hash == "64373286793e3c8b2b4e3219cbf3544b"  # keras's source
    _publish_as_first_source(publisher, monkeypatch, "vgg16", "keras_in1k", _keras_h5(reference), "md5")
    model = kl.create_model("vgg16", weights="keras_in1k", classifier_activation=None)
    preprocessing = kl.model_preprocessing(model)
    assert preprocessing.std == pytest.approx((1 / 255,) * 3) and preprocessing.mean[0] == pytest.approx(123.68 / 255)
    x = np.random.default_rng(0).standard_normal((1, 224, 224, 3)).astype("float32")
    _assert_close(infer(model, x), infer(reference, x[..., ::-1]))
