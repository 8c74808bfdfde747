"""``weights="imagenet"``: download from a local HTTP server laid out like the publisher's host
(127.0.0.1, pointed at with LIGHTNETS_WEIGHTS_MIRROR), verify, convert without torch, cache; a
second load is offline; a corrupt download and a missing network lose nothing and say what to do.
Every cached file is checked against the record made when it was written: a damaged, replaced or
unrecorded one is made again (offline, from the recorded checkpoint); processes resolving the same
weights at once all succeed and the host serves the file once.

The served checkpoint is a randomly initialized torchvision model's state dict, named the way
torchvision names its files (``<name>-<first hex digits of its sha256>.pth``); the test swaps it
into the registry row in place of the real file, whose content cannot be fetched here."""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from inference import infer
from publisher import Publisher
from torch_reference import import_reference

import keras_lightnets as kl
from keras_lightnets import registry
from keras_lightnets.models.variant import WeightSource, torchvision_source
from keras_lightnets.weights import cache
from keras_lightnets.weights.download import MIRROR_ENV, WeightsUnavailableError, cache_dir, fetch_checkpoint
from keras_lightnets.weights.errors import CheckpointError

INPUT_SHAPE = (161, 190, 3)


@pytest.fixture
def host(tmp_path, monkeypatch):
    """``(publisher, models folder)``: the package downloads from a :class:`Publisher` on 127.0.0.1;
    files put in the folder are served as torchvision's ``/models/<file>``."""
    publisher = Publisher(tmp_path / "host")
    models = tmp_path / "host" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv(MIRROR_ENV, publisher.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    yield publisher, models
    publisher.close()


def _publish(monkeypatch, models, name, content):
    """Puts ``content`` on the host under a torchvision-style name and lists it for ``name``."""
    digest = hashlib.sha256(content).hexdigest()
    filename = f"{name}-{digest[:8]}.pth"
    (models / filename).write_bytes(content)
    source = torchvision_source(filename, 58.178)
    entry = registry.get_entry(name)
    monkeypatch.setitem(entry.__dict__, "weights", (source,))  # the one store: the family's variant
    return source


def _torchvision_squeezenet(tmp_path):
    torch, torchvision = import_reference("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1().eval()
    torch.save(reference.state_dict(), tmp_path / "state.pth")
    return torch, reference, (tmp_path / "state.pth").read_bytes()


def test_imagenet_weights_download_once_convert_once_and_equal_the_reference(host, tmp_path, monkeypatch):
    server, models = host
    torch, reference, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)

    model = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=INPUT_SHAPE, classifier_activation=None)
    x = np.random.default_rng(0).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert np.abs(infer(model, x) - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
    assert server.downloads() == [f"/models/{source.filename}"]
    converted = f"squeezenet1_1.tv_in1k.{source.file_hash}.weights.h5"
    # Each file with its record (size, SHA-256, what it was made from); the locks are kept outside.
    assert sorted(p.name for p in cache_dir().iterdir()) == [
        source.filename, f"{source.filename}.json", converted, f"{converted}.json"
    ]  # fmt: skip
    assert sorted(p.name for p in (cache_dir().parent / ".locks").iterdir()) == [
        f"{source.filename}.lock", "squeezenet1_1.tv_in1k.weights.h5.lock"
    ]  # fmt: skip

    # The second load, by tag, with the host gone: from the converted cache, nothing fetched.
    server.close()
    again = kl.create_model("squeezenet1_1", weights="tv_in1k", input_shape=INPUT_SHAPE, classifier_activation=None)
    np.testing.assert_array_equal(infer(again, x), infer(model, x))
    assert len(server.requests) == 1  # a pinned digest: not even a HEAD request


def test_without_its_top_the_body_loads_for_any_number_of_classes(host, tmp_path, monkeypatch):
    _, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    _publish(monkeypatch, models, "squeezenet1_1", content)
    full = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=(64, 64, 3))
    body = kl.create_model("squeezenet1_1", weights="imagenet", include_top=False, classes=10, input_shape=(64, 64, 3))
    np.testing.assert_array_equal(np.asarray(body.get_layer("conv1_conv").kernel), full.get_layer("conv1_conv").kernel)
    with pytest.raises(ValueError, match=r"needs classes=1000.*include_top=False for a new head"):
        kl.create_model("squeezenet1_1", weights="imagenet", classes=10)


