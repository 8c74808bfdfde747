"""ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) and ResNeXt
(Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017).

Two layouts of the same network:

- ``version="1.5"``: torchvision's and timm's (``resnet18`` ... ``resnet152``,
  ``resnext*``): the stride of a bottleneck's first block sits on the 3x3 convolution,
  convolutions have no bias, BatchNorm epsilon 1e-5, PyTorch's symmetric padding.
- ``version="1"``: keras.applications' ``ResNet50/101/152`` (the original paper's block): the
  stride sits on the first 1x1 convolution, every convolution has a bias, BatchNorm epsilon
  1.001e-5 and momentum 0.99.

Stem: 7x7/2 conv (64) → BN → ReLU → 3x3/2 max pool. Four stages of ``(64, 128, 256, 512)``
"planes", strides ``(1, 2, 2, 2)``; a basic block outputs ``planes`` channels, a bottleneck
``4 * planes`` with an inner width of ``int(planes * width_per_group / 64) * groups``
(ResNeXt: ``groups`` is the cardinality, one grouped ``Conv2D``). Head: global average pool →
fully connected.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_int, check_rate
from keras_lightnets.layers import conv_bn_act, residual_block
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import (
    Family,
    Preprocessing,
    Reference,
    Variant,
    keras_source,
    timm_source,
    torchvision_source,
)

__all__ = ["TORCH_KEY_MAP", "ResNet"]

# depth → (block kind, blocks per stage)
LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
PLANES = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
STEM_WIDTH = 64
EXPANSION = 4  # bottleneck output = 4 * planes
VERSIONS = ("1.5", "1")
# What differs between the layouts, block by block.
VERSION_OPTIONS = {
    "1.5": {"stride_on": "3x3", "use_bias": False, "bn_epsilon": 1e-5, "bn_momentum": 0.9},
    "1": {"stride_on": "1x1", "use_bias": True, "bn_epsilon": 1.001e-5, "bn_momentum": 0.99},
}


def _body(x, *, depth, groups, width_per_group, version, activation, drop_path_rate):
    kind, repeats = LAYOUTS[depth]
    options = VERSION_OPTIONS[version]
    norm = {"bn_epsilon": options["bn_epsilon"], "bn_momentum": options["bn_momentum"]}
    tracker = FeatureTracker()
    x = conv_bn_act(
        x,
        STEM_WIDTH,
        7,
        2,
        activation=activation,
        use_bias=options["use_bias"],
        padding="symmetric",
        name="stem",
        **norm,
    )
    tracker.add(x, 2)
    # Zero padding equals PyTorch's -inf padding here: the pool follows a ReLU (values >= 0).
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = layers.MaxPooling2D(3, 2, name="stem_pool")(x)
    tracker.add(x, 2)
    total = sum(repeats)
    index = 0
    for i, (planes, blocks, stage_stride) in enumerate(zip(PLANES, repeats, STAGE_STRIDES, strict=True)):
        for j in range(blocks):
            stride = stage_stride if j == 0 else 1
            if kind == "basic":
                block = {"kind": "basic", "filters": planes}
            else:
                block = {
                    "kind": "bottleneck",
                    "filters": planes * EXPANSION,
                    "bottleneck_width": int(planes * width_per_group / 64) * groups,
                    "groups": groups,
                    "stride_on": options["stride_on"],
                }
            x = residual_block(
                x,
                strides=stride,
                use_bias=options["use_bias"],
                activation=activation,
                drop_path_rate=drop_path_rate * index / max(1, total - 1),
                padding="symmetric",
                name=f"s{i + 1}_b{j + 1}",
                **norm,
                **block,
            )
            tracker.add(x, stride)
            index += 1
    return x, tracker.maps


@family_constructor
def ResNet(
    depth=50,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    groups=1,
    width_per_group=64,
    version="1.5",
    dropout_rate=0.0,
    drop_path_rate=0.0,
    activation="relu",
    features_only=False,
    include_preprocessing=False,
):
    """ResNet-``depth`` (18, 34, 50, 101, 152); with ``groups`` > 1 a ResNeXt.

    Args:
        depth: 18 or 34 (basic blocks), 50, 101 or 152 (bottlenecks).
        groups: cardinality of the bottleneck's 3x3 convolution (ResNeXt-50 32x4d: 32).
        width_per_group: channels per group at the first stage (ResNeXt 32x4d: 4; ResNet: 64).
            The bottleneck width of a stage is ``int(planes * width_per_group / 64) * groups``.
        version: ``"1.5"`` (torchvision / timm layout) or ``"1"`` (keras.applications'
            ResNet50/101/152: stride on the first 1x1, biased convolutions).
        dropout_rate: before the classifier (0 in torchvision and Keras).
        drop_path_rate: stochastic depth, rising linearly over the blocks (timm).
        activation: of every unit and after every sum (ReLU).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(depth, "depth", tuple(LAYOUTS))
    check_int(groups, "groups", 1)
    check_int(width_per_group, "width_per_group", 1)
    check_choice(version, "version", VERSIONS)
    kind = LAYOUTS[depth][0]
    if kind == "basic" and (groups != 1 or width_per_group != 64):
        raise ValueError(
            f"`groups` and `width_per_group` apply to bottleneck ResNets (depth 50, 101, 152); ResNet-{depth} has "
            f"basic blocks, got groups={groups}, width_per_group={width_per_group}"
        )
    if kind == "basic" and version == "1":
        raise ValueError(
            f"`version='1'` (keras.applications' layout) exists for depth 50, 101 and 152, got depth={depth}"
        )
    check_rate(dropout_rate, "dropout_rate")
    check_rate(drop_path_rate, "drop_path_rate")
    if groups > 1 or width_per_group != 64:
        default_name = f"resnext{depth}_{groups}x{width_per_group}d"
    else:
        default_name = f"resnet{depth}" + ("_v1" if version == "1" else "")
    return build_model(
        FAMILY,
        locals(),
        body=partial(
            _body,
            depth=depth,
            groups=groups,
            width_per_group=width_per_group,
            version=version,
            activation=activation,
            drop_path_rate=drop_path_rate,
        ),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=default_name,
    )


