"""How a family file states its variants as data: names, published figures, preprocessing,
the reference each one must equal and where its weights come from.

A family module ends with ``FAMILY = Family(...)``: the registry finds it there (it holds
no family data itself), the tests read the figures from it, and the build scaffold reads
the family's default preprocessing and variant table to name and describe each model.
"""

import ast
import dataclasses
import inspect
from dataclasses import dataclass, field

# How inputs are prepared is its own concept (the model card carries it); re-exported here for
# the family tables and for code written against 0.1.0.
from keras_lightnets.layers.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_PREPROCESSING,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_PREPROCESSING,
    INCEPTION_STD,
    Preprocessing,
)
from keras_lightnets.models.arguments import UnknownArgumentError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_PREPROCESSING",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_PREPROCESSING",
    "INCEPTION_STD",
    "Family",
    "Preprocessing",
    "Reference",
    "UnknownArgumentError",
    "Variant",
    "WeightSource",
    "json_safe",
    "keras_source",
    "nchw_flatten_rows",
    "timm_source",
    "torchvision_source",
]


@dataclass(frozen=True)
class Reference:
    """Published figures of a variant.

    Attributes:
        params: trainable parameters, exact (PyTorch convention: BatchNorm statistics excluded).
        macs_m: multiply-accumulates in millions at ``input_size``.
        top1: ImageNet-1k top-1 (%) or ``None`` where none is published.
        source: where the figures come from.
        input_size: the ``(height, width, channels)`` the MACs are stated at.
        deploy_params, deploy_macs_m: the same after :func:`keras_lightnets.reparameterize`, for
            families with a fused deploy form (RepVGG, ParNet); ``None`` otherwise.
    """

    params: int
    macs_m: float
    top1: float | None
    source: str
    input_size: tuple = (224, 224, 3)
    deploy_params: int | None = None
    deploy_macs_m: float | None = None


TORCHVISION_LICENSE = "BSD-3-Clause (torchvision); ImageNet terms of access apply to the weights"
TORCHVISION_HOST = "https://download.pytorch.org/models/"
HUB_HOST = "https://huggingface.co/"
KERAS_HOST = "https://storage.googleapis.com/"
KERAS_FOLDER = "tensorflow/keras-applications/"
KERAS_LICENSE = "Apache-2.0 (keras.applications); ImageNet terms of access apply to the weights"
HASH_ALGORITHMS = {"sha256": 64, "md5": 32}


