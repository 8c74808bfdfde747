"""tf_keras versions of keras_lightnets' custom layers, for the quantization-aware twin.

tensorflow-model-optimization only works on tf_keras (Keras 2) models, so the twin of a
Keras 3 model needs tf_keras classes with the same math as each custom layer of
:mod:`keras_lightnets.layers` (the table :mod:`keras_lightnets.layers.custom_layers` names
them by import string). They live here, on the deploy side, so model code never imports
tf_keras. All are registered under ``keras_lightnets>`` in tf_keras's own registry, so a QAT
model saved with tf_keras loads back.
"""

import json

import tensorflow as tf
import tf_keras

from keras_lightnets.layers.model_card import LEGACY_PREPROCESSING_KEYS, MODEL_CARD_LAYER, card_preprocessing
from keras_lightnets.layers.preprocessing import Preprocessing

__all__ = [
    "TwinAlignedBilinearResize",
    "TwinCeilMaxPool2D",
    "TwinChannelPadAdd",
    "TwinChannelShuffle",
    "TwinHardSigmoid",
    "TwinHardSwish",
    "TwinLayerScale",
    "TwinLocalResponseNormalization",
    "TwinModelCard",
    "TwinNearestResize",
    "TwinPartialResidualAdd",
    "TwinQuantizedHardSigmoid",
    "TwinQuantizedSiLU",
    "TwinSamePadding2D",
    "TwinStochasticDepth",
]

