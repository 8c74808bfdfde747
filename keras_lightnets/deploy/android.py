"""``export_for_android``: one call from a trained Keras model to an Android-ready ``.tflite``.

    export_for_android("runs/quickstart-rexnet_100", "rexnet_100_int8.tflite", qat_epochs=2)

Steps, each one a public function of :mod:`keras_lightnets.deploy`:

1. the model (a run folder, a ``.keras`` file or a ``keras.Model``) gets its normalization
   inside and a softmax at the end (:func:`~keras_lightnets.deploy.with_input_normalization`),
   because MediaPipe Tasks only applies one mean/std to all channels;
2. for ``quantization="int8"``: quantization-aware fine-tuning for ``qat_epochs`` with the
   family's recipe (:func:`quantize_aware`, :func:`fit_quantize_aware`), or post-training
   calibration on ``representative_samples`` training images when ``qat_epochs=0``;
3. conversion with built-in ops only and the metadata an app needs: class labels from the
   TFDS dataset, normalization ``(pixel - 0) / 255``, names and version
   (:func:`export_tflite`, :class:`ImageClassifierMetadata`).
"""

from dataclasses import dataclass, field
from pathlib import Path

import keras

from keras_lightnets.checks import check_int
from keras_lightnets.data import BUNDLED_DATASET, dataset_info
from keras_lightnets.deploy.export import ExportResult, _check_output_path, export_tflite
from keras_lightnets.deploy.metadata import ImageClassifierMetadata, pixel_normalization
from keras_lightnets.deploy.preprocessing import with_input_normalization
from keras_lightnets.deploy.qat import quantize_aware
from keras_lightnets.deploy.qat_fit import fit_quantize_aware
from keras_lightnets.layers.preprocessing import IMAGENET_PREPROCESSING
from keras_lightnets.models.describe import model_family
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.registry import get_entry, list_models
from keras_lightnets.reparameterize import fusable_blocks
from keras_lightnets.reparameterize import reparameterize as fuse_blocks
from keras_lightnets.training.evaluate import load_for_evaluation
from keras_lightnets.training.fit import _package_version
from keras_lightnets.training.modeling import outputs_probabilities

__all__ = ["AndroidExport", "classifier_metadata", "export_for_android", "imagenet_labels", "load_deployable"]


@dataclass
class AndroidExport:
    """What :func:`export_for_android` made: the file, the float model it came from, the QAT run (if
    any) and the run's ``run.json`` (empty for a bare model): what evaluating the export needs."""

    export: ExportResult
    float_model: keras.Model
    qat: object = None
    run_info: dict = field(default_factory=dict)

    @property
    def path(self):
        return self.export.path


def classifier_metadata(model, labels, *, version=None, description=None):
    """The :class:`ImageClassifierMetadata` of a model made by :func:`with_input_normalization`:
    the normalization an app applies is what the model's card says it takes
    (:func:`~keras_lightnets.deploy.metadata.pixel_normalization`)."""
    name = model.name
    family = model_family(model) or "custom"
    preprocessing = resolve_preprocessing(model)
    if preprocessing is None:
        raise ValueError(
            f"`model` {name!r} records no preprocessing (no keras_lightnets model card and no input "
            "normalization layer): wrap it with with_input_normalization(model, mean, std) first"
        )
    mean, std = pixel_normalization(preprocessing)
    # The app feeds (pixel - mean) / std: pixel / 255 for most models, the raw pixel for one
    # that takes 0-255 itself (EfficientNet built with include_preprocessing=True).
    if not preprocessing.in_graph:
        pixels = "RGB pixels normalized (pixel - mean) / std"
    elif preprocessing.pixel_max == 1.0:
        pixels = "RGB pixels / 255"
    else:
        pixels = f"RGB pixels in [0, {preprocessing.pixel_max:g}]"
    return ImageClassifierMetadata(
        name=name,
        version=version or f"keras_lightnets {_package_version()}",
        labels=tuple(labels),
        description=description
        or (
            f"{name} image classifier ({family}) "
            f"exported by keras_lightnets; input: {pixels}, output: class probabilities"
        ),
        mean=mean,
        std=std,
    )


def imagenet_labels():
    """The 1000 ImageNet class ids (WordNet ids, TFDS's ``imagenet2012`` label names), read offline."""
    import tensorflow_datasets as tfds

    return tuple(tfds.builder("imagenet2012").info.features["label"].names)


