"""Every PyTorch-born variant against its reference, not only one per code path.

The test suite (``tests/models/test_torch_reference.py``) compares the variants marked ``compared``:
each code path of a family once, so that it stays inside its time budget. This benchmark compares
every variant whose registry row says ``equals="timm:..."`` or ``"torchvision:..."`` (default: the
families given with ``--families``, else all), the same way: the reference module built by timm /
torchvision, its weights copied through the variant's key map, random BatchNorm statistics, an odd
non-square input (161x190), max abs diff against ``1e-4 x max(1, output scale)``.

It needs the test extras (torch, timm, torchvision): ``bash scripts/test.sh`` installs them.

    python benchmarks/reference_outputs.py --families mobilenetv4 ghostnet mobileone
    python benchmarks/reference_outputs.py                 # every family (about an hour on 2 cores)
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # before keras is imported
TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))  # the comparison is the test suite's, not a second copy of it

import keras  # noqa: E402
from _harness import environment, markdown_table, write_atomic  # noqa: E402

import keras_lightnets as kl  # noqa: E402

sys.path.insert(0, str(TESTS / "models"))
from test_torch_reference import FIXED_HEAD_INPUT_SHAPES, INPUT_SHAPE, compare, reference_model, within_tolerance  # noqa: E402

DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=None, help="registry families (default: all)")
    parser.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help=f"where results go (default: {DEFAULT_OUTPUT_DIR})"
    )
    args = parser.parse_args(argv)
    known = set(kl.list_families())
    unknown = sorted(set(args.families or ()) - known)
    if unknown:
        parser.error(f"--families: unknown {unknown}; registered: {sorted(known)}")
    return args


def pytorch_born(families):
    """The variants with a timm / torchvision reference, of ``families`` (all when None)."""
    return [
        name
        for name in kl.list_models()
        if kl.get_entry(name).reference_call[0] in ("timm", "torchvision")
        and (families is None or kl.get_entry(name).family in families)
    ]


def measure(name):
    entry = kl.get_entry(name)
    torch, reference = reference_model(entry)
    input_shape = FIXED_HEAD_INPUT_SHAPES.get(entry.family, INPUT_SHAPE)
    ours = kl.create_model(name, input_shape=input_shape, classifier_activation=None)
    diff, scale = compare(torch, reference, ours, entry.key_map, input_shape)
    keras.backend.clear_session()
    return {
        "name": name,
        "reference": entry.equals,
        "compared_in_tests": entry.compared,
        "max_abs_diff": diff,
        "output_scale": scale,
        "relative": diff / max(1.0, scale),
        "within_tolerance": within_tolerance(diff, scale),
    }


def report(results, args, seconds):
    rows = [
        [
            f"`{r['name']}`",
            r["reference"],
            "yes" if r["compared_in_tests"] else "here",
            f"{r['max_abs_diff']:.2e}",
            f"{r['output_scale']:.2e}",
            f"{r['relative']:.2e}",
            "PASS" if r["within_tolerance"] else "FAIL",
        ]
        for r in results
    ]
    env = environment()
    passed = sum(r["within_tolerance"] for r in results)
    return "\n".join(
        [
            "# keras_lightnets: every PyTorch-born variant against its reference",
            "",
            f"- Date: {env['date']}; TensorFlow {env['tensorflow']}, Keras {env['keras']}, Python {env['python']}",
            f"- Families: {', '.join(args.families) if args.families else 'all'}; input 161x190 (AlexNet/VGG: "
            "their fixed-head sizes), random BatchNorm statistics, weights copied by the variant's key map",
            f"- {passed}/{len(results)} within 1e-4 x max(1, output scale); run time {seconds / 60:.1f} min",
            "",
            markdown_table(
                ["variant", "reference", "in the tests", "max abs diff", "output scale", "relative", "result"], rows
            ),
            "",
        ]
    )


def main(argv=None):
    args = parse_args(argv)
    names = pytorch_born(args.families)
    start, results = time.perf_counter(), []
    for index, name in enumerate(names, 1):
        results.append(measure(name))
        print(f"[reference_outputs] {index}/{len(names)} {name}: {results[-1]['relative']:.2e}", flush=True)
    text = report(results, args, time.perf_counter() - start)
    print(text)
    write_atomic(args.output_dir / "reference_outputs.md", text)
    write_atomic(args.output_dir / "reference_outputs.json", json.dumps(results, indent=1))
    return 0 if all(r["within_tolerance"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
