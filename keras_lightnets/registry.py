"""Registered model names → builder, arguments, reference figures and preprocessing.

``list_models("rexnet*")`` and ``create_model("rexnet_100")`` work like timm's.
Each entry carries the figures published for it (parameters, MACs, top-1 and
where they come from), so ``lightnets info``, the README table and the tests
compare against the same numbers.
"""

import difflib
import fnmatch
from dataclasses import dataclass, field

from keras_lightnets.models import MobileNet, MobileNetV2, ReXNet, ReXNetLite, SqueezeNet

__all__ = ["ModelEntry", "Preprocessing", "Reference", "create_model", "get_entry", "list_models"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)  # keras.applications MobileNets: x / 127.5 - 1
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class Reference:
    """Published figures: trainable parameters (exact), MACs at 224 (millions), ImageNet top-1 (%)."""

    params: int
    macs_m: float
    top1: float | None
    source: str


@dataclass(frozen=True)
class Preprocessing:
    """How inputs must be prepared: pixels in [0, 1], then ``(x - mean) / std``."""

    input_size: tuple = (224, 224, 3)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: object
    kwargs: dict
    reference: Reference
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def build(self, **overrides):
        """The model with the entry's arguments, ``overrides`` taking precedence."""
        kwargs = {**self.kwargs, **overrides}
        kwargs.setdefault("name", self.name)
        return self.builder(**kwargs)


_REGISTRY = {}


def _register(name, family, builder, kwargs, params, macs_m, top1, source, **preprocessing):
    _REGISTRY[name] = ModelEntry(
        name, family, builder, kwargs, Reference(params, macs_m, top1, source), Preprocessing(**preprocessing)
    )


# ReXNet: clovaai/rexnet README top-1; timm's rexnet_* are the same models.
_REXNET = [
    # width, params, MACs (M), top-1
    (0.9, 4_091_257, 347.7, 77.2),
    (1.0, 4_796_873, 398.4, 77.9),
    (1.3, 7_557_091, 662.2, 79.5),
    (1.5, 9_728_593, 875.8, 80.3),
    (2.0, 16_366_620, 1528.9, 81.6),
    (2.2, 19_485_308, 1842.5, None),  # the COCO backbone width; no ImageNet result published
    (3.0, 34_708_792, 3396.0, 82.8),
]
for _width, _params, _macs, _top1 in _REXNET:
    _source = "clovaai/rexnet" + ("" if _width in (0.9, 2.2) else f"; timm rexnet_{round(_width * 100):03d}")
    _register(
        f"rexnet_{round(_width * 100):03d}",
        "rexnet",
        ReXNet,
        {"width": _width},
        _params,
        _macs,
        _top1,
        _source,
        interpolation="bicubic",
    )

_REXNET_LITE = [
    (1.0, 4_740_056, 406.8, 76.2),
    (1.3, 6_747_960, 646.4, 77.8),
    (1.5, 8_332_296, 836.4, 78.6),
    (2.0, 12_966_200, 1498.3, 80.2),
]
for _width, _params, _macs, _top1 in _REXNET_LITE:
    _register(
        f"rexnet_lite_{round(_width * 100):03d}",
        "rexnet_lite",
        ReXNetLite,
        {"width": _width},
        _params,
        _macs,
        _top1,
        "clovaai/rexnet rexnetv1_lite.py",
        interpolation="bicubic",
    )

_SQUEEZENET = [
    # name, version, bypass, params, MACs (M), top-1, source
    ("squeezenet1_0", "1.0", None, 1_248_424, 818.9, 58.092, "torchvision squeezenet1_0"),
    ("squeezenet1_1", "1.1", None, 1_235_496, 349.2, 58.178, "torchvision squeezenet1_1"),
    ("squeezenet1_0_simple_bypass", "1.0", "simple", 1_248_424, 818.9, 60.38, "songhan/SqueezeNet-Residual"),
    ("squeezenet1_0_complex_bypass", "1.0", "complex", 1_589_672, 1165.3, None, "SqueezeNet paper, section 6"),
]
for _name, _version, _bypass, _params, _macs, _top1, _source in _SQUEEZENET:
    _register(_name, "squeezenet", SqueezeNet, {"version": _version, "bypass": _bypass}, _params, _macs, _top1, _source)

_MOBILENET = [
    (0.25, 470_072, 41.0, 50.6),
    (0.5, 1_331_592, 149.5, 63.7),
    (0.75, 2_585_560, 325.4, 68.4),
    (1.0, 4_231_976, 568.7, 70.6),
]
for _alpha, _params, _macs, _top1 in _MOBILENET:
    _register(
        f"mobilenetv1_{round(_alpha * 100):03d}",
        "mobilenetv1",
        MobileNet,
        {"alpha": _alpha},
        _params,
        _macs,
        _top1,
        "keras.applications MobileNet" + ("; timm mobilenetv1_100" if _alpha == 1.0 else ""),
        mean=INCEPTION_MEAN,
        std=INCEPTION_STD,
    )

_MOBILENETV2 = [
    (0.35, 1_677_128, 59.3, 60.3),
    (0.5, 1_968_680, 97.1, 65.4),
    (0.75, 2_636_424, 209.1, 69.8),
    (1.0, 3_504_872, 300.8, 71.8),
    (1.3, 5_386_792, 509.4, 74.4),
    (1.4, 6_108_776, 582.2, 75.0),
]
for _alpha, _params, _macs, _top1 in _MOBILENETV2:
    _register(
        f"mobilenetv2_{round(_alpha * 100):03d}",
        "mobilenetv2",
        MobileNetV2,
        {"alpha": _alpha},
        _params,
        _macs,
        _top1,
        "keras.applications MobileNetV2",
        mean=INCEPTION_MEAN,
        std=INCEPTION_STD,
    )


def list_models(pattern=None):
    """Sorted registered names, optionally filtered by a shell-style ``pattern`` ("rexnet_*")."""
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    if not isinstance(pattern, str):
        raise TypeError(f"`pattern` must be a string such as 'rexnet_*', got {pattern!r}")
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]


def get_entry(name):
    """The :class:`ModelEntry` for ``name``; a ``ValueError`` listing the closest names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {name!r}")
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} `keras_lightnets.list_models()` lists all.")
    return _REGISTRY[name]


def create_model(model_name, /, **overrides):
    """Builds the registered model ``model_name``; keyword ``overrides`` replace its arguments.

    ``create_model("rexnet_100", classes=10, input_shape=(160, 160, 3))``; ``name=``
    renames the Keras model (it defaults to the registered name).
    """
    return get_entry(model_name).build(**overrides)


def markdown_table():
    """The README's model table, generated from the registry (``scripts/model_table.py`` writes it)."""
    lines = [
        "| model | family | params | MACs @224 | top-1 | source |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name in list_models():
        entry = _REGISTRY[name]
        ref = entry.reference
        top1 = "—" if ref.top1 is None else f"{ref.top1:.2f}"
        lines.append(f"| `{name}` | {entry.family} | {ref.params:,} | {ref.macs_m:,.1f} M | {top1} | {ref.source} |")
    return "\n".join(lines)
