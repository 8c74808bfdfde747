"""The build scaffold every family shares: a family file gives its body and its head, this
module assembles the rest.

It owns the keras.applications arguments (``include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, name``) plus ``features_only`` and
``include_preprocessing``: they are checked here, once, before a single layer is built.
Then it makes the input, the optional in-graph normalization
(:mod:`keras_lightnets.layers.input_normalization`), the :class:`ModelCard` (what the model is,
carried in the graph), calls the family's body, taps the feature maps, adds the family's head or
the pooling, and loads a weights file into the full classifier before cutting out what was asked
for, so a classifier's weights file loads into its ``features_only`` and ``include_top=False``
models too. Which weights file a ``weights=`` names is :mod:`keras_lightnets.weight_files`'
business (published tags, downloads, the cache).

A family constructor is its own argument checks plus one call with its ``locals()``, from which
the scaffold reads its own arguments and the family's architecture arguments (listed once, in
``Family.architecture_args``)::

    @family_constructor
    def ReXNet(width=1.0, include_top=True, ...):
        check_width(width, "width")
        return build_model(
            FAMILY, locals(), body=partial(_body, width=width), head=partial(dense_head, dropout_rate=0.2),
            default_name=f"rexnet_{width_tag(width)}",
        )
"""

import contextlib
import dataclasses
import warnings
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from keras_lightnets import models
from keras_lightnets.checks import check_bool, check_choice, check_positive
from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES
from keras_lightnets.layers.input_normalization import (
    INPUT_NORMALIZATION_LAYER,
    input_normalization,
    set_input_normalization,
)
from keras_lightnets.layers.model_card import ModelCard
from keras_lightnets.models.variant import json_safe
from keras_lightnets.weight_files.download import pretrained_weights_file
from keras_lightnets.weight_files.errors import CheckpointError
from keras_lightnets.weight_files.keras_weights import keras_load_message, sanitized_weights_file
from keras_lightnets.weight_files.weights_argument import PUBLISHED_CLASSES, parse_weights_argument, published_source

__all__ = [
    "APPLICATION_ARGS",
    "DEFAULT_INPUT_SHAPE",
    "INPUT_NORMALIZATION_LAYER",
    "MIN_INPUT_SIZE",
    "ApplicationArgs",
    "FeatureTracker",
    "build_model",
    "dense_head",
    "stage_block_name",
    "width_tag",
]

POOLINGS = (None, "avg", "max")
DEFAULT_INPUT_SHAPE = (224, 224, 3)
# Five stride-2 reductions need at least 32 pixels to leave a 1x1 map.
MIN_INPUT_SIZE = 32
# Kept under its former name for code written against 0.1.0 (keras_lightnets.files has it now).
WEIGHTS_FILE_SUFFIXES = KERAS_WEIGHTS_SUFFIXES


@dataclass(frozen=True)
class ApplicationArgs:
    """The arguments of every constructor that the scaffold owns (keras.applications' and two more)."""

    include_top: bool
    weights: object
    input_tensor: object
    input_shape: object
    pooling: str | None
    classes: int
    classifier_activation: object
    name: str | None
    features_only: bool
    include_preprocessing: bool

    @classmethod
    def of(cls, arguments):
        """Those arguments out of a constructor's ``locals()``."""
        return cls(**{key: arguments[key] for key in APPLICATION_ARGS})


APPLICATION_ARGS = tuple(field.name for field in dataclasses.fields(ApplicationArgs))


def width_tag(width):
    """``1.0 -> "100"``, ``0.35 -> "035"``: the registry's width suffix."""
    return f"{round(width * 100):03d}"


def stage_block_name(stage, repeat):
    """``block1a``, ``block2a``, ``block2b``, ...: keras.applications EfficientNet's names, by stage
    (0-based here, 1-based in the name) and repeat, which is also how timm's and torchvision's
    mobile layouts index blocks (so one key map serves every depth)."""
    return f"block{stage + 1}{chr(ord('a') + repeat)}"


class FeatureTracker:
    """Tracks the current stride and the last feature map at each stride (timm's feature taps)."""

    def __init__(self):
        self.stride = 1
        self.maps = {}

    def add(self, x, stride=1):
        self.stride *= stride
        self.maps[self.stride] = x
        return x


