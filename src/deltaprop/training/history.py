"""History: the per-epoch figures of training, one list per name."""

from __future__ import annotations


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
