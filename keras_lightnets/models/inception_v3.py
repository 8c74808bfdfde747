"""Inception-v3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016).

The paper's Table 1 as keras.applications ``InceptionV3`` and torchvision ``inception_v3`` build it
(both follow TF-slim's released model): a stem of five convolutions and two 3x3/2 max pools, then
eleven Inception modules, keras' ``mixed0`` ... ``mixed10`` (torchvision's ``Mixed_5b`` ...
``Mixed_7c``): three of kind A at 35x35 (a 1x1, a 5x5, a double 3x3 and an average-pooled
branch), the reduction B to 17x17, four of kind C (7x7 convolutions factorized into 1x7 and 7x1),
the reduction D to 8x8 and two of kind E (the 3x3s' outputs split into parallel 1x3 and 3x1
convolutions). Every convolution is conv (no bias) → BatchNorm (epsilon 1e-3) → ReLU; stride-2
convolutions and the stem's first two and last are "valid", all others keep the size. Head: global
average pool → (dropout) → fully connected. ``BLOCKS`` below is the table, ``MODULES`` each kind's
branches.

Two layouts of that table (``version=``):

- ``"keras"`` (``inception_v3``): keras.applications' ``InceptionV3``, weighted layers in its graph
  order, so its ``.h5`` files load: BatchNorm without a scale (``scale=False``, as TF-slim), the
  branch average pools exclude the padding from the mean (TensorFlow's ``"same"``), no dropout.
- ``"torchvision"`` (``inception_v3_tv``): torchvision's ``inception_v3`` and timm's (the same
  module names): BatchNorm with a scale, average pools that count the zero padding
  (PyTorch's ``count_include_pad=True``: an explicit 1-pixel zero pad, then a valid pool), dropout
  0.5 (timm: 0). torchvision's ``transform_input`` (its pretrained model takes ImageNet-normalized
  inputs and turns them into ``(pixel - 0.5) / 0.5`` inside) is not built in: the variant states
  the Inception preprocessing (mean 0.5, std 0.5) that does the same before the model.

Auxiliary classifier: ``aux_logits=True`` builds the model with two outputs, ``[main, aux]``
(layers ``predictions`` and ``aux_predictions``), the paper's side head on ``mixed7`` (the last
17x17 map, torchvision's ``AuxLogits``): 5x5/3 average pool → 1x1 conv (128) → 5x5 conv (768,
valid) → global average pool → fully connected. It is exactly torchvision's and timm's from a
299-pixel input up, where ``mixed7`` is at least 17x17; below (any size from 75 up, the
digits included), ``mixed7`` is zero-padded to the 17x17 grid the head was designed for
(torchvision and timm fail there). :func:`keras_lightnets.training.fit` trains such a model with
the auxiliary loss weighted 0.4 (TF-slim's) and saves it without the auxiliary output, as it does
GoogLeNet's; :func:`keras_lightnets.models.describe.without_auxiliary_outputs` drops it.
"""

import os
from functools import partial

import keras
from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_rate
from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES
from keras_lightnets.layers import conv_bn_act
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
    torchvision_source,
)
from keras_lightnets.weight_files.keras_weights import sanitized_weights_file

__all__ = ["TORCH_KEY_MAP", "TORCH_KEY_MAP_WITH_AUX", "InceptionV3"]

# The stem: (name, filters, kernel, stride, padding), or the name of a 3x3/2 max pool.
STEM = (
    ("conv1a", 32, 3, 2, "valid"),
    ("conv2a", 32, 3, 1, "valid"),
    ("conv2b", 64, 3, 1, "same"),
    "pool1",
    ("conv3b", 80, 1, 1, "valid"),
    ("conv4a", 192, 3, 1, "valid"),
    "pool2",
)


def _kind_a(pool_features):
    # A branch: (name, pool before it: None | "avg" | "max", units (filters, kernel[, stride]), fork).
    # A fork ends a branch in two parallel units whose outputs are concatenated (kind E).
    return (
        ("branch1x1", None, ((64, 1),), ()),
        ("branch5x5", None, ((48, 1), (64, 5)), ()),
        ("branch3x3dbl", None, ((64, 1), (96, 3), (96, 3)), ()),
        ("branch_pool", "avg", ((pool_features, 1),), ()),
    )


def _kind_c(channels_7x7):
    c7 = channels_7x7
    return (
        ("branch1x1", None, ((192, 1),), ()),
        ("branch7x7", None, ((c7, 1), (c7, (1, 7)), (192, (7, 1))), ()),
        ("branch7x7dbl", None, ((c7, 1), (c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))), ()),
        ("branch_pool", "avg", ((192, 1),), ()),
    )