def dense_head(x, *, classes, classifier_activation, dropout_rate, kernel_initializer="glorot_uniform"):
    """GAP → Dropout → Dense: the classifier of most families."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    return layers.Dense(
        classes, activation=classifier_activation, kernel_initializer=kernel_initializer, name="predictions"
    )(x)


# ----------------------------------------------------------------------------------------
# Checks of the keras.applications arguments


def _check_classifier_activation(activation):
    if activation is None or callable(activation):
        return activation
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`classifier_activation` must be None, a callable or a Keras activation name such as "
            f"'softmax', got {activation!r}"
        ) from error
    return activation


def _check_head_arguments(include_top, features_only, pooling, classes, classifier_activation):
    """Arguments that would otherwise be ignored or make a useless classifier."""
    if pooling is not None and features_only:
        raise ValueError(
            f"`pooling={pooling!r}` does not apply with features_only=True (its outputs are the feature maps); "
            "drop `pooling`, or use include_top=False for a pooled feature vector"
        )
    if pooling is not None and include_top:
        raise ValueError(
            f"`pooling={pooling!r}` applies only with include_top=False: the classifier has its own pooling. "
            "Pass include_top=False for a pooled feature vector, or drop `pooling`"
        )
    if include_top and not features_only and classes == 1 and classifier_activation == "softmax":
        raise ValueError(
            "`classes=1` with classifier_activation='softmax' always outputs 1.0: for a binary classifier use "
            "classes=1 with classifier_activation='sigmoid' (or None for logits), or classes=2 with softmax"
        )


def _check_input_tensor_matches_shape(input_tensor, input_shape):
    if input_tensor is None or input_shape is None:
        return
    given = tuple(input_tensor.shape)[1:]
    if (
        not isinstance(input_shape, (tuple, list))
        or len(given) != len(input_shape)
        or any(
            want is not None and have is not None and want != have
            for want, have in zip(input_shape, given, strict=True)
        )
    ):
        raise ValueError(
            f"`input_shape` {tuple(input_shape) if isinstance(input_shape, (tuple, list)) else input_shape!r} does "
            f"not match `input_tensor`'s shape {given}: pass only one of them, or the same shape"
        )


def _check_name(name):
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string or None, got {name!r}")
    if not name or "/" in name:
        raise ValueError(f"`name` must be a non-empty string without '/', got {name!r}")
    return name


def _resolve_input_shape(input_tensor, input_shape, *, default_shape, min_size, static):
    """The ``(height, width, channels)`` to build; ``static`` (True or a reason) refuses None sizes."""
    if input_tensor is not None:
        shape = tuple(input_tensor.shape)
        if len(shape) != 4:
            raise ValueError(f"`input_tensor` must have rank 4 (batch, height, width, channels), got shape {shape}")
        shape = shape[1:]
    elif input_shape is None:
        shape = tuple(default_shape)
    else:
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            raise ValueError(f"`input_shape` must be (height, width, channels) (channels_last), got {input_shape!r}")
        shape = tuple(input_shape)
    height, width, channels = shape
    for dim, arg in ((height, "height"), (width, "width"), (channels, "channels")):
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0):
            raise ValueError(f"`input_shape` {arg} must be a positive integer or None, got {dim!r}")
    if channels is None:
        raise ValueError(f"`input_shape` needs a known number of channels, got {shape}")
    for dim, arg in ((height, "height"), (width, "width")):
        if dim is None and static:
            raise ValueError(
                f"this model needs a static input {arg} here: pass e.g. input_shape=({default_shape[0]}, "
                f"{default_shape[1]}, {channels}){f' ({static})' if isinstance(static, str) else ''}"
            )
        if dim is not None and dim < min_size:
            raise ValueError(f"input {arg} must be at least {min_size} pixels for this model, got {dim}")
    return shape


def _default_name(family, variant, default_name):
    if variant is not None:
        return variant.name
    # A published name is kept for the published architecture only.
    if default_name in family.variants_by_name:
        return f"{default_name}_custom"
    return default_name


def _make_inputs(input_tensor, input_shape):
    """``(model_inputs, x)`` for an optional ``input_tensor``, as keras.applications does."""
    if input_tensor is None:
        inputs = layers.Input(shape=input_shape, name="input")
        return inputs, inputs
    if isinstance(input_tensor, keras.KerasTensor):
        return keras.utils.get_source_inputs(input_tensor), input_tensor
    inputs = layers.Input(tensor=input_tensor, shape=input_shape, name="input")
    return inputs, inputs


def _global_pool(x, pooling):
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _check_application_args(args):
    """Every scaffold argument checked; returns the parsed ``weights`` (``None`` or a
    :class:`~keras_lightnets.weight_files.weights_argument.WeightsArgument`)."""
    check_bool(args.include_top, "include_top")
    check_bool(args.features_only, "features_only")
    check_bool(args.include_preprocessing, "include_preprocessing")
    check_choice(args.pooling, "pooling", POOLINGS)
    check_positive(args.classes, "classes", integer=True)
    _check_classifier_activation(args.classifier_activation)
    _check_head_arguments(args.include_top, args.features_only, args.pooling, args.classes, args.classifier_activation)
    _check_name(args.name)
    weights = parse_weights_argument(args.weights)
    _check_input_tensor_matches_shape(args.input_tensor, args.input_shape)
    return weights


def _check_flattening_head(args, shape, preprocessing, weights):
    """keras.applications' rules for a head that flattens the last feature map (VGG, AlexNet)."""
    if not args.include_top or args.features_only:
        return
    if None in shape[:2]:
        raise ValueError(
            f"`include_top=True` needs a fixed input size: this model's classifier flattens the last feature "
            f"map, whose size follows the input. Pass input_shape=({preprocessing.input_size[0]}, "
            f"{preprocessing.input_size[1]}, {shape[2]}), or include_top=False for any size; got {shape}"
        )
    published_size = tuple(preprocessing.input_size[:2])
    if weights is not None and weights.published and tuple(shape[:2]) != published_size:
        # The published classifier's first dense layer takes the flattened map of the published
        # input size, no other.
        raise ValueError(
            f"`weights={weights.tag!r}` with `include_top=True` needs input_shape=({published_size[0]}, "
            f"{published_size[1]}, {shape[2]}): the published classifier flattens the last feature map of a "
            f"{published_size[0]}x{published_size[1]} input; got {shape}. Use include_top=False for other sizes"
        )


