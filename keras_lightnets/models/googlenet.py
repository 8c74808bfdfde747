"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

The paper's Table 1: a stem (7x7/2 conv, 3x3/2 max pool, 1x1 and 3x3 convs, 3x3/2 max pool), nine
Inception modules in three stages separated by 3x3/2 max pools, global average pooling, dropout
and one fully connected layer. An Inception module concatenates four branches: a 1x1 conv, a 1x1
reduction then a 3x3 conv, a 1x1 reduction then a 5x5 conv, and a 3x3/1 max pool then a 1x1
projection (``INCEPTION`` below). Two auxiliary classifiers, on inception 4a and 4d, add their
losses with weight 0.3 during training and are discarded at inference.

Two layouts of that table:

- ``version="torchvision"`` (``googlenet``): torchvision's, whose ImageNet weights were ported
  from the original model: every convolution is conv (no bias) → BatchNorm (epsilon 1e-3) →
  ReLU, no local response normalization, the "5x5" branch uses a **3x3** kernel (a known
  deviation, pytorch/vision#906, kept by every torchvision release since the weights depend on
  it), max pools in PyTorch's ceil mode, a **2x2**/2 pool before inception 5a, dropout 0.2. Its
  auxiliary classifiers pool to 4x4 with an adaptive average pool (any input size).
- ``version="paper"`` (``googlenet_original``): Table 1 as the Caffe model ``bvlc_googlenet``
  defines it: convolutions with biases and no BatchNorm, a 5x5 third branch, local response
  normalization (size 5, alpha 1e-4, beta 0.75) after the first pool and after conv3, 3x3/2
  ceil-mode max pools throughout, dropout 0.4; auxiliary classifiers with a 5x5/3 average pool
  (a 4x4 map at 224 input), so with ``aux_logits=True`` their size follows the input.

torchvision's ``transform_input``: its pretrained model takes ImageNet-normalized inputs and turns
them back into the original network's ``(pixel - 0.5) / 0.5`` inside (``transform_input=True`` is
set when weights are loaded). This package's model never transforms its input (as torchvision's
``transform_input=False``); instead the ``googlenet`` variant states the Inception preprocessing
(mean 0.5, std 0.5) that the ported weights need, so the input pipeline and
``include_preprocessing=True`` do what ``transform_input`` did.

