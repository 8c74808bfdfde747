"""ParNet (Goyal et al., "Non-deep Networks", NeurIPS 2022, arXiv 2110.07641): depth 12.

Three parallel streams at 1/8, 1/16 and 1/32 of the input (ImageNet layout), built from
RepVGG-style blocks (:func:`~keras_lightnets.layers.rep_branches`), fused by two fusion blocks.
Every block has a squeeze-excite made of one 1x1 convolution (no bias, the block's groups):

- a stream block (in = out, stride 1) is "RepVGG-SSE":
  ``act(BN(conv3x3(x)) + BN(conv1x1(x)) + BN(x) * sigmoid(W · GAP(BN(x))))``;
- every other block (downsampling, fusion, the first ones):
  ``act((BN(conv3x3(x)) + branch1x1(x)) * 2 sigmoid(W · GAP(x)))``, where a stride-2 1x1
  branch is a 2x2 average pool, then a stride-1 1x1 convolution and BN;
- a fusion block takes a stream and the previous downsampling: a BN per input, the channels
  interleaved ``[s0, d0, s1, d1, ...]``, a block with ``groups=2``, then a channel shuffle
  after the activation (every block with groups > 1 shuffles).

Topology (ImageNet, ``planes = (p0, p1, p2)``, ``last``): ``inits_0_0`` 3 → min(64, p0) /2,
``inits_0_1`` → p0 /2 (stream 0's input, 56x56), ``inits_1`` → p1 /2, ``inits_2`` → p2 /2;
streams of 4, 5 and 5 SSE blocks; ``downsamples_0`` stream 0 → p1 /2; ``downsamples_1`` =
fusion(stream 1, downsamples_0) → p2 /2; ``combine_fusion`` = fusion(stream 2, downsamples_1)
→ p2; ``combine_down`` → last /2; average pool, dropout, fully connected. The longest path
has 12 convolutional / dense layers (``kl.profile(model).depth``).

**Activation.** The paper replaces ReLU with SiLU, and that is our default. The released
ImageNet models use ReLU: their YAMLs write ``additional_branches: [['swish']]`` (a list in a
list) and the code tests ``'swish' in additional_branches``, which is false, so every block
kept ``nn.ReLU()``. ``activation="relu"`` reproduces the released checkpoints.

**CIFAR layout** (``layout="cifar"``, ``parnet_cifar10`` / ``parnet_cifar100``). The official
repository has no CIFAR code; the paper (section 4 and its appendix) says: "we replace the
Downsampling blocks at depths 1 and 2 with RepVGG-SSE blocks. To reduce the number of
parameters in the last layer, we replace the last Downsampling block, which has a large
width, with a narrower 1×1 convolution layer. Also, we reduce the number of parameters by
removing one block from each stream and adding a block at depth 3", keeping 32x32 inputs and
three streams, with a wider network. Our choices where the text gives no number:

- depths 1 and 2 are stride-1 blocks 3 → min(64, p0) → p0; a block whose input and output
  widths differ cannot have the identity branch, so they are the skip-less form
  (``(3x3 + 1x1) · 2σ(SE)``), which is the RepVGG-SSE block without its identity;
- the added block at depth 3 is an SSE block p0 → p0 at 32x32, whose output feeds stream 0
  and ``inits_1`` (so the streams start at 32, 16 and 8 pixels);
- streams of 3, 4 and 4 SSE blocks; ``combine_down`` is a 1x1 convolution → BN → activation
  to ``last`` channels at stride 1 (8x8), then pool and classifier: depth 12 again;
- widths: the paper widens the network for CIFAR but the text gives no numbers, so we take
  ParNet-S's stream widths rounded to ``planes=(96, 192, 384)`` and a 1x1 head of
  ``last=768`` channels ("narrower" than the 3x3 block's 1280): 12.6 M parameters, 1.5 GMACs
  at 32 px, a size that trains on a CPU. ``planes`` / ``last_width`` build wider ones.

Its figures in the variant table are what this build measures (no published count exists).

Reference: ``imankgoyal/NonDeepNetworks`` ``imagenet/timm/models/simplenet_impl/{simpnet.py,
repvgg.py,utils.py}`` and ``imagenet/models/*.yaml``; parameter counts of the training form and
of the fused form from that code (``../shared`` table). Not installable, so the suite checks
the counts, MACs, depth and the distinctive operations by hand-computed cases.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_choice, check_number, check_rate
from keras_lightnets.layers import activation_layer, conv_bn_act
from keras_lightnets.layers.channel_shuffle import ChannelShuffle
from keras_lightnets.layers.rep_branches import rep_branches
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant

__all__ = ["ParNet", "parnet_block", "parnet_fusion"]

LAYOUTS = ("imagenet", "cifar")
ACTIVATIONS = ("silu", "relu")
# SSE blocks per stream (the official num_blocks [5, 6, 6, 1] less one each; CIFAR one fewer again).
STREAM_BLOCKS = {"imagenet": (4, 5, 5), "cifar": (3, 4, 4)}
FIRST_WIDTH = 64  # the first block's width is min(64, p0)
FUSION_GROUPS = 2
BN_EPSILON = 1e-5  # PyTorch's


def _se_gate(x, filters, groups, *, name):
    """``sigmoid(W · GAP(x))`` with W one 1x1 convolution, no bias, ``groups`` groups (ParNet's SE1)."""
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    s = layers.Conv2D(filters, 1, groups=groups, use_bias=False, name=f"{name}_conv")(s)
    return layers.Activation("sigmoid", name=f"{name}_gate")(s)


def parnet_block(x, filters, strides=1, *, groups=1, activation="silu", name):
    """One ParNet block (the official ``RepVGGBlock`` with ``avg_pool=True, se_block=True``).

    In = out and stride 1: the RepVGG-SSE block, ``act(3x3 + 1x1 + BN(x) · σ(SE(BN(x))))``.
    Otherwise: ``act((3x3 + 1x1') · 2σ(SE(x)))`` with 1x1' average-pooled at stride 2. With
    ``groups`` > 1 the output's channels are shuffled after the activation.
    """
    kxk, one_by_one, identity = rep_branches(x, filters, strides, groups=groups, avg_pool_shortcut=True, name=name)
    if identity is not None:
        gate = _se_gate(identity, filters, groups, name=f"{name}_sse")
        skip = layers.Multiply(name=f"{name}_sse")([identity, gate])
        x = layers.Add(name=f"{name}_add")([kxk, one_by_one, skip])
    else:
        gate = _se_gate(x, filters, groups, name=f"{name}_se")
        # The official SE1(ver=2) doubles the gate where the block has no skip.
        gate = layers.Rescaling(2.0, name=f"{name}_se_double")(gate)
        x = layers.Add(name=f"{name}_add")([kxk, one_by_one])
        x = layers.Multiply(name=f"{name}_se")([x, gate])
    x = activation_layer(activation, name=f"{name}_act")(x)
    if groups > 1:
        x = ChannelShuffle(groups, name=f"{name}_shuffle")(x)
    return x


def parnet_fusion(stream, downsampled, filters, strides, *, activation, name):
    """A fusion block: BN of each input, channels interleaved ``[s0, d0, s1, d1, ...]`` (concat,
    then a shuffle of 2 groups), then a ``groups=2`` :func:`parnet_block`."""
    stream = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"{name}_bn_stream")(stream)
    downsampled = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=f"{name}_bn_down")(downsampled)
    x = layers.Concatenate(name=f"{name}_concat")([stream, downsampled])
    x = ChannelShuffle(FUSION_GROUPS, name=f"{name}_interleave")(x)
    return parnet_block(x, filters, strides, groups=FUSION_GROUPS, activation=activation, name=name)


