"""Writes keras_lightnets/imagenet_classes.tsv: the 1000 ImageNet-1k classes in label order.

Label order is TFDS ``imagenet2012``'s (sorted WordNet ids, the order every published
checkpoint's classifier uses); the names are WordNet's lemmas as timm ships them
(``timm/data/_info/imagenet_synset_to_lemma.txt``). Run once, offline, in the test environment:

    python scripts/make_imagenet_classes.py
"""

import importlib.util
from pathlib import Path

import tensorflow_datasets as tfds

# Read as a file: importing timm would import torchvision (see tests/torch_reference.py).
TIMM_INFO = Path(importlib.util.find_spec("timm").submodule_search_locations[0]) / "data" / "_info"
OUTPUT = Path(__file__).resolve().parents[1] / "keras_lightnets" / "imagenet_classes.tsv"


def main():
    wnids = tfds.builder("imagenet2012").info.features["label"].names
    lemmas = dict(line.split("\t", 1) for line in (TIMM_INFO / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    lines = [f"{wnid}\t{lemmas[wnid].strip()}" for wnid in wnids]
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} classes to {OUTPUT}")


if __name__ == "__main__":
    main()
