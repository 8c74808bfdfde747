"""What every constructor shares: argument checks, the input, the classifier top, the outputs.

Constructors follow keras.applications (``include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, name``) and check every
argument here, before a single layer is built.
"""

import numbers
import os

import keras
from keras import layers

POOLINGS = (None, "avg", "max")
DEFAULT_INPUT_SHAPE = (224, 224, 3)
# Five stride-2 reductions need at least 32 pixels to leave a 1x1 map.
MIN_INPUT_SIZE = 32


def check_choice(value, arg, allowed):
    if value not in allowed:
        raise ValueError(f"`{arg}` must be one of {allowed}, got {value!r}")
    return value


def check_positive(value, arg, *, integer=False):
    """A number > 0 (an int when ``integer``); bools are refused."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"`{arg}` must be {what} > 0, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"`{arg}` must be > 0, got {value!r}")
    return value


def check_rate(value, arg):
    """A probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{arg}` must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{arg}` must be in [0, 1), got {value!r}")
    return float(value)


def _check_weights(weights):
    if weights is None:
        return None
    if isinstance(weights, str) and weights.lower() == "imagenet":
        raise ValueError(
            "`weights='imagenet'` is not available yet: published ImageNet weights come in a later "
            "release. Use `weights=None` or the path to a Keras weights file (.weights.h5 or .keras)."
        )
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"`weights` must be None or the path to a Keras weights file, got {weights!r}")
    path = os.fspath(weights)
    if not path.endswith((".weights.h5", ".keras")):
        raise ValueError(f"`weights` must be a '.weights.h5' or '.keras' file, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"`weights` file does not exist: {path!r}")
    return path


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


def _resolve_input_shape(input_tensor, input_shape, min_size, static):
    if input_tensor is not None:
        shape = tuple(input_tensor.shape)
        if len(shape) != 4:
            raise ValueError(f"`input_tensor` must have rank 4 (batch, height, width, channels), got shape {shape}")
        shape = shape[1:]
    elif input_shape is None:
        shape = DEFAULT_INPUT_SHAPE
    else:
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            raise ValueError(f"`input_shape` must be (height, width, channels) (channels_last), got {input_shape!r}")
        shape = tuple(input_shape)
    height, width, channels = shape
    for dim, arg in ((height, "height"), (width, "width"), (channels, "channels")):
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim <= 0):
            raise ValueError(f"`input_shape` {arg} must be a positive integer or None, got {dim!r}")
    if channels is None:
        raise ValueError(f"`input_shape` needs a known number of channels, got {shape}")
    for dim, arg in ((height, "height"), (width, "width")):
        if dim is None and static:
            raise ValueError(f"this model needs a static input {arg}: pass e.g. input_shape=(224, 224, {channels})")
        if dim is not None and dim < min_size:
            raise ValueError(f"input {arg} must be at least {min_size} pixels for this model, got {dim}")
    return shape


def validate_common(
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    features_only=False,
    min_size=MIN_INPUT_SIZE,
    static=False,
):
    """Checks the keras.applications arguments; returns ``(input_shape, weights_path)``."""
    if not isinstance(include_top, bool):
        raise TypeError(f"`include_top` must be True or False, got {include_top!r}")
    if not isinstance(features_only, bool):
        raise TypeError(f"`features_only` must be True or False, got {features_only!r}")
    check_choice(pooling, "pooling", POOLINGS)
    check_positive(classes, "classes", integer=True)
    _check_classifier_activation(classifier_activation)
    weights_path = _check_weights(weights)
    shape = _resolve_input_shape(input_tensor, input_shape, min_size, static)
    return shape, weights_path


def make_inputs(input_tensor, input_shape):
    """``(model_inputs, x)`` for an optional ``input_tensor``, as keras.applications does."""
    if input_tensor is None:
        inputs = layers.Input(shape=input_shape, name="input")
        return inputs, inputs
    if isinstance(input_tensor, keras.KerasTensor):
        return keras.utils.get_source_inputs(input_tensor), input_tensor
    inputs = layers.Input(tensor=input_tensor, shape=input_shape, name="input")
    return inputs, inputs


def global_pool(x, pooling):
    """``pooling`` None/"avg"/"max" on a feature map, as keras.applications' ``include_top=False``."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def dense_classifier(x, *, classes, classifier_activation, dropout_rate):
    """GAP → Dropout → Dense: the classifier of most families."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def finalize(inputs, x, features, *, top, include_top, pooling, features_only, weights_path, name):
    """Makes the model: the feature pyramid, or the classifier (``top``), or pooled features.

    Args:
        x: the last feature map of the body.
        features: ``{stride: tensor}``, the last feature map at each stride.
        top: ``top(x) -> logits/probabilities``, the family's classifier.
    """
    if features_only:
        # A list in stride order (a dict would come back sorted by key, "stride16"
        # before "stride2"); Identity layers give the outputs stable names.
        outputs = [layers.Identity(name=f"stride{stride}")(features[stride]) for stride in sorted(features)]
    elif include_top:
        outputs = top(x)
    else:
        outputs = global_pool(x, pooling)
    model = keras.Model(inputs, outputs, name=name)
    if weights_path is not None:
        model.load_weights(weights_path)
    return model


class FeatureTracker:
    """Tracks the current stride and the last feature map at each stride (timm's feature taps)."""

    def __init__(self):
        self.stride = 1
        self.maps = {}

    def add(self, x, stride=1):
        self.stride *= stride
        self.maps[self.stride] = x
        return x


def width_tag(width):
    """``1.0 -> "100"``, ``0.35 -> "035"``: the registry's width suffix."""
    return f"{round(width * 100):03d}"
