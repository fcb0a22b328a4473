"""An Explanation laid out as a document: headings, sentences and TeX equations.

Every renderer (terminal, Markdown, HTML) walks the same blocks, so the three
formats show the same numbers. ``fmt`` is the one number format they all use.
Titles, headings and sentences hold their math as inline TeX between $...$ (each
renderer writes it as its kind of math); "eq" blocks are display equations. Text that comes
from the user (column names, labels) goes in through ``literal``, so that its "$" and "\\" are
shown as they are and never pair with a dollar elsewhere into math; ``pieces`` splits a text
block into its text and its math for the renderers.
"""

from __future__ import annotations

import re

import numpy as np

# a text block, scanned left to right: an escaped \\ or \$ (from ``literal``), $inline TeX$, plain text, a lone char
_PIECE = re.compile(r"\\([\\$])|\$([^$]+)\$|([^\\$]+)|(.)", re.DOTALL)

MAX_COLS = 6  # vectors and matrices wider than this are shown in part, with their shape
MAX_ROWS = 4
MAX_NEURONS = 8  # the drawing shows the first neurons of wider layers, and a count of the rest


def literal(text) -> str:
    """User text (a column name, a label) for a text block: shown as it is in every format. Its "\\" and "$"
    are escaped (a "$" in two names would otherwise open and close inline math across them), and control
    characters are written as escapes (a newline in a name would start a Markdown block)."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
    return text.replace("\\", "\\\\").replace("$", "\\$")


def pieces(content: str) -> list[tuple[bool, str]]:
    """A text block as (is_math, text) pieces: its $inline TeX$, and its text with the escapes undone."""
    out: list[tuple[bool, str]] = []
    for escaped, math, text, lone in _PIECE.findall(content):
        if math:
            out.append((True, math))
        elif out and not out[-1][0]:
            out[-1] = (False, out[-1][1] + (escaped or text or lone))
        else:
            out.append((False, escaped or text or lone))
    return out


def fmt(value: float) -> str:
    """Six significant digits, the format of every number explain prints (a zero is 0, never -0)."""
    return f"{float(value) + 0.0:.6g}"


def vec(values: np.ndarray) -> str:
    """A row vector in TeX, cut to MAX_COLS entries."""
    shown = [fmt(v) for v in values[:MAX_COLS]] + (["\\ldots"] if len(values) > MAX_COLS else [])
    return "\\begin{bmatrix}" + " & ".join(shown) + "\\end{bmatrix}"


def col(values: np.ndarray) -> str:
    """A column vector in TeX, cut to MAX_ROWS entries."""
    shown = [fmt(v) for v in values[:MAX_ROWS]] + (["\\vdots"] if len(values) > MAX_ROWS else [])
    return "\\begin{bmatrix}" + " \\\\ ".join(shown) + "\\end{bmatrix}"


def mat(values: np.ndarray) -> str:
    """A matrix in TeX, cut to MAX_ROWS x MAX_COLS."""
    rows = []
    for row in values[:MAX_ROWS]:
        rows.append(" & ".join([fmt(v) for v in row[:MAX_COLS]] + (["\\ldots"] if row.size > MAX_COLS else [])))
    if values.shape[0] > MAX_ROWS:
        rows.append(" & ".join(["\\vdots"] * min(values.shape[1], MAX_COLS + 1)))
    return "\\begin{bmatrix}" + " \\\\ ".join(rows) + "\\end{bmatrix}"


def shape_note(values: np.ndarray) -> str:
    big = values.shape[-1] > MAX_COLS or (values.ndim == 2 and values.shape[0] > MAX_ROWS)
    return f" (shape {values.shape}, first entries shown)" if big else ""


def named(values: np.ndarray, names: list | None) -> str:
    """The first entries of a vector with their names, as a sentence ("" without names)."""
    if not names:
        return ""
    pairs = zip(names[:MAX_COLS], values[:MAX_COLS], strict=False)
    shown = ", ".join(f"{literal(name)} = {fmt(v)}" for name, v in pairs)
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_COLS else "")


def given(raw: list) -> str:
    """The raw sample's first values with their names: numbers formatted, text quoted, missing said."""
    def value(v):
        if v is None or isinstance(v, float) and np.isnan(v):
            return "missing"
        return fmt(float(v)) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else repr(str(v))

    shown = ", ".join(f"{name} = {value(v)}" for name, v in raw[:MAX_COLS])
    return shown + (f", ... ({len(raw)} in all)" if len(raw) > MAX_COLS else "")


