"""A design-space study in small: train every sampled configuration briefly, record its error.

The RegNet paper compares design spaces by training ~500 models per space for 10 ImageNet
epochs at 400 MF and drawing their error EDFs. :func:`train_samples` does the same on any TFDS
dataset (by default the bundled digits, in minutes): it builds ``kl.AnyNet(**config)`` for each
configuration, trains it with the small-data recipe ``fit`` uses by default, and
returns one :class:`SampleResult` per configuration with the test error and the complexity
(params, MACs, activations: :func:`keras_lightnets.profile`) the paper plots errors against.
:func:`plot_complexity` draws those scatter plots.
"""

import time
from dataclasses import dataclass

import keras

from keras_lightnets.checks import check_int
from keras_lightnets.data.pipeline import BUNDLED_DATASET, dataset_info, make_dataset, num_examples
from keras_lightnets.models.anynet import AnyNet
from keras_lightnets.profile import profile
from keras_lightnets.training import inputs
from keras_lightnets.training.modeling import compile_with_recipe
from keras_lightnets.training.recipes import get_recipe

__all__ = ["SampleResult", "plot_complexity", "train_samples"]


@dataclass(frozen=True)
class SampleResult:
    """One trained configuration: its ``config``, test ``error`` (%), complexity at the trained size, and
    the ``seconds`` it took to build, train and evaluate."""

    config: dict
    error: float
    params: int
    macs: int
    activations: int
    seconds: float


def _check_configs(configs):
    if isinstance(configs, dict) or not isinstance(configs, (list, tuple)) or not configs:
        raise TypeError(f"`configs` must be a non-empty list of kl.AnyNet keyword dicts (see sample), got {configs!r}")
    for index, config in enumerate(configs):
        if not isinstance(config, dict):
            raise TypeError(f"`configs[{index}]` must be a dict of kl.AnyNet arguments, got {type(config).__name__}")
    return list(configs)


def train_samples(configs, *, epochs=5, image_size=None, dataset=None, seed=0, data_dir=None, progress=True):
    """Trains ``kl.AnyNet(**config)`` for every configuration and returns a :class:`SampleResult` each.

    Args:
        configs: dicts of :func:`keras_lightnets.AnyNet` arguments, e.g. from :func:`sample`.
        epochs: training epochs per model, with ``fit``'s small-data recipe (AdamW, warm-up,
            cosine, label smoothing; :func:`keras_lightnets.training.get_recipe`).
        image_size: training and test resolution (square, at least 32); ``None``: the AnyNet default
            recipe's 64 px (RegNets barely learn the digits at 32 px).
        dataset: a TFDS name; ``None``: the bundled offline digits.
        seed: model ``i`` is initialized and trained with ``seed + i``.
        data_dir: TFDS data dir.
        progress: a tqdm bar over the models.

    The error is measured once, on the test split (or validation, where the dataset has one),
    after the last epoch. Every configuration is built (structure only) before the first one
    trains: a bad one is a ``ValueError`` up front, not after an hour. Nothing is written to disk
    but the dataset: a study trains many short-lived models, so this skips ``fit``'s run folder
    (checkpoints, logs), whose saves would cost more than the training here.
    """
    configs = _check_configs(configs)
    check_int(epochs, "epochs", 1)
    if image_size is not None:
        check_int(image_size, "image_size", 32)
    check_int(seed, "seed", 0)
    dataset = BUNDLED_DATASET if dataset is None else dataset
    info = dataset_info(dataset, data_dir)
    recipe = get_recipe("anynet", "default")
    image_size = image_size or inputs.default_image_size(dataset, recipe=recipe)
    input_shape = (image_size, image_size, 3)
    for config in configs:  # fail fast: every configuration builds (structure only, no weights)
        with keras.StatelessScope():
            AnyNet(**config, input_shape=input_shape, classes=info.num_classes)

    steps_per_epoch = num_examples(dataset, "train", data_dir) // recipe.batch_size
    data = {"dataset": dataset, "image_size": image_size, "preset": inputs.default_preset(image_size),
            "data_dir": data_dir, "batch_size": recipe.batch_size}  # fmt: skip
    test = inputs.eval_dataset(inputs.default_eval_split(info.splits), **data)
    iterator = configs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(configs, desc="training samples", unit="model")
    results = []
    for index, config in enumerate(iterator):
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed + index)
        started = time.perf_counter()
        model = AnyNet(**config, input_shape=input_shape, classes=info.num_classes, classifier_activation=None)
        compile_with_recipe(model, recipe, learning_rate=recipe.learning_rate, steps_per_epoch=steps_per_epoch,
                            epochs=epochs, num_classes=info.num_classes)  # fmt: skip
        train = make_dataset(split="train", training=True, seed=seed + index, **data).repeat()
        model.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0)
        accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
        stats = profile(model)
        results.append(
            SampleResult(
                config=config,
                error=100.0 * (1.0 - float(accuracy)),
                params=stats.params,
                macs=stats.macs,
                activations=stats.activations,
                seconds=time.perf_counter() - started,
            )
        )
    return results


def plot_complexity(results_by_space, path, *, title="Error against complexity"):
    """Scatter plots of error against params, MACs and activations (one panel each, one colour per space), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(results_by_space, dict) or not results_by_space:
        raise ValueError("`results_by_space` must map at least one space name to its SampleResults")
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    panels = (("params", 1e6, "params (M)"), ("macs", 1e6, "MACs (M)"), ("activations", 1e6, "activations (M)"))
    for axis, (field, scale, label) in zip(axes, panels, strict=True):
        for name, results in results_by_space.items():
            axis.scatter([getattr(r, field) / scale for r in results], [r.error for r in results], s=14, alpha=0.7,
                         label=f"{name} (n={len(results)})")  # fmt: skip
        axis.set(xlabel=label)
        axis.grid(alpha=0.3)
    axes[0].set(ylabel="error (%)")
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
