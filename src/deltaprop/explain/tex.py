"""A small TeX subset, written once per equation and emitted as MathML or plain text.

The explain documents write each equation in TeX (for Markdown, which GitHub
renders). The HTML page needs MathML (no script, no CDN) and the terminal needs
plain text, so this module parses the subset the documents use:

    letters, numbers, operators, ^{...}, _{...}, {...}, \\frac{a}{b}, \\text{...},
    \\begin{bmatrix} a & b \\\\ c & d \\end{bmatrix}, and the commands in SYMBOLS.
"""

from __future__ import annotations

import html
import re

SYMBOLS = {
    "delta": "δ", "sigma": "σ", "odot": "⊙", "cdot": "·", "sum": "∑", "partial": "∂", "approx": "≈",
    "times": "×", "ldots": "…", "vdots": "⋮", "quad": " ", "varepsilon": "ε", "prime": "′", "to": "→",
    "mathcal": "",
}
OPERATORS = set("=+-−()[],;:⊙·∑∂≈×…⋮′→|/")
TOKEN = re.compile(r"\\text\{[^}]*\}|\\begin\{bmatrix\}|\\end\{bmatrix\}|\\\\|\\[a-zA-Z]+"
                   r"|(?<=[(&={\s])-\d+(?:\.\d+)?(?:e[-+]?\d+)?|\d+(?:\.\d+)?(?:e[-+]?\d+)?|[A-Za-z]+|\S")


def tokenize(tex: str) -> list[str]:
    return TOKEN.findall(tex)


def parse(tex: str) -> list:
    """Nodes: ("num", s) ("id", s) ("op", s) ("text", s) ("sup"/"sub", base, arg) ("frac", a, b)
    ("matrix", rows) ("group", nodes)."""
    tokens = tokenize(tex)
    nodes, pos = _sequence(tokens, 0, stop=None)
    if pos != len(tokens):
        raise ValueError(f"unbalanced TeX: {tex!r}")
    return nodes


def _sequence(tokens, pos, stop):
    nodes: list[tuple] = []
    while pos < len(tokens) and tokens[pos] not in (stop or ()):
        tok = tokens[pos]
        if tok in ("^", "_"):
            arg, pos = _argument(tokens, pos + 1)
            base: tuple = nodes.pop() if nodes else ("group", [])
            kind = "sup" if tok == "^" else "sub"
            if kind == "sup" and base[0] == "sub":  # x_i^l: attach both scripts to x
                nodes.append(("subsup", base[1], base[2], arg))
            else:
                nodes.append((kind, base, arg))
            continue
        node, pos = _atom(tokens, pos)
        nodes.append(node)
    return nodes, pos


def _argument(tokens, pos):
    if tokens[pos] == "{":
        inner, pos = _sequence(tokens, pos + 1, stop=("}",))
        return ("group", inner), pos + 1
    return _atom(tokens, pos)


def _atom(tokens, pos):
    tok = tokens[pos]
    if tok == "{":
        return _argument(tokens, pos)
    if tok == "\\frac":
        top, pos = _argument(tokens, pos + 1)
        bottom, pos = _argument(tokens, pos)
        return ("frac", top, bottom), pos
    if tok.startswith("\\text{"):
        return ("text", tok[6:-1]), pos + 1
    if tok == "\\begin{bmatrix}":
        return _matrix(tokens, pos + 1)
    if tok.startswith("\\"):
        name = tok[1:]
        if name not in SYMBOLS:
            raise ValueError(f"unsupported TeX command {tok}")
        symbol = SYMBOLS[name]
        return (("op", symbol) if symbol in OPERATORS or name == "quad" else ("id", symbol)), pos + 1
    if tok == "'":
        return ("op", "′"), pos + 1
    if tok[0].isdigit() or (tok[0] == "-" and len(tok) > 1):  # a number, negative ones whole
        return ("num", tok), pos + 1
    return (("op", tok) if tok in OPERATORS else ("id", tok)), pos + 1


def _matrix(tokens, pos):
    rows: list[list] = []
    row: list[list] = []
    cell: list = []
    while tokens[pos] != "\\end{bmatrix}":
        tok = tokens[pos]
        if tok in ("&", "\\\\"):
            row.append(cell)
            cell = []
            if tok == "\\\\":
                rows.append(row)
                row = []
            pos += 1
            continue
        node, pos = _atom(tokens, pos)
        cell.append(node)
    row.append(cell)
    rows.append(row)
    return ("matrix", rows), pos + 1


# --- MathML ------------------------------------------------------------------
def to_mathml(tex: str, display: bool = True) -> str:
    """One <math> element; a display equation in display style."""
    body = "".join(_ml(node) for node in parse(tex))
    mode = ' display="block"' if display else ""
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML"{mode}><mrow>{body}</mrow></math>'


