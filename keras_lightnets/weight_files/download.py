"""Published weights on the user's machine: download once, verify, convert once, cache, re-verify on every use.

``weights="imagenet"`` (or a tag) resolves here to a ``.weights.h5`` file of the full classifier:

1. the publisher's checkpoint is downloaded with ``keras.utils.get_file`` (progress bar) into
   ``$KERAS_HOME/keras_lightnets/checkpoints`` (``~/.keras`` by default), to a temporary name, and its
   digest checked: the one in the variant table, else the one the host states (the Hub's SHA-256,
   GCS's MD5). Only a file that passes is renamed into place, with a record of its full SHA-256 (a
   torchvision file name states only 8 hex digits of it); one that fails is removed;
2. it is converted by name (:func:`~keras_lightnets.weight_files.convert.load_weights_file` with the
   variant's layouts, no torch) into the variant built with its defaults, and saved as
   ``<variant>.<tag>.<digest>.weights.h5`` next to it, written to a temporary name, renamed, and
   recorded with its SHA-256 and the checkpoint digest it was made from;
3. later calls find the converted file, check it against its record (see :mod:`.cache`) and touch
   neither the network nor the checkpoint. A converted file that is damaged, replaced or
   unrecorded is made again from the checkpoint (itself checked against its record, else
   downloaded again); when neither can be had offline the error names the file to put where.

Processes that resolve the same weights at once (several training jobs starting together) take
turns on a file lock per cache entry (``.locks`` beside the cache folder, kept): the first downloads
and converts, the others wait and then find its verified files, so the host serves the file once.

``LIGHTNETS_WEIGHTS_MIRROR=http://host:port`` replaces the scheme and host of every source URL
(an internal mirror; the tests serve files from 127.0.0.1 this way).
"""

import base64
import contextlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from keras_lightnets.weight_files import cache
from keras_lightnets.weight_files.convert import load_weights_file
from keras_lightnets.weight_files.errors import CheckpointError

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


def fetch_checkpoint(source):
    """``(path, digest)``: the verified local path of ``source``'s checkpoint and its
    ``source.hash_algorithm`` hex digest. A cached file is used when it matches its record (or,
    put there by hand without one, the digest in the variant table); else it is downloaded, under
    the entry's lock, so processes asking at once download it once."""
    path = cache_dir() / source.filename
    url = source_url(source)
    with cache.locked(path):
        digest = _cached_checkpoint(source, url, path)
        if digest is None:
            cache.remove(path)  # damaged, replaced or unverifiable: fetched again
            digest = _download(source, url, path)
    return path, digest


def _cached_checkpoint(source, url, path):
    """The digest of the cached checkpoint at ``path`` when it can be trusted, else None."""
    algorithm = source.hash_algorithm
    record = cache.verify(path)
    if record is not None:
        digest = record.get(algorithm)
        # The table may pin another digest than the one the file was recorded under (a new release).
        if isinstance(digest, str) and digest.startswith(source.file_hash or ""):
            return digest
        return None
    if source.file_hash is None or cache.read_record(path) is not None or not path.is_file():
        return None
    # No record: a file the user put here by hand (what the "without network" advice says to do),
    # checked against the table's digest and recorded; without a pinned digest it is fetched again.
    try:
        size, digests = cache.hash_file(path, ("sha256", algorithm))
    except FileNotFoundError:
        return None
    if not digests[algorithm].startswith(source.file_hash):
        return None
    cache.write_record(path, size=size, url=url, placed_by_hand=True, **digests)
    return digests[algorithm]


