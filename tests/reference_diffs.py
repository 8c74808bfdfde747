"""Max abs differences measured against reference implementations, printed at the end of the run
(``tests/conftest.py``'s terminal summary). A module of its own: ``from conftest import`` would
pick whichever of the several conftest.py files was imported first."""

REFERENCE_DIFFS = []


def record_reference_diff(name, reference, diff):
    REFERENCE_DIFFS.append((name, reference, float(diff)))
