"""Makes ``Model.fit``/``evaluate`` work under ``MultiWorkerMirroredStrategy`` with Keras 3.15.

Keras 3's TensorFlow trainer has two multi-worker bugs (tensorflow/tensorflow#72388):

1. before the first step, ``_maybe_symbolic_build`` averages the first distributed batch
   with ``strategy.reduce("MEAN", (x, y))``; the collective reduce of a multi-worker
   strategy cannot take a tuple, so ``fit`` fails with "Attempt to convert a value
   (PerReplica...)";
2. after every step, ``reduce_per_replica`` reduces the step's logs with
   ``strategy.reduce("MEAN", value, axis=0)``, and the logs are scalars: "Invalid reduction
   dimension 0 for input with 0 dimensions".

:func:`patch_for_multi_worker` works around both on one model instance, through the
``train_step``/``test_step`` override points and the build hook, without touching Keras:
the build uses this worker's local shard of the batch (only its shapes matter), and the
steps return their logs as shape-``(1,)`` tensors, which the axis-0 mean reduces across
workers to the same scalars as before. Single-worker strategies are left alone.
"""

import keras
import tensorflow as tf

__all__ = ["patch_for_multi_worker"]


def _local(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def patch_for_multi_worker(model, strategy):
    """Applies the two workarounds to ``model`` (idempotent). Returns ``model``."""
    if getattr(model, "_lightnets_multi_worker_patched", False):
        return model

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(lambda v: _local(strategy, v), next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def rank_one_logs(step):
        def wrapped(data):
            return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

        return wrapped

    model._maybe_symbolic_build = symbolic_build
    model.train_step = rank_one_logs(model.train_step)
    model.test_step = rank_one_logs(model.test_step)
    model._lightnets_multi_worker_patched = True
    return model
