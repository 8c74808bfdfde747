"""DPN (Chen et al., "Dual Path Networks", NeurIPS 2017, arXiv 1707.01629), as timm's ``dpn.py``
builds it (which loads the authors' MXNet weights, ``cypw/DPNs``).

A dual path block carries two paths: a *residual* path of ``bw`` channels (summed, as in a
ResNet) and a *dense* path that grows by ``inc`` channels per block (concatenated, as in a
DenseNet). Its input is their concatenation ``[res, dense]``; its body is pre-activation
BN-ReLU-conv units::

    h = c1x1_c(c3x3_b(c1x1_a([res, dense])))       # 1x1 → r, 3x3 grouped (G) → r, 1x1 → bw + inc
    res'   = res + h[:bw]
    dense' = [dense, h[bw:]]

The first block of each stage projects its input first (``c1x1_w``: BN-ReLU-1x1 conv to
``bw + 2 inc`` channels, stride 2 from the second stage on, the 3x3 carrying the same stride):
its first ``bw`` channels are the residual path, the other ``2 inc`` start the dense path.

Stages ``i = 0..3``: ``bw = 256 · 2^i`` (DPN-68: ``64 · 2^i``, timm's ``small``) and
``r = k_R · 2^i`` (``k_R · bw_base / 64`` in timm); each stage ends with ``bw + (blocks + 2) · inc``
channels. Stem: 7x7/2 conv (DPN-68: 3x3/2) → BN → ReLU → 3x3/2 max pool. Head: BN → ReLU → global
average pool → classifier. Every BatchNorm has epsilon 1e-3. Configurations ``(k_R, G, blocks,
inc, stem width)`` are the ``CONFIGS`` table below (timm's ``dpn68`` ... ``dpn131``).

**The last activation.** The MXNet original ends in ReLU. timm's ``DPN`` asks for ELU there
(``fc_act_layer='elu'``), but its norm-act factory keeps the ReLU already bound to the partial
it is given (``setdefault('act_layer', ...)``), so timm 1.0.31 (installed here; the reference
test compares with it) computes ReLU. ``head_activation="relu"`` is the default; ``"elu"``
builds what timm's arguments ask for.

Written with standard layers, no slicing:

- the two paths travel as two tensors between blocks (``res`` and ``dense``); a block's input
  is their ``Concatenate``, so the reference's ``x[:, :bw]`` / ``x[:, bw:]`` are the tensors
  themselves;
- the convolutions whose output the reference slices (``c1x1_w``, ``c1x1_c``) are two
  convolutions here, one per path (``*_res_conv``, ``*_dense_conv``), on the same BN-ReLU input:
  the same function and parameters. timm's weights load by cutting each such convolution's
  kernel along its outputs (a key-map rule naming two layers, see
  :mod:`keras_lightnets.weights.torch_port`);
- timm's classifier is a 1x1 convolution (bias) on the pooled map: a ``Dense`` layer here, the
  same function with the same parameters (its ``(classes, C, 1, 1)`` weight loads into it).

**DPN-68b.** timm's ``b=True`` builds ``c1x1_c`` as a BN-ReLU followed by two convolutions
(``c1x1_c1``, ``c1x1_c2``) instead of one whose output is sliced. That is the same function,
and it is what this file builds for every DPN, so ``b`` changes no layer: it names the variant
whose weights (DPN-68b's: timm's ``mx_in1k`` from MXNet and its own ``ra_in1k``) load, and its
key map reads both timm layouts.

Because the two paths travel apart, a stage's first block is the only point every path goes
through: transfer learning (:mod:`keras_lightnets.transfer`) counts DPN's blocks by stage.
"""

from functools import partial

from keras import layers

from keras_lightnets.checks import check_bool, check_choice, check_rate
from keras_lightnets.layers import activation_layer, bn_act_conv, conv_bn_act
from keras_lightnets.models.arguments import family_constructor
from keras_lightnets.models.scaffold import FeatureTracker, build_model, dense_head
from keras_lightnets.models.variant import Family, Preprocessing, Reference, Variant, timm_source

__all__ = ["CONFIGS", "DPN", "TIMM_KEY_MAP", "dual_path_block"]

# depth → (k_R, groups, blocks per stage, increments per stage, stem width, small)
CONFIGS = {
    68: (128, 32, (3, 4, 12, 3), (16, 32, 32, 64), 10, True),
    92: (96, 32, (3, 4, 20, 3), (16, 32, 24, 128), 64, False),
    98: (160, 40, (3, 6, 20, 3), (16, 32, 32, 128), 96, False),
    107: (200, 50, (4, 8, 20, 3), (20, 64, 64, 128), 128, False),
    131: (160, 40, (4, 8, 28, 3), (16, 32, 32, 128), 128, False),
}
BW_BASE = (64, 128, 256, 512)  # timm's bw_base; bw = bw_base * (1 if small else 4), r = k_R * bw_base // 64
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.9  # PyTorch's momentum 0.1
HEAD_ACTIVATIONS = ("relu", "elu")
NORM = {"bn_epsilon": BN_EPSILON, "bn_momentum": BN_MOMENTUM}


