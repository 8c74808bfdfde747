"""Which ``tf.distribute`` strategy a run uses, and which worker writes the outputs.

``get_strategy("auto")``: a TPU when one is attached, else ``MirroredStrategy`` over every
GPU when there are several, else the default (single-device) strategy. Create the strategy
first thing in a program: ``MultiWorkerMirroredStrategy`` and TPUs configure the TensorFlow
runtime and refuse to start once it has run an operation.

Model, optimizer and metrics must be created inside ``strategy.scope()`` (``fit`` does),
and each replica gets ``global batch / num_replicas_in_sync`` examples per step.
"""

import json
import os

import tensorflow as tf

__all__ = ["STRATEGIES", "get_strategy", "is_chief", "is_multi_worker", "worker_id"]

STRATEGIES = ("auto", "cpu", "mirrored", "multiworker", "tpu")


def _tpu_hinted():
    """Whether this machine looks like it has a TPU, without touching the network.

    A bare ``TPUClusterResolver()`` asks the GCE metadata server, which hangs or fails
    slowly elsewhere; so "auto" only tries when ``TPU_NAME`` is set (TPU nodes) or the
    TPU VM device files exist.
    """
    return bool(os.environ.get("TPU_NAME")) or os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0")


def _tpu_strategy():
    """``TPUStrategy`` for ``$TPU_NAME`` (a TPU node) or the local TPU VM ("local").

    Follows the TensorFlow TPU guide: resolve, connect, initialize the TPU system, then
    build the strategy. Not exercised in the test suite (no TPU there).
    """
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(name="auto"):
    """A ``tf.distribute.Strategy`` by name.

    - ``"auto"``: TPU if one is attached (see :func:`_tpu_hinted`), else ``"mirrored"`` with
      more than one GPU, else the default strategy.
    - ``"cpu"``: one replica on ``/cpu:0`` even when GPUs are present.
    - ``"mirrored"``: synchronous data parallelism over the local GPUs, or over the logical
      CPU devices when there is no GPU (how the tests run it).
    - ``"multiworker"``: ``MultiWorkerMirroredStrategy`` over the cluster in ``$TF_CONFIG``
      (every worker runs the same command with its own ``task``).
    - ``"tpu"``: ``TPUStrategy`` for ``$TPU_NAME`` or the local TPU VM.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES} or a tf.distribute.Strategy, got {name!r}")
    if name == "auto":
        if _tpu_hinted():
            try:
                return _tpu_strategy()
            except (ValueError, RuntimeError, tf.errors.OpError):
                pass  # no usable TPU after all: fall through to GPUs / CPU
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return get_strategy("mirrored")
        return tf.distribute.get_strategy()
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "strategy 'multiworker' needs the cluster in $TF_CONFIG, e.g. "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
            )
        try:
            cluster = json.loads(config)["cluster"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"$TF_CONFIG is not a valid cluster description ({error}): {config!r}") from None
        if not isinstance(cluster, dict) or not cluster:
            raise ValueError(f"$TF_CONFIG has no cluster: {config!r}")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy()


def is_multi_worker(strategy):
    """Whether ``strategy`` spans several worker processes (MultiWorkerMirroredStrategy in a cluster)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def worker_id(strategy):
    """``(task_type, task_id)`` of this process in a multi-worker cluster, ``(None, None)`` otherwise."""
    if not is_multi_worker(strategy):
        return None, None
    resolver = strategy.cluster_resolver
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes the run's outputs: always, except on non-chief workers of a cluster.

    The chief is the ``chief`` task, or worker 0 when the cluster has no ``chief`` job
    (the TensorFlow convention).
    """
    task_type, task_id = worker_id(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in strategy.cluster_resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief
