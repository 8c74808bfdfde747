"""VGG (Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015): configurations A (VGG-11), B (13), D (16) and E (19), with or without BatchNorm.

Five blocks of 3x3 convolutions (stride 1, padded by 1, with biases) of 64, 128, 256, 512 and 512
filters, each block closed by a 2x2/2 max pool; ``batch_norm=True`` puts a BatchNorm (PyTorch's
epsilon 1e-5) between each convolution and its ReLU and keeps the convolutions' biases, as
torchvision's ``vgg*_bn`` do. Classifier: Flatten → fc1 (4096) → ReLU → Dropout → fc2 (4096) →
ReLU → Dropout → predictions (torchvision's; keras.applications' VGG16/VGG19 have no dropout,
which changes nothing at inference).

- The classifier flattens the last map, so ``include_top=True`` needs a fixed input size
  (keras.applications' rule); the published weights take 224. torchvision's
  ``AdaptiveAvgPool2d((7, 7))`` is the identity on the 7x7 map of a 224 input (any input of 224 to
  255 pixels) and is left out; without weights, other sizes build a first dense layer sized to
  their map, as keras.applications' VGG does.
- ``vgg16`` and ``vgg19`` equal keras.applications' ``VGG16`` / ``VGG19`` layer for layer (same
  weighted layers in the same order); the first dense layer's rows are in NHWC order, as in Keras.
  torchvision's checkpoints are converted by permuting their NCHW rows
  (:func:`~keras_lightnets.models.variant.nchw_flatten_rows`); keras.applications' files take BGR
  pixels in [0, 255] minus the ImageNet mean ("caffe" mode) and are converted with their first
  convolution's input channels reversed, so the model takes RGB like every other.
"""

import dataclasses
from functools import partial

from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_rate
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.resnet import CAFFE_PREPROCESSING
from keras_lightnets.models.scaffold import FeatureTracker, build_model
from keras_lightnets.models.variant import (
    Family,
    Reference,
    Variant,
    keras_source,
    nchw_flatten_rows,
    torchvision_source,
)

__all__ = ["CONVS_PER_BLOCK", "TORCHVISION_KEY_MAPS", "VGG", "WIDTHS"]

# The paper's Table 1: 3x3 convolutions per block for configurations A, B, D, E, by depth.
CONVS_PER_BLOCK = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
HIDDEN = 4096
LAST_MAP = (512, 7, 7)  # channels, height, width of the last map at 224, what fc1 flattens
BN_EPSILON, BN_MOMENTUM = 1e-5, 0.9  # PyTorch's
DEFAULT_DROPOUT = 0.5


def _body(x, *, depth, batch_norm):
    tracker = FeatureTracker()
    for block, (convs, filters) in enumerate(zip(CONVS_PER_BLOCK[depth], WIDTHS, strict=True), start=1):
        for index in range(1, convs + 1):
            name = f"block{block}_conv{index}"
            x = layers.Conv2D(filters, 3, padding="same", name=name)(x)
            if batch_norm:
                x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        if block > 1:
            tracker.add(x)  # the block's last map, at the stride of the pool before it
        x = tracker.add(layers.MaxPooling2D(2, 2, name=f"block{block}_pool")(x), 2)
    return x, tracker.maps


def _head(x, *, classes, classifier_activation, dropout_rate):
    """Flatten → fc1 → ReLU → Dropout → fc2 → ReLU → Dropout → predictions."""
    x = layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        x = layers.Dense(HIDDEN, name=f"fc{index}")(x)
        x = layers.ReLU(name=f"fc{index}_relu")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"dropout{index}")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


@family_constructor
def VGG(
    depth=16,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    batch_norm=False,
    dropout_rate=DEFAULT_DROPOUT,
    features_only=False,
    include_preprocessing=False,
):
    """VGG-``depth`` (11, 13, 16 or 19), with ``batch_norm`` after every convolution or without.

    Args:
        depth: 11, 13, 16 or 19 (the paper's configurations A, B, D and E).
        batch_norm: torchvision's ``vgg*_bn``: BatchNorm between each convolution (which keeps
            its bias) and its ReLU.
        dropout_rate: after fc1 and fc2 (0.5).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    ``include_top=True`` needs a fixed input size (the classifier flattens the last map): the
    published weights take 224; without weights any size from 32 pixels builds, with a first
    dense layer sized to its map.
    """
    check_choice(depth, "depth", tuple(CONVS_PER_BLOCK))
    check_bool(batch_norm, "batch_norm")
    check_rate(dropout_rate, "dropout_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, depth=depth, batch_norm=batch_norm),
        head=partial(_head, dropout_rate=dropout_rate),
        default_name=f"vgg{depth}" + ("_bn" if batch_norm else ""),
        fixed_size_for_top=True,
    )


