"""The output folder of a training run, and the atomic writes that keep it readable after a crash.

::

    OUTPUT_DIR/
      run.json       what this folder trains: model, architecture fingerprint, dataset, image
                     size, recipe and hyperparameters, versions (written at the start)
      backup/        resumption state: checkpoint.json -> epoch-NNNN.weights.h5 (model and
                     optimizer variables after epoch NNNN), replaced after every epoch
      history.csv    one row per finished epoch, keyed by the ``epoch`` column
      curves.png     loss and accuracy curves, redrawn after every epoch
      best.keras     the model of the epoch with the best validation accuracy so far
      final.keras    the model at the end (EMA weights when the recipe uses EMA)
      logs/          TensorBoard event files
      workers/       scratch outputs of non-chief workers of a multi-worker run

Every file is written to a temporary name in the same folder and renamed over the old one
(``os.replace`` is atomic on POSIX and Windows), so a run killed at any instant leaves each
file either old or new, never torn. The backup is committed by its last step, the rename of
``checkpoint.json``: until then the previous epoch's state stays the valid one.
"""

import csv
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

__all__ = [
    "CheckpointError",
    "RunDir",
    "RunMismatchError",
    "atomic_save_model",
    "atomic_write_bytes",
    "atomic_write_text",
    "model_fingerprint",
]

# The keys of run.json that must match for a folder to be resumed.
IDENTITY_KEYS = ("model", "model_fingerprint", "dataset", "image_size", "num_classes", "recipe", "hyperparameters")


class RunMismatchError(ValueError):
    """The output folder holds another run (other model, dataset, image size or settings)."""


class CheckpointError(ValueError):
    """The backup in the output folder exists but cannot be read."""


# The temporary names :func:`_temporary` makes: ".NAME.tmp-PID" plus the suffix a writer needs, for
# the kinds of file this package writes atomically (a user's ".notes.tmp-12" is none of them).
_TEMPORARY_NAME = re.compile(
    r"\.(?P<name>.+\.(?:tflite|keras|json|csv|png|h5))\.tmp-(?P<pid>[0-9]+)(?P<suffix>|\.keras|\.weights\.h5)"
)


def _temporary(path, suffix=""):
    """This process's temporary name for ``path``. First, every temporary file of this package in
    the folder whose process is gone (SIGKILL, power loss) is removed, whatever file it was for:
    an export killed while writing ``a.tflite`` leaves ``.a.tflite.tmp-PID``, which only the next
    write of ``a.tflite`` would meet otherwise. Files of live processes and the user's own files
    (any other name) stay."""
    path = Path(path)
    _sweep_temporaries(path.parent)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")


def _sweep_temporaries(folder):
    """Removes ``folder``'s temporary files (:data:`_TEMPORARY_NAME`) left by processes that are not running."""
    try:
        candidates = list(folder.glob(".*.tmp-*"))
    except OSError:
        return  # an unreadable folder: the write itself will say what is wrong
    for stale in candidates:
        match = _TEMPORARY_NAME.fullmatch(stale.name)
        if match is None or not stale.is_file():
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and not _alive(pid):
            stale.unlink(missing_ok=True)


def _alive(pid):
    if pid <= 0:
        return True  # not a process id: os.kill(0, ...) would signal our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, OSError):
        return True  # an impossible pid: keep the file rather than guess
    return True


