"""PNG pictures of a run: learning curves, confusion matrix, gradient flow (matplotlib, Agg).

matplotlib's object-oriented API (a Figure on an Agg canvas), not pyplot: pyplot's import adds its figure
manager and backend machinery to every run that writes plots (benchmarks/startup.py measures the run), and
a library keeps no global figures. Layout by tight_layout, measured against constrained layout (slower here)
and fixed margins (about 30 ms a figure faster, but they clip long tick labels of a target's units).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(figsize: tuple, columns: int = 1):
    """(figure, axes) on an Agg canvas: files only, no display, no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, columns)


def _save(fig, path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def plot_curves(history, folder, loss_label: str = "loss") -> list[Path]:
    """loss.png (train and validation loss per epoch) and, for classifiers, accuracy.png; ``loss_label`` says
    what the loss is of (a regression's loss is on its standardized targets). ``history`` may be a list of the
    folds' histories of a cross-fitted run: one colour per fold, its validation curve dashed."""
    written = []
    histories = history if isinstance(history, list) else [history]
    for metric in ("loss", "accuracy"):
        if metric not in histories[0]:
            continue
        fig, ax = _figure((6, 4))
        for i, h in enumerate(histories):
            epochs, fold = np.arange(1, len(h) + 1), f"fold {i + 1} " if len(histories) > 1 else ""
            line = ax.plot(epochs, h[metric], label=f"{fold}training {metric}")[0]
            if f"val_{metric}" in h:
                style = {"color": line.get_color(), "linestyle": "--"} if fold else {}
                ax.plot(epochs, h[f"val_{metric}"], label=f"{fold}validation {metric}", **style)
        ax.set_xlabel("epoch")
        ax.set_ylabel(loss_label if metric == "loss" else metric)
        ax.set_title(f"{'Loss' if metric == 'loss' else 'Accuracy'} per epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7 if len(histories) > 1 else None, ncols=2 if len(histories) > 1 else 1)
        written.append(_save(fig, Path(folder) / f"{metric}.png"))
    return written


def plot_predicted(predicted: np.ndarray, actual: np.ndarray, path) -> Path:
    """A regression's test predictions against the actual values (both in the target's units),
    with the diagonal where they would be equal."""
    predicted, actual = np.ravel(predicted), np.ravel(actual).astype(np.float64)
    fig, ax = _figure((5, 5))
    ax.scatter(actual, predicted, s=8, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="grey", linewidth=1, label="predicted = actual")
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.set_title("test set: predicted against actual")
    ax.legend()
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, class_names: list, path, title: str = "Confusion matrix, test set") -> Path:
    """The confusion matrix: rows true labels, columns predictions, counts in the cells (readable from 2 classes
    to a few dozen: at least 4.5 inches a side)."""
    n = matrix.shape[0]
    side = max(4.5, 1.2 + 0.6 * n)
    fig, ax = _figure((side + 0.6, side))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="test rows")
    ticks = np.arange(n)
    ax.set_xticks(ticks, [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} ({int(np.trace(matrix))} of {int(matrix.sum())} right)")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=10 if n <= 10 else 7,
                    color="white" if matrix[i, j] > threshold else "black")
    return _save(fig, path)


def plot_gradient_flow(flow, path) -> Path:
    """Mean ||delta^l|| and ||dW^l|| per epoch for every layer l, on a log scale."""
    fig, axes = _figure((11, 4), columns=2)
    for ax, norms, name in ((axes[0], flow.delta_norms, "||delta^l||"), (axes[1], flow.dW_norms, "||dW^l||")):
        for l, values in norms.items():
            ax.plot(np.arange(1, len(values) + 1), values, label=f"layer {l}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"mean {name} per batch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)  # beside, not on, a line
    fig.suptitle("Gradient flow: how much error signal reaches each layer")
    return _save(fig, path)
