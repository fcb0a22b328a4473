"""Fuzzing the readers: arbitrary and mutated bytes give deltaprop's own errors, nothing else.

Any other exception (IndexError, UnicodeDecodeError, MemoryError, a panic in a
native library), or an example slower than the deadline, fails the test.
"""

import gzip
import io
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaprop as dp
import deltaprop.data
from deltaprop.cli.options import DEFAULTS, resolve
from deltaprop.data import TableEncoder, read_idx, read_table

pytestmark = pytest.mark.slow  # Hypothesis fuzzing of every reader: not in the quick tier (pytest -m "not slow")

FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    net = dp.Network([dp.Dense(3, 4, "tanh"), dp.Dense(4, 2, "softmax")], loss="cross_entropy", seed=0)
    net.fit(X, rng.integers(0, 2, 30), epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    net.save(path)
    return path.read_bytes()


def mutate(data: bytes, draw) -> bytes:
    """Flip, overwrite, cut or splice bytes of a valid file."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:i + draw(st.integers(1, 64))]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def only_our_errors(read, path):
    try:
        read(path)
    except dp.DeltapropError:
        pass


@FUZZ
@given(data=st.binary(max_size=2048))
def test_model_loader_on_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    only_our_errors(dp.load, path)


@FUZZ
@given(draw=st.data())
def test_model_loader_on_mutated_files(tmp_path, model_bytes, draw):
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(mutate(model_bytes, draw.draw))
    only_our_errors(dp.load, path)


@FUZZ
@given(header=st.binary(min_size=0, max_size=256), n=st.integers(0, 2**64 - 1))
def test_model_loader_on_arbitrary_headers(tmp_path, header, n):
    """A header length that lies, followed by anything."""
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(struct.pack("<Q", n) + header)
    only_our_errors(dp.load, path)


def idx_file(draw) -> bytes:
    ndim = draw(st.integers(1, 3))
    shape = draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim))
    values = np.arange(int(np.prod(shape)), dtype=">u1")
    return bytes([0, 0, 0x08, ndim]) + struct.pack(f">{ndim}I", *shape) + values.tobytes()


@FUZZ
@given(data=st.binary(max_size=512), compress=st.booleans())
def test_idx_reader_on_arbitrary_bytes(tmp_path, data, compress):
    path = tmp_path / "fuzz.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    only_our_errors(read_idx, path)


@FUZZ
@given(draw=st.data(), compress=st.booleans())
def test_idx_reader_on_mutated_files(tmp_path, draw, compress):
    data = mutate(idx_file(draw.draw), draw.draw)
    path = tmp_path / "fuzz.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    only_our_errors(read_idx, path)


@FUZZ
@given(draw=st.data())
def test_idx_reader_on_mutated_gzip_streams(tmp_path, draw):
    path = tmp_path / "fuzz.idx.gz"
    path.write_bytes(mutate(gzip.compress(idx_file(draw.draw)), draw.draw))
    only_our_errors(read_idx, path)


CSV_ALPHABET = st.sampled_from(list("0123456789.,-+e\n\r\"' abcxyzNnaIif;\t") + ["nan", "inf", "\x00", "é"])


@FUZZ
@given(text=st.lists(CSV_ALPHABET, max_size=300).map("".join), target=st.sampled_from([None, "0", "a", "label"]))
def test_csv_reader_on_csv_like_text(tmp_path, text, target):
    path = tmp_path / "fuzz.csv"
    path.write_text(text, encoding="utf-8")
    only_our_errors(lambda p: _read_and_encode(p, target), path)


def _read_and_encode(path, target):
    """What train does with a table: read it, fit the column encoder, encode (DataError or numbers)."""
    frame = read_table(path)
    X = TableEncoder().fit(frame, target=target).transform(frame)
    assert X.dtype == np.float64 and np.isfinite(X).all()


@FUZZ
@given(data=st.binary(max_size=512))
def test_csv_reader_on_arbitrary_bytes(tmp_path, data):
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    only_our_errors(lambda p: _read_and_encode(p, None), path)


def npz_file(draw, compressed: bool) -> bytes:
    """A small valid NPZ file (X, y), stored or deflated."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    m, n = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, X=rng.normal(size=(m, n)), y=rng.integers(0, 2, m))
    return buffer.getvalue()


@FUZZ
@given(draw=st.data(), compressed=st.booleans())
def test_npz_reader_on_mutated_files(tmp_path, draw, compressed):
    """Mutated NPZ files (headers, zip directory, deflate streams): a DataError or arrays, never another
    exception; what comes back is never more than the stored bytes allow."""
    path = tmp_path / "fuzz.npz"
    path.write_bytes(mutate(npz_file(draw.draw, compressed), draw.draw))
    try:
        X, y, _ = dp.data.load_file(path)
    except dp.DeltapropError:
        return
    assert X.nbytes + y.nbytes <= 100 * path.stat().st_size


TOML_VALUES = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8),
                        st.lists(st.integers(0, 300), max_size=3))