@dataclass(frozen=True)
class WeightSource:
    """A published checkpoint of one variant.

    Attributes:
        tag: its name for ``weights=`` (timm's style: ``"tv_in1k"``).
        url: the publisher's URL.
        layout: the checkpoint's key layout, a key of
            :func:`keras_lightnets.weights.checkpoint_layouts` for the variant (``"torchvision"``,
            ``"timm"``, ``"keras"``).
        top1: the ImageNet-1k top-1 (%) the publisher reports for it.
        license: the publisher's terms.
        file_hash: the file's digest (hex), or its first digits where that is all the publisher
            states (torchvision puts 8 to 10 in the file name); checked after download. ``None``:
            the digest the host itself publishes with the file is fetched and checked (the Hugging
            Face Hub's SHA-256 of the stored object, Google Cloud Storage's MD5), so no file is
            ever used unverified.
        hash_algorithm: ``"sha256"`` or ``"md5"`` (what keras.applications states for ResNet).
        preprocessing: the preprocessing these weights were trained and evaluated with, where it
            is not the variant's (timm's ``tv2_in1k`` crops at 0.965, ``ap_in1k`` uses the
            Inception mean and std); a model built with them carries it in its model card.
        filename: the name in the cache; default the URL's last part (for a Hub file, the
            repository's name, since every timm repository calls its file ``model.safetensors``).
        insecure_http: the publisher serves the file over plain ``http://`` only (Cadene's
            pretrainedmodels host); allowed only with a ``file_hash`` from the publisher, which the
            download is checked against, so a tampered file is refused as over https.
    """

    tag: str
    url: str
    layout: str
    top1: float | None
    license: str
    file_hash: str | None = None
    hash_algorithm: str = "sha256"
    preprocessing: "Preprocessing | None" = None
    filename: str = ""
    insecure_http: bool = False

    def __post_init__(self):
        plain_http = self.insecure_http and self.url.startswith("http://")
        if not self.url.startswith("https://") and not plain_http:
            raise ValueError(
                f"weight source {self.tag!r}: the url must be https (or http with insecure_http=True and a "
                f"file_hash), got {self.url!r}"
            )
        if plain_http and not self.file_hash:
            raise ValueError(f"weight source {self.tag!r}: an http url (insecure_http=True) needs the file_hash")
        if self.hash_algorithm not in HASH_ALGORITHMS:
            raise ValueError(f"weight source {self.tag!r}: hash_algorithm must be one of {sorted(HASH_ALGORITHMS)}")
        digest = self.file_hash
        if digest is not None and (
            not 8 <= len(digest) <= HASH_ALGORITHMS[self.hash_algorithm]
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(f"weight source {self.tag!r}: file_hash must be 8 or more lowercase hex digits")
        if not self.filename:
            name = self.url.rsplit("/", 1)[-1]
            if self.url.startswith(HUB_HOST) and "/resolve/" in self.url:
                name = self.url[len(HUB_HOST) :].split("/resolve/")[0].split("/")[-1] + "." + name.rsplit(".", 1)[-1]
            object.__setattr__(self, "filename", name)


def torchvision_source(filename, top1, tag="tv_in1k"):
    """A checkpoint on torchvision's host; its file name ends in ``-<first hex digits of its sha256>.pth``."""
    digest = filename.rsplit("-", 1)[-1].split(".", 1)[0]
    return WeightSource(
        tag=tag, url=TORCHVISION_HOST + filename, layout="torchvision", top1=top1, license=TORCHVISION_LICENSE,
        file_hash=digest,
    )  # fmt: skip


def timm_source(name, top1, license, preprocessing=None, layout="timm"):
    """A timm checkpoint on the Hugging Face Hub, ``name`` being timm's ``model.tag``
    (``"rexnet_100.nav_in1k"``): ``https://huggingface.co/timm/<name>/resolve/main/model.safetensors``,
    verified against the SHA-256 the Hub states for it. ``top1``: timm's results table at the
    weights' evaluation size."""
    tag = name.split(".", 1)[1]
    return WeightSource(
        tag=tag, url=f"{HUB_HOST}timm/{name}/resolve/main/model.safetensors", layout=layout, top1=top1,
        license=license, preprocessing=preprocessing,
    )  # fmt: skip


def keras_source(path, top1, file_hash=None, hash_algorithm="md5", tag="keras_in1k", host_folder=True):
    """A keras.applications weights file: ``path`` under ``tensorflow/keras-applications/`` on its
    host (directly under the host with ``host_folder=False``), with the digest keras.applications'
    source states where it states one, else the MD5 the host states for it."""
    url = KERAS_HOST + (KERAS_FOLDER if host_folder else "") + path
    return WeightSource(
        tag=tag,
        url=url,
        layout="keras",
        top1=top1,
        license=KERAS_LICENSE,
        file_hash=file_hash,
        hash_algorithm=hash_algorithm,
    )


def nchw_flatten_rows(channels, height, width):
    """The key-map transform for a Linear that reads a flattened ``(channels, height, width)`` NCHW map,
    loaded into a ``Dense`` that reads the same map flattened from NHWC (AlexNet's and VGG's fc1).

    PyTorch's ``flatten`` numbers the map's elements ``c * H * W + h * W + w``, Keras's ``Flatten``
    of an NHWC map ``h * W * C + w * C + c``: the Linear's weight ``(out, C * H * W)`` gets its
    input axis reordered to ``(out, H * W * C)`` (then transposed like any Linear); the bias is
    unchanged. A weight of another input size raises ``ValueError`` naming the map it expects
    (the load lists it with the shape mismatches, nothing is written).
    """
    features = channels * height * width

    def transform(suffix, value):
        if suffix != "weight":
            return value
        if value.ndim != 2 or value.shape[1] != features:
            raise ValueError(
                f"expected a Linear weight (out, {features}) reading a flattened {channels}x{height}x{width} "
                f"(C x H x W) map"
            )
        return value.reshape(-1, channels, height, width).transpose(0, 2, 3, 1).reshape(value.shape[0], features)

    return transform


def json_safe(arguments):
    """``{argument: value}`` as a model card records it: primitives as they are, tuples and lists
    of primitives as lists, anything else (a callable activation) as its repr."""
    primitive = (str, int, float, bool, type(None))

    def safe(value):
        if isinstance(value, primitive):
            return value
        if isinstance(value, (tuple, list)) and all(isinstance(item, primitive) for item in value):
            return list(value)
        return repr(value)

    return {key: safe(value) for key, value in arguments.items()}


@dataclass(frozen=True)
class Variant:
    """One registered model: a name for a constructor call with fixed arguments.

    Attributes:
        name: the registered name (``"rexnet_100"``).
        kwargs: the constructor arguments that make this variant (``{"width": 1.0}``).
        reference: its published :class:`Reference` figures.
        equals: the implementation its outputs are tested against, with weights copied:
            ``"timm:rexnet_100"``, ``"torchvision:squeezenet1_1"``,
            ``"keras:MobileNetV2(alpha=0.75)"``, or ``"golden"`` (stored tensors, when no
            reference can be installed).
        preprocessing: ``None``: the family's.
        key_map: how the reference's PyTorch state dict maps onto our layer names (see
            :func:`keras_lightnets.weights.load_torch_weights`), where the reference is PyTorch.
        layouts: other checkpoint layouts this variant's weights are published in,
            ``{layout name: key map}`` (``{"efficientnet_pytorch": ...}``);
            :func:`keras_lightnets.weights.load_checkpoint` picks the one that maps every key
            of a checkpoint, ``key_map`` included (under the reference's kind, ``"timm"``).
        weights: the published checkpoints this variant loads (:class:`WeightSource`); the first
            is ``weights="imagenet"``.
        defaults: constructor arguments that are not architecture but that this variant sets
            unless overridden (``{"classes": 10}`` for a CIFAR-10 model); they also tell apart
            variants with one architecture (``parnet_cifar10`` / ``parnet_cifar100``).
        compared: whether the test suite runs this variant next to ``equals`` and compares the
            outputs. Every code path of a family is compared; a variant that differs from a
            compared sibling only in its numbers (a RegNet's widths, a ResNet's depth) keeps
            its exact parameter and MAC checks but is not run against its reference, to keep
            the suite within its time budget.
        family: set by :class:`Family` (the family's name).
        constructor: set by :class:`Family` (the family's constructor).
        architecture: set by :class:`Family`: every architecture argument of this variant, its
            ``kwargs`` over the constructor's defaults, in JSON-safe form (what a model card records).
    """

    name: str
    kwargs: dict
    reference: Reference
    equals: str
    preprocessing: Preprocessing | None = None
    key_map: object = None
    layouts: dict = field(default_factory=dict)
    weights: tuple = ()
    defaults: dict = field(default_factory=dict)
    compared: bool = True
    family: str = ""
    constructor: object = None
    architecture: dict = field(default_factory=dict, compare=False)

    @property
    def builder(self):
        return self.constructor

    @property
    def reference_call(self):
        """``(kind, name, kwargs)`` of :attr:`equals`: ``"timm:rexnet_100(width_mult=0.9)"`` is
        ``("timm", "rexnet_100", {"width_mult": 0.9})``; ``"golden"`` is ``("golden", None, {})``."""
        kind, _, call = self.equals.partition(":")
        if not call:
            return kind, None, {}
        name, _, arguments = call.partition("(")
        kwargs = {}
        if arguments:
            parsed = ast.parse(f"f({arguments}", mode="eval").body
            kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in parsed.keywords}
        return kind, name, kwargs

    def build(self, **overrides):
        """The model with the variant's arguments, ``overrides`` taking precedence.

        An override that changes the architecture gives a model named after what it is
        (``create_model("rexnet_100", width=2.0)`` is ``rexnet_200``; an unregistered
        architecture gets a ``_custom`` name), never a published name it does not match.

        An argument the family's constructor does not take raises
        :class:`~keras_lightnets.models.arguments.UnknownArgumentError` (a ``ValueError`` and a
        ``TypeError``) naming it and the families that take it (``aux_logits``: GoogLeNet's
        auxiliary classifiers): the constructor's own check, the same as for a direct call.
        """
        return self.constructor(**{**self.defaults, **self.kwargs, **overrides})

    @property
    def classes(self):
        """The number of classes this variant builds by default (1000: ImageNet)."""
        return self.defaults.get("classes", 1000)


