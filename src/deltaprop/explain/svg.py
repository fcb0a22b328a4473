"""The network drawn as SVG: neurons labelled with a and delta, edges coloured by dW."""

from __future__ import annotations

import html

import numpy as np

from .compute import Explanation
from .document import fmt

MAX_NEURONS = 8  # wider layers show their first neurons and a count of the rest
COL_GAP, ROW_GAP, RADIUS, MARGIN = 200, 84, 36, 60


def _positions(sizes: list[int]) -> list[list[tuple[float, float]]]:
    tallest = min(max(sizes), MAX_NEURONS)
    cols = []
    for l, n in enumerate(sizes):
        shown = min(n, MAX_NEURONS)
        top = MARGIN + (tallest - shown) * ROW_GAP / 2
        cols.append([(MARGIN + l * COL_GAP, top + r * ROW_GAP) for r in range(shown)])
    return cols


def _edges(ex: Explanation, pos) -> list[str]:
    out = []
    for step in ex.layers:
        l = step.l
        dW = step.dW[:MAX_NEURONS, :MAX_NEURONS]
        scale = float(np.abs(dW).max()) or 1.0
        for i, (x1, y1) in enumerate(pos[l - 1]):
            for j, (x2, y2) in enumerate(pos[l]):
                g = float(dW[i, j])
                color = "#2b6cb0" if g >= 0 else "#c53030"
                width = 0.5 + 4.5 * abs(g) / scale
                out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" '
                           f'stroke-width="{width:.2f}" stroke-opacity="0.75">'
                           f"<title>dW^{l}[{i + 1},{j + 1}] = {fmt(g)}</title></line>")
    return out


def _neurons(ex: Explanation, pos) -> list[str]:
    out = []
    for l, column in enumerate(pos):
        a = ex.x if l == 0 else ex.layers[l - 1].a
        delta = None if l == 0 else ex.layers[l - 1].delta
        for r, (x, y) in enumerate(column):
            label = f"a={fmt(a[r])}"
            out.append(f'<circle cx="{x}" cy="{y}" r="{RADIUS}" fill="#fff" stroke="#333"/>')
            out.append(f'<text x="{x}" y="{y - 4}" font-size="9" text-anchor="middle">{html.escape(label)}</text>')
            if delta is not None:
                out.append(f'<text x="{x}" y="{y + 10}" font-size="9" text-anchor="middle">'
                           f"δ={html.escape(fmt(delta[r]))}</text>")
        n = ex.sizes[l]
        x = column[0][0]
        caption = f"layer {l}" + (f" ({n - len(column)} more)" if n > len(column) else "")
        out.append(f'<text x="{x}" y="{MARGIN - RADIUS - 10}" font-size="12" text-anchor="middle">{caption}</text>')
    return out


def network_svg(ex: Explanation) -> str:
    pos = _positions(ex.sizes)
    width = 2 * MARGIN + COL_GAP * (len(ex.sizes) - 1)
    height = 2 * MARGIN + ROW_GAP * (min(max(ex.sizes), MAX_NEURONS) - 1)
    parts = _edges(ex, pos) + _neurons(ex, pos)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="network" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="the network">' + "".join(parts) + "</svg>")