@FUZZ
@given(options=st.dictionaries(st.sampled_from(sorted(DEFAULTS)), TOML_VALUES, max_size=6))
def test_toml_options_of_any_type(tmp_path, options):
    """Any value under any option key of a TOML file: resolve() accepts it or raises ConfigError."""
    import tomllib

    lines = []
    for key, value in options.items():
        if isinstance(value, float) and value != value:
            text = "nan"
        elif isinstance(value, float):
            text = repr(value).replace("inf", "inf")
        else:
            text = json.dumps(value)
        lines.append(f"{key} = {text}")
    path = tmp_path / "run.toml"
    path.write_text("\n".join(lines) + "\n")
    try:
        tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError:
        return  # not TOML (a value this writer cannot express): resolve names that, tested elsewhere
    try:
        resolve({"config": str(path)})
    except dp.ConfigError:
        pass


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("abc_=[]{}\"'.,0123456789 \n#tfrue") + ["\u2028"]), max_size=200))
def test_toml_reader_on_toml_like_text(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    try:
        resolve({"config": str(path)})
    except dp.ConfigError:
        pass


def parquet_file(draw) -> bytes:
    """A small valid Parquet file: numbers, text with gaps, a label; one or two row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    m = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    table = pa.table({"x": rng.normal(size=m), "c": [None if k % 3 == 0 else "abc"[k % 3] for k in range(m)],
                      "label": rng.integers(0, 2, m)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=draw(st.sampled_from([4, 100])),
                   compression=draw(st.sampled_from(["none", "snappy", "zstd"])))
    return buffer.getvalue()


@FUZZ
@given(draw=st.data())
def test_parquet_readers_on_mutated_files(tmp_path, draw):
    """Mutated Parquet files (footer, page headers, compressed pages): read whole or streamed, a DeltapropError
    or a table, never another exception."""
    path = tmp_path / "fuzz.parquet"
    path.write_bytes(mutate(parquet_file(draw.draw), draw.draw))
    only_our_errors(lambda p: _read_and_encode(p, "label"), path)
    only_our_errors(lambda p: list(dp.data.stream(str(p), target="label", cache=False).prepare().epoch_chunks([0])),
                    path)


NAMES = st.text(alphabet=st.sampled_from(list("$\\<>&\"'`*_[](){}^#|~!\n\t =ab") + ["\u2028", "é"]), max_size=12)


@pytest.fixture(scope="module")
def explain_ready():
    """The test's fit and explanation once before the timed examples: the first loads (or, in a fresh
    environment, compiles) numba's training step for this recipe of rules, a one-time cost of the process that
    no example's deadline is about."""
    rng = np.random.default_rng(0)
    net = dp.Network([dp.Dense(3, 2, "softmax")], loss="cross_entropy", seed=0)
    net.fit(rng.normal(size=(4, 3)), np.array(["a", "b"] * 2), epochs=1, verbose=0)
    dp.explain(net, np.ones(3), "a")


@FUZZ
@given(names=st.lists(NAMES, min_size=3, max_size=3), label=NAMES)
def test_explain_renders_any_names_and_labels(explain_ready, names, label):
    """Column names and labels of any text: every format renders (no unbalanced TeX from a "$"), Markdown
    holds no raw HTML, the text shows each name as it is (control characters escaped)."""
    from deltaprop.explain import render_html, render_markdown, render_text

    rng = np.random.default_rng(0)
    net = dp.Network([dp.Dense(3, 2, "softmax")], loss="cross_entropy", seed=0)
    net.fit(rng.normal(size=(4, 3)), np.array([label, label + "!"] * 2), epochs=1, verbose=0)
    ex = dp.explain(net, np.ones(3), label, feature_names=names)
    text, md = render_text(ex), render_markdown(ex)
    render_html(ex)
    assert "<" not in md and ">" not in md.replace("&gt;", "")
    shown = ["".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in n) for n in names]
    assert f"Inputs: {shown[0]} = 1, {shown[1]} = 1, {shown[2]} = 1." in text
