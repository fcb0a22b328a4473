"""The network drawn as SVG: neurons labelled with a and delta, edges coloured by dW; every neuron and edge
is focusable and named (ids n-l-j and e-l-i-j, 1-based as in the notes) for the page's script."""

from __future__ import annotations

import html

import numpy as np

from .document import MAX_NEURONS

COL_GAP, ROW_GAP, RADIUS, MARGIN = 200, 84, 36, 60
NAME_SPACE, NAME_CHARS = 120, 18  # room beside the input and output neurons for their names


def short(value: float) -> str:
    """Three significant digits, for the labels inside the circles (the panel shows six)."""
    return f"{float(value) + 0.0:.3g}"


def _positions(sizes: list[int], left: float = MARGIN) -> list[list[tuple[float, float]]]:
    tallest = min(max(sizes), MAX_NEURONS)
    cols = []
    for l, n in enumerate(sizes):
        shown = min(n, MAX_NEURONS)
        top = MARGIN + (tallest - shown) * ROW_GAP / 2
        cols.append([(left + l * COL_GAP, top + r * ROW_GAP) for r in range(shown)])
    return cols


def _names(ex, pos) -> list[str]:
    """The inputs' names left of layer 0 (with the raw value a table model was given), the classes' names
    right of layer L: what the numbers in the circles stand for."""
    out = []
    for names, column, side in ((ex.feature_names, pos[0], -1), (ex.output_names, pos[-1], 1)):
        for (x, y), name in zip(column, names or [], strict=False):
            text = name if len(name) <= NAME_CHARS else name[:NAME_CHARS - 1] + "…"
            out.append(f'<text x="{x + side * (RADIUS + 6)}" y="{y + 4}" font-size="11" '
                       f'text-anchor="{"end" if side < 0 else "start"}">{html.escape(text)}'
                       f"<title>{html.escape(name)}</title></text>")
    return out


def edge_path(ex, l: int, i: int, j: int) -> list[str]:
    """What dL/dw_ij^l sums over: the weights w_jk^{l+1} out of neuron j of layer l and the neurons k they reach
    (none for the output layer), then the weight itself and its two neurons."""
    path = []
    if l < ex.L:
        for k in range(1, min(ex.sizes[l + 1], MAX_NEURONS) + 1):
            path += [f"e-{l + 1}-{j}-{k}", f"n-{l + 1}-{k}"]
    return path + [f"n-{l - 1}-{i}", f"n-{l}-{j}"]


def _edges(ex, pos) -> list[str]:
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
                line = f'x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"'
                label = f"weight w_{i + 1}{j + 1}^{l}: dW = {short(g)}"
                out.append(f'<g class="edge" id="e-{l}-{i + 1}-{j + 1}" tabindex="0" role="button" '
                           f'aria-label="{label}" data-path="{" ".join(edge_path(ex, l, i + 1, j + 1))}">'
                           f'<line class="vis" {line} stroke="{color}" stroke-width="{width:.2f}" '
                           f'stroke-opacity="0.75"/><line class="hit" {line}/><title>{label}</title></g>')
    return out


def _neurons(ex, pos) -> list[str]:
    out = []
    for l, column in enumerate(pos):
        a = ex.x if l == 0 else ex.layers[l - 1].a
        delta = None if l == 0 else ex.layers[l - 1].delta
        for r, (x, y) in enumerate(column):
            lines = [f"a={short(a[r])}"] + ([] if delta is None else [f"δ={short(delta[r])}"])
            name = f"neuron {r + 1} of layer {l}: " + ", ".join(lines).replace("=", " = ")
            texts = "".join(_label(x, y + (-4 if k == 0 else 10) + (7 if delta is None else 0), text)
                            for k, text in enumerate(lines))
            out.append(f'<g class="neuron" id="n-{l}-{r + 1}" tabindex="0" role="button" aria-label="{name}">'
                       f'<circle cx="{x}" cy="{y}" r="{RADIUS}"/>{texts}<title>{name}</title></g>')
        n = ex.sizes[l]
        caption = f"layer {l}" + (f" ({n - len(column)} more)" if n > len(column) else "")
        out.append(f'<text x="{column[0][0]}" y="{MARGIN - RADIUS - 10}" font-size="12" text-anchor="middle">'
                   f"{caption}</text>")
    return out


def _label(x: float, y: float, text: str) -> str:
    """A label that stays inside its circle: squeezed to the circle's width when it is long."""
    fit = f' textLength="{2 * RADIUS - 10}" lengthAdjust="spacingAndGlyphs"' if len(text) > 10 else ""
    return f'<text x="{x}" y="{y}" font-size="10" text-anchor="middle"{fit}>{html.escape(text)}</text>'


def network_svg(ex) -> str:
    left = MARGIN + (NAME_SPACE if ex.feature_names else 0)
    pos = _positions(ex.sizes, left)
    width = left + MARGIN + (NAME_SPACE if ex.output_names else 0) + COL_GAP * (len(ex.sizes) - 1)
    height = 2 * MARGIN + ROW_GAP * (min(max(ex.sizes), MAX_NEURONS) - 1)
    parts = _edges(ex, pos) + _neurons(ex, pos) + _names(ex, pos)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="network" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="group" aria-label="the network">' + "".join(parts) + "</svg>")
