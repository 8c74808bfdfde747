"""``benchmark_tflite``: latency of a ``.tflite`` at batch 1 with the XNNPACK delegate.

Measures what a phone's app sees per frame: one image, ``invoke()`` timed with
``time.perf_counter`` after warm-up runs (the first invokes pay XNNPACK's weight packing).
Reports the median and the 90th percentile, which are robust to the odd scheduling hiccup.
"""

import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from keras_lightnets.checks import check_int
from keras_lightnets.deploy.interpreter import TFLiteRunner

__all__ = ["BenchmarkResult", "benchmark_tflite"]


@dataclass(frozen=True)
class BenchmarkResult:
    """Latency in milliseconds over ``runs`` timed invokes; ``delegated`` tells whether XNNPACK took the graph."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    threads: int
    size_bytes: int
    delegated: bool

    def as_dict(self):
        return asdict(self)


def benchmark_tflite(path, *, threads=1, runs=50, warmup=5, seed=0, verbose=False):
    """Latency (median, p90) of the ``.tflite`` at ``path`` for batch 1 on ``threads`` CPU threads, XNNPACK on."""
    for name, value, minimum in (("threads", threads, 1), ("runs", runs, 1), ("warmup", warmup, 0)):
        check_int(value, name, minimum)
    runner = TFLiteRunner(path, threads=threads)
    image = np.random.default_rng(seed).standard_normal((1, *runner.input_shape)).astype(np.float32)
    for _ in range(warmup):
        runner.invoke(image)
    times = []
    for _ in tqdm(range(runs), desc="benchmark", unit="run", disable=not verbose):
        start = time.perf_counter()
        runner.invoke(image)
        times.append((time.perf_counter() - start) * 1000.0)
    ops = runner.interpreter._get_ops_details()  # a delegated graph shows DELEGATE nodes
    return BenchmarkResult(
        median_ms=float(np.median(times)),
        p90_ms=float(np.percentile(times, 90)),
        mean_ms=float(np.mean(times)),
        min_ms=float(np.min(times)),
        runs=runs,
        threads=runner.threads,
        size_bytes=len(runner.content),
        delegated=any(op["op_name"] == "DELEGATE" for op in ops),
    )