def load_deployable(model_or_path):
    """``(float model that normalizes inside, with a softmax, run_info)`` from a model, ``.keras`` file or run
    folder: it takes ``pixel / 255``, or raw pixels when it was built so (see :func:`input_pixel_max`).

    A registered model name that is not a path builds that model with random weights at its
    reference input size and 1000 ImageNet classes (no download: sizes and latency do not need
    trained weights): what the model zoo script exports to measure them.
    """
    if isinstance(model_or_path, str) and not Path(model_or_path).exists() and model_or_path in list_models():
        entry = get_entry(model_or_path)
        model = entry.build(input_shape=tuple(entry.preprocessing.input_size))
        run_info = {"model": entry.name, "untrained": True}
    else:
        model, run_info, _ = load_for_evaluation(model_or_path)
    preprocessing = resolve_preprocessing(model, run_info=run_info)
    if preprocessing is not None and preprocessing.in_graph:  # include_preprocessing=True: it normalizes itself
        if outputs_probabilities(model):
            return model, run_info or {}
        probabilities = keras.layers.Softmax(name="probabilities")(model.output)
        return keras.Model(model.inputs, probabilities, name=model.name), run_info or {}
    # A foreign model without a card or run folder: ImageNet's statistics, the package's default.
    preprocessing = preprocessing or IMAGENET_PREPROCESSING
    return with_input_normalization(model, preprocessing.mean, preprocessing.std), run_info or {}


def export_for_android(
    model_or_path,
    output,
    *,
    quantization="int8",
    qat_epochs=2,
    dataset=None,
    labels=None,
    version=None,
    representative_samples=200,
    seed=None,
    verbose=1,
    reparameterize=None,
    log=None,
):
    """Exports ``model_or_path`` to ``output`` with Android metadata; returns an :class:`AndroidExport`.

    Args:
        model_or_path: a ``keras.Model``, a ``.keras`` file or a run folder of ``fit``.
        output: the ``.tflite`` file to write.
        quantization: ``None``, ``"float16"``, ``"dynamic"`` or ``"int8"``.
        qat_epochs: for ``"int8"``: epochs of quantization-aware training (0: post-training
            quantization calibrated on the dataset's training images instead).
        dataset: TFDS dataset for labels, QAT and calibration; default the run's, else the
            bundled one.
        labels: class names; default the dataset's.
        reparameterize: fuse RepVGG / ParNet / MobileOne / GhostNetV3 blocks
            (:func:`keras_lightnets.reparameterize`) before anything else; ``None`` (default): whenever
            the model has such blocks, so the training form never ships by accident. ``False`` keeps it
            (float exports only: QAT refuses it).
        log: ``log(message)`` for what was done to the model (the fusion), or ``None``.
    """
    check_int(qat_epochs, "qat_epochs", 0)
    if reparameterize not in (None, True, False):
        raise TypeError(f"`reparameterize` must be None, True or False, got {reparameterize!r}")
    if qat_epochs and quantization != "int8":
        raise ValueError(f"`qat_epochs` needs quantization='int8', got quantization={quantization!r}")
    _check_output_path(output)
    float_model, run_info = load_deployable(model_or_path)
    blocks = fusable_blocks(float_model)
    if reparameterize is True and not blocks:
        raise ValueError(
            f"`reparameterize=True`, but {float_model.name!r} has no re-parameterizable block "
            "(RepVGG, ParNet, MobileOne, GhostNetV3) to fuse"
        )
    if blocks and reparameterize is not False:
        float_model = fuse_blocks(float_model)
        if log is not None:
            log(f"reparameterized: {len(blocks)} branch sums fused into one convolution each (the deploy form)")
    dataset = dataset or run_info.get("dataset") or BUNDLED_DATASET
    if labels is None:
        # An untrained registered model has ImageNet's 1000 outputs; the dataset then only
        # supplies calibration images.
        labels = imagenet_labels() if run_info.get("untrained") else dataset_info(dataset).class_names
    metadata = classifier_metadata(float_model, labels, version=version)  # checks the labels first
    if len(metadata.labels) != float_model.output_shape[-1]:
        raise ValueError(f"{len(metadata.labels)} labels for a model with {float_model.output_shape[-1]} outputs")

    qat_result = None
    if quantization == "int8" and qat_epochs:
        qat_model = quantize_aware(float_model)
        qat_result = fit_quantize_aware(qat_model, dataset=dataset, epochs=qat_epochs, seed=seed, verbose=verbose)
        result = export_tflite(qat_model, output, quantization="int8", metadata=metadata)
    else:
        result = export_tflite(
            float_model,
            output,
            quantization=quantization,
            representative_data=dataset if quantization == "int8" else None,
            representative_samples=representative_samples,
            metadata=metadata,
        )
    return AndroidExport(export=result, float_model=float_model, qat=qat_result, run_info=run_info)


def default_output(model_or_path, quantization):
    """``<run folder or model name>/<name>_<quantization>.tflite``."""
    suffix = quantization or "float32"
    path = Path(str(model_or_path))
    folder = path if path.is_dir() else path.parent
    return folder / f"{path.stem if path.suffix else path.name}_{suffix}.tflite"
