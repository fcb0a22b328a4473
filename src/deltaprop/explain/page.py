"""The interactive explain page: one offline HTML file (MathML, SVG, a small script; no CDN, nothing fetched).

At the top, the network drawn (svg.py) beside a panel. Clicking a neuron (or focusing it
with Tab, Enter) shows its z, a and delta with the equations that made them; clicking a
weight w_ij^l shows its chain-rule product with the numbers, beside backprop's dW and a
finite difference, and lights the path of the sum over k on the drawing. The stepper walks
the passes in the notes' order: the sample, forward layer by layer, (1), (2) from the top
down, (3)-(4) for each layer, the chain rule. Below, the whole derivation as a document.
"""

from __future__ import annotations

import html

from .document import MAX_NEURONS, build, chain_blocks, fmt, pieces
from .svg import edge_path, network_svg
from .tex import to_mathml, to_mathml_lines


def page(ex) -> str:
    blocks = build(ex)
    first = next(k for k, (kind, _) in enumerate(blocks) if kind == "step")
    header = "\n".join(_block(b) for b in blocks[:first])
    details = "\n".join(_neuron_details(ex) + _edge_details(ex))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>deltaprop explain</title><style>{STYLE}</style></head>\n<body>\n{header}\n"
            '<div class="explorer"><figure class="drawing">' + network_svg(ex) +
            "<figcaption>Neurons show a (top) and δ (bottom); edges are coloured by the sign of dW (blue +, red "
            "−), thicker for larger |dW|. Click or focus (Tab, Enter) a neuron or a weight.</figcaption></figure>"
            '<aside id="panel"><div class="stepper"><button type="button" id="prev">◀ previous</button>'
            '<button type="button" id="next">next step ▶</button></div><p id="step-label">Step through the '
            'passes, or choose a neuron or a weight on the drawing.</p><div id="detail" aria-live="polite"></div>'
            "</aside></div>\n<main>" + _sections(ex, blocks[first:]) + "</main>\n"
            f'<div hidden id="details">{details}</div>\n<script>{SCRIPT}</script>\n</body></html>\n')


def _text(content: str) -> str:
    """Escaped text with its $inline TeX$ as inline MathML."""
    return "".join(to_mathml(part, display=False) if math else html.escape(part) for math, part in pieces(content))


def _block(block: tuple) -> str:
    kind, content = block
    if kind == "title":
        return f"<h1>{_text(content)}</h1>"
    if kind == "heading":
        return f"<h2>{_text(content)}</h2>"
    if kind == "para":
        return f"<p>{_text(content)}</p>"
    return to_mathml_lines(content)


def _sections(ex, blocks: list) -> str:
    """The derivation, one <section> per step, each naming what it lights on the drawing."""
    out, body, key = [], [], None
    for block in blocks + [("step", None)]:
        if block[0] != "step":
            body.append(_block(block))
            continue
        if key is not None:
            title, lit = _step(ex, key)
            out.append(f'<section class="step" data-title="{html.escape(_text(title))}" '
                       f'data-highlight="{" ".join(lit)}">'
                       + "".join(body) + "</section>")
        key, body = block[1], []
    return "\n".join(out)


def _ids(prefix: str, l: int, n: int) -> list[str]:
    return [f"{prefix}-{l}-{j}" for j in range(1, min(n, MAX_NEURONS) + 1)]


def _edge_ids(ex, l: int) -> list[str]:
    rows, cols = (min(n, MAX_NEURONS) for n in ex.sizes[l - 1:l + 1])
    return [f"e-{l}-{i}-{j}" for i in range(1, rows + 1) for j in range(1, cols + 1)]


