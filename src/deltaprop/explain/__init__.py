"""explain: the notes' derivation computed on a real network, shown in text, Markdown or HTML.

    ex = deltaprop.explain(net, x, y)          # an Explanation: every number, structured
    print(ex)                                   # the terminal text; in a notebook, the interactive page
    ex.save("explain.html")                     # or .md, .txt; ex.to_html(), ex.to_markdown(), ex.to_text()

``deltaprop.explain`` is this subpackage, and calling it calls ``explain.compute.explain``
(so ``import deltaprop.explain as e`` gives the subpackage, and ``dp.explain(...)`` works).
"""

import sys
import types

import numpy as np

from ..layers import Dense
from ..network import Network
from .compute import explain
from .explanation import ChainRule, Explanation, HiddenSum, LayerStep, OutputStep
from .render import render_html, render_markdown, render_text


def notes_example():
    """The notes' 2-2-2 sigmoid network with mse, its fixed weights, sample and target."""
    net = Network([Dense(2, 2, "sigmoid"), Dense(2, 2, "sigmoid")], loss="mse", dtype="float64", seed=0)
    first, second = net.layers[0].params(), net.layers[1].params()
    first["W"][...], first["b"][...] = [[0.15, 0.25], [0.20, 0.30]], [0.35, 0.35]
    second["W"][...], second["b"][...] = [[0.40, 0.50], [0.45, 0.55]], [0.60, 0.60]
    return net, np.array([0.05, 0.10]), np.array([0.01, 0.99])


class _CallableModule(types.ModuleType):
    """This subpackage, callable as its explain() function."""

    def __call__(self, net, x, y, **options) -> Explanation:
        return explain(net, x, y, **options)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["ChainRule", "Explanation", "HiddenSum", "LayerStep", "OutputStep", "explain", "notes_example",
           "render_html", "render_markdown", "render_text"]
