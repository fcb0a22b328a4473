"""History: the per-epoch figures of training, one list per name; printed as a table, drawn in a notebook."""

from __future__ import annotations

import html
import math

SHOWN = 12  # a long history prints its first and last epochs


class History:
    """Per-epoch figures: ``history["loss"]``, ``["val_loss"]``, ``["accuracy"]``, ``["time"]``..."""

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    @classmethod
    def from_lists(cls, lists: dict) -> History:
        """A History of epochs 0..n-1 from {name: [one value per epoch]} (lists of equal length)."""
        history = cls()
        n = len(next(iter(lists.values()))) if lists else 0
        for i in range(n):
            history.append(i, {k: v[i] for k, v in lists.items()})
        return history

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={sorted(self.history)})"

    def _columns(self) -> list[str]:
        order = ["loss", "accuracy", "val_loss", "val_accuracy"]
        return [k for k in order if k in self.history] + sorted(set(self.history) - set(order) - {"time", "lr"}) + \
            [k for k in ("lr", "time") if k in self.history]

    def __str__(self) -> str:
        """The figures epoch by epoch (the first and last ones of a long run)."""
        if not len(self):
            return "History: no epochs yet"
        columns = self._columns()
        rows = [["epoch"] + columns]
        picked = range(len(self)) if len(self) <= SHOWN else \
            list(range(SHOWN // 2)) + [None] + list(range(len(self) - SHOWN // 2, len(self)))
        for e in picked:
            rows.append(["..."] * (len(columns) + 1) if e is None else
                        [str(self.epoch[e] + 1)] + [_cell(self.history[c][e], c) for c in columns])
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join([f"History: {len(self)} epoch(s)"] + lines)

    def _repr_html_(self) -> str:
        """The last epoch's figures and a small curve of the losses, for a notebook."""
        if not len(self):
            return "<div>History: no epochs yet</div>"
        last = "".join(f"<tr><th>{html.escape(c)}</th><td>{_cell(self.history[c][-1], c)}</td></tr>"
                       for c in self._columns())
        curves = [(k, colour) for k, colour in (("loss", "#2b6cb0"), ("val_loss", "#dd6b20")) if k in self.history]
        return (f"<div><strong>History: {len(self)} epoch(s)</strong> (last epoch below; print() it for every "
                f"epoch)<table>{last}</table>{_sparkline(self.history, curves)}</div>")


def _cell(value, column: str) -> str:
    if column == "time":
        return f"{value:.2f}s"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _sparkline(history: dict, curves: list, width: int = 320, height: int = 90) -> str:
    """An SVG of the loss curves per epoch (train blue, validation orange), on a shared scale."""
    values = [v for k, _ in curves for v in history[k] if math.isfinite(v)]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    n = max(len(history[k]) for k, _ in curves)
    lines = []
    for key, colour in curves:
        points = " ".join(f"{4 + (width - 8) * e / max(n - 1, 1):.1f},{4 + (height - 8) * (high - v) / span:.1f}"
                          for e, v in enumerate(history[key]) if math.isfinite(v))
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f"<title>{key}</title></polyline>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="loss per epoch">{"".join(lines)}</svg>'
            f'<div style="font-size: 0.8em">loss {high:.4g} .. {low:.4g}; blue: training, orange: validation</div>')