def _fsync(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def atomic_write_bytes(path, data):
    """Writes ``data`` to ``path`` through a temporary file and a rename."""
    temporary = _temporary(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        # A failed write (full disk, interrupt) leaves neither a partial file nor the temporary.
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_model(model, path):
    """``model.save(path)`` through a temporary ``.keras`` file (Keras wants the suffix) and a rename."""
    temporary = _temporary(path, ".keras")
    model.save(temporary)
    _fsync(temporary)
    os.replace(temporary, path)


def model_fingerprint(model):
    """SHA-256 of the model's architecture: every layer's class and config, without layer names.

    Names are left out because Keras suffixes auto-generated names per session
    (``dense_1``), which would make the same architecture look different.
    """
    layers = []
    for layer in model.layers:
        config = dict(layer.get_config())
        config.pop("name", None)
        layers.append([type(layer).__name__, config])
    text = json.dumps([layers, model.input_shape, model.output_shape], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _describe(info):
    return f"{info.get('model')} on {info.get('dataset')} at {info.get('image_size')}px (recipe {info.get('recipe')!r})"


def _differences(old, new):
    differences = []
    for key in IDENTITY_KEYS:
        if key == "hyperparameters":
            before, after = old.get(key) or {}, new.get(key) or {}
            for name in sorted(set(before) | set(after)):
                if before.get(name) != after.get(name):
                    differences.append(f"{name} {before.get(name)!r} there, {after.get(name)!r} here")
        elif old.get(key) != new.get(key):
            differences.append(f"{key} {old.get(key)!r} there, {new.get(key)!r} here")
    return differences


class RunDir:
    """Paths and state of one output folder (see the module docstring for the layout)."""

    # What --overwrite removes. Not workers/: each worker of a multi-worker run clears its own
    # scratch folder, and the chief removing it could race with a worker writing there.
    ARTEFACTS = ("run.json", "history.csv", "curves.png", "best.keras", "final.keras", "backup", "logs")

    def __init__(self, path):
        self.path = Path(path)
        self.run_json = self.path / "run.json"
        self.history_csv = self.path / "history.csv"
        self.curves_png = self.path / "curves.png"
        self.best = self.path / "best.keras"
        self.final = self.path / "final.keras"
        self.backup = self.path / "backup"
        self.logs = self.path / "logs"
        self.checkpoint_json = self.backup / "checkpoint.json"

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    # -- run.json ---------------------------------------------------------------------

    def read_run_info(self):
        """run.json as a dict, ``None`` when absent; ``RunMismatchError`` when unreadable."""
        if not self.run_json.exists():
            return None
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RunMismatchError(
                f"output dir {self.path} has an unreadable run.json ({error}); use another --output or --overwrite"
            ) from None

    def clear(self):
        """Removes this package's artefacts (only those: the folder may hold the user's other files)."""
        for name in self.ARTEFACTS:
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        self.remove_temporaries()

    def remove_temporaries(self):
        """Deletes temporary files a killed run left behind (only this run's process writes here)."""
        for folder in (self.path, self.backup):
            for stale in folder.glob(".*.tmp-*"):
                stale.unlink(missing_ok=True)

    def prepare(self, run_info, *, overwrite=False):
        """Makes the folder ready for ``run_info``'s run: new, or the same run to resume.

        Raises ``RunMismatchError`` when it holds another run (run.json differs on any of
        :data:`IDENTITY_KEYS`) or files that are not a run, unless ``overwrite`` (which
        removes the previous run's artefacts first). Returns the run info kept in run.json.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self.clear()
        existing = self.read_run_info()
        if existing is None:
            others = sorted(p.name for p in self.path.iterdir() if p.name != "workers" and not p.name.startswith("."))
            if others and not overwrite:  # with overwrite, the user's other files stay where they are
                raise RunMismatchError(
                    f"output dir {self.path} is not empty ({', '.join(others[:5])}) and holds no keras_lightnets run "
                    "(no run.json); use another --output or --overwrite"
                )
            self.remove_temporaries()
            atomic_write_text(self.run_json, json.dumps(run_info, indent=2, sort_keys=True) + "\n")
            return run_info
        differences = _differences(existing, run_info)
        if differences:
            raise RunMismatchError(
                f"output dir {self.path} holds a run of {_describe(existing)}, not of {_describe(run_info)}: "
                f"{'; '.join(differences)}. Use another --output, the same settings to resume, or --overwrite"
            )
        self.remove_temporaries()
        return existing

    # -- history.csv ------------------------------------------------------------------

    def read_history(self):
        """Rows of history.csv as dicts of floats (``epoch`` an int), sorted by epoch."""
        if not self.history_csv.exists():
            return []
        rows = []
        with open(self.history_csv, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                parsed = {key: float(value) if value not in ("", None) else None for key, value in row.items()}
                parsed["epoch"] = int(parsed["epoch"])
                rows.append(parsed)
        return sorted(rows, key=lambda r: r["epoch"])

    def write_history(self, rows):
        """Rewrites history.csv atomically: one row per epoch, ``epoch`` first, columns sorted."""
        columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in sorted(rows, key=lambda r: r["epoch"]):
            writer.writerow({key: ("" if row.get(key) is None else row[key]) for key in columns})
        atomic_write_text(self.history_csv, buffer.getvalue())

    # -- backup/ ----------------------------------------------------------------------

    def read_checkpoint(self):
        """``(epochs_done, weights_path)`` of the committed backup, ``None`` when there is none.

        Raises ``CheckpointError`` when ``checkpoint.json`` is unreadable or names a
        weights file that is missing: a damaged backup is never silently ignored.
        """
        if not self.checkpoint_json.exists():
            return None
        hint = "delete it to start over, or use --overwrite"
        try:
            state = json.loads(self.checkpoint_json.read_text(encoding="utf-8"))
            epochs_done, weights = int(state["epoch"]), self.backup / state["weights"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"the checkpoint {self.checkpoint_json} is unreadable ({error}); {hint}") from None
        if not weights.is_file():
            raise CheckpointError(f"the checkpoint {self.checkpoint_json} names {weights}, which is missing; {hint}")
        return epochs_done, weights

    def save_checkpoint(self, model, epochs_done):
        """Saves model and optimizer variables after ``epochs_done`` epochs; commits by renaming checkpoint.json."""
        self.backup.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epochs_done:04d}.weights.h5"
        temporary = _temporary(self.backup / name, ".weights.h5")
        model.save_weights(temporary)
        _fsync(temporary)
        os.replace(temporary, self.backup / name)
        state = {"epoch": epochs_done, "weights": name}
        atomic_write_text(self.checkpoint_json, json.dumps(state) + "\n")
        for old in self.backup.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink()