def _assemble(family, variant, architecture, args, *, shape, preprocessing, body, head, model_name, head_classes):
    """``(model, full classifier or None, output of the input normalization or None)``; the full
    classifier, with ``head_classes`` outputs, is made when ``head_classes`` is not None."""
    inputs, x = _make_inputs(args.input_tensor, shape)
    normalized = None
    if args.include_preprocessing:
        x = normalized = input_normalization(x)
    card = ModelCard(
        family=family.name,
        variant=None if variant is None else variant.name,
        architecture={"constructor": family.constructor.__name__, "args": json_safe(architecture)},
        preprocessing=dataclasses.replace(preprocessing, in_graph=bool(args.include_preprocessing)),
    )
    x, features = body(card(x))
    # Feature taps by layer name, so features can be read out of any built classifier too.
    card.features = [[stride, features[stride]._keras_history.operation.name] for stride in sorted(features)]

    full = None
    if head_classes is not None:
        outputs = head(x, classes=head_classes, classifier_activation=args.classifier_activation)
        full = keras.Model(inputs, outputs, name=model_name)
    if args.features_only:
        # A list in stride order (a dict would come back sorted by key, "stride16" before
        # "stride2"); Identity layers give the outputs stable names.
        outputs = [layers.Identity(name=f"stride{stride}")(features[stride]) for stride in sorted(features)]
        return keras.Model(inputs, outputs, name=model_name), full, normalized
    if args.include_top:
        return full, full, normalized
    return keras.Model(inputs, _global_pool(x, args.pooling), name=model_name), full, normalized


