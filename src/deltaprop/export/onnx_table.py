"""A table model's raw columns in the ONNX graph: one input per column, encoded as ``TableEncoder`` does.

A category input is a string; predict reads it as ``str(value).strip()`` (data/columns.py ``_labels``), and
an empty result is missing. ONNX has no strip operator, so each training category c is matched with a
regular expression (RegexFullMatch, RE2, opset 20): ``WS* c WS*``, where WS is exactly the set of characters
Python's ``str.strip`` removes. A string of whitespace only (or "") is missing. A category that is itself not
stripped (only a forged model can hold one) never matches, as in predict.
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np

from ..errors import ConfigError

with contextlib.suppress(ImportError):  # without onnx, onnx.py refuses the export before this module is used
    from onnx import TensorProto, helper

_SPACE = "".join(chr(i) for i in range(sys.maxunicode + 1) if chr(i).isspace())
WS = "[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in _SPACE) + "]"  # what str.strip() removes, as an RE2 class
NEVER = r"[^\x00-\x{10FFFF}]"  # matches no string
MAX_CATEGORIES = 100_000  # a graph of a forged model's million categories would take gigabytes to build


def escaped(text: str) -> str:
    """``text`` as an RE2 literal: letters, digits and _ as they are, every other character as \\x{...}."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"\\x{{{ord(ch):x}}}" for ch in text)


def category_pattern(category: str) -> str:
    """The RE2 pattern a raw string fully matches exactly when its stripped form is ``category``."""
    if not category or category != category.strip():
        return NEVER
    return f"{WS}*{escaped(category)}{WS}*"


def inputs(encoder, graph) -> tuple[list, str]:
    """The graph inputs (one per column) and the name of the encoded (m, n) matrix, in double."""
    total = sum(len(c.categories) for c in encoder.columns if c.kind == "categorical")
    if total > MAX_CATEGORIES:
        raise ConfigError(f"the table's columns hold {total} categories; the ONNX export takes at most "
                          f"{MAX_CATEGORIES} (two nodes each)")
    values, blocks = [], []
    for column in encoder.columns:
        text = column.kind == "categorical"
        values.append(helper.make_tensor_value_info(column.name, TensorProto.STRING if text else TensorProto.DOUBLE,
                                                    [None, 1]))
        blocks += one_hot(graph, column) if text else imputed(graph, column)
    return values, graph.add("Concat", blocks, hint="encoded", axis=1)


def imputed(graph, column) -> list[str]:
    """A number column (m, 1): NaN replaced by the training median, then its was-missing 0/1 column."""
    absent = graph.add("IsNaN", [column.name], hint="absent")
    filled = graph.add("Where", [absent, graph.const("median", np.array([[column.median]])), column.name])
    if not column.indicator:
        return [filled]
    return [filled, graph.add("Cast", [absent], hint="indicator", to=TensorProto.DOUBLE)]


def one_hot(graph, column) -> list[str]:
    """A category column (m, 1) of strings: one 0/1 column per training category (its pattern matched), then
    the missing level's (whitespace or nothing) when there is one; an unseen category is all zeros."""
    patterns = [category_pattern(c) for c in column.categories] + ([f"{WS}*"] if column.missing_level else [])
    hits = [graph.add("Cast", [graph.add("RegexFullMatch", [column.name], hint="match", pattern=p)],
                      hint="onehot", to=TensorProto.DOUBLE) for p in patterns]
    return hits