def build(ex) -> list[tuple]:
    """Blocks: ("title", s), ("heading", s), ("para", s), ("eq", tex), and ("step", key) markers where a step of
    the passes begins (the HTML page's stepper; the other formats skip them). Text blocks hold $inline TeX$."""
    sizes = "-".join(str(n) for n in ex.sizes)
    acts = ", ".join(step.activation for step in ex.layers)
    blocks = [("title", f"Backpropagation on a {sizes} network ({acts}; loss {ex.loss_name}), one sample"),
              ("para", "Notation of the notes: layers $l = 0, \\ldots, L$; $W^{l}$ has shape $(n_{l-1}, n_{l})$; "
                       "$\\delta^{l} = \\partial L / \\partial z^{l}$. Neurons and weights are numbered from 1."),
              ("step", "input"), ("eq", f"a^{{0}} = x = {vec(ex.x)}")]
    if ex.folds:
        k = ex.folds
        blocks.append(("para", f"This network is {k} cross-fitted networks side by side: in each hidden layer the "
                               f"first $n_l / {k}$ neurons are the first network's, the next ones the second's, and "
                               f"so on, and layer $L$'s weights are each network's divided by {k}, so that $z^{{L}}$ "
                               f"is the mean of their $z^{{L}}$. The equations are the same for it as for any "
                               "network."))
    if ex.raw:
        blocks.append(("para", f"The sample as given: {given(ex.raw)}; the model's preprocessing "
                               f"({ex.preprocessing}, fitted on the training rows) made $a^{{0}}$ of it."))
    if named(ex.x, ex.feature_names):
        blocks.append(("para", f"Inputs: {named(ex.x, ex.feature_names)}."))
    blocks.append(("eq", f"y = {vec(ex.y)}"))
    if ex.target_name:
        blocks.append(("para", f"The target: {literal(ex.target_name)}."))
    blocks += _forward(ex) + _equation_1(ex) + _equation_2(ex) + _equations_3_4(ex) + _chain(ex)
    return blocks


def _forward(ex) -> list:
    out = [("step", "forward-1"), ("heading", "Forward pass: $z^{l} = a^{l-1} W^{l} + b^{l}$, "
                                              "$a^{l} = \\sigma(z^{l})$")]
    for s in ex.layers:
        l = s.l
        out += [("step", f"forward-{l}")] if l > 1 else []
        out.append(("para", f"Layer {l} ({s.activation}){shape_note(s.W)}:"))
        if shape_note(s.W) or shape_note(s.a_prev):  # too wide to write inline: the factors one by one
            out.append(("eq", f"W^{{{l}}} = {mat(s.W)}"))
            out.append(("eq", f"b^{{{l}}} = {vec(s.b)}"))
            out.append(("eq", f"z^{{{l}}} = a^{{{l - 1}}} W^{{{l}}} + b^{{{l}}} = {vec(s.z)}"))
        else:
            out.append(("eq", f"z^{{{l}}} = a^{{{l - 1}}} W^{{{l}}} + b^{{{l}}} = {vec(s.a_prev)} {mat(s.W)} + "
                              f"{vec(s.b)} = {vec(s.z)}"))
        out.append(("eq", f"a^{{{l}}} = \\text{{{s.activation}}}(z^{{{l}}}) = {vec(s.a)}"))
    out.append(("para", f"Loss ({ex.loss_name}):"))
    out.append(("eq", f"L = {fmt(ex.loss)}"))
    return out


def _equation_1(ex) -> list:
    L, o, s = ex.L, ex.output, ex.layers[-1]
    out = [("step", "equation-1"), ("heading", f"Equation (1), output layer $L = {L}$")]
    if o.shortcut:
        out.append(("para", f"{s.activation} with {o.loss}: the $\\sigma'$ factor cancels, "
                            "$\\delta^{L} = a^{L} - y$."))
        out.append(("eq", f"\\delta^{{{L}}} = a^{{{L}}} - y = {vec(s.a)} - {vec(o.y)} = {vec(o.delta)}"))
        return out
    out.append(("eq", f"\\frac{{\\partial L}}{{\\partial a^{{{L}}}}} = {vec(o.dL_da)}"))
    if o.sigma_prime is None:
        out.append(("para", f"{s.activation} couples its neurons: "
                            "$\\delta = a \\odot (g - \\text{rowsum}(g \\odot a))$ "
                            "with $g = \\partial L / \\partial a$."))
        out.append(("eq", f"\\delta^{{{L}}} = {vec(o.delta)}"))
        return out
    out.append(("eq", f"\\sigma'(z^{{{L}}}) = {vec(o.sigma_prime)}"))
    out.append(("eq", f"\\delta^{{{L}}} = \\frac{{\\partial L}}{{\\partial a^{{{L}}}}} \\odot \\sigma'(z^{{{L}}}) "
                      f"= {vec(o.delta)}"))
    return out