# --- weight porting --------------------------------------------------------------------
# torchvision / timm resnet*, resnext*: conv1, bn1, layer{i}.{j}.conv{k}, layer{i}.{j}.bn{k},
# layer{i}.{j}.downsample.{0: conv, 1: bn}, fc.
TORCH_KEY_MAP = (
    (r"conv1", "stem_conv"),
    (r"bn1", "stem_bn"),
    (r"layer(\d)\.(\d+)\.conv(\d)", lambda m: f"s{m[1]}_b{int(m[2]) + 1}_conv{m[3]}_conv"),
    (r"layer(\d)\.(\d+)\.bn(\d)", lambda m: f"s{m[1]}_b{int(m[2]) + 1}_conv{m[3]}_bn"),
    (r"layer(\d)\.(\d+)\.downsample\.0", lambda m: f"s{m[1]}_b{int(m[2]) + 1}_shortcut_conv"),
    (r"layer(\d)\.(\d+)\.downsample\.1", lambda m: f"s{m[1]}_b{int(m[2]) + 1}_shortcut_bn"),
    (r"fc", "predictions"),
)


# keras.applications ResNet v1 ("caffe" mode): BGR pixels in [0, 255] minus the ImageNet mean,
# no scaling. In this package's convention (RGB in [0, 1], then (x - mean) / std) that is the
# mean in RGB order over std 1/255; Keras checkpoints are converted with their first
# convolution's input channels reversed (BGR -> RGB), so the model takes RGB like every other.
CAFFE_PREPROCESSING = Preprocessing(mean=(123.68 / 255, 116.779 / 255, 103.939 / 255), std=(1 / 255,) * 3)