def to_mathml_lines(tex: str) -> str:
    """A display equation that wraps like text: one inline <math> per piece, the pieces starting at its
    top-level = and + signs (and between two brackets multiplied), side by side in a wrapping box (MathML
    has no line breaking of its own)."""
    pieces: list[list] = [[]]
    for node in parse(tex):
        product = node[0] == "matrix" and pieces[-1] and pieces[-1][-1][0] == "matrix"  # [a] [W]: may break too
        if (node[0] == "op" and node[1] in "=+" or product) and pieces[-1]:
            pieces.append([])
        pieces[-1].append(node)
    maths = "".join('<math xmlns="http://www.w3.org/1998/Math/MathML" displaystyle="true"><mrow>'
                    + "".join(_ml(n) for n in piece) + "</mrow></math>" for piece in pieces)
    return f'<div class="eq" role="math">{maths}</div>'


def _ml(node) -> str:
    kind = node[0]
    if kind == "num":
        return f"<mn>{node[1]}</mn>"
    if kind == "id":
        return f"<mi>{html.escape(node[1])}</mi>"
    if kind == "op":
        return f"<mo>{html.escape(node[1])}</mo>"
    if kind == "text":
        return f"<mtext>{html.escape(node[1])}</mtext>"
    if kind == "group":
        return "<mrow>" + "".join(_ml(n) for n in node[1]) + "</mrow>"
    if kind in ("sup", "sub"):
        return f"<m{kind}>{_ml(node[1])}{_ml(node[2])}</m{kind}>"
    if kind == "subsup":
        return f"<msubsup>{_ml(node[1])}{_ml(node[2])}{_ml(node[3])}</msubsup>"
    if kind == "frac":
        return f"<mfrac>{_ml(node[1])}{_ml(node[2])}</mfrac>"
    rows = "".join("<mtr>" + "".join("<mtd>" + "".join(_ml(n) for n in cell) + "</mtd>" for cell in row) + "</mtr>"
                   for row in node[1])
    # the brackets are the box's borders (the page's style), so they span every row without a math font
    return f'<mrow class="bmatrix"><mtable>{rows}</mtable></mrow>'


# --- plain text --------------------------------------------------------------
def to_text(tex: str) -> str:
    return _tx_seq(parse(tex)).strip()


def _tx_seq(nodes: list) -> str:
    """Nodes side by side: a space between two operands (a^0 W^1), binary minus spaced."""
    out, prev = [], None
    for node in nodes:
        text = _tx(node)
        if node[0] == "op" and node[1] == "-":
            unary = prev is None or (prev[0] == "op" and prev[1] not in ")]")
            text = "-" if unary else " - "
        elif prev is not None and _operand(node) and (_operand(prev) or _closes(prev)):
            text = " " + text
        elif node == ("op", "(") and prev is not None and prev[0] in ("sup", "sub", "subsup"):
            text = " ("  # a^0 (δ^1)^T: a product, not a function call
        out.append(text)
        prev = node
    return "".join(out)


def _operand(node) -> bool:
    """Not an operator, nor an operator with a script such as ``)^T``."""
    if node[0] in ("sup", "sub", "subsup"):
        return _operand(node[1])
    return node[0] != "op" or node[1] == "∑"  # a sum reads as a term: "∑_k w_jk"


def _closes(node) -> bool:
    base = node[1] if node[0] in ("sup", "sub", "subsup") else node
    return base[0] == "op" and base[1] in ")]"


def _script(node, mark: str) -> str:
    inner = "".join(_tx(n) for n in node[1]) if node[0] == "group" else _tx(node)
    return f"{mark}{inner}" if len(inner) == 1 or inner.isdigit() else f"{mark}{{{inner}}}"


def _tx(node) -> str:
    kind = node[0]
    if kind in ("num", "id", "text"):
        return node[1]
    if kind == "op":
        return {"=": " = ", "+": " + ", "⊙": " ⊙ ", "≈": " ≈ ", "·": " · ", "→": " → ", ",": ", "}.get(node[1], node[1])
    if kind == "group":
        return _tx_seq(node[1])
    if kind == "sup":
        return _tx(node[1]) + _script(node[2], "^")
    if kind == "sub":
        return _tx(node[1]) + _script(node[2], "_")
    if kind == "subsup":
        return _tx(node[1]) + _script(node[2], "_") + _script(node[3], "^")
    if kind == "frac":
        top, bottom = (_tx(n) if " " not in _tx(n) else f"({_tx(n)})" for n in node[1:])
        return f"{top}/{bottom}"
    rows = ["  ".join(_tx_seq(cell) for cell in row) for row in node[1]]
    return "[" + "; ".join(rows) + "]"
