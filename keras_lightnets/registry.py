"""Registered model names, indexed from the family modules' variant tables.

``list_models("rexnet*")`` and ``create_model("rexnet_100")`` work like timm's. The
registry holds no family data: each family file states its variants (published figures,
preprocessing, the reference each must equal) in its ``FAMILY``, and this module only
indexes them, so ``lightnets info``, the README table and the tests read the same numbers.
"""

import difflib
import fnmatch

from keras_lightnets.models import families as family_tables
from keras_lightnets.models.variant import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    Preprocessing,
    Reference,
    Variant,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_STD",
    "ModelEntry",
    "Preprocessing",
    "Reference",
    "create_model",
    "get_entry",
    "get_family",
    "list_families",
    "list_models",
    "list_weights",
    "representative_models",
    "suggest",
]

# A registered model is a family's :class:`Variant` (kept under its former name too).
ModelEntry = Variant


def _index():
    # The families' own Variant objects, indexed by name: the one store of variants.
    families, variants = {}, {}
    for family in family_tables():
        if family.name in families:
            raise RuntimeError(f"family {family.name!r} is defined twice")
        families[family.name] = family
        for variant in family.variants:
            if variant.name in variants:
                raise RuntimeError(
                    f"model {variant.name!r} is registered twice ({family.name}, {variants[variant.name].family})"
                )
            variants[variant.name] = variant
    return families, variants


_FAMILIES, _REGISTRY = _index()


def list_families():
    """Sorted family names (``"mobilenetv2"``, ``"rexnet"``, ...)."""
    return sorted(_FAMILIES)


def get_family(name):
    """The :class:`~keras_lightnets.models.variant.Family` called ``name``."""
    if name not in _FAMILIES:
        raise ValueError(f"unknown family {name!r}; families: {', '.join(list_families())}")
    return _FAMILIES[name]


def list_models(pattern=None):
    """Sorted registered names, optionally filtered by a shell-style ``pattern`` ("rexnet_*").

    Matching ignores case (registered names are lowercase, so ``"REXNET*"`` finds ReXNets), and
    a pattern without wildcards matches that one name. ``pattern=None`` lists every model; an
    empty (or blank) pattern raises ``ValueError`` rather than silently matching nothing, and so
    does a ``[`` without its ``]``: ``fnmatch`` would read it as a literal ``[``, which no
    registered name contains. A valid pattern that matches nothing returns ``[]``
    (:func:`suggest` then gives the closest names).
    """
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    if not isinstance(pattern, str):
        raise TypeError(f"`pattern` must be a string such as 'rexnet_*', got {pattern!r}")
    if not pattern.strip():
        raise ValueError(
            f"`pattern` must be a non-empty shell-style pattern such as 'rexnet_*', got {pattern!r}; "
            "pass None (or nothing) to list every model"
        )
    if _unclosed_bracket(pattern):
        raise ValueError(
            f"`pattern` {pattern!r} has a '[' without its ']': close the set ('mobilenetv[12]*') or drop the '['"
        )
    pattern = pattern.lower()
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]


def _unclosed_bracket(pattern):
    """Whether ``pattern`` has a ``[`` that ``fnmatch`` would take literally (no closing ``]``),
    following ``fnmatch.translate``'s rule: a ``]`` right after ``[`` or ``[!`` is a member."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                return True
            i = j
        i += 1
    return False


def suggest(name_or_pattern, n=5):
    """The registered names closest to ``name_or_pattern`` (wildcards ignored, case ignored), best first."""
    stem = "".join(char for char in str(name_or_pattern).lower() if char not in "*?[]!")
    if not stem:
        return []
    close = difflib.get_close_matches(stem, _REGISTRY, n=n, cutoff=0.5)
    # A prefix ("rexn*", "mobilenetv") is closer than difflib rates it against long names.
    prefixed = [name for name in sorted(_REGISTRY) if name.startswith(stem) and name not in close]
    return (close + prefixed)[:n]


def get_entry(name):
    """The :class:`Variant` for ``name``; a ``ValueError`` listing the closest names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {name!r}")
    if name not in _REGISTRY:
        close = suggest(name)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} `keras_lightnets.list_models()` lists all.")
    return _REGISTRY[name]