# The largest value of TFLite's int8 LOGISTIC output (scale 1/256, zero point -128).
_LOGISTIC_MAX = 255.0 / 256.0


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinStochasticDepth(tf_keras.layers.Layer):
    """Drop path with rate ``rate`` in training (timm's ``DropPath``), identity at inference and,
    like the Keras 3 layer, when not trainable (a frozen block)."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed

    def call(self, inputs, training=None):
        if not training or not self.trainable or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = tf.concat([tf.shape(inputs)[:1], tf.ones([inputs.shape.rank - 1], tf.int32)], axis=0)
        mask = tf.floor(tf.random.uniform(shape, dtype=inputs.dtype, seed=self.seed) + keep)
        return inputs * mask / keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinChannelPadAdd(tf_keras.layers.Layer):
    """``[y, x] -> y + pad_channels(x)``: the shortcut added to the first ``C_x`` channels (TFLite PAD + ADD)."""

    def call(self, inputs):
        y, x = inputs
        extra = y.shape[-1] - x.shape[-1]
        paddings = [[0, 0]] * (x.shape.rank - 1) + [[0, extra]]
        return y + tf.pad(x, paddings)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinPartialResidualAdd(TwinChannelPadAdd):
    """Deprecated name of :class:`TwinChannelPadAdd`, kept so that QAT models saved with it load."""


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinCeilMaxPool2D(tf_keras.layers.Layer):
    """PyTorch ceil-mode max pooling for any input size: pad the end with the dtype's lowest value
    (``min(k, s) - 1`` rows / columns), then a "valid" max pool (TFLite PADV2 + MAX_POOL_2D)."""

    def __init__(self, pool_size=3, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
        self.strides = (strides, strides) if isinstance(strides, int) else tuple(strides)

    def call(self, inputs):
        pad_h, pad_w = (min(k, s) - 1 for k, s in zip(self.pool_size, self.strides, strict=True))
        if pad_h or pad_w:
            inputs = tf.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], constant_values=inputs.dtype.min)
        return tf.nn.max_pool2d(inputs, self.pool_size, self.strides, padding="VALID")

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinSamePadding2D(tf_keras.layers.Layer):
    """Zero padding as TF's "same" pads for a ``kernel_size`` / ``strides`` window, for any input
    size (``k - s + ((-n) mod s)`` zeros per axis, the odd one at the end): TFLite PAD."""

    def __init__(self, kernel_size=3, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = (strides, strides) if isinstance(strides, int) else tuple(strides)

    def call(self, inputs):
        padding = [[0, 0]]
        for axis, kernel, stride in zip((1, 2), self.kernel_size, self.strides, strict=True):
            size = inputs.shape[axis] if inputs.shape[axis] is not None else tf.shape(inputs)[axis]
            total = kernel - stride + (-size) % stride
            total = max(total, 0) if isinstance(total, int) else tf.maximum(total, 0)
            padding.append([total // 2, total - total // 2])
        return tf.pad(inputs, padding + [[0, 0]])

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        for axis, kernel, stride in zip((1, 2), self.kernel_size, self.strides, strict=True):
            if shape[axis] is not None:
                shape[axis] += max(kernel - stride + (-shape[axis]) % stride, 0)
        return tf.TensorShape(shape)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinChannelShuffle(tf_keras.layers.Layer):
    """Channel shuffle of ``groups`` groups (TFLite RESHAPE + TRANSPOSE + RESHAPE)."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, inputs):
        shape = tf.shape(inputs)
        channels = inputs.shape[-1]
        x = tf.reshape(inputs, [-1, shape[1], shape[2], self.groups, channels // self.groups])
        x = tf.transpose(x, [0, 1, 2, 4, 3])
        return tf.reshape(x, [-1, shape[1], shape[2], channels])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinLocalResponseNormalization(tf_keras.layers.Layer):
    """PyTorch's ``LocalResponseNorm`` across channels: ``x / (k + alpha/size * sum x**2)**beta``.

    An odd ``size`` is TensorFlow's ``local_response_normalization`` with ``depth_radius =
    size // 2`` and ``alpha / size`` (TFLite's float LOCAL_RESPONSE_NORMALIZATION); an even one
    (asymmetric window) is summed from slices like the Keras 3 layer.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)

    def call(self, inputs):
        if self.size % 2:
            return tf.nn.local_response_normalization(
                inputs, depth_radius=self.size // 2, bias=self.k, alpha=self.alpha / self.size, beta=self.beta
            )
        channels = inputs.shape[-1]
        paddings = [[0, 0]] * (inputs.shape.rank - 1) + [[self.size // 2, (self.size - 1) // 2]]
        squares = tf.pad(tf.square(inputs), paddings)
        total = tf.add_n([squares[..., offset : offset + channels] for offset in range(self.size)])
        return inputs / tf.pow(self.k + (self.alpha / self.size) * total, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinAlignedBilinearResize(tf_keras.layers.Layer):
    """``[x, reference] -> x`` resized to ``reference``'s height and width, bilinear with aligned
    corners (Caffe's ``Interp``): TFLite's ``RESIZE_BILINEAR`` with ``align_corners=True``."""

    def call(self, inputs):
        x, reference = inputs
        size = reference.shape.as_list()[1:3]
        if None in size:
            size = tf.shape(reference)[1:3]
        resized = tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=True, half_pixel_centers=False)
        return tf.cast(resized, x.dtype)

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return tf.TensorShape([x_shape[0], reference_shape[1], reference_shape[2], x_shape[-1]])


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinNearestResize(tf_keras.layers.Layer):
    """``[x, reference] -> x`` resized to ``reference``'s height and width, nearest neighbour with
    PyTorch's index rule ``floor(i * in / out)``: TFLite's ``RESIZE_NEAREST_NEIGHBOR`` (legacy, no
    half-pixel centres)."""

    def call(self, inputs):
        x, reference = inputs
        size = reference.shape.as_list()[1:3]
        if None in size:
            size = tf.shape(reference)[1:3]
        return tf.raw_ops.ResizeNearestNeighbor(images=x, size=size, align_corners=False, half_pixel_centers=False)

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return tf.TensorShape([x_shape[0], reference_shape[1], reference_shape[2], x_shape[-1]])


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinLayerScale(tf_keras.layers.Layer):
    """``x * gamma``, one ``gamma`` per channel (TFLite MUL by a constant vector). The weight is the
    attribute ``gamma``, which tfmot's wrapper replaces by its fake-quantized value in QAT."""

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma", shape=(input_shape[-1],), initializer=tf_keras.initializers.Constant(self.init_value)
        )

    def call(self, inputs):
        return inputs * self.gamma

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinModelCard(tf_keras.layers.Layer):
    """The identity, carrying :class:`~keras_lightnets.layers.model_card.ModelCard`'s config into the
    twin and the QAT model, so ``find_model_card`` and the preprocessing resolver read the same
    card there: the same arguments, the same attributes (``preprocessing`` as the object)."""

    def __init__(self, family, variant=None, architecture=None, preprocessing=None, features=None, **kwargs):
        legacy = {key: kwargs.pop(key) for key in LEGACY_PREPROCESSING_KEYS if key in kwargs}
        kwargs.setdefault("name", MODEL_CARD_LAYER)
        super().__init__(**kwargs)
        recorded, self.in_graph_recorded = card_preprocessing(preprocessing, legacy)
        card = {
            "family": family,
            "variant": variant,
            "architecture": architecture,
            "preprocessing": None if recorded is None else recorded.to_config(),
            "features": features,
        }
        # A string: tf_keras would wrap a dict or list attribute in a (non-JSON) tracking wrapper.
        self._card_json = json.dumps(card)

    def _field(self, key):
        return json.loads(self._card_json)[key]

    family = property(lambda self: self._field("family"))
    variant = property(lambda self: self._field("variant"))
    architecture = property(lambda self: self._field("architecture"))
    features = property(lambda self: self._field("features"))

    @property
    def preprocessing(self):
        config = self._field("preprocessing")
        return None if config is None else Preprocessing.from_config(config)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **json.loads(self._card_json)}


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinQuantizedSiLU(tf_keras.layers.Layer):
    """SiLU ``x * sigmoid(x)`` for QAT, with the sigmoid rounded as TFLite's int8 LOGISTIC does.

    TFLite runs an int8 SiLU as LOGISTIC (fixed output grid: steps of 1/256 in [0, 255/256])
    then MUL. Only :func:`~keras_lightnets.deploy.quantize_aware` puts this layer in place of
    ``Activation("silu")`` (same name); the float twin keeps the exact activation.
    """

    def call(self, inputs):
        gate = tf.quantization.fake_quant_with_min_max_args(
            tf.sigmoid(inputs), min=0.0, max=_LOGISTIC_MAX, num_bits=8, narrow_range=False
        )
        return inputs * gate

    def compute_output_shape(self, input_shape):
        return input_shape


# Keras 3's hard sigmoid and hard swish. tf_keras has no ``hard_swish`` and its ``hard_sigmoid`` is
# another function (``clip(0.2 x + 0.5, 0, 1)``); Keras 3, torchvision, timm and TF-slim's MobileNetV3
# all use ``relu6(x + 3) / 6``. The twin builds these layers in place of ``Activation("hard_sigmoid")``
# and ``Activation("hard_swish")`` (same name).
_HARD_SIGMOID_RANGE = 6.0  # relu6(x + 3): the hard sigmoid before its division by 6


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinHardSigmoid(tf_keras.layers.Layer):
    """Keras 3's hard sigmoid ``relu6(x + 3) / 6`` (TFLite: ADD with a fused RELU6, then MUL)."""

    def call(self, inputs):
        return tf.nn.relu6(inputs + 3.0) / 6.0

    def compute_output_shape(self, input_shape):
        return input_shape


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinHardSwish(tf_keras.layers.Layer):
    """Keras 3's hard swish ``x * relu6(x + 3) / 6``: the pattern TFLite's converter fuses into one
    HARD_SWISH operator, in float and in INT8 (the layer has no quantizer inside, only on its output)."""

    def call(self, inputs):
        return inputs * (tf.nn.relu6(inputs + 3.0) / 6.0)

    def compute_output_shape(self, input_shape):
        return input_shape


@tf_keras.saving.register_keras_serializable(package="keras_lightnets")
class TwinQuantizedHardSigmoid(tf_keras.layers.Layer):
    """The hard sigmoid for QAT, rounded where TFLite's INT8 graph rounds: ``relu6(x + 3)`` (an int8 ADD
    with a fused RELU6, whose output range is [0, 6] whatever the data) fake-quantized to that fixed
    range, then divided by 6 (an int8 MUL; its output is quantized by the layer's config). Without the
    inner quantizer the converter has no range for the ADD's output and leaves the ADD and the MUL in
    float between a DEQUANTIZE and a QUANTIZE. Only :func:`~keras_lightnets.deploy.quantize_aware` puts
    this layer in place of :class:`TwinHardSigmoid`; the float twin keeps the exact function."""

    def call(self, inputs):
        shifted = tf.quantization.fake_quant_with_min_max_args(
            tf.nn.relu6(inputs + 3.0), min=0.0, max=_HARD_SIGMOID_RANGE, num_bits=8, narrow_range=False
        )
        return shifted / _HARD_SIGMOID_RANGE

    def compute_output_shape(self, input_shape):
        return input_shape