def _download(source, url, path):
    """Downloads ``url`` to a temporary name beside ``path``, checks its digest and renames it to
    ``path`` with its record; returns the digest. Nothing stays behind when anything fails."""
    import keras

    algorithm = source.hash_algorithm
    with cache.temporary(path) as partial:
        try:
            expected = source.file_hash or host_digest(url, algorithm)
            keras.utils.get_file(partial.name, url, cache_dir=str(path.parent), cache_subdir=".")
        except ValueError:
            raise
        except Exception as error:  # noqa: BLE001 - any network failure gets the same advice
            advice = (
                f"download it elsewhere and put it at {path}"
                if source.file_hash
                else "download it elsewhere and load it with keras_lightnets.weights.load_checkpoint(model, path)"
            )
            raise WeightsUnavailableError(
                f"could not download {url} ({type(error).__name__}: {error}). Without network, {advice}"
            ) from error
        size, digests = cache.hash_file(partial, ("sha256", algorithm))
        if not digests[algorithm].startswith(expected):
            raise CheckpointError(
                path,
                f"the download from {url} failed its {HASH_NAMES[algorithm]} check (expected a digest starting "
                f"{expected[:16]}, got {digests[algorithm][:16]}): it is corrupt or truncated and was removed",
                advice="try again",
            )
        cache.publish(partial, path, size=size, url=url, **digests)
    return digests[algorithm]


def _converted_name(entry, source, digest):
    return f"{entry.name}.{source.tag}.{digest[:8]}.weights.h5"


def _cached_conversion(entry, source):
    """``(path, trusted)`` of the converted file of ``source`` in the cache: the one named after
    the pinned digest, else (digest stated by the host) the newest one, without asking the host, so
    a second call is offline. ``trusted``: it matches its record and was made from that checkpoint.
    ``(None, False)`` when there is no such file."""
    folder = cache_dir()
    if source.file_hash:
        target = folder / _converted_name(entry, source, source.file_hash)
    else:
        found = []
        for candidate in folder.glob(_converted_name(entry, source, "*")):
            with contextlib.suppress(FileNotFoundError):  # removed by another process meanwhile
                found.append((candidate.stat().st_mtime, candidate))
        target = max(found)[1] if found else None
    if target is None or not target.exists():
        return None, False
    record = cache.verify(target)
    made_from = record and record.get("checkpoint_digest")
    stated = source.file_hash or target.name.split(".")[-3]  # the digest in the name
    trusted = isinstance(made_from, str) and made_from.startswith(stated) and record.get("layout") == source.layout
    return target, trusted


def pretrained_weights_file(entry, source):
    """The converted ``.weights.h5`` of ``source`` for the registry row ``entry``, checked against
    its record on every call and made (once, under the entry's lock) when missing or untrustworthy.

    Named after the checkpoint's digest: a source that changes its file never reuses a stale
    conversion. For a source whose digest the host states (no ``file_hash`` in the table), the
    conversion found in the cache is used without asking the host, so a second call is offline.
    """
    target, trusted = _cached_conversion(entry, source)
    if trusted:
        return target  # the usual case: no lock, no network
    folder = cache_dir()
    with cache.locked(folder / f"{entry.name}.{source.tag}.weights.h5"):
        # Another process may have made it while this one waited for the lock.
        target, trusted = _cached_conversion(entry, source)
        if trusted:
            return target
        if target is not None:
            cache.remove(target)  # damaged, replaced (even by valid weights) or unrecorded
        try:
            return _convert(entry, source)
        except WeightsUnavailableError as error:
            if target is None:
                raise
            raise WeightsUnavailableError(
                f"{target} did not match its record in the weights cache (damaged or replaced) and was removed; "
                f"making it again needs the checkpoint, but {error}"
            ) from error


def _convert(entry, source):
    """Converts the (verified) checkpoint of ``source`` into ``entry``'s model and caches it."""
    checkpoint, digest = fetch_checkpoint(source)
    target = cache_dir() / _converted_name(entry, source, source.file_hash or digest)
    model = entry.build()  # the full classifier, 1000 classes, as published
    load_weights_file(model, checkpoint, entry, layout=source.layout)
    # Keras's save_weights wants the .weights.h5 ending.
    with cache.temporary(target, suffix=".weights.h5") as partial:
        model.save_weights(partial)
        size, digests = cache.hash_file(partial)
        cache.publish(
            partial,
            target,
            size=size,
            sha256=digests["sha256"],
            checkpoint=source.filename,
            checkpoint_digest=digest,
            layout=source.layout,
        )
    return target
