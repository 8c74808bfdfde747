"""DenseNet (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017), DenseNet-BC.

Stem: 7x7/2 conv → BN → ReLU → 3x3/2 max pool. Four dense blocks; a dense layer is the
pre-activation unit BN → ReLU → 1x1 conv (``bn_size * k`` channels) → BN → ReLU → 3x3 conv
(``k``, the growth rate), and its output is concatenated to its input, so a block of ``n``
layers adds ``n * k`` channels. Between blocks a transition BN → ReLU → 1x1 conv (half the
channels) → 2x2/2 average pool. Head: BN → ReLU → global average pool → fully connected.

| model | k | initial channels | layers per block | params |
|---|---|---|---|---|
| DenseNet-121 | 32 | 64 | 6, 12, 24, 16 | 7,978,856 |
| DenseNet-161 | 48 | 96 | 6, 12, 36, 24 | 28,681,000 |
| DenseNet-169 | 32 | 64 | 6, 12, 32, 32 | 14,149,480 |
| DenseNet-201 | 32 | 64 | 6, 12, 48, 32 | 20,013,928 |

References: torchvision ``densenet121/161/169/201`` (BatchNorm epsilon 1e-5, the registered
``densenet*``) and keras.applications ``DenseNet121/169/201`` (the same network with epsilon
1.001e-5: ``densenet*_keras``, which load keras.applications' files). The epsilon is the only
difference, so it is an architecture argument, ``bn_epsilon``. Padding: PyTorch's symmetric
``k // 2`` (keras.applications pads the stem explicitly and uses "same" on the stride-1 3x3s:
the same windows).

torchvision's published checkpoints predate PyTorch's ban on dots in module names: their dense
layers' keys read ``denselayer1.norm.1.weight`` where the model has ``norm1``; torchvision renames
them with a regular expression on load. The key map here takes both spellings.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_int, check_number, check_rate
from keras_lightnets.layers import bn_act_conv, conv_bn_act
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Reference, Variant, keras_source, torchvision_source

__all__ = ["KERAS_BN_EPSILON", "TORCH_KEY_MAP", "DenseNet"]

# depth → (growth rate k, initial channels, layers per dense block)
LAYOUTS = {
    121: (32, 64, (6, 12, 24, 16)),
    161: (48, 96, (6, 12, 36, 24)),
    169: (32, 64, (6, 12, 32, 32)),
    201: (32, 64, (6, 12, 48, 32)),
}
BN_SIZE = 4  # the bottleneck: bn_size * k channels
TORCH_BN_EPSILON = 1e-5
KERAS_BN_EPSILON = 1.001e-5
# Guards against a typo building a model that cannot fit in memory (DenseNet-264 has 64 layers
# in a block and k <= 48 in the papers).
MAX_LAYERS_PER_BLOCK = 128
MAX_GROWTH_RATE = 256
MAX_BLOCKS = 6


def _check_blocks(blocks):
    if isinstance(blocks, str | bytes) or not isinstance(blocks, tuple | list) or not blocks:
        raise TypeError(f"`blocks` must be a non-empty list or tuple of layers per dense block, got {blocks!r}")
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"`blocks` may have 1 to {MAX_BLOCKS} dense blocks, got {len(blocks)}: {blocks!r}")
    for index, layers_in_block in enumerate(blocks):
        check_number(layers_in_block, f"blocks[{index}]", minimum=1, maximum=MAX_LAYERS_PER_BLOCK, integer=True)
    return tuple(blocks)


def _body(x, *, blocks, growth_rate, init_features, bn_size, bn_epsilon, drop_rate):
    norm = {"bn_epsilon": bn_epsilon, "padding": "symmetric"}
    tracker = FeatureTracker()
    x = tracker.add(conv_bn_act(x, init_features, 7, 2, name="stem", **norm), 2)
    # Zero padding equals PyTorch's -inf padding here: the pool follows a ReLU (values >= 0).
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = tracker.add(layers.MaxPooling2D(3, 2, name="stem_pool")(x), 2)
    for i, count in enumerate(blocks, start=1):
        for j in range(1, count + 1):
            prefix = f"dense{i}_layer{j}"
            y = bn_act_conv(x, bn_size * growth_rate, 1, name=f"{prefix}_1", **norm)
            y = bn_act_conv(y, growth_rate, 3, name=f"{prefix}_2", **norm)
            if drop_rate > 0:
                y = layers.Dropout(drop_rate, name=f"{prefix}_dropout")(y)
            x = layers.Concatenate(name=f"{prefix}_concat")([x, y])
        if i < len(blocks):
            tracker.add(x)
            x = bn_act_conv(x, x.shape[-1] // 2, 1, name=f"transition{i}", **norm)
            x = tracker.add(layers.AveragePooling2D(2, 2, name=f"transition{i}_pool")(x), 2)
    x = layers.BatchNormalization(epsilon=bn_epsilon, momentum=0.9, name="final_bn")(x)
    x = tracker.add(layers.Activation("relu", name="final_act")(x))
    return x, tracker.maps


@family_constructor
def DenseNet(
    depth=121,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    blocks=None,
    growth_rate=None,
    init_features=None,
    bn_size=BN_SIZE,
    bn_epsilon=TORCH_BN_EPSILON,
    drop_rate=0.0,
    dropout_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """DenseNet-``depth`` (121, 161, 169, 201), or any DenseNet-BC through ``blocks`` / ``growth_rate``.

    Args:
        depth: the published layout (growth rate, initial channels, layers per block) that
            ``blocks``, ``growth_rate`` and ``init_features`` default to.
        blocks: layers per dense block (1 to 6 blocks of 1 to 128 layers).
        growth_rate: ``k``, the channels each dense layer adds (1 to 256).
        init_features: the stem's channels (``2k`` in the paper; 96 for DenseNet-161).
        bn_size: the bottleneck's width in units of ``k`` (4).
        bn_epsilon: 1e-5 (torchvision, PyTorch's default) or 1.001e-5 (keras.applications).
        drop_rate: dropout after each dense layer (torchvision's ``drop_rate``, 0).
        dropout_rate: before the classifier (0 in torchvision and Keras).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_number(depth, "depth", integer=True)
    if depth not in LAYOUTS:
        raise ValueError(f"`depth` must be one of {tuple(LAYOUTS)}, got {depth!r}")
    default_growth, default_init, default_blocks = LAYOUTS[depth]
    blocks = _check_blocks(default_blocks if blocks is None else blocks)
    growth_rate = default_growth if growth_rate is None else growth_rate
    check_number(growth_rate, "growth_rate", minimum=1, maximum=MAX_GROWTH_RATE, integer=True)
    init_features = default_init if init_features is None else init_features
    check_number(init_features, "init_features", minimum=1, maximum=4 * MAX_GROWTH_RATE, integer=True)
    check_int(bn_size, "bn_size", 1)
    check_number(bn_epsilon, "bn_epsilon", minimum=0, exclusive_minimum=True)
    check_rate(drop_rate, "drop_rate")
    check_rate(dropout_rate, "dropout_rate")
    # A published layout is recorded as its depth alone (what the variants state), any other one
    # with every number, so that the model card rebuilds it.
    published = next((d for d, row in LAYOUTS.items() if row == (growth_rate, init_features, blocks)), None)
    layout = {"depth": published, "blocks": None, "growth_rate": None, "init_features": None}
    if published is None:
        layout = {"depth": depth, "blocks": blocks, "growth_rate": growth_rate, "init_features": init_features}
    default_name = f"densenet{published}" if published and bn_size == BN_SIZE else "densenet_custom"
    if default_name != "densenet_custom" and bn_epsilon == KERAS_BN_EPSILON:
        default_name += "_keras"
    return build_model(
        FAMILY,
        {**locals(), **layout},
        body=partial(
            _body,
            blocks=blocks,
            growth_rate=growth_rate,
            init_features=init_features,
            bn_size=bn_size,
            bn_epsilon=bn_epsilon,
            drop_rate=drop_rate,
        ),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=default_name,
        # The stem and each transition halve the size: 2 ** (blocks + 1) pixels leave a 1x1 map.
        min_size=2 ** (len(blocks) + 1),
    )


# --- weight porting --------------------------------------------------------------------
# torchvision densenet*: features.{conv0, norm0}, features.denseblock{i}.denselayer{j}.{norm1,
# conv1, norm2, conv2} (``norm.1``, ``conv.1``, ... in the published files), features.transition{i}.
# {norm, conv}, features.norm5, classifier.
TORCH_KEY_MAP = (
    (r"features\.conv0", "stem_conv"),
    (r"features\.norm0", "stem_bn"),
    (
        r"features\.denseblock(\d)\.denselayer(\d+)\.(norm|conv)\.?([12])",
        lambda m: f"dense{m[1]}_layer{m[2]}_{m[4]}_{'bn' if m[3] == 'norm' else 'conv'}",
    ),
    (r"features\.transition(\d)\.norm", r"transition\1_bn"),
    (r"features\.transition(\d)\.conv", r"transition\1_conv"),
    (r"features\.norm5", "final_bn"),
    (r"classifier", "predictions"),
)

# torchvision's IMAGENET1K_V1 files (evaluated at 256 -> 224 bilinear).
TORCHVISION_WEIGHTS = {
    121: ("densenet121-a639ec97.pth", 74.434),
    161: ("densenet161-8d451a50.pth", 77.138),
    169: ("densenet169-b2777c0a.pth", 75.600),
    201: ("densenet201-c1103571.pth", 76.896),
}
# keras.applications' files ("torch" preprocessing: ImageNet mean and std on [0, 1]): (file, MD5
# from its source, top-1 from its documentation).
KERAS_WEIGHTS = {
    121: ("densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5", "9d60b8095a5708f2dcce2bca79d332c7", 75.0),
    169: ("densenet/densenet169_weights_tf_dim_ordering_tf_kernels.h5", "d699b8f76981ab1b30698df4c175e90b", 76.2),
    201: ("densenet/densenet201_weights_tf_dim_ordering_tf_kernels.h5", "1ceb130c1ea1b78c3bf6114dbdfd8807", 77.3),
}
PARAMS = {121: 7_978_856, 161: 28_681_000, 169: 14_149_480, 201: 20_013_928}
MACS_M = {121: 2834.2, 161: 7727.9, 169: 3359.8, 201: 4291.4}
# Compared with their references in the suite: DenseNet-121 (torchvision, and keras.applications
# through densenet121_keras) and DenseNet-161 (another growth rate and stem). 169 and 201 run the
# same code with more layers; their parameters and MACs are checked exactly.
COMPARED = ("densenet121", "densenet161", "densenet121_keras")


def _torchvision_variant(depth):
    name = f"densenet{depth}"
    return Variant(
        name,
        {"depth": depth},
        Reference(PARAMS[depth], MACS_M[depth], TORCHVISION_WEIGHTS[depth][1], f"torchvision {name}"),
        equals=f"torchvision:{name}",
        key_map=TORCH_KEY_MAP,
        weights=(torchvision_source(*TORCHVISION_WEIGHTS[depth]),),
        compared=name in COMPARED,
    )


def _keras_variant(depth):
    name = f"densenet{depth}_keras"
    path, md5, top1 = KERAS_WEIGHTS[depth]
    return Variant(
        name,
        {"depth": depth, "bn_epsilon": KERAS_BN_EPSILON},
        Reference(
            PARAMS[depth],
            MACS_M[depth],
            None,
            f"keras.applications DenseNet{depth} (torchvision's figures, same network)",
        ),
        equals=f"keras:DenseNet{depth}",
        weights=(keras_source(path, top1, md5),),
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="densenet",
    constructor=DenseNet,
    architecture_args=("depth", "blocks", "growth_rate", "init_features", "bn_size", "bn_epsilon"),
    variants=(
        *(_torchvision_variant(depth) for depth in (121, 161, 169, 201)),
        *(_keras_variant(depth) for depth in (121, 169, 201)),
    ),
)
