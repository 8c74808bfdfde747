"""What a large registered model costs to build and run once: graph time, build time with weights,
memory, and one batch-1 forward pass at its published input size, against a peer in the same run.

    python benchmarks/build_cost.py                                   # polynet against resnet152
    python benchmarks/build_cost.py --models pyramidnet200_a450 dpn131 --peer resnet152

Each model is measured in a fresh Python process (its peak resident memory is then its own), in
the order given, the peer first. Rows of earlier runs for other models are kept: results are
merged by model name into ``benchmarks/results/build_cost.{md,json}`` (written atomically), so each
family's largest model can be added by its own run. Times are wall-clock seconds on whatever else
the machine is doing: the load average at the start is in the report, and the ratio column divides
by the peer measured in the same run.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODELS = ("polynet",)
DEFAULT_PEER = "resnet152"


def measure(name):
    """Runs in the child process: the measurements of one model, as a dict."""
    import resource
    import time

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import numpy as np

    import keras_lightnets as kl

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    entry = kl.get_entry(name)
    shape = tuple(entry.reference.input_size)
    baseline = peak_mib()
    start = time.perf_counter()
    with keras.StatelessScope():  # the graph alone: layers declared, no weight values
        graph = entry.build(input_shape=shape)
    graph_seconds = time.perf_counter() - start
    layers = len(graph.layers)
    del graph
    keras.backend.clear_session()
    start = time.perf_counter()
    model = entry.build(input_shape=shape)
    build_seconds = time.perf_counter() - start
    after_build = peak_mib()
    profile = kl.profile(model)
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    start = time.perf_counter()
    model(x, training=False)
    first_call = time.perf_counter() - start
    start = time.perf_counter()
    model(x, training=False)
    second_call = time.perf_counter() - start
    return {
        "model": name,
        "input": f"{shape[0]}x{shape[1]}",
        "params": profile.params,
        "macs_g": round(profile.macs / 1e9, 2),
        "layers": layers,
        "weights_mib": round(sum(int(np.prod(w.shape)) * 4 for w in model.weights) / 2**20, 1),
        "graph_s": round(graph_seconds, 2),
        "build_s": round(build_seconds, 2),
        "build_peak_mib": round(after_build - baseline),
        "first_call_s": round(first_call, 2),
        "second_call_s": round(second_call, 2),
        "peak_mib": round(peak_mib() - baseline),
    }


def _child(name):
    result = subprocess.run(
        [sys.executable, __file__, "--child", name], capture_output=True, text=True, check=False, env=os.environ
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"measuring {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def _report(rows, environment):
    from _harness import markdown_table

    header = [
        "model", "input", "params", "GMACs", "layers", "weights (MiB)", "graph only (s)", "build (s)",
        "build vs peer", "memory after build (MiB)", "first call (s)", "second call (s)", "peak memory (MiB)",
    ]  # fmt: skip
    table = [
        [
            f"`{r['model']}`", r["input"], f"{r['params']:,}", f"{r['macs_g']:.2f}", str(r["layers"]),
            f"{r['weights_mib']:,.1f}", f"{r['graph_s']:.2f}", f"{r['build_s']:.2f}",
            "peer" if r.get("peer") == r["model"] else f"{r['build_s'] / r['peer_build_s']:.2f}x `{r['peer']}`",
            f"{r['build_peak_mib']:,}", f"{r['first_call_s']:.2f}", f"{r['second_call_s']:.2f}", f"{r['peak_mib']:,}",
        ]
        for r in rows
    ]  # fmt: skip
    env = ", ".join(f"{key} {value}" for key, value in environment.items())
    return (
        "# Build time and memory of the largest models\n\n"
        "`python benchmarks/build_cost.py`: each model in a fresh process, at its published input size, "
        "batch 1, float32, CPU. *Graph only*: the Functional graph built in a `keras.StatelessScope` (no "
        "weight values); *build*: `kl.create_model` with its weights initialized; memory: the process's "
        "peak resident memory above what the imports took; *first call*: `model(x)` eagerly, once; "
        "*second call*: the same again. *vs peer*: build time over the peer's in the same run.\n\n"
        f"{markdown_table(header, table)}\n\nLast run: {env}.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--peer", default=DEFAULT_PEER, help="registered model measured first, the ratios' base")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    from _harness import environment, write_atomic

    env = {**environment(), "load_average_1min": round(os.getloadavg()[0], 2)}
    peer = _child(args.peer)
    measured = [peer]
    for name in args.models:
        print(f"measuring {name} ...", flush=True)
        measured.append(_child(name))
    for row in measured:
        row.update(peer=args.peer, peer_build_s=peer["build_s"])
        print(json.dumps(row))

    json_path = args.output_dir / "build_cost.json"
    previous = json.loads(json_path.read_text())["rows"] if json_path.is_file() else []
    rows = {row["model"]: row for row in previous}
    rows.update({row["model"]: row for row in measured})
    ordered = sorted(rows.values(), key=lambda row: -row["params"])
    write_atomic(json_path, json.dumps({"environment": env, "rows": ordered}, indent=1) + "\n")
    write_atomic(args.output_dir / "build_cost.md", _report(ordered, env))
    print(f"wrote {json_path} and build_cost.md")


if __name__ == "__main__":
    main()