# Compared with their references in the suite: both block kinds of torchvision's layout
# (ResNet-18, -50), timm's (ResNet-34), grouped bottlenecks (ResNeXt-50 32x4d) and the three Keras
# models. ResNet-101/152 and the ResNeXt-101s run the same code with more blocks or groups; their
# parameters and MACs are checked exactly.
COMPARED = ("resnet18", "resnet34", "resnet50", "resnext50_32x4d", "resnet50_v1", "resnet101_v1", "resnet152_v1")

# torchvision's first ImageNet weights (IMAGENET1K_V1, evaluated at 256 -> 224 bilinear, this
# family's preprocessing). Its V2 weights evaluate at 232 -> 224 and are not listed yet.
TORCHVISION_WEIGHTS = {
    "resnet18": ("resnet18-f37072fd.pth", 69.758),
    "resnet34": ("resnet34-b627a593.pth", 73.314),
    "resnet50": ("resnet50-0676ba61.pth", 76.130),
    "resnet101": ("resnet101-63fe2227.pth", 77.374),
    "resnet152": ("resnet152-394f9c45.pth", 78.312),
    "resnext50_32x4d": ("resnext50_32x4d-7cdf4587.pth", 77.618),
    "resnext101_32x8d": ("resnext101_32x8d-8ba56ff5.pth", 79.312),
    "resnext101_64x4d": ("resnext101_64x4d-173b62eb.pth", 83.246),
}


# More ImageNet weights of the same networks, in timm's layout (torchvision's names) on the Hub,
# with timm's top-1 at 224: torchvision's second recipe (tv2_in1k, crop 0.965), "ResNet strikes
# back" (a1_in1k, a1h_in1k: crop 0.95, bicubic) and Facebook's semi-weakly supervised ResNeXts
# (fb_swsl_ig1b_ft_in1k, non-commercial licence).
TV2 = Preprocessing(crop_pct=0.965)
STRIKES_BACK = Preprocessing(crop_pct=0.95, interpolation="bicubic")
TIMM_WEIGHTS = {
    "resnet18": {"a1_in1k": 71.504},
    "resnet34": {"a1_in1k": 76.420},
    "resnet50": {"tv2_in1k": 80.846, "a1_in1k": 80.382},
    "resnet101": {"tv2_in1k": 81.906, "a1h_in1k": 81.950, "a1_in1k": 81.494},
    "resnet152": {"tv2_in1k": 82.294, "a1h_in1k": 82.818, "a1_in1k": 81.998},
    "resnext50_32x4d": {"tv2_in1k": 81.190, "a1h_in1k": 81.140, "fb_swsl_ig1b_ft_in1k": 82.162},
    "resnext101_32x4d": {"fb_swsl_ig1b_ft_in1k": 83.268},
    "resnext101_32x8d": {"tv2_in1k": 82.832, "fb_swsl_ig1b_ft_in1k": 84.276},
}
TAG_TERMS = {
    "tv2_in1k": ("BSD-3-Clause (torchvision)", TV2),
    "a1_in1k": ("Apache-2.0 (timm)", STRIKES_BACK),
    "a1h_in1k": ("Apache-2.0 (timm)", STRIKES_BACK),
    "fb_swsl_ig1b_ft_in1k": ("CC-BY-NC-4.0 (Facebook semi-weakly supervised)", Preprocessing()),
}
# keras.applications' ResNet v1 files: (file, MD5 from its source, top-1 from its documentation).
KERAS_WEIGHTS = {
    "resnet50_v1": ("resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5", "2cb95161c43110f7111970584f804107", 74.9),
    "resnet101_v1": (
        "resnet/resnet101_weights_tf_dim_ordering_tf_kernels.h5",
        "f1aeb4b969a6efcfb50fad2f0c20cfc5",
        76.4,
    ),
    "resnet152_v1": (
        "resnet/resnet152_weights_tf_dim_ordering_tf_kernels.h5",
        "100835be76be38e30d865e96f2aaae62",
        76.6,
    ),
}


