"""What explain computes, as data: the steps of both passes for one sample, and its presentations.

An Explanation prints as the terminal text (``print(ex)``), shows as the interactive page in a
notebook (``_repr_html_``), and writes itself in any of the three formats (``ex.save("x.html")``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .render import render_html, render_markdown, render_text


@dataclass
class LayerStep:
    """Layer l for the sample: vectors have shape (n_l,), W and dW (n_{l-1}, n_l)."""

    l: int
    activation: str
    a_prev: np.ndarray
    W: np.ndarray
    b: np.ndarray
    z: np.ndarray
    a: np.ndarray
    sigma_prime: np.ndarray | None  # None where sigma' is a Jacobian (softmax)
    delta: np.ndarray
    dW: np.ndarray
    db: np.ndarray


@dataclass
class OutputStep:
    """Equation (1): delta^L = dL/da^L ⊙ sigma'(z^L), or the shortcut a^L - y."""

    loss: str
    shortcut: bool
    y: np.ndarray
    dL_da: np.ndarray
    sigma_prime: np.ndarray | None
    delta: np.ndarray


@dataclass
class HiddenSum:
    """Equation (2) for neuron j of layer l: terms (k, w_jk^{l+1}, delta_k^{l+1}, product)."""

    l: int
    j: int
    terms: list
    total: float
    sigma_prime: float | None
    delta: float


@dataclass
class ChainRule:
    """dL/dw_ij^l as the notes' product, term by term, with backprop and a finite difference.

    Hidden layer: sum_k delta_k^{l+1} w_jk^{l+1} sigma'(z_j^l) a_i^{l-1} (terms: k, delta, w, product).
    Output layer: delta_j^L a_i^{L-1}. Indices l, i, j are the notes' (1-based).
    """

    l: int
    i: int
    j: int
    terms: list
    sum_k: float | None
    sigma_prime: float | None
    delta: float
    a_i: float
    product: float
    backprop: float
    finite_difference: float
    eps: float

    @property
    def relative_difference(self) -> float:
        denom = max(abs(self.product), abs(self.finite_difference), np.finfo(float).tiny)
        return abs(self.product - self.finite_difference) / denom


@dataclass
class Explanation:
    """The derivation for one sample: ``layers[l - 1]`` is layer l's LayerStep, ``output`` equation (1),
    ``hidden`` equation (2) for l = L-1..1, ``chain`` one weight's chain rule; ``chains`` holds the chain rule
    of every weight drawn on the page, keyed (l, i, j)."""

    sizes: list
    loss_name: str
    x: np.ndarray
    y: np.ndarray
    loss: float
    layers: list  # LayerStep for l = 1..L at index l - 1
    output: OutputStep
    hidden: list = field(default_factory=list)  # HiddenSum for l = L-1..1
    chain: ChainRule | None = None
    chains: dict = field(default_factory=dict)
    feature_names: list | None = None
    output_names: list | None = None  # what each output neuron stands for (a classifier's classes)
    raw: list | None = None  # the sample as given, (name, value), before the model's preprocessing made a^0
    preprocessing: str = "its column encoding and scaling"  # what made a^0 of ``raw``, in words
    target_name: str | None = None  # what y stands for ("class 'virginica'")
    weight_chosen: str | None = None  # why this weight, when explain chose it
    folds: int | None = None  # a cross-fitted model: this many networks side by side (training/crossfit.py)

    @property
    def L(self) -> int:
        return len(self.layers)

    def to_text(self, color: bool = False) -> str:
        return render_text(self, color)

    def to_markdown(self, level: int = 1) -> str:
        return render_markdown(self, level)

    def to_html(self) -> str:
        """The interactive page: one offline file (MathML, an SVG drawing, a small script)."""
        return render_html(self)

    def save(self, path) -> Path:
        """The page (.html), Markdown (.md) or text (anything else), by the file's suffix."""
        path = Path(path)
        suffix = path.suffix.lower()
        text = self.to_html() if suffix in (".html", ".htm") else self.to_markdown() if suffix == ".md" else \
            self.to_text()
        path.write_text(text, encoding="utf-8")
        return path

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        sizes = "-".join(map(str, self.sizes))
        c = self.chain  # set by explain(); a repr never raises, so one still being built says less
        chain = "" if c is None else (f"; dL/dw_{c.i}{c.j}^{c.l} = {c.product:.6g} (backprop {c.backprop:.6g}, "
                                      f"finite difference {c.finite_difference:.6g})")
        return (f"<Explanation of a {sizes} network on one sample: loss {self.loss:.6g}{chain}; print() it, or "
                ".save('explain.html')>")

    def _repr_html_(self) -> str:
        """The page in a notebook, in a frame of its own (its style and script stay inside)."""
        return (f'<iframe srcdoc="{html.escape(self.to_html(), quote=True)}" title="deltaprop explain" '
                'style="width: 100%; height: 720px; border: 1px solid #ddd;"></iframe>')


