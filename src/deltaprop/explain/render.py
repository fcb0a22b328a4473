"""Renderers of an explain document: terminal text, Markdown with TeX, and the interactive HTML page."""

from __future__ import annotations

import html
import re

from .document import build, pieces
from .page import page
from .tex import to_text

BOLD, CYAN, RESET = "\033[1m", "\033[36m", "\033[0m"


def inline_text(content: str) -> str:
    """A sentence with its $inline TeX$ written as plain text."""
    return "".join(to_text(part) if math else part for math, part in pieces(content))


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]$|~])")


def inline_markdown(content: str) -> str:
    """A sentence for Markdown: its $inline TeX$ kept as TeX, its text escaped, so that a name or label never
    becomes HTML (notebooks and many viewers render raw HTML: ``<script>``), a link, emphasis or math:
    & < > as entities, Markdown's other active characters with a backslash."""
    return "".join(f"${part}$" if math else _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(part, quote=False))
                   for math, part in pieces(content))


def render_text(ex, color: bool = False) -> str:
    """Plain text for a terminal; headings in colour when ``color``."""
    lines = []
    for kind, content in build(ex):
        if kind == "title":
            content = inline_text(content)
            lines += [f"{BOLD}{content}{RESET}" if color else content, "=" * len(content)]
        elif kind == "heading":
            content = inline_text(content)
            lines += ["", f"{BOLD}{CYAN}{content}{RESET}" if color else content, "-" * len(content)]
        elif kind == "para":
            lines.append(inline_text(content))
        elif kind == "eq":
            lines.append("    " + to_text(content))
    return "\n".join(lines) + "\n"


def render_markdown(ex, level: int = 1) -> str:
    """GitHub Markdown: each equation a $$...$$ display block of TeX, inline math as $...$; the title a heading
    of ``level``."""
    lines = []
    for kind, content in build(ex):
        if kind == "title":
            lines += [f"{'#' * level} {inline_markdown(content)}", ""]
        elif kind == "heading":
            lines += [f"{'#' * (level + 1)} {inline_markdown(content)}", ""]
        elif kind == "para":
            lines += [inline_markdown(content), ""]
        elif kind == "eq":
            lines += ["$$", content, "$$", ""]
    return "\n".join(lines)


def render_html(ex) -> str:
    """The interactive page (page.py): one offline file."""
    return page(ex)
