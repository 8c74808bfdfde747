"""Writes the registry's model and weights tables into README.md between their markers.

python scripts/model_table.py          # rewrite the table
python scripts/model_table.py --check  # exit 1 when the README is stale
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
TABLES = {"models": "markdown_table", "weights": "weights_table"}  # marker name → registry function


def render(readme_text):
    from keras_lightnets import registry

    for marker, function in TABLES.items():
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        head, rest = readme_text.split(start, 1)
        _, tail = rest.split(end, 1)
        readme_text = f"{head}{start}\n{getattr(registry, function)()}\n{end}{tail}"
    return readme_text


def main(argv):
    with open(README, encoding="utf-8") as handle:
        current = handle.read()
    updated = render(current)
    if "--check" in argv:
        if updated != current:
            print("README.md model or weights table is stale: run python scripts/model_table.py", file=sys.stderr)
            return 1
        return 0
    tmp = README + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(updated)
    os.replace(tmp, README)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