SPLIT = ((384, (1, 3)), (384, (3, 1)))  # kind E's fork
MODULES = {
    "A32": _kind_a(32),
    "A64": _kind_a(64),
    "B": (
        ("branch3x3", None, ((384, 3, 2),), ()),
        ("branch3x3dbl", None, ((64, 1), (96, 3), (96, 3, 2)), ()),
        ("branch_pool", "max", (), ()),
    ),
    "C128": _kind_c(128),
    "C160": _kind_c(160),
    "C192": _kind_c(192),
    "D": (
        ("branch3x3", None, ((192, 1), (320, 3, 2)), ()),
        ("branch7x7x3", None, ((192, 1), (192, (1, 7)), (192, (7, 1)), (192, 3, 2)), ()),
        ("branch_pool", "max", (), ()),
    ),
    "E": (
        ("branch1x1", None, ((320, 1),), ()),
        ("branch3x3", None, ((384, 1),), SPLIT),
        ("branch3x3dbl", None, ((448, 1), (384, 3)), SPLIT),
        ("branch_pool", "avg", ((192, 1),), ()),
    ),
}
# keras.applications' mixed0 ... mixed10 = torchvision's Mixed_5b ... Mixed_7c: (kind, stride).
BLOCKS = (
    ("A32", 1), ("A64", 1), ("A64", 1),
    ("B", 2),
    ("C128", 1), ("C160", 1), ("C160", 1), ("C192", 1),
    ("D", 2),
    ("E", 1), ("E", 1),
)  # fmt: skip
TORCH_BLOCKS = ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")
AUX_TAP = "mixed7"  # the last 17x17 map (torchvision's Mixed_6e)
AUX_GRID = 17  # the map the auxiliary classifier was designed for (299-pixel input)
AUX_POOL = (5, 3)  # its average pool: 5x5, stride 3 (valid)
AUX_WIDTHS = (128, 768)  # its 1x1 and 5x5 convolutions
MIN_INPUT_SIZE = 75  # keras.applications' minimum: mixed10 is 1x1
BN_EPSILON = 1e-3
VERSIONS = ("keras", "torchvision")
VERSION_OPTIONS = {
    # keras.applications: BatchNormalization(scale=False) at Keras's momentum; TF "same" average pools.
    "keras": {"bn_scale": False, "bn_momentum": 0.99, "pool_counts_padding": False, "dropout_rate": 0.0},
    # torchvision BasicConv2d: BatchNorm2d(eps=0.001) with a scale; F.avg_pool2d(padding=1).
    "torchvision": {"bn_scale": True, "bn_momentum": 0.9, "pool_counts_padding": True, "dropout_rate": 0.5},
}


def _unit(x, filters, kernel_size, strides=1, padding=None, *, options, name):
    """Conv (no bias) → BatchNorm (epsilon 1e-3; keras.applications: without a scale) → ReLU.

    ``padding`` defaults to the table's rule: "valid" for a strided convolution, else "same"
    (symmetric for these odd kernels at stride 1, as torchvision's ``padding=k // 2``).
    """
    padding = padding or ("valid" if strides != 1 else "same")
    x = conv_bn_act(x, filters, kernel_size, strides, use_bn=False, activation=None, padding=padding, name=name)
    x = layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=options["bn_momentum"], scale=options["bn_scale"], name=f"{name}_bn"
    )(x)
    return layers.Activation("relu", name=f"{name}_act")(x)


def _branch_pool(x, kind, *, options, name):
    if kind == "max":
        return layers.MaxPooling2D(3, 2, name=name)(x)
    if options["pool_counts_padding"]:  # PyTorch's count_include_pad=True: the zeros count in the mean
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        return layers.AveragePooling2D(3, 1, name=name)(x)
    return layers.AveragePooling2D(3, 1, padding="same", name=name)(x)


def inception_module(x, kind, *, options, name):
    """The branches of ``MODULES[kind]``, concatenated; units named after torchvision's
    (``{name}_branch7x7dbl_3``, a fork's ``{name}_branch3x3_2a`` / ``_2b``)."""
    outputs = []
    for branch, pool, units, fork in MODULES[kind]:
        y = x if pool is None else _branch_pool(x, pool, options=options, name=f"{name}_pool")
        numbered = len(units) + bool(fork) > 1
        for index, unit in enumerate(units, start=1):
            unit_name = f"{name}_{branch}_{index}" if numbered else f"{name}_{branch}"
            y = _unit(y, *unit, options=options, name=unit_name)
        if fork:
            last = len(units) + 1
            parts = [
                _unit(y, *unit, options=options, name=f"{name}_{branch}_{last}{letter}")
                for unit, letter in zip(fork, "ab", strict=True)
            ]
            y = layers.Concatenate(name=f"{name}_{branch}")(parts)
        outputs.append(y)
    return layers.Concatenate(name=name)(outputs)


