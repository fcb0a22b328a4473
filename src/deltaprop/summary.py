"""A network described as a table: its layers, the shapes of their parameters, activations, sizes.

``net.summary()`` is the text (what ``deltaprop info`` prints too), ``net._repr_html_()`` the
same table for a notebook. The rows come from what each layer declares (``param_shapes``),
so a new kind of layer is described without a line here.
"""

from __future__ import annotations

import html
import math


def rows(net) -> list[list[str]]:
    """One row per layer l = 1..L: layer, kind, parameter shapes, activation, dropout, parameter count."""
    out = []
    for l, layer in enumerate(net.layers, start=1):
        shapes = layer.param_shapes()
        out.append([str(l), type(layer).__name__,
                    ", ".join(f"{name}^{l} {tuple(shape)}" for name, shape in shapes.items()) or "-",
                    layer.activation.name, f"{layer.dropout:g}" if layer.dropout else "-",
                    f"{sum(math.prod(shape) for shape in shapes.values()):,}"])
    return out


HEADER = ["layer", "kind", "parameters (shape)", "activation", "dropout", "count"]


def totals(net) -> list[str]:
    """The lines under the table: the total, and what training has done (if anything)."""
    count = sum(math.prod(shape) for layer in net.layers for shape in layer.param_shapes().values())
    size = count * net.dtype.itemsize
    lines = [f"total: {count:,} parameters ({_bytes(size)} in {net.dtype.name})"]
    state = net.training
    if state is not None and state.epoch:
        opt = state.optimizer
        lines.append(f"trained: {state.epoch} epoch(s)" + (f" ({opt.name}, lr {opt.lr:g})" if opt else ""))
    if net.classes is not None:
        shown = [str(c.item() if hasattr(c, "item") else c) for c in net.classes[:10]]
        more = f", ... ({len(net.classes)} in all)" if len(net.classes) > 10 else ""
        lines.append(f"classes: {', '.join(shown)}{more}")
    return lines


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def title(net) -> str:
    sizes = "-".join(str(n) for n in [net.layers[0].n_in] + [layer.n_out for layer in net.layers])
    return f"Network {sizes}: loss {net.loss_fn.name}, {net.dtype.name}, {net.ops.name} backend"


def summary_text(net) -> str:
    table = [HEADER] + rows(net)
    widths = [max(len(row[k]) for row in table) for k in range(len(HEADER))]
    right = {0, 5}  # numbers right-aligned
    lines = ["  ".join(cell.rjust(w) if k in right else cell.ljust(w) for k, (cell, w) in
                       enumerate(zip(row, widths, strict=True))).rstrip() for row in table]
    return "\n".join([title(net)] + lines + totals(net))


def summary_html(net) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows(net))
    notes = "<br>".join(html.escape(line) for line in totals(net))
    return (f"<div><strong>{html.escape(title(net))}</strong><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table><small>{notes}</small></div>")