def list_weights(name):
    """The published checkpoints of the registered model ``name`` (:class:`WeightSource`: tag, url,
    layout, top-1, license, file hash, preprocessing), in order; the first is ``weights="imagenet"``.
    Empty when nobody publishes weights for it."""
    return get_entry(name).weights


def create_model(model_name, **overrides):
    """Builds the registered model ``model_name``; keyword ``overrides`` replace its arguments.

    ``create_model("rexnet_100", classes=10, input_shape=(160, 160, 3))``, or
    ``create_model(model_name="rexnet_100", ...)`` as in timm; ``name=``
    renames the Keras model (it defaults to the registered name). An override that changes
    the architecture names the model after what it is: ``create_model("rexnet_100",
    width=2.0)`` is ``rexnet_200``, ``create_model("rexnet_100", activation="relu")`` is
    ``rexnet_100_custom``; its :class:`~keras_lightnets.layers.ModelCard` records the arguments.

    An argument the variant's constructor does not take raises
    :class:`~keras_lightnets.models.arguments.UnknownArgumentError` naming the families that take
    it, the constructor's own check (:func:`~keras_lightnets.models.arguments.family_constructor`),
    so ``create_model("resnet50", aux_logits=True)`` and ``kl.ResNet(aux_logits=True)`` say the same.
    """
    return get_entry(model_name).build(**overrides)


def markdown_table():
    """The README's model table, generated from the registry (``scripts/model_table.py`` writes it)."""
    lines = [
        "| model | family | params | MACs | top-1 | reference | source |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for name in list_models():
        entry = _REGISTRY[name]
        ref = entry.reference
        top1 = "—" if ref.top1 is None else f"{ref.top1:.2f}"
        size = f" @{ref.input_size[0]}"
        lines.append(
            f"| `{name}` | {entry.family} | {ref.params:,} | {ref.macs_m:,.1f} M{size} | {top1} | {entry.equals} "
            f"| {ref.source} |"
        )
    return "\n".join(lines)


# Where each host's files come from, for the weights table.
_HOSTS = {
    "https://download.pytorch.org/": "torchvision",
    "https://huggingface.co/timm/": "timm (HF Hub)",
    "https://storage.googleapis.com/": "keras.applications",
    "http://data.lip6.fr/cadene/": "Cadene pretrainedmodels (http, SHA-256 checked)",
}


def weights_table():
    """The README's table of published weights, one row per variant (``scripts/model_table.py``)."""
    lines = [
        '| model | `weights=` tag: top-1 (%), the first is `"imagenet"` | from | license |',
        "|---|---|---|---|",
    ]
    for name in list_models():
        sources = _REGISTRY[name].weights
        if not sources:
            continue
        tags = " · ".join(f"`{s.tag}` {s.top1:.2f}" for s in sources)
        hosts = " / ".join(dict.fromkeys(next(v for k, v in _HOSTS.items() if s.url.startswith(k)) for s in sources))
        licenses = " / ".join(dict.fromkeys(s.license.split(" (")[0].split(";")[0] for s in sources))
        lines.append(f"| `{name}` | {tags} | {hosts} | {licenses} |")
    return "\n".join(lines)


def representative_models():
    """One registered name per family, its smallest variant by parameters: what per-family checks build."""
    smallest = {}
    for name in list_models():
        entry = _REGISTRY[name]
        best = smallest.get(entry.family)
        if best is None or entry.reference.params < _REGISTRY[best].reference.params:
            smallest[entry.family] = name
    return [smallest[family] for family in sorted(smallest)]