def dual_path_block(res, dense, *, bw, r, inc, groups, strides=1, project=False, name):
    """One dual path block: ``(res, dense) -> (res', dense')``.

    ``dense`` is None for the first block of a stage (``project=True``), whose input is the single
    tensor ``res``; its projection ``c1x1_w`` (``strides``) gives the residual path (``bw``) and
    the start of the dense path (``2 inc``). Otherwise the input is ``[res, dense]`` and the paths
    are the shortcuts. The body: ``c1x1_a`` (1x1 → r), ``c3x3_b`` (3x3 grouped, ``strides`` → r),
    ``c1x1_c`` (BN-ReLU, then 1x1 → bw for the sum and 1x1 → inc for the concatenation).
    """
    if project:
        x = res
        p = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_c1x1_w_bn")(x)
        p = layers.ReLU(name=f"{name}_c1x1_w_act")(p)
        res = _conv(p, bw, 1, strides, name=f"{name}_c1x1_w_res")
        dense = _conv(p, 2 * inc, 1, strides, name=f"{name}_c1x1_w_dense")
    else:
        x = layers.Concatenate(name=f"{name}_input")([res, dense])
    h = bn_act_conv(x, r, 1, name=f"{name}_c1x1_a", **NORM)
    h = bn_act_conv(h, r, 3, strides, groups=groups, name=f"{name}_c3x3_b", **NORM)
    h = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_c1x1_c_bn")(h)
    h = layers.ReLU(name=f"{name}_c1x1_c_act")(h)
    res = layers.Add(name=f"{name}_res_add")([res, _conv(h, bw, 1, name=f"{name}_c1x1_c_res")])
    dense = layers.Concatenate(name=f"{name}_dense_concat")([dense, _conv(h, inc, 1, name=f"{name}_c1x1_c_dense")])
    return res, dense


def _conv(x, filters, kernel_size, strides=1, *, name):
    """A convolution alone (no BN, no activation), named ``{name}_conv``."""
    return conv_bn_act(x, filters, kernel_size, strides, activation=None, use_bn=False, name=name)


def _body(x, *, depth, head_activation):
    k_r, groups, blocks, increments, stem_width, small = CONFIGS[depth]
    tracker = FeatureTracker()
    x = conv_bn_act(x, stem_width, 3 if small else 7, 2, name="stem", **NORM)
    tracker.add(x, 2)
    # Zero padding equals PyTorch's -inf padding here: the pool follows a ReLU (values >= 0).
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = layers.MaxPooling2D(3, 2, name="stem_pool")(x)
    for i, (bw_base, count, inc) in enumerate(zip(BW_BASE, blocks, increments, strict=True)):
        bw = bw_base * (1 if small else 4)
        r = k_r * bw_base // 64
        stride = 1 if i == 0 else 2
        res, dense = x, None
        for j in range(count):
            res, dense = dual_path_block(
                res,
                dense,
                bw=bw,
                r=r,
                inc=inc,
                groups=groups,
                strides=stride if j == 0 else 1,
                project=j == 0,
                name=f"s{i + 1}_b{j + 1}",
            )
        x = layers.Concatenate(name=f"s{i + 1}_b{count}_output")([res, dense])
        if i < 3:
            tracker.add(x, 2)  # stage 1: the stem pool's stride; stages 2, 3: their first block's
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="final_bn")(x)
    x = activation_layer(head_activation, name="final_act")(x)
    tracker.add(x, 2)
    return x, tracker.maps


@family_constructor
def DPN(
    depth=92,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    *,
    b=False,
    head_activation="relu",
    dropout_rate=0.0,
    features_only=False,
    include_preprocessing=False,
):
    """DPN-``depth`` (68, 92, 98, 107 or 131), timm's layout.

    Args:
        depth: the published configuration (``CONFIGS``): 68 (the small one, 3x3 stem, ``bw`` a
            quarter of the others'), 92, 98, 107 or 131.
        b: timm's DPN-b (``dpn68b``). The same function (see the module docstring); it names the
            variant whose weights load.
        head_activation: after the last BatchNorm: ``"relu"`` (the MXNet original, and what timm 1.0
            computes) or ``"elu"`` (what timm's ``fc_act_layer`` asks for).
        dropout_rate: before the classifier (0 in timm).

    The other arguments are keras.applications' (see :func:`~keras_lightnets.models.scaffold.build_model`).
    """
    check_choice(depth, "depth", tuple(CONFIGS))
    check_bool(b, "b")
    check_choice(head_activation, "head_activation", HEAD_ACTIVATIONS)
    check_rate(dropout_rate, "dropout_rate")
    return build_model(
        FAMILY,
        locals(),
        body=partial(_body, depth=depth, head_activation=head_activation),
        head=partial(dense_head, dropout_rate=dropout_rate),
        default_name=f"dpn{depth}{'b' if b else ''}",
    )


