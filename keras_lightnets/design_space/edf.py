"""Empirical distribution functions of errors: how the RegNet paper compares design spaces.

``F(e)`` is the fraction of a space's sampled models whose error is below ``e``; a space whose
EDF lies to the left of another's holds more good models. Comparing EDFs of ``n`` samples per
space (the paper uses 500 at 400 MF) is robust where comparing the best model of each is not.
"""

import numpy as np

__all__ = ["edf", "plot_edfs"]


def edf(errors):
    """``(sorted errors, F)``: ``F[i]`` is the fraction of the errors ``<= sorted errors[i]``."""
    values = np.sort(np.asarray(errors, dtype=np.float64).ravel())
    if values.size == 0:
        raise ValueError("`errors` must hold at least one error")
    if not np.isfinite(values).all():
        raise ValueError(f"`errors` must be finite numbers, got {values[~np.isfinite(values)][:3].tolist()} among them")
    return values, np.arange(1, values.size + 1) / values.size


def plot_edfs(errors_by_space, path, *, title="Error EDFs", xlabel="error (%)"):
    """Draws every space's EDF on one axis (a step line each, ``n`` in the legend) and saves a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not errors_by_space:
        raise ValueError("`errors_by_space` must map at least one space name to its errors")
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for name, errors in errors_by_space.items():
        values, fraction = edf(errors)
        axis.step(values, fraction, where="post", label=f"{name} (n={values.size})")
    axis.set(xlabel=xlabel, ylabel="cumulative prob.", title=title, ylim=(0, 1))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