def _body(x, *, version):
    options = VERSION_OPTIONS[version]
    tracker = FeatureTracker()
    for unit in STEM:
        if isinstance(unit, str):
            x = tracker.add(layers.MaxPooling2D(3, 2, name=unit)(x), 2)
        else:
            name, filters, kernel, stride, padding = unit
            x = tracker.add(_unit(x, filters, kernel, stride, padding, options=options, name=name), stride)
    for index, (kind, stride) in enumerate(BLOCKS):
        x = tracker.add(inception_module(x, kind, options=options, name=f"mixed{index}"), stride)
    return x, tracker.maps


def auxiliary_classifier(x, *, classes, classifier_activation, version, name="aux"):
    """5x5/3 average pool → 1x1 conv (128) → 5x5 conv (768, valid) → global average pool → FC.

    torchvision's ``InceptionAux`` (its final adaptive average pool is the global one). A map
    smaller than 17x17 (inputs under 299 pixels) is first zero-padded to 17x17, centred.
    """
    options = VERSION_OPTIONS[version]
    height, width = x.shape[1:3]
    if min(height, width) < AUX_GRID:
        grow = [max(0, AUX_GRID - size) for size in (height, width)]
        x = layers.ZeroPadding2D(tuple((g // 2, g - g // 2) for g in grow), name=f"{name}_pad")(x)
    x = layers.AveragePooling2D(*AUX_POOL, name=f"{name}_pool")(x)
    x = _unit(x, AUX_WIDTHS[0], 1, options=options, name=f"{name}_conv0")
    x = _unit(x, AUX_WIDTHS[1], 5, padding="valid", options=options, name=f"{name}_conv1")
    x = layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_predictions")(x)


def _is_weights_file(weights):
    return isinstance(weights, str | os.PathLike) and os.fspath(weights).endswith(KERAS_WEIGHTS_SUFFIXES)


def _with_auxiliary_classifier(model, weights_file, *, classes, classifier_activation, version):
    """``model`` (the inference classifier) with the auxiliary classifier as a second output; a
    weights file saved with it is loaded into the whole, one saved without it into ``model``."""
    aux = auxiliary_classifier(
        model.get_layer(AUX_TAP).output, classes=classes, classifier_activation=classifier_activation, version=version
    )
    training = keras.Model(model.input, [model.outputs[0], aux], name=model.name)
    if weights_file is not None:
        # A user's file is parsed and re-written clean first, as the scaffold does with any.
        with sanitized_weights_file(weights_file, training) as clean:
            try:
                training.load_weights(clean)
            except ValueError:
                model.load_weights(clean)  # saved without it: the auxiliary classifier stays new
    return training


@family_constructor
def InceptionV3(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    version="keras",
    aux_logits=False,
    dropout_rate=None,
    features_only=False,
    include_preprocessing=False,
):
    """Inception-v3 in keras.applications' layout (``version="keras"``) or torchvision's / timm's.

    Args:
        version: ``"keras"`` (keras.applications ``InceptionV3``: BatchNorm without a scale,
            average pools that ignore the padding; its ``.h5`` files load) or ``"torchvision"``
            (torchvision's and timm's ``inception_v3``: BatchNorm with a scale, average pools that
            count the zero padding; their checkpoints load).
        aux_logits: add the auxiliary classifier (on ``mixed7``) as the second output, for
            training (:func:`keras_lightnets.training.fit` weighs its loss 0.4); needs
            ``include_top=True`` and a static input size. Published weights load into the
            network; the auxiliary classifier starts new.
        dropout_rate: before the classifier; default 0 (keras) or 0.5 (torchvision).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`);
    inputs are at least 75x75, 299x299 by default, pixels in [-1, 1] (``include_preprocessing=True``:
    in [0, 1]).
    """
    check_choice(version, "version", VERSIONS)
    check_bool(aux_logits, "aux_logits")
    if dropout_rate is None:
        dropout_rate = VERSION_OPTIONS[version]["dropout_rate"]
    check_rate(dropout_rate, "dropout_rate")
    if aux_logits and (not include_top or features_only):
        raise ValueError(
            "`aux_logits=True` adds a classifier, so it needs include_top=True and features_only=False; got "
            f"include_top={include_top!r}, features_only={features_only!r}"
        )
    # A weights file saved from a model with the auxiliary classifier holds its weights too: it is
    # loaded after the classifier is added, not into the inference model by the scaffold.
    aux_file = weights if aux_logits and _is_weights_file(weights) else None
    model = build_model(
        FAMILY,
        {**locals(), "weights": None if aux_file is not None else weights},
        body=partial(_body, version=version),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="inception_v3" if version == "keras" else "inception_v3_tv",
        min_size=MIN_INPUT_SIZE,
        static="the auxiliary classifier pads a map smaller than 17x17" if aux_logits else False,
    )
    if not aux_logits:
        return model
    return _with_auxiliary_classifier(
        model, aux_file, classes=classes, classifier_activation=classifier_activation, version=version
    )


# --- weight porting --------------------------------------------------------------------
# torchvision / timm inception_v3: Conv2d_{1a,2a,2b,3b,4a}_*.{conv,bn}, Mixed_{5b..7c}.<branch>.{conv,bn}
# (the branch names ours repeat), AuxLogits.{conv0,conv1}.{conv,bn}, AuxLogits.fc, fc.
_MODULE_RULES = (
    (r"Conv2d_(1a|2a|2b|3b|4a)_\dx\d\.(conv|bn)", r"conv\1_\2"),
    (r"Mixed_(\d[a-e])\.(branch\w+)\.(conv|bn)", lambda m: f"mixed{TORCH_BLOCKS.index(m[1])}_{m[2]}_{m[3]}"),
    (r"fc", "predictions"),
)
# torchvision's file (and timm's tv_in1k) holds the auxiliary classifier: the inference model skips it.
TORCH_KEY_MAP = (*_MODULE_RULES, (r"AuxLogits\..*", None))
# Into a model built with aux_logits=True.
TORCH_KEY_MAP_WITH_AUX = (
    *_MODULE_RULES,
    (r"AuxLogits\.(conv[01])\.(conv|bn)", r"aux_\1_\2"),
    (r"AuxLogits\.fc", "aux_predictions"),
)

# keras.applications: inception_v3.preprocess_input (mode "tf": [-1, 1]), 299 px; keras' own
# evaluation resizes bilinearly, the 0.875 crop is the Inception papers' (TF-slim's).
KERAS_PREPROCESSING = Preprocessing(
    input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.875, interpolation="bilinear"
)
# torchvision Inception_V3_Weights.IMAGENET1K_V1: resize 342, crop 299, bilinear, ImageNet mean/std
# turned into (pixel - 0.5) / 0.5 by transform_input: the Inception mean and std here.
TORCHVISION_PREPROCESSING = Preprocessing(
    input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=299 / 342, interpolation="bilinear"
)
# timm's inception_v3 tags: bicubic, crop 0.875, the Inception mean/std (gluon_in1k: ImageNet's).
TIMM_PREPROCESSING = Preprocessing(
    input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.875, interpolation="bicubic"
)
GLUON_PREPROCESSING = Preprocessing(
    input_size=(299, 299, 3), mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct=0.875, interpolation="bicubic"
)
# timm's Hub copies, with timm's top-1 (results-imagenet.csv, 299 px). Its tv_in1k is torchvision's
# file (listed once, from torchvision's host).
TIMM_WEIGHTS = (
    ("inception_v3.tf_in1k", 77.866, "Apache-2.0 (TF-slim inception_v3_2016_08_28, ported by timm)", None),
    ("inception_v3.tf_adv_in1k", 77.598, "Apache-2.0 (TF adv_inception_v3_2017_08_18, ported by timm)", None),
    ("inception_v3.gluon_in1k", 78.806, "Apache-2.0 (GluonCV, ported by timm)", GLUON_PREPROCESSING),
)


FAMILY = Family(
    name="inception_v3",
    constructor=InceptionV3,
    architecture_args=("version",),
    preprocessing=KERAS_PREPROCESSING,
    min_input_size=MIN_INPUT_SIZE,
    variants=(
        Variant(
            "inception_v3",
            {"version": "keras"},
            Reference(
                23_817_352, 5713.2, 77.9, "keras.applications InceptionV3 (top-1: its documentation)", (299, 299, 3)
            ),
            equals="keras:InceptionV3",
            weights=(
                keras_source(
                    "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                    77.9,
                    "9a0d58056eeedaa3f26cb7ebd46da564",
                ),
            ),
        ),
        Variant(
            "inception_v3_tv",
            {"version": "torchvision"},
            Reference(
                23_834_568,
                5713.2,
                77.294,
                "torchvision inception_v3 (without its auxiliary classifier); timm inception_v3",
                (299, 299, 3),
            ),
            equals="torchvision:inception_v3(init_weights=False)",
            preprocessing=TORCHVISION_PREPROCESSING,
            key_map=TORCH_KEY_MAP,
            # timm's inception_v3 has torchvision's module names: one map for both layouts
            layouts={"timm": TORCH_KEY_MAP},
            weights=(
                torchvision_source("inception_v3_google-0cc3c7bd.pth", 77.294),
                *(
                    timm_source(tag, top1, license, preprocessing or TIMM_PREPROCESSING)
                    for tag, top1, license, preprocessing in TIMM_WEIGHTS
                ),
            ),
        ),
    ),
)
