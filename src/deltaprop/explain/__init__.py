"""explain: the notes' derivation computed on a real network, shown in text, Markdown or HTML.

    ex = deltaprop.explain(net, x, y)          # structured numbers (compute.Explanation)
    print(render_text(ex))                      # or render_markdown(ex), render_html(ex)
"""

import numpy as np

from ..layers import Dense
from ..network import Network
from .compute import ChainRule, Explanation, HiddenSum, LayerStep, OutputStep, explain
from .render import render_html, render_markdown, render_text


def notes_example():
    """The notes' 2-2-2 sigmoid network with mse, its fixed weights, sample and target."""
    net = Network([Dense(2, 2, "sigmoid"), Dense(2, 2, "sigmoid")], loss="mse", dtype="float64", seed=0)
    net.layers[0].W[...] = [[0.15, 0.25], [0.20, 0.30]]
    net.layers[0].b[...] = [0.35, 0.35]
    net.layers[1].W[...] = [[0.40, 0.50], [0.45, 0.55]]
    net.layers[1].b[...] = [0.60, 0.60]
    return net, np.array([0.05, 0.10]), np.array([0.01, 0.99])


__all__ = ["ChainRule", "Explanation", "HiddenSum", "LayerStep", "OutputStep", "explain", "notes_example",
           "render_html", "render_markdown", "render_text"]