def _weights(name):
    sources = [torchvision_source(*TORCHVISION_WEIGHTS[name])] if name in TORCHVISION_WEIGHTS else []
    sources += [timm_source(f"{name}.{tag}", top1, *TAG_TERMS[tag]) for tag, top1 in TIMM_WEIGHTS.get(name, {}).items()]
    if name in KERAS_WEIGHTS:
        path, md5, top1 = KERAS_WEIGHTS[name]
        sources.append(keras_source(path, top1, md5))
    return tuple(sources)


def _variant(name, kwargs, params, macs_m, top1, source, equals):
    preprocessing = CAFFE_PREPROCESSING if kwargs.get("version") == "1" else None
    return Variant(
        name,
        kwargs,
        Reference(params, macs_m, top1, source),
        equals=equals,
        preprocessing=preprocessing,
        key_map=None if equals.startswith("keras:") else TORCH_KEY_MAP,
        # timm's resnet / resnext use torchvision's names: one map for both layouts
        # keras.applications' caffe-mode files take BGR: their first convolution's input channels
        # are reversed on load ("bgr_input"), so the model takes RGB like every other.
        layouts={"keras": "bgr_input"}
        if equals.startswith("keras:")
        else {"torchvision": TORCH_KEY_MAP, "timm": TORCH_KEY_MAP},
        weights=_weights(name),
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="resnet",
    constructor=ResNet,
    architecture_args=("depth", "groups", "width_per_group", "version", "activation"),
    variants=(
        _variant("resnet18", {"depth": 18}, 11_689_512, 1814.1, 69.758, "torchvision resnet18", "torchvision:resnet18"),
        _variant("resnet34", {"depth": 34}, 21_797_672, 3663.8, 73.314, "torchvision resnet34", "timm:resnet34"),
        _variant("resnet50", {"depth": 50}, 25_557_032, 4089.2, 76.130, "torchvision resnet50", "torchvision:resnet50"),
        _variant("resnet101", {"depth": 101}, 44_549_160, 7801.4, 77.374, "torchvision resnet101", "timm:resnet101"),
        _variant("resnet152", {"depth": 152}, 60_192_808, 11513.6, 78.312, "torchvision resnet152", "timm:resnet152"),
        _variant(
            "resnet50_v1",
            {"depth": 50, "version": "1"},
            25_583_592,
            3858.0,
            None,
            "keras.applications ResNet50",
            "keras:ResNet50",
        ),
        _variant(
            "resnet101_v1",
            {"depth": 101, "version": "1"},
            44_601_832,
            7570.2,
            None,
            "keras.applications ResNet101 (parameters; MACs measured, Keras publishes none)",
            "keras:ResNet101",
        ),
        _variant(
            "resnet152_v1",
            {"depth": 152, "version": "1"},
            60_268_520,
            11282.4,
            None,
            "keras.applications ResNet152 (parameters; MACs measured, Keras publishes none)",
            "keras:ResNet152",
        ),
        _variant(
            "resnext50_32x4d",
            {"depth": 50, "groups": 32, "width_per_group": 4},
            25_028_904,
            4230.5,
            77.618,
            "torchvision resnext50_32x4d",
            "torchvision:resnext50_32x4d",
        ),
        _variant(
            "resnext101_32x4d",
            {"depth": 101, "groups": 32, "width_per_group": 4},
            44_177_704,
            8000.0,
            None,
            "pycls X-101-32x4d (8.0 GF, rounded); timm resnext101_32x4d",
            "timm:resnext101_32x4d",
        ),
        _variant(
            "resnext101_32x8d",
            {"depth": 101, "groups": 32, "width_per_group": 8},
            88_791_336,
            16414.0,
            79.312,
            "torchvision resnext101_32x8d",
            "torchvision:resnext101_32x8d",
        ),
        _variant(
            "resnext101_64x4d",
            {"depth": 101, "groups": 64, "width_per_group": 4},
            83_455_272,
            15460.0,
            83.246,
            "torchvision resnext101_64x4d",
            "torchvision:resnext101_64x4d",
        ),
    ),
)
