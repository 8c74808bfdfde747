"""One answer to "how is this model's input prepared?", for every consumer.

Input pipelines, ``fit``, QAT fine-tuning, export and its report, ``evaluate`` and
``evaluate_tflite``, the Android metadata and transfer learning all call
:func:`resolve_preprocessing`; none works the answer out again. The answer lives in one place per
object: a built model's card (written by the scaffold, updated where normalization is put into
the graph), a registered variant's table (or its published weights'), a run folder's
``run.json``.
"""

import json
import os
from pathlib import Path

from keras_lightnets.layers.model_card import recorded_preprocessing
from keras_lightnets.layers.preprocessing import Preprocessing
from keras_lightnets.registry import get_entry, list_models

__all__ = ["Preprocessing", "resolve_preprocessing"]

RUN_INFO = "run.json"


def _from_run_info(run_info):
    recorded = run_info.get("preprocessing")
    if recorded:
        return Preprocessing.from_config(recorded)
    # Run folders written before models carried their preprocessing name their variant.
    name = run_info.get("variant", run_info.get("model"))
    if isinstance(name, str) and name in list_models():
        return get_entry(name).preprocessing
    return None


def _from_path(path):
    info = Path(path) / RUN_INFO
    if not info.is_file():
        hint = ""
        if isinstance(path, str) and not Path(path).exists():
            try:  # a mistyped model name is the likelier mistake: the registry's message suggests names
                get_entry(path)
            except ValueError as error:
                hint = f" ({error})"
        raise ValueError(
            f"{os.fspath(path)!r} is neither a registered model name nor a run folder (no {RUN_INFO}){hint}"
        )
    return _from_run_info(json.loads(info.read_text()))


def resolve_preprocessing(source=None, *, run_info=None):
    """The :class:`~keras_lightnets.layers.preprocessing.Preprocessing` of ``source``, or ``None``.

    Args:
        source: a :class:`Preprocessing` (returned as it is); a built model (Keras 3, its tf_keras
            twin or a QAT model: its model card); a registered model name (its variant's); or the
            path of a run folder (its ``run.json``); ``None``.
        run_info: a run's ``run.json`` dict, consulted when ``source`` records nothing.

    ``in_graph`` says whether the model normalizes its input itself; an input pipeline applies
    :meth:`Preprocessing.fed` either way.
    """
    found = None
    if isinstance(source, Preprocessing):
        found = source
    elif isinstance(source, str) and source in list_models():
        found = get_entry(source).preprocessing
    elif isinstance(source, str | os.PathLike):
        found = _from_path(source)
    elif source is not None and hasattr(source, "layers"):
        found = recorded_preprocessing(source)
    elif source is not None:
        raise TypeError(
            f"`source` must be a Preprocessing, a model, a registered model name or a run folder, got {source!r}"
        )
    if found is None and run_info:
        found = _from_run_info(run_info)
    return found
