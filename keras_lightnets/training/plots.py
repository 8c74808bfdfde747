"""Loss and accuracy curves of a run, as a PNG (matplotlib's Agg canvas: no display, no pyplot state)."""

import io

from keras_lightnets.training.run_dir import atomic_write_bytes

__all__ = ["plot_curves"]


def plot_curves(rows, path, *, title=None):
    """Draws loss and accuracy per epoch (training and ``val_`` curves) from history rows to ``path``.

    ``rows`` are dicts with an ``epoch`` key (history.csv's rows). The PNG is rendered in
    memory and written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    epochs = [row["epoch"] + 1 for row in rows]  # 1-based, as Keras's progress bar counts
    for index, metric in enumerate(("loss", "accuracy")):
        axes = figure.add_subplot(1, 2, index + 1)
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            values = [row.get(key) for row in rows]
            points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
            if points:
                axes.plot(*zip(*points, strict=True), style, label=label, markersize=3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
