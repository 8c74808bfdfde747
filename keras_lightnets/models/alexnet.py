"""AlexNet (Krizhevsky, Sutskever and Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012), in its two published forms.

- ``version="torchvision"`` (``alexnet``): torchvision's single tower, from Krizhevsky's "One weird
  trick" (2014): convolutions 64-192-384-256-256, an 11x11/4 stem padded by 2, no local response
  normalization, floor-mode 3x3/2 max pools. torchvision's ``AdaptiveAvgPool2d((6, 6))`` is the
  identity on the 6x6 map of a 224 input (any input of 223 to 226 pixels), the only size its
  weights take, and is left out: the classifier flattens the map the input gives, as
  keras.applications' VGG does.
- ``version="original"`` (``alexnet_original``): the 2012 network as Caffe's ``bvlc_alexnet``
  states it, on a 227 input: the two GPU towers as ``groups=2`` on conv2, conv4 and conv5
  (conv3 reads both towers), convolutions 96-256-384-384-256, an unpadded 11x11/4 stem, local
  response normalization after the ReLUs of conv1 and conv2, and Caffe's ceil-mode 3x3/2 max
  pools; 60,965,224 parameters.

Classifier: Flatten → fc1 (4096) → ReLU → fc2 (4096) → ReLU → predictions, with dropout 0.5 before
fc1 and fc2 (torchvision) or after fc1 and fc2 (Caffe). Flattening needs a fixed input size with
``include_top=True`` (keras.applications' rule); the first dense layer's rows are in NHWC order
here, and torchvision checkpoints are converted by permuting their NCHW rows
(:func:`~keras_lightnets.models.variant.nchw_flatten_rows`).
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_rate
from keras_lightnets.layers import LocalResponseNormalization, max_pool_ceil
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model
from keras_lightnets.models.variant import (
    Family,
    Preprocessing,
    Reference,
    Variant,
    nchw_flatten_rows,
    torchvision_source,
)

__all__ = ["LRN_SETTINGS", "TORCHVISION_KEY_MAP", "VERSIONS", "AlexNet"]

# conv1..conv5 as (filters, kernel, stride, padding on each side, groups); max pools follow conv1,
# conv2 and conv5, local response normalization (original only) conv1 and conv2, after the ReLU.
VERSIONS = {
    "torchvision": {
        "convs": ((64, 11, 4, 2, 1), (192, 5, 1, 2, 1), (384, 3, 1, 1, 1), (256, 3, 1, 1, 1), (256, 3, 1, 1, 1)),
        "lrn_after": (),
        "ceil_mode_pools": False,
        "dropout": "before_fc",
        # conv1: (n + 4 - 11) // 4 + 1 >= 15 keeps a 1x1 map after the third pool.
        "min_size": 63,
    },
    "original": {
        "convs": ((96, 11, 4, 0, 1), (256, 5, 1, 2, 2), (384, 3, 1, 1, 1), (384, 3, 1, 1, 2), (256, 3, 1, 1, 2)),
        "lrn_after": (1, 2),
        "ceil_mode_pools": True,
        "dropout": "after_fc",
        # conv1: (n - 11) // 4 + 1 >= 12 gives every ceil-mode pool a full first window.
        "min_size": 55,
    },
}
POOL_AFTER = (1, 2, 5)
HIDDEN = 4096
# Local response normalization (size, alpha, beta, k), alpha divided by size as in Caffe and
# PyTorch. Caffe's bvlc_alexnet (the default) uses k=1; the paper states k=2 and alpha=1e-4 not
# divided by the window (5e-4 here).
LRN_SETTINGS = {"caffe": (5, 1e-4, 0.75, 1.0), "paper": (5, 5e-4, 0.75, 2.0)}
DEFAULT_DROPOUT = 0.5


def _body(x, *, version, lrn):
    config = VERSIONS[version]
    tracker = FeatureTracker()
    for index, (filters, kernel, stride, padding, groups) in enumerate(config["convs"], start=1):
        name = f"conv{index}"
        if padding and (stride > 1 or padding != kernel // 2):
            x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
            conv_padding = "valid"
        else:
            conv_padding = "same" if padding else "valid"
        x = layers.Conv2D(filters, kernel, strides=stride, padding=conv_padding, groups=groups, name=name)(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        if index in config["lrn_after"]:
            size, alpha, beta, k = LRN_SETTINGS[lrn]
            x = LocalResponseNormalization(size, alpha=alpha, beta=beta, k=k, name=f"lrn{index}")(x)
        tracker.add(x, stride)
        if index in POOL_AFTER:
            pool = f"pool{POOL_AFTER.index(index) + 1}"
            if config["ceil_mode_pools"]:
                x = max_pool_ceil(x, 3, 2, name=pool)
            else:
                x = layers.MaxPooling2D(3, 2, name=pool)(x)
            tracker.add(x, 2)
    return x, tracker.maps


def _head(x, *, classes, classifier_activation, dropout, dropout_rate):
    """Flatten → [Dropout] → fc1 → ReLU → [Dropout] → fc2 → ReLU → [Dropout] → predictions."""
    x = layers.Flatten(name="flatten")(x)
    for index in (1, 2):
        if dropout == "before_fc" and dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"dropout{index}")(x)
        x = layers.Dense(HIDDEN, name=f"fc{index}")(x)
        x = layers.ReLU(name=f"fc{index}_relu")(x)
        if dropout == "after_fc" and dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name=f"dropout{index}")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


@family_constructor
def AlexNet(
    version="torchvision",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    lrn=None,
    dropout_rate=DEFAULT_DROPOUT,
    features_only=False,
    include_preprocessing=False,
):
    """AlexNet ``version`` ``"torchvision"`` (single tower, 224 input) or ``"original"`` (2012: two
    towers as grouped convolutions, local response normalization, 227 input).

    Args:
        version: ``"torchvision"`` or ``"original"``.
        lrn: the local response normalization of ``version="original"``: ``"caffe"`` (the default:
            Caffe's bvlc_alexnet, k=1) or ``"paper"`` (k=2, alpha 1e-4 per element); ``None``
            for torchvision's, which has none.
        dropout_rate: of the classifier's two dropout layers (0.5).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    ``include_top=True`` needs a fixed input size (the classifier flattens the last map): the
    published weights take 224 (torchvision); without weights any size from the variant's minimum
    (63 pixels torchvision, 55 original) builds, with a first dense layer sized to its map.
    """
    check_choice(version, "version", tuple(VERSIONS))
    if version == "original":
        lrn = "caffe" if lrn is None else lrn
        check_choice(lrn, "lrn", tuple(LRN_SETTINGS))
    elif lrn is not None:
        raise ValueError(
            f"`lrn` applies to version='original' only (torchvision's AlexNet has no local response "
            f"normalization), got lrn={lrn!r} with version={version!r}"
        )
    check_rate(dropout_rate, "dropout_rate")
    config = VERSIONS[version]
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, version=version, lrn=lrn),
        head=partial(_head, dropout=config["dropout"], dropout_rate=dropout_rate),
        default_name="alexnet" if version == "torchvision" else "alexnet_original",
        min_size=config["min_size"],
        fixed_size_for_top=True,
    )


# --- weight porting --------------------------------------------------------------------
# torchvision alexnet: features.{0, 3, 6, 8, 10} are the convolutions, classifier.{1, 4, 6} the
# dense layers (Dropout and ReLU in between). classifier.1 reads torch.flatten of the 256x6x6
# NCHW map: its rows are permuted into this model's NHWC order.
TORCHVISION_KEY_MAP = (
    (r"features\.0", "conv1"),
    (r"features\.3", "conv2"),
    (r"features\.6", "conv3"),
    (r"features\.8", "conv4"),
    (r"features\.10", "conv5"),
    (r"classifier\.1", "fc1", nchw_flatten_rows(256, 6, 6)),
    (r"classifier\.4", "fc2"),
    (r"classifier\.6", "predictions"),
)


FAMILY = Family(
    name="alexnet",
    constructor=AlexNet,
    architecture_args=("version", "lrn"),
    min_input_size=max(config["min_size"] for config in VERSIONS.values()),
    variants=(
        Variant(
            "alexnet",
            {"version": "torchvision"},
            Reference(61_100_840, 714.2, 56.522, "torchvision alexnet"),
            equals="torchvision:alexnet",
            key_map=TORCHVISION_KEY_MAP,
            weights=(torchvision_source("alexnet-owt-7be5be79.pth", 56.522),),
        ),
        Variant(
            "alexnet_original",
            {"version": "original", "lrn": "caffe"},
            Reference(60_965_224, 724.4, None, "Krizhevsky et al. 2012; Caffe bvlc_alexnet", input_size=(227, 227, 3)),
            # No installable reference: pinned to golden tensors (tests/golden).
            equals="golden",
            preprocessing=Preprocessing(input_size=(227, 227, 3)),
        ),
    ),
)
