"""Published weights on the user's machine: download once, verify, convert once, cache.

``weights="imagenet"`` (or a tag) resolves here to a ``.weights.h5`` file of the full classifier:

1. the publisher's checkpoint is downloaded with ``keras.utils.get_file`` (progress bar) into
   ``$KERAS_HOME/keras_lightnets/checkpoints`` (``~/.keras`` by default) and its digest checked:
   the one in the variant table, else the one the host states (the Hub's SHA-256); a file that
   fails the check is removed, so nothing corrupt stays in the cache;
2. it is converted by name (:func:`keras_lightnets.weights.load_checkpoint`, no torch) into the
   variant built with its defaults, and saved as ``<variant>.<tag>.<digest>.weights.h5`` next to it,
   written to a temporary name and renamed, so a half-written file never exists;
3. later calls find the converted file and touch neither the network nor the checkpoint.

``LIGHTNETS_WEIGHTS_MIRROR=http://host:port`` replaces the scheme and host of every source URL
(an internal mirror; the tests serve files from 127.0.0.1 this way).
"""

import base64
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "MIRROR_ENV",
    "WeightsUnavailableError",
    "cache_dir",
    "fetch_checkpoint",
    "host_digest",
    "pretrained_weights_file",
]

MIRROR_ENV = "LIGHTNETS_WEIGHTS_MIRROR"
HASH_NAMES = {"sha256": "SHA-256", "md5": "MD5"}


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


def _digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the Hub states the digest on its redirect to the storage host


def host_digest(url, algorithm):
    """The ``algorithm`` digest (hex) the host states for the file at ``url``, asked with a HEAD
    request: the Hugging Face Hub's ``X-Linked-Etag`` (the SHA-256 of a stored object) or Google
    Cloud Storage's ``x-goog-hash: md5=<base64>``. ``OSError`` (``urllib.error.URLError``) when the
    host cannot be reached, ``ValueError`` when it states no digest of that kind (nothing is used
    unverified)."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            headers = response.headers
    except urllib.error.HTTPError as error:
        if not 300 <= error.code < 400:
            raise
        headers = error.headers
    if algorithm == "sha256":
        linked = (headers.get("X-Linked-Etag") or "").strip('"').removeprefix("W/").strip('"')
        if len(linked) == 64:
            return linked.lower()
    if algorithm == "md5":
        for part in (headers.get("x-goog-hash") or "").split(","):
            kind, _, value = part.strip().partition("=")
            if kind == "md5":
                return base64.b64decode(value).hex()
    raise ValueError(f"{url}: the host states no {algorithm} digest for the file, so it cannot be verified")


def _expected_digest(source, url):
    return source.file_hash or host_digest(url, source.hash_algorithm)


def fetch_checkpoint(source):
    """``(path, digest)``: the verified local path of ``source``'s checkpoint (downloaded when it
    is not cached yet) and its ``source.hash_algorithm`` hex digest."""
    import keras

    folder = cache_dir()
    path = folder / source.filename
    url = source_url(source)
    if source.file_hash and path.is_file():
        actual = _digest(path, source.hash_algorithm)
        if actual.startswith(source.file_hash):
            return path, actual
    if path.exists():
        path.unlink()  # a cached file that fails the check: fetch it again
    try:
        expected = _expected_digest(source, url)
        folder.mkdir(parents=True, exist_ok=True)
        path = Path(keras.utils.get_file(source.filename, url, cache_dir=str(folder), cache_subdir="."))
    except Exception as error:  # noqa: BLE001 - any network failure gets the same advice
        if path.exists():
            path.unlink()
        if isinstance(error, ValueError):
            raise
        advice = (
            f"download it elsewhere and put it at {path}"
            if source.file_hash
            else "download it elsewhere and load it with keras_lightnets.weights.load_checkpoint(model, path)"
        )
        raise WeightsUnavailableError(
            f"could not download {url} ({type(error).__name__}: {error}). Without network, {advice}"
        ) from error
    actual = _digest(path, source.hash_algorithm)
    if not actual.startswith(expected):
        path.unlink()
        raise ValueError(
            f"{source.filename} from {url} failed its {HASH_NAMES[source.hash_algorithm]} check (expected a digest "
            f"starting {expected[:16]}, got {actual[:16]}): the download is corrupt or truncated and was removed; "
            "try again"
        )
    return path, actual


def _converted_name(entry, source, digest):
    return f"{entry.name}.{source.tag}.{digest[:8]}.weights.h5"


def pretrained_weights_file(entry, source):
    """The converted ``.weights.h5`` of ``source`` for the registry row ``entry`` (made once).

    Named after the checkpoint's digest: a source that changes its file never reuses a stale
    conversion. For a source whose digest the host states (no ``file_hash`` in the table), the
    conversion found in the cache is used without asking the host, so a second call is offline.
    """
    from keras_lightnets.weights.checkpoint import load_checkpoint

    folder = cache_dir()
    if source.file_hash:
        target = folder / _converted_name(entry, source, source.file_hash)
        if target.is_file():
            return target
    else:
        found = sorted(folder.glob(_converted_name(entry, source, "*")), key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    checkpoint, digest = fetch_checkpoint(source)
    target = folder / _converted_name(entry, source, source.file_hash or digest)
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
