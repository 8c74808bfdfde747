"""The verified cache (keras_lightnets.weights.cache): a file is trusted only while its size and
SHA-256 are the ones recorded when it was written; writes are atomic and leave nothing behind on
failure; one lock per entry, kept outside the cache folder; what cannot be read or removed is a
CheckpointError naming the file. End to end (downloads, conversions, processes): test_pretrained.py."""

import hashlib
import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_lightnets.weights import cache
from keras_lightnets.weights.errors import CheckpointError


def _write(path, content):
    """Writes ``content`` to ``path`` through a temporary name and records it, as the cache does."""
    with cache.temporary(path) as partial:
        partial.write_bytes(content)
        size, digests = cache.hash_file(partial)
        return cache.publish(partial, path, size=size, sha256=digests["sha256"], url="https://example.com/a")


def test_a_recorded_file_verifies_and_its_record_says_what_it_is(tmp_path):
    path = tmp_path / "cache" / "a.pth"
    record = _write(path, b"weights" * 1000)
    assert cache.verify(path) == record == json.loads(cache.record_path(path).read_text())
    assert record == {
        "file": "a.pth",
        "size": 7000,
        "sha256": hashlib.sha256(b"weights" * 1000).hexdigest(),
        "url": "https://example.com/a",
    }
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.pth", "a.pth.json"]  # no temporary file


@given(position=st.integers(0, 6999), flip=st.integers(1, 255))
@settings(max_examples=25, deadline=None)
def test_any_changed_byte_fails_verification(tmp_path_factory, position, flip):
    path = tmp_path_factory.mktemp("cache") / "a.weights.h5"
    _write(path, b"weights" * 1000)
    content = bytearray(path.read_bytes())
    content[position] ^= flip
    path.write_bytes(bytes(content))  # same size, same name
    assert cache.verify(path) is None


def test_a_truncated_replaced_missing_or_unrecorded_file_does_not_verify(tmp_path):
    path = tmp_path / "a.pth"
    cases = {
        "truncated": lambda: path.write_bytes(path.read_bytes()[:-1]),
        "replaced by another recorded file": lambda: path.write_bytes((tmp_path / "b.pth").read_bytes()),
        "missing": path.unlink,
        "without record": lambda: cache.record_path(path).unlink(),
        "record not JSON": lambda: cache.record_path(path).write_text("{"),
        "record without a digest": lambda: cache.record_path(path).write_text('{"size": 7}'),
        "record not a dict": lambda: cache.record_path(path).write_text("[]"),
    }
    _write(tmp_path / "b.pth", b"other!!")
    for what, damage in cases.items():
        _write(path, b"weights")
        damage()
        assert cache.verify(path) is None, what
        cache.remove(path)
        assert not path.exists() and not cache.record_path(path).exists(), what
    cache.remove(path)  # nothing there: nothing to do


def test_a_failure_while_writing_leaves_neither_a_temporary_file_nor_a_changed_entry(tmp_path):
    path = tmp_path / "a.weights.h5"
    record = _write(path, b"old")
    with pytest.raises(OSError, match="No space left"):
        with cache.temporary(path, suffix=".weights.h5") as partial:
            assert partial.parent == tmp_path and partial.name.startswith(".a.weights.h5.")
            assert partial.name.endswith(".partial.weights.h5")  # what keras's save_weights asks for
            partial.write_bytes(b"half")
            raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.weights.h5", "a.weights.h5.json"]
    assert cache.verify(path) == record and path.read_bytes() == b"old"


def test_temporary_names_are_unique(tmp_path):
    names = set()
    for _ in range(50):
        with cache.temporary(tmp_path / "a.pth") as partial:
            names.add(partial.name)
    assert len(names) == 50


def test_the_entry_lock_excludes_other_holders_and_its_file_is_kept_outside_the_cache_folder(tmp_path):
    path = tmp_path / "checkpoints" / "a.pth"
    held, order = threading.Event(), []

    def other():
        held.wait()
        with cache.locked(path):
            order.append("other")

    thread = threading.Thread(target=other)
    thread.start()
    with cache.locked(path):
        held.set()
        time.sleep(0.3)  # the other thread is waiting for the lock all this time
        order.append("first")
    thread.join(10)
    assert order == ["first", "other"]
    assert cache.lock_path(path) == tmp_path / ".locks" / "a.pth.lock"
    assert cache.lock_path(path).is_file()  # kept: deleting it while another waits would break the lock
    assert not (tmp_path / "checkpoints").exists()  # the cache folder holds weights and records only


def test_what_cannot_be_read_or_removed_is_a_checkpoint_error_naming_the_file(tmp_path):
    unreadable = tmp_path / "a.pth"
    unreadable.mkdir()  # a folder where a file should be: read fails (as root too) and unlink fails
    (unreadable / "inside").touch()
    with pytest.raises(CheckpointError, match=r"a\.pth': cannot be read .*\(delete it; it is made again"):
        cache.hash_file(unreadable)
    with pytest.raises(CheckpointError, match=r"a\.pth': is not the file recorded .* \(delete it and a\.pth\.json"):
        cache.remove(unreadable)
    with pytest.raises(FileNotFoundError):  # callers take a missing file for "not cached"
        cache.hash_file(tmp_path / "missing.pth")
