"""Keeps the ``lightnets`` command's output to our own progress, results and errors.

TensorFlow, TFDS, absl, tf_keras and tfmot print warnings addressed to their own developers
(``FeatureConnector.dtype is deprecated``, CUDA stub probes on a machine without a GPU, ...):
a user of the command can do nothing about them, and they bury the results. The command calls
:func:`quiet_library_output` first; ``--show-warnings`` brings them back.

Run as a script (``python -I keras_lightnets/quiet.py``) this file is the filter for native
output: it copies stdin to stdout without the C++ start-up lines (see ``NATIVE_NOISE``).
``scripts/main.sh`` pipes the command's stderr through it, because ``import keras_lightnets``
imports TensorFlow, whose shared libraries print before any Python setting can apply.
This file imports only the standard library, so that it runs as that script too.
"""

import atexit
import logging
import os
import re
import signal
import subprocess
import sys
import warnings

# Python packages whose Deprecation/Future/User warnings are about their own internals.
LIBRARIES = (
    "absl",
    "flatbuffers",
    "google.protobuf",
    "h5py",
    "keras",
    "mediapipe",
    "tensorflow",
    "tensorflow_datasets",
    "tensorflow_model_optimization",
    "tf_keras",
)

# Lines that native code writes straight to file descriptor 2, where neither ``warnings`` nor
# ``logging`` nor TF_CPP_MIN_LOG_LEVEL reach. Only informational and warning lines and the known
# CUDA probe errors: fatal ("F...") lines, Python tracebacks and our own messages always pass.
NATIVE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    # absl / glog format: I0000 00:00:1796157718.835535    4309 cudart_stub.cc:31] ...
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] (Unable to register cu\w+ factory|failed call to cuInit).*"
    # TensorFlow Lite's minimal logger, e.g. "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    r"|INFO: .*"
)


def quiet_library_output(show=False):
    """Hides library warnings and log lines for the rest of this process (unless ``show``).

    Each setting, and why it is there:

    - ``TF_CPP_MIN_LOG_LEVEL=3`` (unless set): TensorFlow's C++ INFO/WARNING/ERROR lines, for a
      TensorFlow imported later and for child processes (the variable is read once, at import).
    - ``warnings`` filters: Deprecation/Future/User warnings raised inside the libraries listed in
      ``LIBRARIES`` (tf_keras and tfmot deprecations, Keras' hints about its own API). Warnings
      attributed to our code, ``MediaPipeCompatibilityWarning`` among them, still show.
    - the ``absl`` logger at ERROR: TFDS logs through absl (``FeatureConnector.dtype is
      deprecated`` once per feature, "has no dataset_info.json"), and so does tfmot.
    - the ``tensorflow`` logger at ERROR (what ``tf.get_logger().setLevel("ERROR")`` does):
      SavedModel / tf.function retracing warnings.
    - file descriptor 2 through :data:`NATIVE_NOISE` (a small filter process): C++ lines that no
      Python setting reaches, e.g. TensorFlow Lite's "Created TensorFlow Lite XNNPACK delegate".
      Everything else, tracebacks included, passes unchanged; a separate process so that nothing
      is lost if this one crashes.

    With ``show=True`` nothing is hidden: TF_CPP_MIN_LOG_LEVEL goes to 0 for what starts later.
    Returns whether output is being filtered.
    """
    if show:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    libraries = "|".join(re.escape(name) for name in LIBRARIES)
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, module=rf"({libraries})(\.|$)")
    for name in ("absl", "tensorflow", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "absl.logging" in sys.modules:  # absl keeps its own verbosity flag, synced to its logger
        sys.modules["absl.logging"].set_verbosity("error")
    _filter_native_stderr()
    return True


def _filter_native_stderr():
    """Points fd 2 at a pipe read by ``python -I quiet.py``, which writes all but noise to the old fd 2."""
    if not sys.executable:  # embedded interpreter: no filter process to start
        return
    sys.stderr.flush()
    try:
        original = os.dup(2)
    except OSError:  # no stderr to filter
        return
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)], stdin=subprocess.PIPE, stdout=original, stderr=original
        )
    except OSError:  # cannot start the filter: keep the output as it is
        os.close(original)
        return
    os.dup2(child.stdin.fileno(), 2)
    child.stdin.close()

    def restore():
        # At exit (tracebacks of uncaught exceptions are printed before this runs): hand fd 2
        # back, which closes the pipe, and let the filter flush what it holds.
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        os.close(original)
        try:
            child.wait(timeout=10)  # longer only if a process started by this one still holds the pipe
        except subprocess.TimeoutExpired:
            pass

    atexit.register(restore)


def _filter(source, sink):
    """Copies ``source`` to ``sink`` line by line (``\\n`` or ``\\r``), dropping NATIVE_NOISE lines."""
    pending = b""
    while chunk := os.read(source, 65536):
        pending += chunk
        lines = re.split(rb"(?<=\n)|(?<=\r)(?!\n)", pending)
        pending = lines.pop()  # an incomplete line waits for its end
        _write(sink, lines)
    _write(sink, [pending])


def _write(sink, lines):
    kept = [
        line for line in lines if line and not NATIVE_NOISE.fullmatch(line.rstrip(b"\r\n").decode(errors="replace"))
    ]
    data = memoryview(b"".join(kept))
    while data:
        data = data[os.write(sink, data) :]


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: keep forwarding until the command itself has exited
    # and closed the pipe, so that its KeyboardInterrupt traceback is not lost.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _filter(sys.stdin.fileno(), sys.stdout.fileno())
    except BrokenPipeError:  # the reader went away (e.g. `| head`)
        pass
