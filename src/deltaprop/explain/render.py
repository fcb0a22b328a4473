"""Renderers of an explain document: terminal text, Markdown with TeX, and the interactive HTML page."""

from __future__ import annotations

from .document import INLINE, build
from .page import page
from .tex import to_text

BOLD, CYAN, RESET = "\033[1m", "\033[36m", "\033[0m"


def inline_text(content: str) -> str:
    """A sentence with its $inline TeX$ written as plain text."""
    return INLINE.sub(lambda m: to_text(m.group(1)), content)


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
            lines += [f"{'#' * level} {content}", ""]
        elif kind == "heading":
            lines += [f"{'#' * (level + 1)} {content}", ""]
        elif kind == "para":
            lines += [content, ""]
        elif kind == "eq":
            lines += ["$$", content, "$$", ""]
    return "\n".join(lines)


def render_html(ex) -> str:
    """The interactive page (page.py): one offline file."""
    return page(ex)