def _body(x, *, planes, last_width, layout, activation):
    p0, p1, p2 = planes
    block = partial(parnet_block, activation=activation)
    tracker = FeatureTracker()
    first_stride = 2 if layout == "imagenet" else 1
    x = tracker.add(block(x, min(FIRST_WIDTH, p0), first_stride, name="inits_0_0"), first_stride)
    x = tracker.add(block(x, p0, first_stride, name="inits_0_1"), first_stride)
    if layout == "cifar":
        x = block(x, p0, 1, name="inits_0_2")  # "adding a block at depth 3"
        tracker.add(x)
    stream_inputs = [x]
    x = tracker.add(block(x, p1, 2, name="inits_1"), 2)
    stream_inputs.append(x)
    x = tracker.add(block(x, p2, 2, name="inits_2"), 2)
    stream_inputs.append(x)

    streams = []
    for s, (y, count) in enumerate(zip(stream_inputs, STREAM_BLOCKS[layout], strict=True)):
        for b in range(count):
            y = block(y, y.shape[-1], 1, name=f"streams_{s}_{b}")
        streams.append(y)
    down = block(streams[0], p1, 2, name="downsamples_0")
    down = parnet_fusion(streams[1], down, p2, 2, activation=activation, name="downsamples_1")
    x = parnet_fusion(streams[2], down, p2, 1, activation=activation, name="combine_fusion")
    # The stride-16 map is the fused one (the streams' own maps stay inside).
    tracker.maps[tracker.stride] = x
    if layout == "imagenet":
        x = tracker.add(block(x, last_width, 2, name="combine_down"), 2)
    else:
        x = conv_bn_act(x, last_width, 1, activation=activation, name="combine_down")
        tracker.maps[tracker.stride] = x
    return x, tracker.maps


