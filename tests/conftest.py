import gc
import os
import resource
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))  # tests/ helpers: torch_reference, golden
# Nothing in the suite downloads weights from the real hosts: every source URL points at the
# discard port unless a test points it at its own 127.0.0.1 publisher (tests/publisher.py).
os.environ["LIGHTNETS_WEIGHTS_MIRROR"] = "http://127.0.0.1:9"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from reference_diffs import REFERENCE_DIFFS  # noqa: E402

import keras_lightnets  # noqa: E402, F401

# The heavy imports above (TensorFlow, Keras, the package) leave millions of long-lived objects;
# every keras.backend.clear_session() below runs a full garbage collection that walked them all
# again (0.4-0.5 s of CPU per call, twice per test). Frozen objects are skipped by the collector.
gc.freeze()

# Reference diffs reported by the tests, gathered from the test reports: under pytest-xdist the
# tests run in worker processes, and only what travels in a report reaches this (the main) one.
_REPORTED_DIFFS = []


# Tests of a minute or more (notebooks, QAT per family, subprocess runs, a learning check). They
# are collected first: pytest-xdist hands out tests in collection order, and one of them left
# for the end runs alone on one worker while the other has nothing to do.
LONG_RUNNING = (
    "tests/test_tutorials.py",
    "tests/test_end_to_end_lite0.py",
    "tests/deploy/test_qat_every_family.py",
    "tests/training/test_resume.py",
    "tests/training/test_distributed.py",
    "tests/training/test_squeezenet_recipe.py",
    # MobileNetV3-Small trained, QAT fine-tuned and exported to INT8 on the digits: ~85 s of CPU
    "tests/deploy/test_mobilenetv3_digits.py",
    # Inception-v3 trained one step with its auxiliary classifier: ~45 s of CPU
    "tests/models/test_inception_v3.py::test_fit_",
    "tests/models/test_inception_v3.py::test_the_exported_file_",
)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_RUNNING))  # stable: same order on every worker


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # Prepare the bundled dataset once, here, before the workers start: two workers
        # preparing it at the same time on first use would race on TFDS's final rename.
        from keras_lightnets.data import dataset_info

        dataset_info("lightnets_digits")


@pytest.fixture(autouse=True)
def _report_reference_diffs(request):
    recorded = len(REFERENCE_DIFFS)
    yield
    for entry in REFERENCE_DIFFS[recorded:]:
        request.node.user_properties.append(("reference_diff", tuple(entry)))


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        _REPORTED_DIFFS.extend(tuple(value) for key, value in report.user_properties if key == "reference_diff")


def pytest_terminal_summary(terminalreporter):
    if not _REPORTED_DIFFS:
        return
    terminalreporter.section("max abs difference to reference implementations")
    for name, reference, diff in sorted(_REPORTED_DIFFS):
        terminalreporter.write_line(f"{name:34s} vs {reference:40s} {diff:.2e}")


# The suite's time budget: with LIGHTNETS_TEST_TIMES=FILE each test appends a line ``nodeid wall_s
# cpu_s`` as it finishes (cpu: this process and its children), so a run cut short still tells where
# the time goes, and CPU time stays meaningful on a busy machine where wall time does not.
_TEST_TIMES = os.environ.get("LIGHTNETS_TEST_TIMES")


def _cpu_seconds():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _TEST_TIMES:
        yield
        return
    wall, cpu = time.perf_counter(), _cpu_seconds()
    yield
    with open(_TEST_TIMES, "a") as times:
        times.write(f"{item.nodeid} {time.perf_counter() - wall:.2f} {_cpu_seconds() - cpu:.2f}\n")


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    # The previous test's teardown collected already: a second collection here would only walk the heap.
    keras.backend.clear_session(free_memory=False)
    yield
    keras.backend.clear_session()  # a collection: the objects the test left behind that are garbage
    # What survives that collection lives past the test (imported modules -- torch, timm, TFDS --,
    # caches, module fixtures). Frozen, it is skipped by every later collection: without this a worker's
    # per-test collection walked an ever larger heap, ~1 s per test late in a run (a test that only
    # raises a ValueError: 1 s in CI against 0.004 s in a fresh process), a third of the suite's time.
    gc.freeze()


# A frozen object that becomes cyclic garbage is never collected while frozen: a module fixture's model
# (Keras layers refer to each other) dies with its module. So a module's end brings one full collection of
# the whole heap (0.5-1 s), at most once a minute: pytest-xdist interleaves modules across the workers, and
# a collection at every switch of module cost ~2 min of the suite. What a minute of tests leaves is small.
FULL_COLLECTION_INTERVAL_S = 60.0
_last_full_collection = [time.monotonic()]


@pytest.fixture(autouse=True, scope="module")
def _collect_what_the_module_froze():
    yield
    if time.monotonic() - _last_full_collection[0] >= FULL_COLLECTION_INTERVAL_S:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _last_full_collection[0] = time.monotonic()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
