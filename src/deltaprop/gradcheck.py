"""Gradient check: backprop's dL/d(parameter) (dW^l, db^l for Dense) against central finite differences of L.

For each parameter entry theta the numeric derivative is

    (L(theta + eps) - L(theta - eps)) / (2 eps)        error O(eps^2)

and each (layer, parameter) is summarised by the relative error of the whole
array, ||numeric - backprop|| / max(||numeric|| + ||backprop||, tiny), which
stays meaningful when single entries are near zero. The check runs on a float64
copy of the network with dropout off, so it measures the equations, not noise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from .checks import ArrayLike
from .devices import foreign
from .ops import get_ops


@dataclass
class GradcheckRow:
    layer: int
    param: str
    rel_error: float
    max_abs_error: float
    n_checked: int


@dataclass
class GradcheckReport:
    """Per-layer result of ``gradcheck``; ``ok`` when every row is below ``tol``."""

    rows: list = field(default_factory=list)
    tol: float = 1e-6

    @property
    def max_rel_error(self) -> float:
        return max(row.rel_error for row in self.rows)

    @property
    def ok(self) -> bool:
        return self.max_rel_error < self.tol

    def __str__(self) -> str:
        lines = [f"{'layer':>5} {'param':>5} {'rel error':>11} {'max |diff|':>11} {'checked':>8}"]
        for r in self.rows:
            lines.append(f"{r.layer:>5} {r.param:>5} {r.rel_error:11.3e} {r.max_abs_error:11.3e} {r.n_checked:>8}")
        verdict = "OK" if self.ok else "FAILED"
        lines.append(f"{verdict}: max relative error {self.max_rel_error:.3e} (tolerance {self.tol:.0e})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The report as a table, for a notebook."""
        head = "<tr><th>layer</th><th>param</th><th>rel error</th><th>max |diff|</th><th>checked</th></tr>"
        body = "".join(f"<tr><td>{r.layer}</td><td>{r.param}</td><td>{r.rel_error:.3e}</td>"
                       f"<td>{r.max_abs_error:.3e}</td><td>{r.n_checked}</td></tr>" for r in self.rows)
        verdict = "OK" if self.ok else "FAILED"
        return (f"<div><table>{head}{body}</table><strong>{verdict}</strong>: max relative error "
                f"{self.max_rel_error:.3e} (tolerance {self.tol:.0e})</div>")


def gradcheck(net, X: ArrayLike, y: ArrayLike, *, eps: float = 1e-6, tol: float = 1e-6, max_entries: int | None = None,
              seed: int = 0, sample_weight: ArrayLike | None = None) -> GradcheckReport:
    """Compare ``net.backward`` with central differences for every parameter of every layer (W and b for Dense).

    ``max_entries`` checks a random subset of that many entries per array (all
    entries when None). Returns a GradcheckReport; the network is not modified. The settings after X, y are
    keyword-only (five numbers in a row are easy to swap).
    """
    net64 = float64_copy(net)
    X, y, sample_weight = (_on_host(net, part) for part in (X, y, sample_weight))
    grads = net64.backward(net64.forward(X), y, sample_weight)
    rng = np.random.default_rng(seed)
    report = GradcheckReport(tol=tol)
    for (l, name), theta in net64.params().items():
        analytic = grads.params[l][name]
        flat_idx = np.arange(theta.size)
        if max_entries is not None and theta.size > max_entries:
            flat_idx = rng.choice(theta.size, size=max_entries, replace=False)
        numeric = np.array([central_difference(net64, X, y, theta, i, eps=eps, sample_weight=sample_weight)
                            for i in flat_idx])
        chosen = analytic.reshape(-1)[flat_idx]
        diff = np.linalg.norm(numeric - chosen)
        denom = max(np.linalg.norm(numeric) + np.linalg.norm(chosen), np.finfo(np.float64).tiny)
        report.rows.append(GradcheckRow(l, name, float(diff / denom),
                                        float(np.abs(numeric - chosen).max()), len(flat_idx)))
    return report


def central_difference(net, X, y, theta: np.ndarray, i: int, *, eps: float = 1e-6, sample_weight=None) -> float:
    """(L(theta_i + eps) - L(theta_i - eps)) / 2 eps, restoring theta_i afterwards."""
    flat = theta.reshape(-1)
    saved = flat[i]
    flat[i] = saved + eps
    loss_plus = net.loss(X, y, sample_weight)
    flat[i] = saved - eps
    loss_minus = net.loss(X, y, sample_weight)
    flat[i] = saved
    return (loss_plus - loss_minus) / (2 * eps)


def _on_host(net, x):
    """``x`` read on the host where it is another library's array (the check's copy runs on NumPy); anything
    else as it is (a DataFrame keeps the column names its pipeline matches)."""
    return net.ops.to_host(x) if foreign(x) else x


def float64_copy(net):
    """A deep copy of ``net`` on NumPy whose arrays are float64: the check needs the precision, and its central
    differences write single entries of NumPy arrays (an "array_api" network's parameters come to the host)."""
    twin = copy.copy(net)
    twin.ops = get_ops("numpy")
    twin.layers = [copy.copy(layer) for layer in net.layers]
    for layer in twin.layers:
        for name, value in layer.params().items():
            setattr(layer, name, net.ops.to_host(value).astype(np.float64))  # (astype copies: net keeps its own)
    twin.dtype = np.dtype(np.float64)
    twin.training = None
    return twin
