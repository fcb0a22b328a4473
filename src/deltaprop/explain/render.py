"""Renderers of an explain document: terminal text, Markdown with TeX, self-contained HTML."""

from __future__ import annotations

import html

from .compute import Explanation
from .document import build
from .svg import network_svg
from .tex import to_mathml, to_text

BOLD, CYAN, RESET = "\033[1m", "\033[36m", "\033[0m"


def render_text(ex: Explanation, color: bool = False) -> str:
    """Plain text for a terminal; headings in colour when ``color``."""
    lines = []
    for kind, content in build(ex):
        if kind == "title":
            lines += [f"{BOLD}{content}{RESET}" if color else content, "=" * len(content)]
        elif kind == "heading":
            lines += ["", f"{BOLD}{CYAN}{content}{RESET}" if color else content, "-" * len(content)]
        elif kind == "para":
            lines.append(content)
        else:
            lines.append("    " + to_text(content))
    return "\n".join(lines) + "\n"


def render_markdown(ex: Explanation, level: int = 1) -> str:
    """GitHub Markdown: each equation a $$...$$ display block of TeX; the title a heading of ``level``."""
    lines = []
    for kind, content in build(ex):
        if kind == "title":
            lines += [f"{'#' * level} {content}", ""]
        elif kind == "heading":
            lines += [f"{'#' * (level + 1)} {content}", ""]
        elif kind == "para":
            lines += [content, ""]
        else:
            lines += ["$$", content, "$$", ""]
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
math[display="block"] { margin: 0.6rem 0; overflow-x: auto; overflow-y: hidden; padding: 2px 0; }
figure { margin: 1rem 0; } figcaption { font-size: 0.85rem; color: #555; }
"""


def render_html(ex: Explanation) -> str:
    """One offline HTML page: MathML equations (no script, no CDN) and an SVG drawing of the network."""
    body = []
    for kind, content in build(ex):
        if kind == "title":
            body.append(f"<h1>{html.escape(content)}</h1>")
            body.append(f"<figure>{network_svg(ex)}<figcaption>Neurons show a (top) and delta (bottom); "
                        "edges are coloured by the sign of dW (blue +, red -), thicker for larger |dW|."
                        "</figcaption></figure>")
        elif kind == "heading":
            body.append(f"<h2>{html.escape(content)}</h2>")
        elif kind == "para":
            body.append(f"<p>{html.escape(content)}</p>")
        else:
            body.append(to_mathml(content))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>deltaprop explain</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