def test_a_corrupt_download_is_removed_and_nothing_is_converted(host, tmp_path, monkeypatch):
    _, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)
    (models / source.filename).write_bytes(content[: len(content) // 2])  # truncated on the host
    with pytest.raises(CheckpointError, match="failed its SHA-256 check.*was removed"):
        kl.create_model("squeezenet1_1", weights="imagenet")
    assert not cache_dir().exists() or not any(cache_dir().iterdir())  # no temporary file either


def test_no_network_and_no_cache_names_the_url_and_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    source = torchvision_source("squeezenet1_1-b8a52dc0.pth", 58.178)
    with pytest.raises(WeightsUnavailableError) as raised:
        kl.create_model("squeezenet1_1", weights="imagenet")
    message = str(raised.value)
    assert f"http://127.0.0.1:9/models/{source.filename}" in message
    assert str(cache_dir() / source.filename) in message
    assert not (cache_dir() / source.filename).exists()


def test_unknown_tags_and_variants_without_weights_say_what_exists():
    with pytest.raises(ValueError, match=r"'squeezenet1_1' publishes 'tv_in1k' \('imagenet' is 'tv_in1k'\)"):
        kl.create_model("squeezenet1_1", weights="a1_in1k")
    with pytest.raises(ValueError, match=r"no published weights \('rexnet_090' has none yet\).*resnet18"):
        kl.create_model("rexnet_090", weights="imagenet")
    with pytest.raises(ValueError, match="no registered variant"):
        kl.ReXNet(1.05, weights="imagenet")


HOSTS = ("https://download.pytorch.org/models/", "https://huggingface.co/timm/", "https://storage.googleapis.com/")
# Cadene's pretrainedmodels host serves http only: allowed with insecure_http=True and the file's digest.
HOSTS += ("http://data.lip6.fr/cadene/pretrainedmodels/",)


def test_the_listed_sources_are_well_formed():
    with_weights = {name for name in kl.list_models() if kl.list_weights(name)}
    families = {kl.get_entry(name).family for name in with_weights}
    assert families == {
        "squeezenet", "resnet", "mnasnet", "rexnet", "regnet", "repvgg", "efficientnet", "mobilenetv1", "mobilenetv2",
        "dpn",
        "polynet",
        "alexnet", "vgg",
        "googlenet", "densenet",
        "xception", "resnetv2",
        "efficientnetv2",
        "inception_resnet_v2",
        "inception_v3",
        "nasnet", "convnext", "mobilenetv3",
        "mobilenetv4",
        "ghostnet",
        "mobileone",
    }  # fmt: skip
    # What nobody publishes ImageNet weights for (or only in another architecture's layout):
    without = set(kl.list_models()) - with_weights
    assert without == {
        "rexnet_090", "rexnet_220",  # the official 0.9 / 2.2 checkpoints are not on any host we read
        "rexnet_lite_100", "rexnet_lite_130", "rexnet_lite_150", "rexnet_lite_200",
        "parnet_cifar10", "parnet_cifar100", "parnet_s", "parnet_m", "parnet_l", "parnet_xl",
        "squeezenet1_0_simple_bypass", "squeezenet1_0_complex_bypass",
        "mnasnet_b1_050",  # torchvision's file predates the scaled stem (a 32-wide stem at every width)
        "mnasnet_b1_140", "mnasnet_a1_035", "mnasnet_a1_050", "mnasnet_a1_140",
        "repvgg_b1g2",
        # PyramidNet: the authors' PyramidNet-101 (α=360) file is on Google Drive, no host we read
        "pyramidnet101_a360", "pyramidnet200_a300", "pyramidnet200_a450", "pyramidnet110_a48_cifar10",
        "pyramidnet110_a48_cifar100", "pyramidnet110_a84_cifar10", "pyramidnet110_a270_cifar10",
        "pyramidnet164_a48_bottleneck_cifar10", "pyramidnet164_a270_bottleneck_cifar10",
        "pyramidnet200_a240_bottleneck_cifar10", "pyramidnet236_a220_bottleneck_cifar10",
        "pyramidnet272_a200_bottleneck_cifar10",
        # Residual Attention Network: the authors released prototxts only, never the trained models
        "resattnet56", "resattnet92", "resattnext56", "resattnet56_cifar", "resattnet92_cifar",
        "alexnet_original",  # Caffe's bvlc_alexnet is a .caffemodel, on no host we read
        "googlenet_original",  # Caffe's bvlc_googlenet likewise
        # keras.applications publishes the minimalistic MobileNetV3s at width 1.0 only
        "mobilenetv3_large_minimal_075", "mobilenetv3_small_minimal_075",
        # timm registers these MobileNetV4 widths untrained
        "mobilenetv4_conv_small_035", "mobilenetv4_hybrid_medium_075", "mobilenetv4_hybrid_large_075",
        "mobilenetv4_conv_aa_medium",  # timm's anti-aliased medium is untrained
        # timm registers these GhostNet widths untrained
        "ghostnet_050", "ghostnet_130", "ghostnetv3_050", "ghostnetv3_130", "ghostnetv3_160",
    }  # fmt: skip
    for name in with_weights:
        entry = kl.get_entry(name)
        sources = kl.list_weights(name)
        assert len({source.tag for source in sources}) == len(sources), name
        for source in sources:
            assert source.layout in kl.weights.checkpoint_layouts(entry), name
            assert source.url.startswith(HOSTS), name
            assert 50 < source.top1 < 90, name
            if source.url.startswith(HOSTS[0]):
                # torchvision's file names end in the first digits of their sha256, which is checked
                assert source.filename.endswith(f"-{source.file_hash}.pth"), name
            if source.url.startswith(HOSTS[1]):
                # timm's repositories all call their file model.safetensors: cached under the repository's name
                assert source.file_hash is None and source.filename.endswith(f".{source.tag}.safetensors"), name
    with pytest.raises(ValueError, match="https"):
        WeightSource("x", "http://example.com/a.pth", "timm", None, "MIT", "0123abcd")
    with pytest.raises(ValueError, match="file_hash must be 8 or more lowercase hex digits"):
        WeightSource("x", "https://example.com/a.pth", "timm", None, "MIT", "0123")


def test_imagenet_weights_load_into_a_model_that_normalizes_inside(host, tmp_path, monkeypatch):
    # What an Android app exports: the published weights behind an in-graph normalization.
    _, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    _publish(monkeypatch, models, "squeezenet1_1", content)
    plain = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=(64, 64, 3))
    inside = kl.create_model("squeezenet1_1", weights="imagenet", include_preprocessing=True, input_shape=(64, 64, 3))
    for layer in plain.layers:
        for mine, theirs in zip(inside.get_layer(layer.name).weights, layer.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
    pixels = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    normalized = (pixels - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    np.testing.assert_allclose(infer(inside, pixels), infer(plain, normalized), rtol=1e-4, atol=1e-6)


def test_bad_arguments_are_named_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9")  # a download would fail with another error
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(ValueError, match="input height must be at least 32 pixels"):
        kl.create_model("squeezenet1_1", weights="imagenet", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        kl.create_model("squeezenet1_1", weights="imagenet", include_top=False, pooling="mean")
    assert not cache_dir().exists()


def test_a_plain_http_source_needs_the_flag_and_the_publishers_digest():
    # PolyNet's checkpoint (Cadene's host has no https): the digest in its file name is checked.
    (source,) = kl.list_weights("polynet")
    assert source.url.startswith("http://") and source.insecure_http
    assert source.file_hash == "f71d82a5" and source.filename == "polynet-f71d82a5.pth"
    assert source.layout in kl.weights.checkpoint_layouts(kl.get_entry("polynet"))
    with pytest.raises(ValueError, match="needs the file_hash"):
        WeightSource("x", "http://example.com/a.pth", "timm", None, "MIT", insecure_http=True)
    with pytest.raises(ValueError, match="must be https"):
        WeightSource("x", "ftp://example.com/a.pth", "timm", None, "MIT", "0123abcd", insecure_http=True)


def _tamper(path):
    """Changes one bit of the file's last byte: same size, same name, any other check passes."""
    content = bytearray(path.read_bytes())
    content[-1] ^= 1
    path.write_bytes(bytes(content))


def test_a_damaged_replaced_or_unrecorded_conversion_is_made_again_from_the_recorded_checkpoint(
    host, tmp_path, monkeypatch
):
    server, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)
    model = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=INPUT_SHAPE)
    x = np.random.default_rng(0).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    expected = infer(model, x)
    converted = cache_dir() / f"squeezenet1_1.tv_in1k.{source.file_hash}.weights.h5"
    other = tmp_path / "other.weights.h5"  # valid weights of the same architecture, other values
    kl.create_model("squeezenet1_1", input_shape=INPUT_SHAPE).save_weights(other)
    server.close()  # all of it offline: the checkpoint in the cache is checked against its record and reused
    tampers = {
        "random bytes": lambda: converted.write_bytes(np.random.default_rng(1).bytes(converted.stat().st_size)),
        "one bit": lambda: _tamper(converted),
        "another file of the same architecture": lambda: converted.write_bytes(other.read_bytes()),
        "no record": lambda: cache.record_path(converted).unlink(),
        "a record that is not JSON": lambda: cache.record_path(converted).write_text("{"),
    }
    for what, tamper in tampers.items():
        tamper()
        again = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=INPUT_SHAPE)
        np.testing.assert_array_equal(infer(again, x), expected, err_msg=what)
        assert cache.verify(converted) is not None, what
    assert len(server.requests) == 1  # the first download only


def test_offline_with_a_damaged_conversion_and_no_checkpoint_says_which_file_to_put_where(host, tmp_path, monkeypatch):
    server, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)
    kl.create_model("squeezenet1_1", weights="imagenet")
    server.close()
    converted = cache_dir() / f"squeezenet1_1.tv_in1k.{source.file_hash}.weights.h5"
    converted.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # what gave a bare h5py OSError before
    (cache_dir() / source.filename).unlink()
    with pytest.raises(WeightsUnavailableError) as raised:
        kl.create_model("squeezenet1_1", weights="imagenet")
    message = str(raised.value)
    assert f"{converted} did not match its record in the weights cache (damaged or replaced) and was removed" in message
    assert f"Without network, download it elsewhere and put it at {cache_dir() / source.filename}" in message
    assert sorted(p.name for p in cache_dir().iterdir()) == []  # nothing damaged or stale left