Auxiliary classifiers: ``aux_logits=True`` builds the model with three outputs, ``[main, aux1,
aux2]`` (layers ``predictions``, ``aux1_predictions``, ``aux2_predictions``), sharing every layer
with the inference model. :func:`keras_lightnets.training.fit` trains such a model with loss
weights ``[1, 0.3, 0.3]`` and saves its final model without them;
:func:`keras_lightnets.models.describe.without_auxiliary_outputs` drops them (the deploy and
evaluation code do so themselves).
"""

import os
from functools import partial

import keras
from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_rate
from keras_lightnets.files import KERAS_WEIGHTS_SUFFIXES
from keras_lightnets.layers import LocalResponseNormalization, conv_bn_act, max_pool_ceil
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import (
    FeatureTracker,
    build_model,
    dense_head,
)
from keras_lightnets.models.variant import (
    INCEPTION_PREPROCESSING,
    Family,
    Reference,
    Variant,
    nchw_flatten_rows,
    torchvision_source,
)

__all__ = ["TORCH_KEY_MAP", "TORCH_KEY_MAP_WITH_AUX", "GoogLeNet"]

# Inception modules (Table 1): #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
STAGES = (("3a", "3b"), ("4a", "4b", "4c", "4d", "4e"), ("5a", "5b"))
# The modules the auxiliary classifiers read.
AUX_TAPS = ("4a", "4d")
AUX_WIDTH = 128  # the auxiliary classifier's 1x1 convolution
AUX_HIDDEN = 1024  # its first fully connected layer
AUX_POOLED = 4  # it pools to a 4x4 map
PAPER_AUX_POOL = 5  # the paper's 5x5/3 average pool (4x4 out of inception 4a's 14x14 at 224 input)
PAPER_AUX_MIN_INPUT = 79  # the smallest input that leaves inception 4a a 5x5 map
VERSIONS = ("torchvision", "paper")
VERSION_OPTIONS = {
    "torchvision": {
        "use_bn": True,
        "use_bias": False,
        "branch3_kernel": 3,  # pytorch/vision#906
        "lrn": False,
        "pool4": 2,
        "dropout_rate": 0.2,
        "kernel_initializer": "glorot_uniform",
    },
    "paper": {
        "use_bn": False,
        "use_bias": True,
        "branch3_kernel": 5,
        "lrn": True,
        "pool4": 3,
        "dropout_rate": 0.4,
        # Caffe's "xavier" filler (bvlc_googlenet's): uniform with variance 1 / fan_in.
        "kernel_initializer": "lecun_uniform",
    },
}
BN_EPSILON = 1e-3  # torchvision's BasicConv2d
AUX_DROPOUT = 0.7
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}


def _conv(x, filters, kernel_size, strides=1, *, options, name):
    return conv_bn_act(
        x,
        filters,
        kernel_size,
        strides,
        use_bias=options["use_bias"],
        use_bn=options["use_bn"],
        bn_epsilon=BN_EPSILON,
        padding="symmetric",
        kernel_initializer=options["kernel_initializer"],
        name=name,
    )


def inception_module(x, filters, *, options, name):
    """Four branches concatenated: 1x1 | 1x1 → 3x3 | 1x1 → 5x5 (3x3 in torchvision) | 3x3/1 max pool → 1x1."""
    ch1x1, ch3x3_reduce, ch3x3, ch5x5_reduce, ch5x5, pool_proj = filters
    conv = partial(_conv, options=options)
    branch1 = conv(x, ch1x1, 1, name=f"{name}_1x1")
    branch2 = conv(conv(x, ch3x3_reduce, 1, name=f"{name}_3x3_reduce"), ch3x3, 3, name=f"{name}_3x3")
    branch3 = conv(x, ch5x5_reduce, 1, name=f"{name}_5x5_reduce")
    branch3 = conv(branch3, ch5x5, options["branch3_kernel"], name=f"{name}_5x5")
    # PyTorch pads this pool with -inf, TensorFlow's "same" ignores the padding: the same windows.
    branch4 = layers.MaxPooling2D(3, 1, padding="same", name=f"{name}_pool")(x)
    branch4 = conv(branch4, pool_proj, 1, name=f"{name}_pool_proj")
    return layers.Concatenate(name=name)([branch1, branch2, branch3, branch4])


def _body(x, *, version):
    options = VERSION_OPTIONS[version]
    tracker = FeatureTracker()
    x = tracker.add(_conv(x, 64, 7, 2, options=options, name="conv1"), 2)
    x = tracker.add(max_pool_ceil(x, 3, 2, name="pool1"), 2)
    if options["lrn"]:
        x = LocalResponseNormalization(**LRN, name="norm1")(x)
    x = _conv(x, 64, 1, options=options, name="conv2")
    x = tracker.add(_conv(x, 192, 3, options=options, name="conv3"))
    if options["lrn"]:
        x = LocalResponseNormalization(**LRN, name="norm2")(x)
    x = tracker.add(max_pool_ceil(x, 3, 2, name="pool2"), 2)
    for index, stage in enumerate(STAGES):
        for module in stage:
            x = tracker.add(inception_module(x, INCEPTION[module], options=options, name=f"inception{module}"))
        if index == 0:
            x = tracker.add(max_pool_ceil(x, 3, 2, name="pool3"), 2)
        elif index == 1:
            x = tracker.add(max_pool_ceil(x, options["pool4"], 2, name="pool4"), 2)
    return x, tracker.maps


def auxiliary_classifier(x, *, classes, classifier_activation, version, dropout_rate, name):
    """Pool to 4x4 → 1x1 conv (128) → flatten → FC 1024 + ReLU → dropout → FC ``classes``.

    torchvision pools adaptively to 4x4 (any input size); the paper with a 5x5/3 average pool
    (4x4 at 224 input). The NHWC map is flattened in (height, width, channels) order: torchvision's
    ``fc1`` rows are permuted on load (``nchw_flatten_rows``), as AlexNet's and VGG's are.
    """
    options = VERSION_OPTIONS[version]
    if version == "torchvision":
        x = layers.AdaptiveAveragePooling2D(AUX_POOLED, name=f"{name}_pool")(x)
    else:
        x = layers.AveragePooling2D(PAPER_AUX_POOL, 3, name=f"{name}_pool")(x)
    x = _conv(x, AUX_WIDTH, 1, options=options, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(AUX_HIDDEN, activation="relu", name=f"{name}_fc1")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_predictions")(x)


def _is_weights_file(weights):
    return isinstance(weights, str | os.PathLike) and os.fspath(weights).endswith(KERAS_WEIGHTS_SUFFIXES)


def _with_auxiliary_classifiers(model, *, classes, classifier_activation, version, dropout_rate):
    """``model`` (the inference classifier) with the two auxiliary classifiers as extra outputs."""
    heads = [
        auxiliary_classifier(
            model.get_layer(f"inception{module}").output,
            classes=classes,
            classifier_activation=classifier_activation,
            version=version,
            dropout_rate=dropout_rate,
            name=f"aux{index}",
        )
        for index, module in enumerate(AUX_TAPS, start=1)
    ]
    return keras.Model(model.input, [model.outputs[0], *heads], name=model.name)


@family_constructor
def GoogLeNet(
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
    aux_logits=False,
    dropout_rate=None,
    aux_dropout_rate=AUX_DROPOUT,
    features_only=False,
    include_preprocessing=False,
):
    """GoogLeNet (Inception v1), ``version`` ``"torchvision"`` (BN, 3x3 third branch) or ``"paper"``.

    Args:
        version: ``"torchvision"`` (torchvision's ``googlenet``: conv-BN-ReLU units, a 3x3 kernel
            in the "5x5" branch, a 2x2 pool before inception 5a) or ``"paper"`` (Table 1 and
            Caffe's ``bvlc_googlenet``: biased convolutions, 5x5, local response normalization).
        aux_logits: add the two auxiliary classifiers (on inception 4a and 4d) as the second and
            third outputs, for training (:func:`keras_lightnets.training.fit` weighs their losses
            0.3); needs ``include_top=True`` and, since they flatten a 4x4 map, a static input
            size. Published weights load into the network; the auxiliary classifiers start new
            (torchvision does not publish trained ones either).
        dropout_rate: before the classifier; default 0.2 (torchvision) or 0.4 (paper).
        aux_dropout_rate: in the auxiliary classifiers (0.7).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(version, "version", VERSIONS)
    check_bool(aux_logits, "aux_logits")
    if dropout_rate is None:
        dropout_rate = VERSION_OPTIONS[version]["dropout_rate"]
    check_rate(dropout_rate, "dropout_rate")
    check_rate(aux_dropout_rate, "aux_dropout_rate")
    if aux_logits and (not include_top or features_only):
        raise ValueError(
            "`aux_logits=True` adds classifiers, so it needs include_top=True and features_only=False; got "
            f"include_top={include_top!r}, features_only={features_only!r}"
        )
    # A weights file saved from a model with the auxiliary classifiers holds their weights too:
    # it is loaded after they are added (below), not into the inference model by the scaffold.
    file_for_aux = aux_logits and _is_weights_file(weights)
    model = build_model(
        FAMILY,
        {**locals(), "weights": None if file_for_aux else weights},
        body=partial(_body, version=version),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name="googlenet" if version == "torchvision" else "googlenet_original",
        static="the auxiliary classifiers flatten a pooled map" if aux_logits else False,
    )
    if not aux_logits:
        return model
    tapped = model.get_layer(f"inception{AUX_TAPS[0]}").output.shape[1:3]
    if version == "paper" and min(tapped) < PAPER_AUX_POOL:
        raise ValueError(
            f"`aux_logits=True` with version='paper': the auxiliary classifiers' {PAPER_AUX_POOL}x{PAPER_AUX_POOL} "
            f"average pool needs inception 4a's map to be at least {PAPER_AUX_POOL}x{PAPER_AUX_POOL}, which takes an "
            f"input of at least {PAPER_AUX_MIN_INPUT} pixels; got a {tapped[0]}x{tapped[1]} map from input "
            f"{tuple(model.input_shape[1:])}"
        )
    inference = model
    model = _with_auxiliary_classifiers(
        inference,
        classes=classes,
        classifier_activation=classifier_activation,
        version=version,
        dropout_rate=aux_dropout_rate,
    )
    if file_for_aux:
        try:
            model.load_weights(weights)  # saved with the auxiliary classifiers
        except ValueError:
            inference.load_weights(weights)  # saved without them: they stay new
    return model


# --- weight porting --------------------------------------------------------------------
# torchvision googlenet: conv1..3.{conv,bn}, inception{3a..5b}.branch1.{conv,bn},
# branch2.{0,1}, branch3.{0,1}, branch4.1 (branch4.0 is the max pool), aux{1,2}.conv.{conv,bn},
# aux{1,2}.fc1, aux{1,2}.fc2, fc.
_BRANCHES = {
    "branch1": "1x1",
    "branch2.0": "3x3_reduce",
    "branch2.1": "3x3",
    "branch3.0": "5x5_reduce",
    "branch3.1": "5x5",
    "branch4.1": "pool_proj",
}
_MODULE_RULES = (
    (r"conv([123])\.(conv|bn)", r"conv\1_\2"),
    (
        r"inception(\d[a-e])\.(branch1|branch2\.[01]|branch3\.[01]|branch4\.1)\.(conv|bn)",
        lambda m: f"inception{m[1]}_{_BRANCHES[m[2]]}_{m[3]}",
    ),
    (r"fc", "predictions"),
)
# torchvision's file (and its googlenet(), aux_logits=True by default) holds auxiliary classifiers
# that it says are not trained ("make sure to train them"): the inference model skips them.
TORCH_KEY_MAP = (*_MODULE_RULES, (r"aux[12]\..*", None))
# Into a model built with aux_logits=True, for comparing them with torchvision's.
TORCH_KEY_MAP_WITH_AUX = (
    *_MODULE_RULES,
    (r"aux([12])\.conv\.(conv|bn)", r"aux\1_conv_\2"),
    (r"aux([12])\.fc1", r"aux\1_fc1", nchw_flatten_rows(AUX_WIDTH, AUX_POOLED, AUX_POOLED)),
    (r"aux([12])\.fc2", r"aux\1_predictions"),
)


FAMILY = Family(
    name="googlenet",
    constructor=GoogLeNet,
    architecture_args=("version",),
    # torchvision's ported weights take the original network's [-1, 1] inputs (its transform_input).
    preprocessing=INCEPTION_PREPROCESSING,
    variants=(
        Variant(
            "googlenet",
            {"version": "torchvision"},
            Reference(6_624_904, 1498.4, 69.778, "torchvision googlenet (without its auxiliary classifiers)"),
            equals="torchvision:googlenet",
            key_map=TORCH_KEY_MAP,
            weights=(torchvision_source("googlenet-1378be20.pth", 69.778),),
        ),
        Variant(
            "googlenet_original",
            {"version": "paper"},
            Reference(6_998_552, 1582.7, None, "GoogLeNet paper, Table 1 (Caffe bvlc_googlenet), without aux"),
            equals="golden",
        ),
    ),
)
