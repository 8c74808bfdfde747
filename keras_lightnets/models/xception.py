"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017).

The paper's figure 5, as keras.applications builds it (blocks numbered as there):

- entry flow: ``block1``: two 3x3 "valid" convolutions (32 stride 2, 64), each → BN → ReLU;
  ``block2`` ... ``block4``: two separable convolutions (128, 256, 728), a 3x3/2 max pool, and
  a residual 1x1/2 convolution → BN added; every block but ``block2`` starts with a ReLU;
- middle flow: ``block5`` ... ``block12``: three ReLU → separable conv (728) → BN, identity added
  (``middle_blocks`` of them: 8);
- exit flow: ``block13``: ReLU → separable 728 → BN → ReLU → separable 1024 → BN, max pool,
  residual conv added; ``block14``: separable 1536 → BN → ReLU → separable 2048 → BN → ReLU.

A separable convolution is a 3x3 ``DepthwiseConv2D`` then a 1x1 ``Conv2D``, both without bias
(keras.applications' ``SeparableConv2D`` holds the same two kernels: its weights files load
into them, :mod:`keras_lightnets.weight_files.keras_h5`). Head: global average pool → dense.

Two layouts of the same network and weights (timm's ``legacy_xception`` is Cadene's port of
the Keras model), differing only where their libraries do:

- ``padding="same", bn_epsilon=1e-3``: keras.applications ``Xception``: TensorFlow's "same"
  max pools (at an even size the extra row is at the bottom: windows start at row 0);
