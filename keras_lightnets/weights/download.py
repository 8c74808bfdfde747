"""Published weights on the user's machine: download once, verify, convert once, cache.

``weights="imagenet"`` (or a tag) resolves here to a ``.weights.h5`` file of the full classifier:

1. the publisher's checkpoint is downloaded with ``keras.utils.get_file`` (progress bar) into
   ``$KERAS_HOME/keras_lightnets/checkpoints`` (``~/.keras`` by default) and its SHA-256 checked;
   a file that fails the check is removed, so nothing corrupt stays in the cache;
2. it is converted by name (:func:`keras_lightnets.weights.load_checkpoint`, no torch) into the
   variant built with its defaults, and saved as ``<variant>.<tag>.<digest>.weights.h5`` next to it,
   written to a temporary name and renamed, so a half-written file never exists;
3. later calls find the converted file and touch neither the network nor the checkpoint.

``LIGHTNETS_WEIGHTS_MIRROR=http://host:port`` replaces the scheme and host of every source URL
(an internal mirror; the tests serve files from 127.0.0.1 this way).
"""

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["MIRROR_ENV", "WeightsUnavailableError", "cache_dir", "fetch_checkpoint", "pretrained_weights_file"]

MIRROR_ENV = "LIGHTNETS_WEIGHTS_MIRROR"


class WeightsUnavailableError(OSError):
    """The checkpoint is neither in the cache nor downloadable; the message says where to put it."""


def cache_dir():
    """Where checkpoints and converted weights are kept: ``$KERAS_HOME/keras_lightnets/checkpoints``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "keras_lightnets" / "checkpoints"


def source_url(source):
    """The URL to download ``source`` from (the mirror's, when ``LIGHTNETS_WEIGHTS_MIRROR`` is set)."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return source.url
    base, original = urlsplit(mirror), urlsplit(source.url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + original.path, "", ""))


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verified(path, source):
    return _sha256(path).startswith(source.sha256)


def fetch_checkpoint(source):
    """The verified local path of ``source``'s checkpoint, downloaded when it is not cached yet."""
    import keras

    folder = cache_dir()
    path = folder / source.filename
    if path.is_file() and _verified(path, source):
        return path
    url = source_url(source)
    folder.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()  # a cached file that fails the check: fetch it again
    try:
        path = Path(keras.utils.get_file(source.filename, url, cache_dir=str(folder), cache_subdir="."))
    except Exception as error:  # noqa: BLE001 - any network failure gets the same advice
        if path.exists():
            path.unlink()
        raise WeightsUnavailableError(
            f"could not download {url} ({type(error).__name__}: {error}). Without network, download it "
            f"elsewhere and put it at {path}"
        ) from error
    if not _verified(path, source):
        path.unlink()
        raise ValueError(
            f"{source.filename} from {url} failed its SHA-256 check (expected a digest starting {source.sha256}): "
            "the download is corrupt or truncated and was removed; try again"
        )
    return path


def pretrained_weights_file(entry, source):
    """The converted ``.weights.h5`` of ``source`` for the registry row ``entry`` (made once)."""
    from keras_lightnets.weights.checkpoint import load_checkpoint

    # Named after the checkpoint's digest too: a source that changes its file never reuses a stale conversion.
    target = cache_dir() / f"{entry.name}.{source.tag}.{source.sha256[:8]}.weights.h5"
    if target.is_file():
        return target
    checkpoint = fetch_checkpoint(source)
    model = entry.build()  # the full classifier, 1000 classes, as published
    load_checkpoint(model, checkpoint, layout=source.layout)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial.weights.h5")
    try:
        model.save_weights(partial)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    return target
