"""A `lightnets train` killed with SIGKILL resumes when the same command runs again."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from training_helpers import FAST_MODEL, lightnets_command, run_bounded, subprocess_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

START_TIMEOUT = 240  # seconds until the first checkpoint (TensorFlow import, dataset, first trace)


def _checkpoint_epoch(output):
    try:
        return json.loads((output / "backup" / "checkpoint.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, data_dir):
    output = tmp_path / "run"
    command = lightnets_command(
        "train", FAST_MODEL, "--epochs", "4", "--steps-per-epoch", "15", "--batch-size", "32",
        "--output", str(output), "--data-dir", data_dir, "--seed", "0", "--verbose", "2",
    )  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env())
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while _checkpoint_epoch(output) < 1:
            assert first.poll() is None, f"the run ended before its first checkpoint:\n{first.communicate()[0]}"
            assert time.monotonic() < deadline, f"no checkpoint after {START_TIMEOUT} s"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first_output = first.communicate(timeout=60)[0]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL, f"the run was not killed mid-way:\n{first_output}"
    killed_at = _checkpoint_epoch(output)
    assert 1 <= killed_at < 4

    second = run_bounded(command, timeout=300, env=subprocess_env())
    assert second.returncode == 0, second.stdout + second.stderr
    resumed = [line for line in second.stdout.splitlines() if line.startswith("resuming from epoch ")]
    assert len(resumed) == 1, second.stdout
    resumed_from = int(resumed[0].split()[3])
    assert resumed_from >= killed_at >= 1  # from the killed run's last committed epoch
    assert "top-1 accuracy on test:" in second.stdout and "time per epoch:" in second.stdout
    assert f"outputs in {output}" in second.stdout

    with open(output / "history.csv", newline="") as handle:
        epochs = [int(row["epoch"]) for row in csv.DictReader(handle)]
    assert epochs == [0, 1, 2, 3]  # each epoch exactly once, the interrupted one redone
    assert json.loads((output / "backup" / "checkpoint.json").read_text())["epoch"] == 4
    assert (output / "final.keras").is_file()
