"""Writes the registry's model table into README.md between the `models` markers.

python scripts/model_table.py          # rewrite the table
python scripts/model_table.py --check  # exit 1 when the README is stale
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
START, END = "<!-- models:start -->", "<!-- models:end -->"


def render(readme_text):
    from keras_lightnets.registry import markdown_table

    head, rest = readme_text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def main(argv):
    with open(README, encoding="utf-8") as handle:
        current = handle.read()
    updated = render(current)
    if "--check" in argv:
        if updated != current:
            print("README.md model table is stale: run python scripts/model_table.py", file=sys.stderr)
            return 1
        return 0
    tmp = README + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(updated)
    os.replace(tmp, README)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