def _step(ex, key: str) -> tuple[str, list[str]]:
    """A step's title (with $inline TeX$) and the ids it lights."""
    L, sizes = ex.L, ex.sizes
    if key == "input":
        return "the sample, $a^{0} = x$", _ids("n", 0, sizes[0])
    if key == "chain":
        c = ex.chain
        return (f"the chain rule for $w_{{{c.i}{c.j}}}^{{{c.l}}}$", [f"e-{c.l}-{c.i}-{c.j}"] +
                edge_path(ex, c.l, c.i, c.j))
    l = int(key.rsplit("-", 1)[1])
    if key.startswith("forward"):
        return f"forward pass, layer {l}", _edge_ids(ex, l) + _ids("n", l, sizes[l])
    if key == "equation-1":
        return f"equation (1), $\\delta^{{{L}}}$", _ids("n", L, sizes[L])
    if key.startswith("equation-2"):
        return f"equation (2), $\\delta^{{{l}}}$", _ids("n", l, sizes[l]) + _edge_ids(ex, l + 1)
    return f"equations (3) and (4), $dW^{{{l}}}$ and $db^{{{l}}}$", _edge_ids(ex, l)


def _detail(id_: str, title: str, blocks: list) -> str:
    """A neuron's or a weight's panel; ``title`` is HTML."""
    return f'<div class="detail" id="detail-{id_}"><h3>{title}</h3>' + "".join(map(_block, blocks)) + "</div>"


def _neuron_details(ex) -> list[str]:
    out = []
    for i in range(min(ex.sizes[0], MAX_NEURONS)):
        name = f" ({html.escape(ex.feature_names[i])})" if ex.feature_names else ""
        out.append(_detail(f"n-0-{i + 1}", f"Input neuron {i + 1}{name}",
                           [("eq", f"a_{{{i + 1}}}^{{0}} = x_{{{i + 1}}} = {fmt(ex.x[i])}")]))
    for s in ex.layers:
        l = s.l
        for j in range(min(s.z.size, MAX_NEURONS)):
            out.append(_detail(f"n-{l}-{j + 1}", f"Neuron {j + 1} of layer {l} ({html.escape(s.activation)})",
                               _neuron_blocks(ex, s, j)))
    return out


def _neuron_blocks(ex, s, j: int) -> list:
    """z, a and delta of neuron j (0-based) of layer s.l, each with the equation that made it."""
    l, n = s.l, j + 1
    blocks = [("eq", f"z_{{{n}}}^{{{l}}} = \\sum_{{i}} a_{{i}}^{{{l - 1}}} w_{{i{n}}}^{{{l}}} + b_{{{n}}}^{{{l}}} = "
                     f"{fmt(s.z[j])}"),
              ("eq", f"a_{{{n}}}^{{{l}}} = \\text{{{s.activation}}}(z_{{{n}}}^{{{l}}}) = {fmt(s.a[j])}")]
    if l == ex.L:
        o = ex.output
        if o.shortcut:
            blocks.append(("eq", f"\\delta_{{{n}}}^{{{l}}} = a_{{{n}}}^{{{l}}} - y_{{{n}}} = {fmt(s.a[j])} - "
                                 f"{fmt(o.y[j])} = {fmt(s.delta[j])} \\quad \\text{{(1)}}"))
        elif o.sigma_prime is not None:
            blocks.append(("eq", f"\\delta_{{{n}}}^{{{l}}} = \\frac{{\\partial L}}{{\\partial a_{{{n}}}^{{{l}}}}} "
                                 f"\\sigma'(z_{{{n}}}^{{{l}}}) = {fmt(o.dL_da[j])} \\cdot {fmt(o.sigma_prime[j])} = "
                                 f"{fmt(s.delta[j])} \\quad \\text{{(1)}}"))
        else:
            blocks.append(("eq", f"\\delta_{{{n}}}^{{{l}}} = {fmt(s.delta[j])} \\quad \\text{{(1)}}"))
        return blocks
    upper = ex.layers[l]
    total = float(upper.W[j] @ upper.delta)
    if s.sigma_prime is None:
        blocks.append(("eq", f"\\delta_{{{n}}}^{{{l}}} = {fmt(s.delta[j])} \\quad \\text{{(2)}}"))
        blocks.append(("para", f"{s.activation} couples its neurons: $\\sigma'$ is a Jacobian."))
    else:
        blocks.append(("eq", f"\\delta_{{{n}}}^{{{l}}} = \\sum_{{k}} w_{{{n}k}}^{{{l + 1}}} \\delta_{{k}}^{{{l + 1}}} "
                             f"\\cdot \\sigma'(z_{{{n}}}^{{{l}}}) = {fmt(total)} \\cdot {fmt(s.sigma_prime[j])} = "
                             f"{fmt(s.delta[j])} \\quad \\text{{(2)}}"))
    return blocks


