"""A design-space study in small: train every sampled configuration briefly, record its error.

The RegNet paper compares design spaces by training ~500 models per space for 10 ImageNet
epochs at 400 MF and drawing their error EDFs. :func:`train_samples` does the same on any TFDS
dataset (by default the bundled digits, in minutes): it builds ``kl.AnyNet(**config)`` for each
configuration, trains it with :func:`keras_lightnets.training.fit` and its default recipe, and
returns one :class:`SampleResult` per configuration with the test error and the complexity
(params, MACs, activations: :func:`keras_lightnets.profile`) the paper plots errors against.
:func:`plot_complexity` draws those scatter plots.
"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras

from keras_lightnets.checks import check_int

__all__ = ["SampleResult", "plot_complexity", "train_samples"]


@dataclass(frozen=True)
class SampleResult:
    """One trained configuration: its ``config``, test ``error`` (%) and complexity at the trained size."""

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


def train_samples(configs, *, epochs=5, image_size=32, dataset=None, seed=0, data_dir=None, progress=True):
    """Trains ``kl.AnyNet(**config)`` for every configuration and returns a :class:`SampleResult` each.

    Args:
        configs: dicts of :func:`keras_lightnets.AnyNet` arguments, e.g. from :func:`sample`.
        epochs: training epochs per model (the default recipe: AdamW, warm-up, cosine).
        image_size: training and test resolution (square).
        dataset: a TFDS name; ``None``: the bundled offline digits.
        seed: model ``i`` is initialized and trained with ``seed + i``.
        data_dir: TFDS data dir.
        progress: a tqdm bar over the models.

    Every model is validated before the first one trains (a bad configuration is a
    ``ValueError`` up front, not after an hour). Run folders are temporary and removed.
    """
    # Imported here: the models import this package (AnyNet checks its stages with it).
    from keras_lightnets.data.pipeline import BUNDLED_DATASET, dataset_info
    from keras_lightnets.models.anynet import AnyNet
    from keras_lightnets.profile import profile
    from keras_lightnets.training.fit import fit

    configs = _check_configs(configs)
    check_int(epochs, "epochs", 1)
    check_int(image_size, "image_size", 32)
    check_int(seed, "seed", 0)
    dataset = BUNDLED_DATASET if dataset is None else dataset
    classes = dataset_info(dataset, data_dir).num_classes
    input_shape = (image_size, image_size, 3)
    for config in configs:  # fail fast: every configuration builds (structure only, no weights)
        with keras.StatelessScope():
            AnyNet(**config, input_shape=input_shape, classes=classes)

    iterator = configs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(configs, desc="training samples", unit="model")
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="lightnets-study-"))
    try:
        for index, config in enumerate(iterator):
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed + index)
            model = AnyNet(**config, input_shape=input_shape, classes=classes, classifier_activation=None)
            stats = profile(model)
            run = fit(
                model,
                dataset=dataset,
                epochs=epochs,
                image_size=image_size,
                seed=seed + index,
                data_dir=data_dir,
                output_dir=workdir / f"sample_{index}",
                verbose=0,
            )
            results.append(
                SampleResult(
                    config=config,
                    error=100.0 * (1.0 - run.final_accuracy),
                    params=stats.params,
                    macs=stats.macs,
                    activations=stats.activations,
                    seconds=run.seconds_per_epoch * epochs if run.seconds_per_epoch else float("nan"),
                )
            )
            shutil.rmtree(workdir / f"sample_{index}", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
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