# --- weight porting --------------------------------------------------------------------
def _torchvision_key_map(depth, batch_norm):
    """torchvision vgg*: ``features`` is one Sequential of conv [, BN], ReLU per convolution and a
    max pool per block; ``classifier.{0, 3, 6}`` are the dense layers. classifier.0 reads
    torch.flatten of the 512x7x7 NCHW map: its rows are permuted into this model's NHWC order."""
    rules, index = [], 0
    for block, convs in enumerate(CONVS_PER_BLOCK[depth], start=1):
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            rules.append((rf"features\.{index}", name))
            if batch_norm:
                rules.append((rf"features\.{index + 1}", f"{name}_bn"))
            index += 3 if batch_norm else 2
        index += 1  # the max pool
    rules += [
        (r"classifier\.0", "fc1", nchw_flatten_rows(*LAST_MAP)),
        (r"classifier\.3", "fc2"),
        (r"classifier\.6", "predictions"),
    ]
    return tuple(rules)


TORCHVISION_KEY_MAPS = {
    (depth, batch_norm): _torchvision_key_map(depth, batch_norm)
    for depth in CONVS_PER_BLOCK
    for batch_norm in (False, True)
}

# torchvision's IMAGENET1K_V1 files (evaluated at 256 -> 224 bilinear) and their top-1.
TORCHVISION_WEIGHTS = {
    "vgg11": ("vgg11-8a719046.pth", 69.020),
    "vgg11_bn": ("vgg11_bn-6002323d.pth", 70.370),
    "vgg13": ("vgg13-19584684.pth", 69.928),
    "vgg13_bn": ("vgg13_bn-abd245e5.pth", 71.586),
    "vgg16": ("vgg16-397923af.pth", 71.592),
    "vgg16_bn": ("vgg16_bn-6c64b313.pth", 73.360),
    "vgg19": ("vgg19-dcbb9e9d.pth", 72.376),
    "vgg19_bn": ("vgg19_bn-c79401a0.pth", 74.218),
}
# keras.applications' VGG16 / VGG19 files: (file, MD5 from its source, top-1 from its documentation).
# They take BGR pixels in caffe mode: that preprocessing travels with them.
KERAS_WEIGHTS = {
    "vgg16": ("vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b", 71.3),
    "vgg19": ("vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318", 71.3),
}
# (params, MACs in millions at 224) of torchvision's vgg*, without and with BatchNorm.
FIGURES = {
    11: (132_863_336, 132_868_840, 7609.1),
    13: (133_047_848, 133_053_736, 11308.5),
    16: (138_357_544, 138_365_992, 15470.3),
    19: (143_667_240, 143_678_248, 19632.1),
}
# Compared with their reference in the suite: BatchNorm and the fc1 permutation (vgg11_bn against
# torchvision) and the keras.applications layout (vgg16). The others differ in their depth only;
# their parameters and MACs are checked exactly, their torchvision key maps in tests/models.
COMPARED = ("vgg11_bn", "vgg16")


def _variant(depth, batch_norm):
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")
    params_plain, params_bn, macs_m = FIGURES[depth]
    key_map = TORCHVISION_KEY_MAPS[(depth, batch_norm)]
    sources = [torchvision_source(*TORCHVISION_WEIGHTS[name])]
    keras_born = name in KERAS_WEIGHTS
    if keras_born:
        path, md5, top1 = KERAS_WEIGHTS[name]
        sources.append(dataclasses.replace(keras_source(path, top1, md5), preprocessing=CAFFE_PREPROCESSING))
    return Variant(
        name,
        {"depth": depth, "batch_norm": batch_norm},
        Reference(
            params_bn if batch_norm else params_plain,
            macs_m,
            TORCHVISION_WEIGHTS[name][1],
            f"torchvision {name}" + (f"; = keras.applications VGG{depth}" if keras_born else ""),
        ),
        # vgg16 / vgg19 are compared with keras.applications (same layers, same order); their
        # torchvision layout is the one of vgg11 and vgg13, compared through vgg11_bn and the key maps.
        equals=f"keras:VGG{depth}" if keras_born else f"torchvision:{name}",
        key_map=None if keras_born else key_map,
        layouts={"keras": "bgr_input", "torchvision": key_map} if keras_born else {},
        weights=tuple(sources),
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="vgg",
    constructor=VGG,
    architecture_args=("depth", "batch_norm"),
    variants=tuple(_variant(depth, batch_norm) for depth in CONVS_PER_BLOCK for batch_norm in (False, True)),
)
