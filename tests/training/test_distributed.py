"""tf.distribute: MirroredStrategy over two logical CPUs matches one device step for step, and a
two-worker MultiWorkerMirroredStrategy run on 127.0.0.1 finishes (both in subprocesses: logical
devices and collective ops must be configured before TensorFlow starts)."""

import json
import socket
import subprocess
import sys
import time

from training_helpers import FAST_MODEL, lightnets_command, run_bounded, subprocess_env

# Trains the same model from the same weights on the same batches, once on one device
# (OneDeviceStrategy, "cpu") and once mirrored over 2 logical CPUs, three SGD steps; prints
# per-step losses and the weights. The mirrored step (the all-reduced mean of two 16-example
# gradients) must equal the one-device step (the gradient of the 32 examples) up to float
# rounding. Why these settings:
# - SqueezeNet has no BatchNorm: under MirroredStrategy each replica would normalize with its own
#   half-batch statistics, a difference by design (SyncBatchNormalization aside), not a bug.
#   Its dropout is switched off; its last conv is scaled up so that the loss depends on the
#   batch (a fresh network's loss is ln(10) on any batch, and equal losses would prove nothing).
# - The reference is OneDeviceStrategy, not the default strategy: under any explicit strategy
#   Keras's first-fit build draws one batch and restarts the input iterator, which (seeded
#   shuffling, reshuffled each iteration) starts on the second permutation; the default
#   strategy skips that build and would see the first.
# - SGD without momentum or weight decay, no label smoothing, seeded data order and
#   augmentation: nothing else can differ.
# - Seeded initial weights: with whatever weights a process drew, the three steps were sometimes
#   ill-conditioned (losses 3 -> 51 -> 4210), and rounding grows with them; seed 0 gives losses
#   2.39, 2.31, 2.30.
MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import keras_lightnets as kl
from keras_lightnets.training import fit, get_strategy

data_dir, output = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)  # the same initial weights, hence the same well-conditioned steps, every run
initial, runs = None, {}
for name in ("one_device", "mirrored"):
    strategy = get_strategy("cpu" if name == "one_device" else "mirrored")
    with strategy.scope():
        model = kl.create_model(
            "squeezenet1_1", classes=10, input_shape=(32, 32, 3), classifier_activation=None, dropout_rate=0.0
        )
        if initial is None:
            kernel = model.get_layer("conv10_conv").kernel
            kernel.assign(kernel * 10.0)
            initial = model.get_weights()
        model.set_weights(initial)
    result = fit(
        model, strategy=strategy, output_dir=f"{output}/{name}", data_dir=data_dir, epochs=3, steps_per_epoch=1,
        batch_size=32, optimizer="sgd", momentum=0.0, learning_rate=0.05, weight_decay=0.0, warmup_epochs=0.0,
        label_smoothing=0.0, seed=0, verbose=0,
    )
    runs[name] = (strategy.num_replicas_in_sync, result)
(_, single), (replicas, mirrored) = runs["one_device"], runs["mirrored"]
def relative(a, b):
    return max(abs(x - y) / abs(x) for x, y in zip(a, b))
losses = [[row[key] for row in run.history] for run in (single, mirrored) for key in ("loss", "val_loss")]
single_weights, mirrored_weights = single.model.get_weights(), mirrored.model.get_weights()
moved = max(float(np.max(np.abs(w - w0))) for w, w0 in zip(single_weights, initial))
def norm(arrays):
    return float(np.sqrt(sum(np.sum(np.square(a.astype("float64"))) for a in arrays)))
step = norm([w - w0 for w, w0 in zip(single_weights, initial)])
gap = norm([a - b for a, b in zip(single_weights, mirrored_weights)])
print(json.dumps({
    "replicas": replicas,
    "single_loss": losses[0], "mirrored_loss": losses[2],
    "loss_rel_diff": relative(losses[0], losses[2]),
    "val_loss_rel_diff": relative(losses[1], losses[3]),
    "weights_max_abs_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(single_weights, mirrored_weights)),
    "weights_max_abs_change": moved,
    "weights_rel_diff": gap / step,
}))
"""


def test_mirrored_over_two_cpus_matches_one_device(tmp_path, data_dir):
    result = run_bounded(
        [sys.executable, "-c", MIRRORED_SCRIPT, data_dir, str(tmp_path)], timeout=400, env=subprocess_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    print(numbers)  # shown with -s: the measured agreement
    assert numbers["replicas"] == 2
    assert len(set(numbers["single_loss"])) == 3  # three different steps, so the comparison means something
    assert max(numbers["single_loss"]) - min(numbers["single_loss"]) > 0.01  # losses that depend on the batch
    assert numbers["weights_max_abs_change"] > 1e-3  # the weights did move
    assert numbers["loss_rel_diff"] < 1e-5
    assert numbers["val_loss_rel_diff"] < 1e-5
    # The two runs' weights differ by float rounding only, measured against how far the three steps
    # moved them (|w_single - w_mirrored| / |w_single - w_initial| over all weights): an absolute
    # bound on the weights fails whenever the steps are large. Rounding gives ~1e-6 (up to 6e-5 seen
    # with other initial weights or rates); summed instead of averaged replica gradients (steps 2x)
    # give 1.9, a half batch's gradient (steps 0.5x) 0.5.
    assert numbers["weights_rel_diff"] < 1e-3


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_multi_worker_run_on_two_local_workers_finishes(tmp_path, data_dir):
    output = tmp_path / "run"
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    command = lightnets_command(
        "train", FAST_MODEL, "--strategy", "multiworker", "--epochs", "1", "--steps-per-epoch", "3",
        "--batch-size", "32", "--output", str(output), "--data-dir", data_dir, "--seed", "0", "--verbose", "0",
    )  # fmt: skip
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        log = open(tmp_path / f"worker{index}.log", "w+")  # noqa: SIM115 -- closed below
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(TF_CONFIG=tf_config)
        )
        workers.append((process, log))
    deadline = time.monotonic() + 240
    try:
        for process, _ in workers:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process, _ in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = []
    for _, log in workers:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for index, (process, _) in enumerate(workers):
        assert process.returncode == 0, f"worker {index} exited with {process.returncode}:\n{outputs[index]}"
    assert "2 replica(s)" in outputs[0]
    assert "top-1 accuracy on test:" in outputs[0]
    # The chief (worker 0) wrote the run; worker 1 wrote its scratch copy, nothing else.
    assert (output / "final.keras").is_file() and (output / "history.csv").is_file()
    assert json.loads((output / "backup" / "checkpoint.json").read_text())["epoch"] == 1
    assert sorted(p.name for p in (output / "workers").iterdir()) == ["worker_1"]