def _equation_2(ex) -> list:
    out = []
    for h in ex.hidden:
        l, j = h.l, h.j
        step = ex.layers[l - 1]
        out.append(("step", f"equation-2-{l}"))
        out.append(("heading", f"Equation (2), hidden layer {l}: the sum over $k$ for neuron $j = {j}$"))
        terms = " + ".join(f"({fmt(w)})({fmt(d)})" for _, w, d, _ in h.terms[:MAX_COLS])
        more = " + \\ldots" if len(h.terms) > MAX_COLS else ""
        out.append(("eq", f"\\sum_{{k}} w_{{{j}k}}^{{{l + 1}}} \\delta_{{k}}^{{{l + 1}}} = {terms}{more} "
                          f"= {fmt(h.total)}"))
        if h.sigma_prime is None:
            out.append(("para", f"{step.activation} couples its neurons: $\\sigma'$ is a Jacobian, applied as a "
                                "product."))
        else:
            out.append(("eq", f"\\delta_{{{j}}}^{{{l}}} = {fmt(h.total)} \\cdot \\sigma'(z_{{{j}}}^{{{l}}}) = "
                              f"{fmt(h.total)} \\cdot {fmt(h.sigma_prime)} = {fmt(h.delta)}"))
        out.append(("eq", f"\\delta^{{{l}}} = (\\delta^{{{l + 1}}} (W^{{{l + 1}}})^{{T}}) \\odot \\sigma'(z^{{{l}}}) "
                          f"= {vec(step.delta)}"))
    return out


def _equations_3_4(ex) -> list:
    out = [("step", "equations-3-4-1"),
           ("heading", "Equations (3) and (4): $dW^{l} = a^{l-1} (\\delta^{l})^{T}$, $db^{l} = \\delta^{l}$"),
           ("para", "For one sample, with $a$ and $\\delta$ as column vectors, $dW^{l}$ is the outer product: "
                    "one $dw$ for every $w$.")]
    for s in ex.layers:
        l = s.l
        if l > 1:
            out.append(("step", f"equations-3-4-{l}"))
        if shape_note(s.dW):
            out.append(("para", f"Layer {l}{shape_note(s.dW)}:"))
        factors = "" if shape_note(s.dW) else f"{col(s.a_prev)} {vec(s.delta)} = "  # written out when small
        out.append(("eq", f"dW^{{{l}}} = a^{{{l - 1}}} (\\delta^{{{l}}})^{{T}} = {factors}{mat(s.dW)}"))
        out.append(("eq", f"db^{{{l}}} = \\delta^{{{l}}} = {vec(s.db)}"))
    return out


def _chain(ex) -> list:
    c = ex.chain
    out = [("step", "chain"), ("heading", f"The chain rule for one weight, $w_{{{c.i}{c.j}}}^{{{c.l}}}$")]
    if ex.weight_chosen:
        out.append(("para", ex.weight_chosen))
    return out + chain_blocks(c)


def chain_blocks(c) -> list:
    """The chain-rule product of one weight, term by term, beside backprop and the finite difference."""
    l, i, j = c.l, c.i, c.j
    w = f"w_{{{i}{j}}}^{{{l}}}"
    out = []
    if c.terms:
        factors = " + ".join(f"({fmt(d)})({fmt(wjk)})" for _, d, wjk, _ in c.terms[:MAX_COLS])
        more = " + \\ldots" if len(c.terms) > MAX_COLS else ""
        out.append(("eq", f"\\frac{{\\partial L}}{{\\partial {w}}} = \\sum_{{k}} \\delta_{{k}}^{{{l + 1}}} "
                          f"w_{{{j}k}}^{{{l + 1}}} \\sigma'(z_{{{j}}}^{{{l}}}) a_{{{i}}}^{{{l - 1}}}"))
        out.append(("eq", f"= [{factors}{more}] \\cdot {fmt(c.sigma_prime)} \\cdot {fmt(c.a_i)}"))
        out.append(("eq", f"= {fmt(c.sum_k)} \\cdot {fmt(c.sigma_prime)} \\cdot {fmt(c.a_i)} = {fmt(c.product)}"))
    else:
        out.append(("eq", f"\\frac{{\\partial L}}{{\\partial {w}}} = \\delta_{{{j}}}^{{{l}}} a_{{{i}}}^{{{l - 1}}} = "
                          f"{fmt(c.delta)} \\cdot {fmt(c.a_i)} = {fmt(c.product)}"))
    out.append(("eq", f"dW_{{{i}{j}}}^{{{l}}} = {fmt(c.backprop)} \\quad \\text{{(backprop)}}"))
    out.append(("eq", f"\\frac{{L({w} + \\varepsilon) - L({w} - \\varepsilon)}}{{2 \\varepsilon}} = "
                      f"{fmt(c.finite_difference)} \\quad \\text{{(central difference, eps = {c.eps:g})}}"))
    if c.product == 0 and c.finite_difference == 0:
        why = (f"$a_{{{i}}}^{{{l - 1}}} = 0$" if c.a_i == 0 else
               f"$\\sigma'(z_{{{j}}}^{{{l}}}) = 0$" if c.sigma_prime == 0 else f"$\\delta_{{{j}}}^{{{l}}} = 0$")
        out.append(("para", f"Both are 0: {why}, so this weight does not change the loss for this sample."))
    else:
        out.append(("para", f"Relative difference between the chain-rule product and the finite difference: "
                            f"{c.relative_difference:.2e}"))
    return out
