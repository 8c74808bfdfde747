"""The datasets a run trains and evaluates on, and their defaults (image size, preset).

Training data is ``make_dataset(...).repeat()`` with an explicit ``steps_per_epoch``: every
epoch, worker and replica then runs the same number of steps (Keras's epoch iterator
otherwise restarts or stops early depending on the dataset's cardinality, and an unknown
cardinality -- the distributed case -- ends epochs on a short final batch). With several
replicas it is built per input pipeline through ``distribute_datasets_from_function``, so
each replica batches ``global_batch / num_replicas_in_sync`` examples and each worker reads
its own shard. Evaluation data is deterministic, unshuffled and keeps every example.
"""

import tensorflow as tf

from keras_lightnets.data import BUNDLED_DATASET, make_dataset
from keras_lightnets.layers.preprocessing import IMAGENET_PREPROCESSING
from keras_lightnets.preprocessing import resolve_preprocessing

__all__ = [
    "default_eval_split",
    "default_image_size",
    "default_preset",
    "eval_dataset",
    "evaluation_preset",
    "preprocessing_for",
    "train_dataset",
]

SMALL_IMAGE_SIZE = 64


def default_image_size(dataset, model=None, recipe=None, preprocessing=None):
    """The training resolution.

    A given model's static input size, else the recipe's ``image_size``, else 32 for the
    bundled dataset, else the model's own input size (``preprocessing.input_size``, else what
    :func:`~keras_lightnets.preprocessing.resolve_preprocessing` finds in ``model``), else
    ImageNet's default (224).
    """
    if model is not None and model.input_shape[1] is not None:
        return int(model.input_shape[1])
    if recipe is not None and recipe.image_size is not None:
        return recipe.image_size
    if dataset == BUNDLED_DATASET:
        return 32
    preprocessing = preprocessing or resolve_preprocessing(model) or IMAGENET_PREPROCESSING
    return int(preprocessing.input_size[0])


def default_eval_split(splits):
    """The split to validate on: "validation" when the dataset has one (ImageNet), else "test", else ``None``."""
    return next((name for name in ("validation", "test") if name in splits), None)


def default_preset(image_size):
    """``"cifar"`` (pad-and-crop, plain resize for evaluation) up to 64 px, ``"imagenet"`` above.

    A random resized crop and an 87.5 % centre crop throw away too much of a 32 px image.
    """
    return "cifar" if image_size <= SMALL_IMAGE_SIZE else "imagenet"


def evaluation_preset(image_size, run_info=None, dataset=None):
    """The preset ``fit`` evaluated a run with: the one its ``run.json`` records (when ``dataset`` is
    the run's, or not given), else :func:`default_preset` of ``image_size`` (what ``fit`` picks).

    Every evaluation of a model -- ``evaluate``, the deploy report's Keras and LiteRT accuracies --
    asks this, so all of them resize the images the way ``fit``'s validation did.
    """
    run_info = run_info or {}
    recorded = run_info.get("hyperparameters", {}).get("preset")
    if recorded and (dataset is None or dataset == run_info.get("dataset")):
        return recorded
    return default_preset(image_size)


def preprocessing_for(model=None, run_info=None):
    """The :class:`~keras_lightnets.layers.preprocessing.Preprocessing` of a model, or ``None`` (ImageNet's).

    :func:`keras_lightnets.preprocessing.resolve_preprocessing` of ``model`` (its model card; a
    registered name or a Preprocessing also do), then of its run folder's ``run.json``
    (``run_info``). Feed it to ``make_dataset(model=...)``, which applies :meth:`Preprocessing.fed`.
    """
    return resolve_preprocessing(model, run_info=run_info)


def _labels_per_output(dataset, outputs):
    """Each batch's labels once per model output (a classifier with auxiliary classifiers: GoogLeNet)."""
    if outputs == 1:
        return dataset
    return dataset.map(lambda images, labels: (images, (labels,) * outputs), num_parallel_calls=tf.data.AUTOTUNE)


def train_dataset(strategy, *, batch_size, outputs=1, **kwargs):
    """The repeated training dataset; per input pipeline under a multi-replica strategy.

    ``outputs``: the model's outputs; the labels are repeated for each (auxiliary classifiers).
    """
    kwargs = {"split": "train", "training": True, **kwargs}
    if strategy.num_replicas_in_sync == 1:
        return _labels_per_output(make_dataset(batch_size=batch_size, **kwargs).repeat(), outputs)
    return strategy.distribute_datasets_from_function(
        lambda input_context: _labels_per_output(
            make_dataset(batch_size=batch_size, input_context=input_context, **kwargs).repeat(), outputs
        )
    )


def eval_dataset(split, *, batch_size, outputs=1, **kwargs):
    """The evaluation dataset; Keras distributes it itself under a strategy.

    Its auto-shard policy is DATA (each worker of a multi-worker run evaluates every N-th
    example): the default AUTO shards by file and fails on single-file splits such as the
    bundled dataset's. ``outputs``: as for :func:`train_dataset`.
    """
    dataset = _labels_per_output(make_dataset(split=split, batch_size=batch_size, training=False, **kwargs), outputs)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