def _edge_details(ex) -> list[str]:
    return [_detail(f"e-{l}-{i}-{j}", _text(f"The weight $w_{{{i}{j}}}^{{{l}}} = "
                                            f"{fmt(ex.layers[l - 1].W[i - 1, j - 1])}$"),
                    chain_blocks(c)) for (l, i, j), c in ex.chains.items()]


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 1.5rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.35rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin: 0.2rem 0 0.5rem; }
.eq { display: flex; flex-wrap: wrap; align-items: center; column-gap: 0.3em; row-gap: 0.4em; margin: 0.5rem 0; }
.bmatrix { border-left: 1.5px solid; border-right: 1.5px solid; padding: 0 0.3em; background:
  linear-gradient(currentColor, currentColor) left top / 0.35em 1.5px no-repeat,
  linear-gradient(currentColor, currentColor) left bottom / 0.35em 1.5px no-repeat,
  linear-gradient(currentColor, currentColor) right top / 0.35em 1.5px no-repeat,
  linear-gradient(currentColor, currentColor) right bottom / 0.35em 1.5px no-repeat; }
.explorer { display: grid; grid-template-columns: minmax(0, 1fr) minmax(18rem, 28rem); gap: 1rem; align-items: start; }
@media (max-width: 60rem) { .explorer { grid-template-columns: 1fr; } }
figure { margin: 0; } figcaption { font-size: 0.85rem; color: #555; }
#network { max-width: 100%; height: auto; }
#panel { position: sticky; top: 0.5rem; border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 0.8rem;
  background: #fafafa; max-height: 92vh; overflow-y: auto; }
#step-label { font-weight: 600; margin: 0.5rem 0; }
.stepper button { font: inherit; padding: 0.2rem 0.6rem; margin-right: 0.3rem; }
.neuron circle { fill: #fff; stroke: #333; stroke-width: 1.2; }
.neuron, .edge { cursor: pointer; outline: none; }
.edge .hit { stroke: transparent; stroke-width: 10; }
.on circle { stroke: #d69e2e; stroke-width: 4; fill: #fffbea; }
.on .vis { stroke: #d69e2e; stroke-opacity: 1; stroke-width: 4px; }
.path circle { stroke: #805ad5; stroke-width: 3.5; }
.path .vis { stroke: #805ad5; stroke-opacity: 1; stroke-width: 3px; }
.neuron:focus-visible circle, .edge:focus-visible .vis { stroke: #3182ce; stroke-width: 4; }
section.step.current { background: #fffbea; }
"""

SCRIPT = """
(() => {
  const panel = document.getElementById("detail"), label = document.getElementById("step-label");
  const steps = [...document.querySelectorAll("section.step")];
  let current = -1;
  const clear = () => document.querySelectorAll(".on, .path, .current")
    .forEach(e => e.classList.remove("on", "path", "current"));
  const light = (ids, cls) => ids.split(" ").forEach(id => {
    const e = id && document.getElementById(id);
    if (e) e.classList.add(cls);
  });
  const show = el => {
    const d = document.getElementById("detail-" + el.id);
    if (!d) return;
    clear();
    el.classList.add("on");
    if (el.dataset.path) light(el.dataset.path, "path");
    label.innerHTML = d.querySelector("h3").innerHTML;  // the title, with its math
    panel.innerHTML = d.innerHTML;
    panel.querySelector("h3").remove();
  };
  const step = k => {
    current = Math.max(0, Math.min(steps.length - 1, k));
    const s = steps[current];
    clear();
    light(s.dataset.highlight, "on");
    s.classList.add("current");
    label.innerHTML = "Step " + (current + 1) + " of " + steps.length + ": " + s.dataset.title;
    panel.innerHTML = s.innerHTML;
  };
  document.querySelectorAll(".neuron, .edge").forEach(el => {
    el.addEventListener("click", () => show(el));
    el.addEventListener("focus", () => show(el));
    el.addEventListener("keydown", e => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); show(el); }
    });
  });
  document.getElementById("prev").addEventListener("click", () => step(current - 1));
  document.getElementById("next").addEventListener("click", () => step(current + 1));
})();
"""