@family_constructor
def ParNet(
    planes=(92, 192, 384),
    last_width=1280,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    layout="imagenet",
    activation="silu",
    dropout_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """A ParNet in its training form; :func:`keras_lightnets.reparameterize` fuses each block's
    3x3 and 1x1 branches (SE and SSE stay) for inference.

    Args:
        planes: widths of the three streams ``(p0, p1, p2)`` (ParNet-S: ``(92, 192, 384)``).
        last_width: channels of the last block, before the classifier (ParNet-S: 1280).
        layout: ``"imagenet"`` (224 px, five stride-2 blocks) or ``"cifar"`` (32 px, three;
            see the module docstring for the choices the paper leaves open).
        activation: ``"silu"`` (the paper) or ``"relu"`` (what the released checkpoints run).
        dropout_rate: before the classifier (0 for S and M, 0.1 for L and XL).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(layout, "layout", LAYOUTS)
    check_choice(activation, "activation", ACTIVATIONS)
    if not isinstance(planes, (tuple, list)) or len(planes) != 3:
        raise ValueError(f"`planes` must be the 3 stream widths (p0, p1, p2), e.g. (92, 192, 384), got {planes!r}")
    for width in (*planes, last_width):
        check_number(width, "planes / last_width", minimum=2, maximum=16384, integer=True)
    if any(width % FUSION_GROUPS for width in planes[1:]):
        raise ValueError(f"`planes` p1 and p2 feed groups={FUSION_GROUPS} fusion blocks and must be even, got {planes}")
    check_rate(dropout_rate, "dropout_rate")
    planes = tuple(planes)
    downsamplings = 5 if layout == "imagenet" else 2
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, planes=planes, last_width=last_width, layout=layout, activation=activation),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=_default_name(planes, last_width, layout, classes),
        # Each stride-2 block needs a map of at least 2 pixels to pool 2x2.
        min_size=2**downsamplings,
    )


def _default_name(planes, last_width, layout, classes):
    """The published name of these widths (``parnet_s``; the scaffold appends ``_custom`` when
    another argument, such as the activation, differs), else ``parnet_{layout}_custom``."""
    same = [
        variant
        for variant in FAMILY.variants
        if variant.kwargs["planes"] == planes
        and variant.kwargs["last_width"] == last_width
        and variant.kwargs.get("layout", "imagenet") == layout
    ]
    best = next((v for v in same if v.classes == classes), same[0] if same else None)
    return best.name if best else f"parnet_{layout}_custom"


CIFAR_PREPROCESSING = Preprocessing(
    input_size=(32, 32, 3), mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), crop_pct=1.0
)


_OFFICIAL = "imankgoyal/NonDeepNetworks simpnet.py with imagenet/models/{}"
_CIFAR = "the paper's CIFAR text; widths our choice (module docstring), figures measured"
# name: (planes, last width, layout, classes, train params, fused params, MACs train / fused (M), source)
TABLE = {
    "parnet_s": ((92, 192, 384), 1280, "imagenet", 1000, 20_930_936, 19_128_980, 5259.5, 4733.9,
                 _OFFICIAL.format("planes_92_192_384_1280_num_blocks_5_6_6_1_sebv_13.yaml")),
    "parnet_m": ((128, 256, 512), 2048, "imagenet", 1000, 38_953_256, 35_576_616, 9534.8, 8581.9,
                 _OFFICIAL.format("planes_128_256_512_2048_num_blocks_5_6_6_1_sebv_13.yaml")),
    "parnet_l": ((160, 320, 640), 2560, "imagenet", 1000, 60_180_008, 54_914_824, 14803.7, 13324.1,
                 _OFFICIAL.format("planes_160_320_640_2560_num_blocks_5_6_6_1_sebv_13_dropout_lin.yaml")),
    "parnet_xl": ((200, 400, 800), 3200, "imagenet", 1000, 93_176_168, 84_962_784, 23016.1, 20715.6,
                  _OFFICIAL.format("reg_se13_planes_200_400_800_3200_num_blocks_5_6_6_1_sebv_13_dropout_lin.yaml")),
    "parnet_cifar10": ((96, 192, 384), 768, "cifar", 10, 12_564_170, 11_438_762, 1500.45, 1352.4, _CIFAR),
    "parnet_cifar100": ((96, 192, 384), 768, "cifar", 100, 12_633_380, 11_507_972, 1500.52, 1352.5, _CIFAR),
}  # fmt: skip


def _variant(name, planes, last_width, layout, classes, params, deploy_params, macs_m, deploy_macs_m, source):
    kwargs = {"planes": planes, "last_width": last_width}
    if layout != "imagenet":
        kwargs["layout"] = layout
    preprocessing = CIFAR_PREPROCESSING if layout == "cifar" else None
    size = preprocessing.input_size if preprocessing else (224, 224, 3)
    return Variant(
        name,
        kwargs,
        Reference(
            params, macs_m, None, source, input_size=size, deploy_params=deploy_params, deploy_macs_m=deploy_macs_m
        ),
        equals="golden",
        preprocessing=preprocessing,
        defaults={} if classes == 1000 else {"classes": classes},
        # Golden tensors for one model of each layout; the others differ only in widths / classes.
        compared=name in ("parnet_s", "parnet_cifar10"),
    )


FAMILY = Family(
    name="parnet",
    constructor=ParNet,
    architecture_args=("planes", "last_width", "layout", "activation"),
    variants=tuple(_variant(name, *row) for name, row in TABLE.items()),
)