- ``padding="symmetric", bn_epsilon=1e-5``: timm ``legacy_xception``: PyTorch's
  ``MaxPool2d(3, 2, padding=1)`` (windows centred on rows 0, 2, 4, ... like the residual
  convolution's samples). At odd sizes (299: every pooled map is odd) both pools are the same.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_int, check_positive, check_rate
from keras_lightnets.layers import conv_bn_act
from keras_lightnets.layers.pooling import max_pool_symmetric
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import (
    INCEPTION_MEAN,
    INCEPTION_STD,
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
)

__all__ = ["TIMM_KEY_MAP", "Xception"]

# block1: (filters, stride) of the two plain 3x3 "valid" convolutions.
STEM = ((32, 2), (64, 1))
# The residual blocks: (separable convolution widths, stride: 2 = max pool and residual conv,
# 1 = identity, starts with a ReLU). block2 ... block4:
ENTRY_FLOW = (
    ((128, 128), 2, False),
    ((256, 256), 2, True),
    ((728, 728), 2, True),
)
MIDDLE_BLOCK = ((728, 728, 728), 1, True)  # block5 ... block12: "repeated eight times"
MIDDLE_BLOCKS = 8
EXIT_BLOCK = ((728, 1024), 2, True)  # block13
# block14: separable convolution → BN → ReLU, twice.
EXIT = (1536, 2048)
BN_MOMENTUM = 0.99  # Keras's; PyTorch's 0.1 is 0.9 here, which only matters when training
PADDINGS = ("same", "symmetric")


def _separable(x, filters, *, relu_first, bn_epsilon, name):
    """[ReLU →] 3x3 depthwise → 1x1 pointwise → BN: ``{name}_act``, ``_dw``, ``_pw``, ``_bn``."""
    if relu_first:
        x = layers.ReLU(name=f"{name}_act")(x)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    return layers.BatchNormalization(epsilon=bn_epsilon, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def _block(x, widths, stride, relu_first, *, padding, bn_epsilon, name):
    """One residual block of the entry, middle or exit flow."""
    shortcut = x
    for index, filters in enumerate(widths):
        x = _separable(
            x, filters, relu_first=relu_first or index > 0, bn_epsilon=bn_epsilon, name=f"{name}_sepconv{index + 1}"
        )
    if stride == 1:
        return layers.Add(name=f"{name}_add")([x, shortcut])
    if padding == "same":
        x = layers.MaxPooling2D(3, stride, padding="same", name=f"{name}_pool")(x)
    else:
        x = max_pool_symmetric(x, 3, stride, name=f"{name}_pool")
    # A 1x1/2 convolution samples rows 0, 2, 4, ...: "valid" and both libraries' padding agree.
    shortcut = conv_bn_act(
        shortcut,
        widths[-1],
        1,
        stride,
        activation=None,
        padding="valid",
        bn_epsilon=bn_epsilon,
        bn_momentum=BN_MOMENTUM,
        name=f"{name}_shortcut",
    )
    return layers.Add(name=f"{name}_add")([x, shortcut])  # keras.applications' order: [x, residual]


def _body(x, *, middle_blocks, padding, bn_epsilon):
    tracker = FeatureTracker()
    norm = {"bn_epsilon": bn_epsilon, "bn_momentum": BN_MOMENTUM}
    for index, (filters, stride) in enumerate(STEM):
        x = conv_bn_act(x, filters, 3, stride, padding="valid", name=f"block1_conv{index + 1}", **norm)
        tracker.add(x, stride)
    blocks = (*ENTRY_FLOW, *(MIDDLE_BLOCK,) * middle_blocks, EXIT_BLOCK)
    for index, (widths, stride, relu_first) in enumerate(blocks):
        x = _block(x, widths, stride, relu_first, padding=padding, bn_epsilon=bn_epsilon, name=f"block{index + 2}")
        tracker.add(x, stride)
    for index, filters in enumerate(EXIT):
        name = f"block{len(blocks) + 2}_sepconv{index + 1}"
        x = _separable(x, filters, relu_first=False, bn_epsilon=bn_epsilon, name=name)
        x = layers.ReLU(name=f"{name}_act")(x)  # after the BN here (keras.applications' name)
    tracker.add(x)
    return x, tracker.maps


@family_constructor
def Xception(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    middle_blocks=MIDDLE_BLOCKS,
    padding="same",
    bn_epsilon=1e-3,
    dropout_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """Xception, 299x299 inputs scaled to [-1, 1] (``include_preprocessing=True``: pixels in [0, 1]).

    Args:
        middle_blocks: repeats of the middle flow's block (8; blocks are numbered on, the last
            is ``block{middle_blocks + 6}``).
        padding: of the four stride-2 max pools: ``"same"`` (keras.applications' TensorFlow rule)
            or ``"symmetric"`` (timm ``legacy_xception``, PyTorch's).
        bn_epsilon: 1e-3 (Keras) or 1e-5 (timm).
        dropout_rate: before the classifier (0 in both references).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_int(middle_blocks, "middle_blocks", 0)
    check_choice(padding, "padding", PADDINGS)
    check_positive(bn_epsilon, "bn_epsilon")
    check_rate(dropout_rate, "dropout_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, middle_blocks=middle_blocks, padding=padding, bn_epsilon=bn_epsilon),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="xception" if middle_blocks == MIDDLE_BLOCKS else f"xception_m{middle_blocks}",
        # two "valid" 3x3 convolutions, then four stride-2 stages: 71 pixels leave a 1x1 map
        min_size=71,
    )


# --- weight porting --------------------------------------------------------------------
# timm legacy_xception: conv1/bn1, conv2/bn2, block{1..12} (ours block2 ... block13) with
# rep.{i} = [ReLU,] SeparableConv2d(conv1: depthwise, pointwise), BatchNorm2d, ... and
# skip/skipbn, then conv3/bn3, conv4/bn4 (block14) and fc. In rep, a block's k-th separable
# convolution and BN sit at 3k - 2 and 3k - 1 (3k - 3, 3k - 2 in block1, which has no first ReLU).
def _rep_index(m):
    """``block{b}.rep.{i}`` → our ``block{b + 1}_sepconv{k}``."""
    k = (int(m[2]) + (m[1] == "1")) // 3 + 1
    return f"block{int(m[1]) + 1}_sepconv{k}"


TIMM_KEY_MAP = (
    (r"conv([12])", r"block1_conv\1_conv"),
    (r"bn([12])", r"block1_conv\1_bn"),
    (r"block(\d+)\.rep\.(\d+)\.conv1", lambda m: f"{_rep_index(m)}_dw"),
    (r"block(\d+)\.rep\.(\d+)\.pointwise", lambda m: f"{_rep_index(m)}_pw"),
    (r"block(\d+)\.rep\.(\d+)", lambda m: f"{_rep_index(m)}_bn"),
    (r"block(\d+)\.skip", lambda m: f"block{int(m[1]) + 1}_shortcut_conv"),
    (r"block(\d+)\.skipbn", lambda m: f"block{int(m[1]) + 1}_shortcut_bn"),
    (r"conv([34])\.conv1", lambda m: f"block14_sepconv{int(m[1]) - 2}_dw"),
    (r"conv([34])\.pointwise", lambda m: f"block14_sepconv{int(m[1]) - 2}_pw"),
    (r"bn([34])", lambda m: f"block14_sepconv{int(m[1]) - 2}_bn"),
    (r"fc", "predictions"),
)

# keras.applications evaluates Xception at 299 with Inception's [-1, 1] scaling (its
# documentation: 79.0 top-1); timm's port of the same weights at 299, crop 0.8975 (333 → 299),
# bicubic: 79.058.
XCEPTION_PREPROCESSING = Preprocessing(input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD)
TIMM_PREPROCESSING = Preprocessing(
    input_size=(299, 299, 3), mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=0.8975, interpolation="bicubic"
)
PARAMS = 22_855_952  # keras.applications Xception's trainable parameters; timm legacy_xception's too
MACS_M = 8_357.4  # measured by kl.profile at 299 (timm states 8.40 GMACs)
KERAS_WEIGHTS = keras_source(
    "xception/xception_weights_tf_dim_ordering_tf_kernels.h5", 79.0, "0a58e3b7378bc2990ea3b43d5981f1f6"
)
TIMM_WEIGHTS = timm_source("legacy_xception.tf_in1k", 79.058, "Apache-2.0 (timm)", TIMM_PREPROCESSING)

FAMILY = Family(
    name="xception",
    constructor=Xception,
    architecture_args=("middle_blocks", "padding", "bn_epsilon"),
    preprocessing=XCEPTION_PREPROCESSING,
    min_input_size=71,
    variants=(
        Variant(
            "xception",
            {},
            Reference(PARAMS, MACS_M, 79.0, "keras.applications Xception", input_size=(299, 299, 3)),
            equals="keras:Xception",
            # timm's checkpoint is the same network in PyTorch's layout: it loads by key
            layouts={"timm": TIMM_KEY_MAP},
            weights=(KERAS_WEIGHTS,),
        ),
        Variant(
            "legacy_xception",
            {"padding": "symmetric", "bn_epsilon": 1e-5},
            Reference(PARAMS, MACS_M, 79.058, "timm legacy_xception", input_size=(299, 299, 3)),
            equals="timm:legacy_xception",
            key_map=TIMM_KEY_MAP,
            # keras.applications' file holds the same weighted layers in the same order
            layouts={"keras": None},
            weights=(TIMM_WEIGHTS,),
        ),
    ),
)