def test_a_changed_checkpoint_is_caught_by_its_full_sha256_and_fetched_again(host, tmp_path, monkeypatch):
    # torchvision's file name states 8 hex digits of the file's SHA-256; the whole of it is recorded
    # at download and checked at every later use, so any change to the file is caught (one that
    # kept the 8 digits would pass the publisher's check; it cannot be made here, but any change is
    # a different full digest).
    server, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)
    path, digest = fetch_checkpoint(source)
    record = json.loads(cache.record_path(path).read_text())
    assert len(source.file_hash) == 8 and record["sha256"] == hashlib.sha256(content).hexdigest() == digest
    assert record["size"] == len(content) and record["url"] == f"{server.url}/models/{source.filename}"
    assert fetch_checkpoint(source) == (path, digest) and len(server.downloads()) == 1  # verified, reused

    _tamper(path)
    assert fetch_checkpoint(source) == (path, digest)
    assert len(server.downloads()) == 2 and path.read_bytes() == content  # fetched again

    # Through weights=: a changed checkpoint behind a missing conversion is fetched again too.
    kl.create_model("squeezenet1_1", weights="imagenet")
    for converted in cache_dir().glob("*.weights.h5"):
        converted.unlink()
    _tamper(path)
    kl.create_model("squeezenet1_1", weights="imagenet")
    assert len(server.downloads()) == 3 and path.read_bytes() == content


