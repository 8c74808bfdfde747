"""What the benchmark scripts share: the environment header, Markdown tables, atomic writes,
and interleaved A/B timing (so drift in the machine's speed hits both sides alike)."""

import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import keras
import tensorflow as tf

import keras_lightnets


def environment():
    """Date, library versions and the machine, for the report header."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_lightnets": keras_lightnets.__version__,
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or "unknown",
        "platform": platform.platform(),
    }


def markdown_table(header, rows):
    """A Markdown table; numeric columns (all but the first) right-aligned."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_atomic(path, text):
    """Writes ``text`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def interleaved_medians(calls, runs, progress=None, clock=time.perf_counter):
    """Times ``runs`` rounds of every callable in ``calls`` (a dict), alternating A B A B ...

    Returns ``{name: (median seconds, [all seconds])}``. Each call must finish its
    work before returning (fetch results to the host). ``clock``: wall time by default;
    ``time.process_time`` counts the CPU seconds this process spends (all its threads), which
    leaves out the time other processes take from a shared machine.
    """
    times = {name: [] for name in calls}
    rounds = range(runs) if progress is None else progress(range(runs))
    for _ in rounds:
        for name, call in calls.items():
            start = clock()
            call()
            times[name].append(clock() - start)
    return {name: (statistics.median(values), values) for name, values in times.items()}
