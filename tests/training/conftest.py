"""Fixtures of the training tests: the bundled dataset prepared once, and a small finished run.

Models stay tiny (``mobilenetv2_035`` at 32x32, a few steps per epoch): the point is what
a run writes and how it resumes, not accuracy.
"""

import pytest
from training_helpers import MODEL, SMALL_RUN

from keras_lightnets.data import dataset_info


def pytest_collection_modifyitems(items):
    # Under pytest-xdist (--dist loadgroup) a module's tests of the finished run share one worker,
    # so the module-scoped run trains once rather than once per worker (40 s each).
    for item in items:
        if "finished_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(f"finished_run:{item.module.__name__}"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A TFDS data dir with lightnets_digits prepared (offline), shared by in-process runs and subprocesses."""
    path = tmp_path_factory.mktemp("training_tfds")
    dataset_info(data_dir=str(path))
    return str(path)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir):
    """A 2-epoch run of MODEL (4 steps per epoch) in its own folder, trained once per test module."""
    from keras_lightnets.training import fit

    output = tmp_path_factory.mktemp("finished_run") / "run"
    return fit(MODEL, output_dir=output, data_dir=data_dir, **SMALL_RUN)