def test_a_checkpoint_put_in_the_cache_by_hand_is_checked_and_used_offline(host, tmp_path, monkeypatch):
    # What the "without network" advice says to do: the file is checked against the table's digest.
    server, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)
    server.close()
    path = cache_dir() / source.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(content[:-1] + b"?")  # the wrong file: not used, and removed
    with pytest.raises(WeightsUnavailableError, match=f"put it at {path}"):
        kl.create_model("squeezenet1_1", weights="imagenet")
    assert not path.exists()
    path.write_bytes(content)
    kl.create_model("squeezenet1_1", weights="imagenet")
    assert json.loads(cache.record_path(path).read_text())["placed_by_hand"] is True
    assert not server.requests


def test_a_failed_conversion_leaves_no_partial_file(host, tmp_path, monkeypatch):
    import keras

    _, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)

    def full_disk(self, path, **kwargs):
        Path(path).write_bytes(b"\x89HDF half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    with pytest.raises(OSError, match="No space left"):
        kl.create_model("squeezenet1_1", weights="imagenet")
    # The verified download stays (with its record) for the next try; no temporary file does.
    assert sorted(p.name for p in cache_dir().iterdir()) == [source.filename, f"{source.filename}.json"]


_RESOLVE = """
import dataclasses, hashlib, json, os, sys, time
from pathlib import Path
import numpy as np
import keras_lightnets as kl
from keras_lightnets import registry
from keras_lightnets.models.variant import torchvision_source
from keras_lightnets.weights.download import pretrained_weights_file

filename, folder = sys.argv[1], Path(sys.argv[2])
source = torchvision_source(filename, 58.178)
entry = registry.get_entry("squeezenet1_1")
entry.__dict__["weights"] = (source,)  # the one store: the family's variant, patched in place
(folder / f"ready-{os.getpid()}").touch()
while not (folder / "go").exists():  # all processes start resolving at the same moment
    time.sleep(0.005)
model = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=(64, 64, 3))
values = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.weights)).hexdigest()
print(json.dumps({"file": str(pretrained_weights_file(entry, source)), "values": values}))
"""


def test_processes_resolving_the_same_weights_at_once_all_succeed_and_the_host_serves_it_once(
    host, tmp_path, monkeypatch
):
    server, models = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    source = _publish(monkeypatch, models, "squeezenet1_1", content)
    answer = server._answer

    def slow_answer(handler, *, body):  # a slow host: without the lock, the downloads overlap
        time.sleep(1.0)
        answer(handler, body=body)

    monkeypatch.setattr(server, "_answer", slow_answer)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RESOLVE, source.filename, str(barrier)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        for _ in range(2)  # two suffice to overlap; each more costs a TensorFlow start (~9 s of CPU)
    ]
    try:
        deadline = time.monotonic() + 300
        while len(list(barrier.glob("ready-*"))) < len(processes):
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "a process did not start"
            time.sleep(0.05)
        (barrier / "go").touch()
        results = [p.communicate(timeout=300) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err[-3000:]
    answers = [json.loads(out.splitlines()[-1]) for out, _ in results]
    converted = cache_dir() / f"squeezenet1_1.tv_in1k.{source.file_hash}.weights.h5"
    assert answers == [{"file": str(converted), "values": answers[0]["values"]}] * len(processes)
    assert server.downloads() == [f"/models/{source.filename}"]  # one download; the others waited for it
    # Nothing half-written or temporary: the files, their records and the (kept, empty) lock files.
    ours = cache_dir().parent  # $KERAS_HOME/keras_lightnets
    assert sorted(str(p.relative_to(ours)) for p in ours.rglob("*")) == [
        ".locks",
        f".locks/{source.filename}.lock",
        ".locks/squeezenet1_1.tv_in1k.weights.h5.lock",
        "checkpoints",
        f"checkpoints/{source.filename}",
        f"checkpoints/{source.filename}.json",
        f"checkpoints/{converted.name}",
        f"checkpoints/{converted.name}.json",
    ]
    assert cache.verify(converted) is not None and cache.verify(cache_dir() / source.filename) is not None


def test_a_damaged_conversion_of_a_file_whose_digest_the_hub_states_is_made_again_offline(host, tmp_path, monkeypatch):
    # No digest in the table: the Hub states the SHA-256 on its redirect; the conversion is named
    # after it and found without asking the Hub, and checked against its record all the same.
    server, _ = host
    _, _, content = _torchvision_squeezenet(tmp_path)
    url = "https://huggingface.co/timm/squeezenet_test/resolve/main/model.pth"
    source = WeightSource("hub_in1k", url, "torchvision", 58.178, "BSD-3-Clause")
    assert source.file_hash is None
    server.publish(url, content)
    entry = registry.get_entry("squeezenet1_1")
    monkeypatch.setitem(entry.__dict__, "weights", (source,))  # the one store: the family's variant
    model = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=INPUT_SHAPE)
    x = np.random.default_rng(0).standard_normal((2, *INPUT_SHAPE)).astype("float32")
    converted = cache_dir() / f"squeezenet1_1.hub_in1k.{hashlib.sha256(content).hexdigest()[:8]}.weights.h5"
    assert cache.verify(converted)["checkpoint_digest"] == hashlib.sha256(content).hexdigest()
    assert [method for method, _ in server.requests] == ["HEAD", "GET", "GET"]
    server.close()
    _tamper(converted)
    again = kl.create_model("squeezenet1_1", weights="imagenet", input_shape=INPUT_SHAPE)
    np.testing.assert_array_equal(infer(again, x), infer(model, x))
    assert cache.verify(converted) is not None and len(server.requests) == 3
