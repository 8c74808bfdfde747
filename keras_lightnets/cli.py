"""The ``lightnets`` command.

lightnets info                 every registered model: measured vs published params and MACs
lightnets info rexnet_100      one model in detail (profile, reference, preprocessing)
lightnets list [PATTERN]       registered names
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _fmt_top1(top1):
    return "—" if top1 is None else f"{top1:.2f}"


def _info_table(names, out):
    import keras
    from tqdm import tqdm

    from keras_lightnets.profile import profile
    from keras_lightnets.registry import get_entry

    header = (
        f"{'model':30s} {'params':>12s} {'published':>12s} {'':2s} {'MACs (M)':>9s} {'published':>9s} "
        f"{'diff':>7s} {'top-1':>6s}  source"
    )
    rows, mismatches = [], 0
    for name in tqdm(names, desc="building", unit="model", file=sys.stderr, disable=len(names) < 2):
        entry = get_entry(name)
        measured = profile(entry.build())
        keras.backend.clear_session()
        ref = entry.reference
        same = measured.params == ref.params
        mismatches += not same
        macs_m = measured.macs / 1e6
        rows.append(
            f"{name:30s} {measured.params:>12,d} {ref.params:>12,d} {'ok' if same else '!!':2s} {macs_m:>9.1f} "
            f"{ref.macs_m:>9.1f} {100 * (macs_m / ref.macs_m - 1):>+6.2f}% {_fmt_top1(ref.top1):>6s}  {ref.source}"
        )
    print(header, file=out)
    print("\n".join(rows), file=out)
    print(
        f"\n{len(names) - mismatches}/{len(names)} models match their published parameter count exactly "
        "(params: trainable, PyTorch convention; MACs at 224x224).",
        file=out,
    )
    return 0 if mismatches == 0 else 1


def _info_one(name, out):
    from keras_lightnets.profile import profile
    from keras_lightnets.registry import get_entry

    entry = get_entry(name)
    model = entry.build()
    measured = profile(model)
    ref, prep = entry.reference, entry.preprocessing
    arguments = ", ".join(f"{key}={value!r}" for key, value in entry.kwargs.items())
    lines = [
        f"{name} ({entry.family}, {entry.builder.__name__}({arguments}))",
        f"  params       {measured.params:>14,d}   published {ref.params:,d}"
        f" {'(exact)' if measured.params == ref.params else '(MISMATCH)'}",
        f"  MACs         {measured.macs:>14,d}   published {ref.macs_m:.1f} M",
        f"  activations  {measured.activations:>14,d}",
        f"  depth        {measured.depth:>14d}   conv/dense layers on the longest path",
        f"  Keras total  {model.count_params():>14,d}   incl. BatchNorm statistics",
        f"  top-1        {_fmt_top1(ref.top1):>14s}   {ref.source}",
        f"  input        {prep.input_size}, mean {prep.mean}, std {prep.std}, crop {prep.crop_pct}, "
        f"{prep.interpolation}",
    ]
    print("\n".join(lines), file=out)
    return 0 if measured.params == ref.params else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lightnets", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="measured vs published params/MACs of registered models")
    info.add_argument("names", nargs="*", help="model names or shell patterns (default: all)")
    listing = commands.add_parser("list", help="registered model names")
    listing.add_argument("pattern", nargs="?", default=None, help="shell-style pattern, e.g. 'rexnet*'")
    return parser


def _expand(patterns):
    from keras_lightnets.registry import get_entry, list_models

    if not patterns:
        return list_models()
    names = []
    for pattern in patterns:
        if any(char in pattern for char in "*?["):
            matched = list_models(pattern)
            if not matched:
                raise ValueError(f"no registered model matches {pattern!r}")
            names += matched
        else:
            names.append(get_entry(pattern).name)
    return names


def main(argv=None, out=None):
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            from keras_lightnets.registry import list_models

            print("\n".join(list_models(args.pattern)), file=out)
            return 0
        names = _expand(args.names)
    except ValueError as error:
        print(f"lightnets: error: {error}", file=sys.stderr)
        return 2
    if len(names) == 1:
        return _info_one(names[0], out)
    return _info_table(names, out)


if __name__ == "__main__":
    sys.exit(main())