def build_model(
    family,
    arguments,
    *,
    body,
    head,
    default_name,
    min_size=MIN_INPUT_SIZE,
    fixed_size_for_top=False,
    static=False,
):
    """Checks the keras.applications arguments and builds the family's model.

    Args:
        family: the family's :class:`~keras_lightnets.models.variant.Family`.
        arguments: the constructor's ``locals()`` after its own checks: the scaffold reads its
            :data:`APPLICATION_ARGS` and the family's ``architecture_args`` (what the model card
            records and the variant is matched on; a constructor that normalizes one, such as
            DenseNet's layout, rebinds it before the call) from it.
        body: ``body(x) -> (x, {stride: feature map})``, the network up to its last feature map.
        head: ``head(x, *, classes, classifier_activation) -> outputs``, the family's classifier.
        default_name: the model's name when ``name`` is None and the architecture is no
            registered variant.
        min_size: the smallest input height/width the body accepts.
        fixed_size_for_top: the head flattens a feature map (VGG, AlexNet), so
            ``include_top=True`` needs a fixed input size (keras.applications' rule).
        static: the body needs a static input size whatever the head; a string says why.
    """
    args = ApplicationArgs.of(arguments)
    weights = _check_application_args(args)
    architecture = family.architecture_of(arguments)
    # The one lookup of what this model is: the card, the name and the published weights follow it.
    variant = family.variant_for(architecture, args.classes)
    preprocessing = family.preprocessing if variant is None else variant.preprocessing
    source = None
    if weights is not None and weights.published:
        source = published_source(
            variant, weights.tag, include_top=args.include_top, classes=args.classes, families=models.families()
        )
        # Weights trained with another preprocessing than the variant's (timm's tv2_in1k crop,
        # ap_in1k's Inception mean) carry theirs into the model card and in-graph normalization.
        preprocessing = source.preprocessing or preprocessing
    shape = _resolve_input_shape(
        args.input_tensor, args.input_shape, default_shape=preprocessing.input_size, min_size=min_size, static=static
    )
    if fixed_size_for_top:
        _check_flattening_head(args, shape, preprocessing, weights)
    # After every argument check, before this model is built: downloaded and converted once,
    # later calls read the (verified) cache.
    if source is not None:
        weights_path = pretrained_weights_file(variant, source)
    else:
        weights_path = None if weights is None else weights.path
    head_classes = None
    if args.include_top or weights_path is not None:
        # A published classifier has 1000 classes, whatever `classes` says for a model without its top.
        head_classes = PUBLISHED_CLASSES if source is not None and not args.include_top else args.classes
    model, full, normalized = _assemble(
        family,
        variant,
        architecture,
        args,
        shape=shape,
        preprocessing=preprocessing,
        body=body,
        head=head,
        model_name=args.name or _default_name(family, variant, default_name),
        head_classes=head_classes,
    )
    if weights_path is not None:
        # A published weights file comes from the verified cache (this package wrote it, and its
        # digest was checked against the record made then); a user's file is sanitized first.
        _load_weights(model, full, weights_path, normalized, trusted=source is not None)
    if args.include_preprocessing:
        set_input_normalization(model, preprocessing)
    return model


def _load_weights(model, full, path, normalized=None, *, trusted=False):
    """Loads into the full classifier when the file is one (the cut model shares its layers),
    else into the model itself (a file saved from an ``include_top=False`` model).

    The file is read through :func:`~keras_lightnets.weight_files.keras_weights.sanitized_weights_file`
    (parsed in a child process, sizes bounded by ``full``'s, re-written clean), so Keras only
    reads a file this package wrote. With an in-graph normalization (``normalized``: its output),
    a file saved without one (a published checkpoint, a model built without
    ``include_preprocessing``) loads into the network after it; the normalization's values are
    set by the scaffold, not read from the file.
    """
    with contextlib.nullcontext(path) if trusted else sanitized_weights_file(path, full) as clean:
        try:
            _load_into(model, full, clean)
        except ValueError as error:
            if normalized is None:
                raise _weights_mismatch(model, path, keras_load_message(error, clean, path)) from None
            after = keras.Model(normalized, model.outputs)
            with warnings.catch_warnings():
                # Keras warns that the sub-model's bookkeeping containers (`_operations_by_depth`) are
                # not in the file; they hold no weights, every layer's are loaded (tested).
                warnings.filterwarnings("ignore", message="Skipping nested container")
                try:
                    _load_into(after, after if model is full else keras.Model(normalized, full.outputs), clean)
                except ValueError as error:
                    raise _weights_mismatch(model, path, keras_load_message(error, clean, path)) from None


def _weights_mismatch(model, path, detail):
    """Keras's "A total of N objects could not be loaded" said the way a user can act on."""
    return CheckpointError(
        path,
        f"does not fit {model.name!r}: it was saved from another architecture, width or number of classes, or "
        f"with(out) include_preprocessing. Keras says: {detail[:400]}",
    )


def _load_into(model, full, path):
    if model is full:
        model.load_weights(path)
        return
    try:
        full.load_weights(path)
    except ValueError as classifier_error:
        try:
            model.load_weights(path)
        except ValueError as error:
            raise ValueError(
                f"`weights` {path!r} fits neither this model's classifier ({classifier_error}) nor the model "
                f"without it ({error})"
            ) from error
