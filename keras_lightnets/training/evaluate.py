"""``evaluate``: loss, top-1 and top-5 accuracy of a model on a dataset split.

    evaluate("runs/squeezenet1_1-lightnets_digits")        # a run folder: its final.keras
    evaluate("model.keras", dataset="cifar10", split="test")
    evaluate(model)                                         # a keras.Model

A run folder (or a ``.keras`` file inside one) supplies the defaults its run.json records:
dataset, image size, augmentation preset and the model name whose normalization applies.
The model is not compiled or changed: batches go through ``model(x, training=False)`` and
Keras metric objects. ``loss`` is the plain cross-entropy (no label smoothing).
"""

import json
from pathlib import Path

import keras
import tensorflow as tf

from keras_lightnets.checks import check_image_size, check_positive_int
from keras_lightnets.data import BUNDLED_DATASET, dataset_info, num_examples
from keras_lightnets.files import load_keras_model
from keras_lightnets.models.describe import without_auxiliary_outputs
from keras_lightnets.preprocessing import resolve_preprocessing
from keras_lightnets.training import inputs
from keras_lightnets.training.modeling import outputs_probabilities
from keras_lightnets.training.run_dir import RunDir

__all__ = ["evaluate", "load_for_evaluation"]


def load_for_evaluation(model_or_path):
    """``(model, run_info or None, path or None)`` for a model, a ``.keras`` file or a run folder.

    A run folder gives its final.keras, or best.keras when the run has not finished
    (final.keras is the end-of-training model -- EMA weights where used -- and was not
    selected on the evaluation split, unlike best.keras).
    """
    if isinstance(model_or_path, keras.Model):
        return model_or_path, None, None
    path = Path(model_or_path)
    if path.is_dir():
        run_dir = RunDir(path)
        candidates = [run_dir.final, run_dir.best]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ValueError(f"{path} holds no final.keras or best.keras: not a finished keras_lightnets run")
        path = found
    elif not path.is_file():
        raise ValueError(f"{path} is neither a .keras file nor a run folder")
    elif path.suffix != ".keras":
        raise ValueError(f"{path} is not a .keras file")
    run_json = path.parent / "run.json"
    run_info = json.loads(run_json.read_text(encoding="utf-8")) if run_json.is_file() else None
    model = load_keras_model(path)
    return model, run_info, path


def evaluate(
    model_or_path,
    *,
    dataset=None,
    split=None,
    batch_size=64,
    image_size=None,
    data_dir=None,
    preset=None,
):
    """``{"loss", "accuracy", "top5" (more than 5 classes), "num_examples", "split"}`` on ``split`` of ``dataset``.

    Defaults come from the run's run.json when there is one, else: the bundled dataset, its
    "validation" split if it has one else "test", the model's input size, the preset ``fit``
    would use for that size, and the normalization the model records about itself (or its
    run folder recorded; ImageNet's otherwise). ``image_size`` must be the model's input size
    when it was built for one (``ValueError`` otherwise); any size fits a model built with
    ``input_shape=(None, None, 3)``.
    """
    check_positive_int("image_size", image_size)
    model, run_info, _ = load_for_evaluation(model_or_path)
    model = without_auxiliary_outputs(model)  # the main classifier (GoogLeNet's auxiliary ones train only)
    run_info = run_info or {}
    # One record of how inputs are prepared (mean/std, crop, interpolation), as fit's validation used it.
    preprocessing = resolve_preprocessing(model, run_info=run_info)
    hyperparameters = run_info.get("hyperparameters", {})
    dataset = dataset or run_info.get("dataset") or BUNDLED_DATASET
    same_data = dataset == run_info.get("dataset")
    image_size = (
        image_size
        or (same_data and run_info.get("image_size"))
        or inputs.default_image_size(dataset, model, preprocessing=preprocessing)
    )
    check_image_size(model, image_size)  # before the pipeline: Keras would fail inside its traced graph
    preset = preset or inputs.evaluation_preset(image_size, run_info, dataset)
    split = (
        split
        or (same_data and hyperparameters.get("validation_split"))
        or inputs.default_eval_split(dataset_info(dataset, data_dir).splits)
    )
    if not split:
        raise ValueError(f"{dataset} has neither a 'validation' nor a 'test' split: pass `split`")
    data = inputs.eval_dataset(
        split,
        batch_size=batch_size,
        dataset=dataset,
        image_size=image_size,
        preset=preset,
        model=preprocessing,
        data_dir=data_dir,
    )
    num_classes = int(model.output_shape[-1])
    from_logits = not outputs_probabilities(model)
    metrics = {
        "loss": keras.metrics.CategoricalCrossentropy(from_logits=from_logits, name="loss"),
        "accuracy": keras.metrics.CategoricalAccuracy(name="accuracy"),
    }
    if num_classes > 5:
        metrics["top5"] = keras.metrics.TopKCategoricalAccuracy(5, name="top5")

    # One trace for every batch size (the last batch is smaller): the images' spec has a None batch dim.
    @tf.function(input_signature=[data.element_spec[0]])
    def predict(images):
        return tf.cast(model(images, training=False), tf.float32)

    count = 0
    for images, labels in data:
        if labels.shape[-1] != num_classes:
            raise ValueError(f"the model has {num_classes} outputs but {dataset} has {labels.shape[-1]} classes")
        outputs = predict(images)
        for metric in metrics.values():
            metric.update_state(labels, outputs)
        count += int(labels.shape[0])
    result = {name: float(metric.result()) for name, metric in metrics.items()}
    result["num_examples"] = count
    result["split"] = split
    expected = num_examples(dataset, split, data_dir)
    if expected is not None and expected != count:  # the pipeline must never drop evaluation examples
        raise RuntimeError(f"evaluated {count} examples but {dataset} {split!r} has {expected}")
    return result
