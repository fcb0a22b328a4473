"""MkDocs hook: the site's math as MathML, rendered when the site is built.

pymdownx.arithmatex (generic mode) wraps each `$...$` and `$$...$$` of a page in
`<span class="arithmatex">\\(...\\)</span>` or `<div class="arithmatex">\\[...\\]</div>`; this hook
turns each into MathML with latex2mathml. Browsers draw MathML themselves, so the built site
needs no script, no font and no network to show its equations (the explain page does the same).
A TeX command latex2mathml does not know is an error naming it, so `mkdocs build` fails instead
of shipping raw TeX.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

MATH = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\([)\]])\s*</\1>', re.S)


def to_mathml(tex: str, display: str) -> str:
    mathml = convert(html.unescape(tex).strip(), display=display)
    unknown = re.findall(r"<m[io]>(\\[A-Za-z]+)</m[io]>", mathml)
    if unknown:
        raise ValueError(f"TeX command(s) {unknown} have no MathML form, in: {tex}")
    return mathml


def on_page_content(content: str, page, **kwargs) -> str:
    def replace(match: re.Match) -> str:
        display = "block" if match.group(2) == "[" else "inline"
        try:
            return to_mathml(match.group(3), display)
        except Exception as error:  # latex2mathml's own errors, and unknown commands
            raise ValueError(f"{page.file.src_path}: {error}") from error

    return MATH.sub(replace, content)