def _include_preprocessing_default(parameters):
    """``{"include_preprocessing": default}`` of a constructor's signature, ``{}`` without that argument."""
    if "include_preprocessing" not in parameters:
        return {}
    return {"include_preprocessing": parameters["include_preprocessing"].default}


@dataclass(frozen=True)
class Family:
    """A model family: its constructor, default preprocessing and variant table.

    Attributes:
        name: the family's name (``"rexnet"``); training recipes are keyed by it.
        constructor: the keras.applications-style constructor (``ReXNet``).
        variants: the registered :class:`Variant` rows.
        preprocessing: the default for variants that state none.
        architecture_args: the constructor arguments that define the architecture (widths,
            versions, activations, paddings): a model whose values match a variant's is that
            variant. Everything else (head, input, dropout, weights) does not change it.
        min_input_size: the smallest input height and width every variant builds at (AlexNet's
            11x11/4 stem and three pools need 63 pixels); what tests that build each family small
            read.
    """

    name: str
    constructor: object
    variants: tuple
    architecture_args: tuple
    preprocessing: Preprocessing = IMAGENET_PREPROCESSING
    min_input_size: int = 32
    variants_by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        # The constructor's signature states each architecture argument's default, once; a
        # variant's table row states only what it changes.
        parameters = inspect.signature(self.constructor).parameters
        defaults = {key: parameters[key].default for key in self.architecture_args if key in parameters}
        for variant in self.variants:
            unknown = set(variant.kwargs) - set(self.architecture_args)
            if unknown:
                raise ValueError(f"variant {variant.name!r} sets {sorted(unknown)}, not architecture arguments")
        variants = tuple(
            dataclasses.replace(
                variant,
                family=self.name,
                constructor=self.constructor,
                # in_graph as the variant builds by default: a pipeline feeding it (fit's) must not
                # normalize what the model normalizes again.
                preprocessing=dataclasses.replace(
                    variant.preprocessing or self.preprocessing,
                    in_graph=bool(
                        {**_include_preprocessing_default(parameters), **variant.defaults}.get("include_preprocessing")
                    ),
                ),
                architecture=json_safe({**defaults, **variant.kwargs}),
            )
            for variant in self.variants
        )
        object.__setattr__(self, "variants", variants)
        object.__setattr__(self, "variants_by_name", {variant.name: variant for variant in variants})

    def architecture_of(self, arguments):
        """``{argument: value}`` of this family's architecture arguments out of a constructor's ``locals()``."""
        return {key: arguments[key] for key in self.architecture_args}

    def variant_for(self, architecture, classes):
        """The registered variant that ``architecture`` (``{argument: value}`` of every
        architecture argument) builds, or ``None``; of several with one architecture
        (``parnet_cifar10`` / ``parnet_cifar100``) the one whose default ``classes`` it has."""
        recorded = json_safe(architecture)
        candidates = [variant for variant in self.variants if variant.architecture == recorded]
        return next((v for v in candidates if v.classes == classes), candidates[0] if candidates else None)
