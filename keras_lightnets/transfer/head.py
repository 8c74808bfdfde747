"""A pretrained network with a fresh classifier for a new number of classes.

    pretrained = kl.create_model("efficientnet_lite0")
    kl.weights.load_checkpoint(pretrained, "efficientnet-lite0.pth")      # 1000 ImageNet classes
    model = new_head(pretrained, classes=10)                             # same body, a new 10-class head

Route: the architecture the model card records is built again with ``classes`` (the family's
own head: pooling, dropout and Dense for most families, SqueezeNet's ``conv10``, ReXNet-lite's
pooled 1x1 convolutions, with their initializers), and every layer of its body takes the
weights of the layer of the same name in the given model, shapes checked. The new model is a
plain ``create_model`` model whose model card records the given model's preprocessing (and whose
in-graph normalization, if it has one, is the given model's), so training, export and the Android
metadata treat it like any other.

(``create_model(name, weights="imagenet", classes=10)`` is refused on purpose: the published
file holds a 1000-class classifier. ``create_model(name, weights=..., include_top=False)`` gives
the body, which ``new_head`` accepts too.)
"""

import dataclasses
import os

import keras

from keras_lightnets.checks import check_positive
from keras_lightnets.layers.model_card import find_model_card, recorded_preprocessing
from keras_lightnets.models.scaffold import WEIGHTS_FILE_SUFFIXES
from keras_lightnets.registry import get_entry
from keras_lightnets.transfer.structure import model_structure, rebuild
from keras_lightnets.weights import load_checkpoint

__all__ = ["check_pretrained_weights", "copy_body_weights", "load_pretrained", "new_head"]


def copy_body_weights(source, target):
    """Gives ``target`` the body of ``source``: every weight outside ``target``'s head, from the layer of the
    same name, and the preprocessing ``source``'s model card records; returns how many layers were copied.

    The preprocessing travels with the weights: published weights trained with another normalization
    than the variant's default carry theirs in their model's card (and in-graph normalization, which
    is copied too when both models have one), and ``fit``, ``evaluate`` and the export read it there.

    Raises ``ValueError`` naming the first body layer that ``source`` lacks or whose weight shapes
    differ (another architecture), before anything is written.
    """
    if not isinstance(source, keras.Model):
        raise TypeError(f"`source` must be a keras.Model, got {type(source).__name__}")
    structure = model_structure(target)
    fixed = {id(layer) for layer in structure.fixed}
    head = {id(layer) for layer in structure.head}
    source_names = {layer.name for layer in source.layers}
    pairs = []
    for layer in structure.layers:
        if id(layer) in head or not layer.weights:
            continue
        if id(layer) in fixed and layer.name not in source_names:
            continue  # an in-graph normalization the source model does not have: the target keeps its own
        try:
            origin = source.get_layer(layer.name)
        except ValueError:
            raise ValueError(
                f"the pretrained model {source.name!r} has no layer {layer.name!r}: it is not the architecture of "
                f"{target.name!r}"
            ) from None
        values = origin.get_weights()
        shapes = [tuple(weight.shape) for weight in layer.weights]
        if [tuple(value.shape) for value in values] != shapes:
            raise ValueError(
                f"layer {layer.name!r}: the pretrained model's weights have shapes "
                f"{[tuple(value.shape) for value in values]}, this model's {shapes}"
            )
        pairs.append((layer, values))
    for layer, values in pairs:
        layer.set_weights(values)
    _copy_preprocessing(source, target)
    return len(pairs)


def _copy_preprocessing(source, target):
    """The pretrained model's preprocessing (its weights were trained with it) into ``target``'s
    card; whether ``target`` normalizes inside stays its own, and when both do, the pixel range
    is the source's (its normalization layer was copied)."""
    origin, card = recorded_preprocessing(source), find_model_card(target)
    if origin is None or card is None:
        return
    own = card.preprocessing
    in_graph = bool(own is not None and own.in_graph)
    pixel_max = origin.pixel_max if in_graph and origin.in_graph else (own.pixel_max if own else origin.pixel_max)
    card.preprocessing = dataclasses.replace(origin, in_graph=in_graph, pixel_max=pixel_max)


def new_head(model, classes, *, classifier_activation="softmax", dropout_rate=None, input_shape=None, name=None):
    """``model``'s network with a new classifier for ``classes`` classes; its body keeps ``model``'s weights.

    Args:
        model: a classifier (any number of classes) or body (``include_top=False``) built by this
            package, e.g. with ImageNet weights.
        classes: the new task's number of classes.
        classifier_activation: the new head's (``None`` for logits, as ``fit`` trains).
        dropout_rate: the head's dropout; default the family's (it is not recorded in the card).
        input_shape: default ``model``'s.
        name: default ``model``'s name.

    Returns a new, fully trainable ``keras.Model`` (``model`` is left as it is); the head is
    freshly initialized. :func:`~keras_lightnets.transfer.freeze` then picks what trains.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model built by keras_lightnets, got {type(model).__name__}")
    check_positive(classes, "classes", integer=True)
    if classes == 1 and classifier_activation == "softmax":
        raise ValueError(
            "`classes=1` with a softmax always outputs 1.0: use classes=2, or classifier_activation='sigmoid'"
        )
    overrides = {} if dropout_rate is None else {"dropout_rate": dropout_rate}
    target = rebuild(
        model,
        include_top=True,
        classes=classes,
        classifier_activation=classifier_activation,
        input_shape=tuple(input_shape or model.input_shape[1:]),
        name=name or model.name,
        **overrides,
    )
    copy_body_weights(model, target)
    return target


def load_pretrained(name, weights, *, input_shape=None):
    """The registered model ``name`` with pretrained ``weights``, ready for :func:`copy_body_weights`.

    ``weights``: ``"imagenet"`` or a published tag (downloaded once, see
    :func:`keras_lightnets.create_model`); a checkpoint file that
    :func:`keras_lightnets.weights.load_checkpoint` reads (``.safetensors``, ``.pth``/``.pt``/``.bin``,
    a keras.applications ``.h5``: the publisher's 1000-class classifier); or a Keras ``.weights.h5`` /
    ``.keras`` file saved from this architecture's classifier with the variant's classes or from its
    ``include_top=False`` body.
    """
    entry = get_entry(name)
    path = check_pretrained_weights(weights)
    if os.path.isfile(path) and not path.endswith(WEIGHTS_FILE_SUFFIXES):
        return load_checkpoint(entry.build(input_shape=input_shape), path)
    return entry.build(weights=weights, include_top=False, input_shape=input_shape)


def check_pretrained_weights(weights):
    """``weights`` as a string: a published tag, or the path of a file that exists (``ValueError`` if not)."""
    if not isinstance(weights, str | os.PathLike):
        raise TypeError(f"`weights` must be 'imagenet', a published tag or a file path, got {weights!r}")
    path = os.fspath(weights)
    if (os.sep in path or "." in path) and not os.path.isfile(path):
        raise ValueError(f"`weights` file does not exist: {path!r}")
    return path