# --- weight porting --------------------------------------------------------------------
# timm dpn*: features.conv1_1.{conv,bn}; features.conv{S}_{B} (S = 2..5, B from 1) with
# c1x1_w_s1 / c1x1_w_s2 (the first block's projection, stride 1 / 2), c1x1_a, c3x3_b and c1x1_c,
# each .bn and .conv; DPN-b: c1x1_c.bn, then c1x1_c1 / c1x1_c2; features.conv5_bn_ac.bn; classifier.
# The projection and the non-b c1x1_c are one convolution there, two here: split along outputs.
def _block(m):
    return f"s{int(m[1]) - 1}_b{m[2]}"


_BLOCK = r"features\.conv(\d)_(\d+)"
TIMM_KEY_MAP = (
    (r"features\.conv1_1\.(conv|bn)", r"stem_\1"),
    (_BLOCK + r"\.c1x1_w_s[12]\.bn", lambda m: f"{_block(m)}_c1x1_w_bn"),
    (_BLOCK + r"\.c1x1_w_s[12]\.conv", lambda m: (f"{_block(m)}_c1x1_w_res_conv", f"{_block(m)}_c1x1_w_dense_conv")),
    (_BLOCK + r"\.(c1x1_a|c3x3_b|c1x1_c)\.bn", lambda m: f"{_block(m)}_{m[3]}_bn"),
    (_BLOCK + r"\.(c1x1_a|c3x3_b)\.conv", lambda m: f"{_block(m)}_{m[3]}_conv"),
    (_BLOCK + r"\.c1x1_c\.conv", lambda m: (f"{_block(m)}_c1x1_c_res_conv", f"{_block(m)}_c1x1_c_dense_conv")),
    (_BLOCK + r"\.c1x1_c1", lambda m: f"{_block(m)}_c1x1_c_res_conv"),
    (_BLOCK + r"\.c1x1_c2", lambda m: f"{_block(m)}_c1x1_c_dense_conv"),
    (r"features\.conv5_bn_ac\.bn", "final_bn"),
    (r"classifier", "predictions"),
)


# timm's DPN preprocessing (IMAGENET_DPN_MEAN / _STD, the MXNet models' input scaling): mean
# (124, 117, 104) / 255 and std 1 / (0.0167 * 255), bicubic, crop 0.875.
DPN_PREPROCESSING = Preprocessing(
    mean=(124 / 255, 117 / 255, 104 / 255), std=(1 / (0.0167 * 255),) * 3, interpolation="bicubic"
)
# timm's own DPN-68b weights (ra_in1k): ImageNet mean and std, crop 0.95 (timm tests them at 288 too).
TIMM_RECIPE = Preprocessing(interpolation="bicubic", crop_pct=0.95)
_MXNET = "Apache-2.0 (timm; converted from the authors' MXNet weights, cypw/DPNs)"

# Compared with timm in the suite: DPN-68 (the small layout: 3x3 stem, bw / 4, the non-b c1x1_c)
# and DPN-92 (the 7x7 stem and full widths). DPN-68b runs DPN-68's graph; 98, 107 and 131 run
# DPN-92's code with other numbers: their parameters and MACs are checked exactly.
COMPARED = ("dpn68", "dpn92")

# name: (depth, b, params, MACs (M) at 224, top-1 of its first weights (timm),
#        weights {tag: (top-1, preprocessing, licence)})
TABLE = {
    "dpn68": (68, False, 12_611_602, 2326.2, 76.304, {"mx_in1k": (76.304, None, _MXNET)}),
    "dpn68b": (68, True, 12_611_602, 2326.2, 77.494, {
        "mx_in1k": (77.494, None, _MXNET), "ra_in1k": (78.546, TIMM_RECIPE, "Apache-2.0 (timm)")}),
    "dpn92": (92, False, 37_668_392, 6501.7, 80.032, {"mx_in1k": (80.032, None, _MXNET)}),
    "dpn98": (98, False, 61_570_728, 11671.2, 79.664, {"mx_in1k": (79.664, None, _MXNET)}),
    "dpn107": (107, False, 86_917_800, 18298.8, 80.166, {"mx_in1k": (80.166, None, _MXNET)}),
    "dpn131": (131, False, 79_254_504, 16013.6, 79.836, {"mx_in1k": (79.836, None, _MXNET)}),
}  # fmt: skip


def _variant(name, depth, b, params, macs_m, top1, weights):
    kwargs = {"depth": depth}
    if b:
        kwargs["b"] = True
    return Variant(
        name,
        kwargs,
        Reference(params, macs_m, top1, f"timm {name} (parameters, MACs; top-1 of its mx_in1k weights)"),
        equals=f"timm:{name}",
        key_map=TIMM_KEY_MAP,
        weights=tuple(
            timm_source(f"{name}.{tag}", top, terms, preprocessing)
            for tag, (top, preprocessing, terms) in weights.items()
        ),
        compared=name in COMPARED,
    )


FAMILY = Family(
    name="dpn",
    constructor=DPN,
    architecture_args=("depth", "b", "head_activation"),
    variants=tuple(_variant(name, *row) for name, row in TABLE.items()),
    preprocessing=DPN_PREPROCESSING,
)
