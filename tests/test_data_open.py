"""data.open, the one entry point: a source by what it is, read whole or streamed alike; the hostile cases
(unknown suffix, a folder, a missing file, content that is not its suffix's) are DataErrors that name the
problem; the one moments helper; the BatchSource protocol that both kinds of training data implement."""

import numpy as np
import pandas as pd
import pytest

import deltaprop as dp
from deltaprop.data import Moments, formats
from deltaprop.data.registry import BuiltinSet, IdxFolder, NpzFile, TableFile
from deltaprop.errors import DataError


def table_file(tmp_path, name="t.csv", n=40):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "label": rng.integers(0, 2, n)})
    path = tmp_path / name
    if name.endswith((".parquet", ".pq")):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    return path, frame


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.txt", "t.parquet"])
def test_a_table_file_read_whole_is_read_table_with_its_target(tmp_path, name):
    path, frame = table_file(tmp_path, name)
    source = dp.data.open(path, target="label")
    assert isinstance(source, TableFile)
    whole = source.read()
    assert whole.table and whole.target == "label" and whole.feature_names == ["a", "b"]
    pd.testing.assert_frame_equal(whole.X, dp.data.read_table(path))  # the in-memory reader, unchanged
    np.testing.assert_array_equal(whole.y, frame["label"].to_numpy())


def test_a_table_file_streams_the_same_rows_it_reads_whole(tmp_path):
    path, frame = table_file(tmp_path, "t.tsv")  # a tab: the format says so, not the sniffing
    data = dp.data.stream(path, target="label", cache=False).prepare()
    rows = list(data.epoch_chunks(data.epoch_shards(None), "all"))
    np.testing.assert_allclose(np.concatenate([X for X, _ in rows]), frame[["a", "b"]].to_numpy())  # (encoded)
    np.testing.assert_array_equal(np.concatenate([y for _, y in rows]), frame["label"].to_numpy())


def test_npz_builtin_and_idx_folder_are_sources_read_whole(tmp_path):
    X, y = np.arange(12.0).reshape(6, 2), np.array([0.0, 1, 0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    whole = dp.data.open(tmp_path / "d.npz").read()
    np.testing.assert_array_equal(whole.X, X)
    assert whole.y.dtype == np.int64 and whole.feature_names == ["x0", "x1"]  # whole numbers: labels
    assert isinstance(dp.data.open(tmp_path / "d.npz"), NpzFile)
    digits = dp.data.open("digits", seed=0)
    assert isinstance(digits, BuiltinSet)
    split = digits.read()
    reference = dp.data.load_builtin("digits", seed=0)
    np.testing.assert_array_equal(split.X, reference.X_train)
    np.testing.assert_array_equal(split.test[1], reference.y_test)
    assert isinstance(dp.data.open(tmp_path), IdxFolder)  # a folder without shards: an IDX set's


def test_shards_by_glob_and_folder_and_npy_pairs_read_whole(tmp_path):
    for k in range(3):
        table_file(tmp_path, f"part-{k}.parquet", n=10)
    for spec in (tmp_path / "*.parquet", tmp_path):
        assert dp.data.is_sharded(spec)
        whole = dp.data.open(spec, target="label").read()
        assert whole.X.shape == (30, 2) and len(whole.y) == 30
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    whole = dp.data.open((tmp_path / "X.npy", tmp_path / "y.npy")).read()
    np.testing.assert_array_equal(whole.X, X)
    np.testing.assert_array_equal(whole.y, y)


def test_an_unknown_suffix_is_refused_naming_it_and_the_known_ones(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DataError, match=r"data\.xlsx: unknown data file type '\.xlsx'; deltaprop reads a table "
                                        r"\(\.csv, \.txt, \.tsv, \.parquet, \.pq\)"):
        dp.data.open(path)


def test_a_missing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"no data set or file '.*none\.csv'"):
        dp.data.open(tmp_path / "none.csv")


def test_a_folder_with_nothing_to_read_says_what_it_lacks(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(DataError, match=r"not found in .* \(missing train-images-idx3-ubyte\[\.gz\]\)"):
        dp.data.open(tmp_path).read()
    (tmp_path / "a.csv").write_text("x,label\n1,0\n")
    (tmp_path / "b.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"several kinds \(csv, parquet, unknown\)"):
        dp.data.open(tmp_path, target="label")


@pytest.mark.parametrize("name,content,kind", [
    ("fake.parquet", b"a,b,label\n1,2,0\n", "PARQUET"),  # a CSV renamed .parquet
    ("fake.npz", b"<html>not found</html>", "NPZ"),  # an error page saved as the data
])
def test_content_that_is_not_its_suffixs_is_refused_by_name(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"{name}: not a {kind} file .*is the suffix \.\w+ right\?"):
        dp.data.open(path)


def test_a_lone_npy_file_says_to_give_a_pair(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((3, 2)))
    with pytest.raises(DataError, match="holds one array; give X and y as a pair"):
        dp.data.open(tmp_path / "X.npy")


def test_a_suffix_is_claimed_by_one_format_only():
    with pytest.raises(DataError, match=r"the suffix \.csv is 'csv''s already"):
        formats.register(formats.Format("other", (".csv",), table=True, opener=lambda path, options: None))


def test_a_registered_format_is_opened_by_its_suffix(tmp_path):
    """A new format is one Format and its opener: open() and the help text know it at once."""
    class Lines(dp.data.Source):
        streams = False

        def __init__(self, path, options):
            self.file, self.shards, self.features = path, [path], None

        def read(self):
            values = np.loadtxt(self.file, ndmin=2)
            return dp.data.Whole(self.file.stem, values[:, :-1], values[:, -1].astype(int), ["v"])

    fmt = formats.register(formats.Format("lines", (".lines",), table=False, opener=Lines))
    try:
        (tmp_path / "d.lines").write_text("0.5 1\n1.5 0\n")
        whole = dp.data.open(tmp_path / "d.lines").read()
        np.testing.assert_array_equal(whole.y, [1, 0])
        assert ".lines" in formats.describe()
    finally:
        for suffix in fmt.suffixes:
            formats.FORMATS.pop(suffix)


def test_one_moments_helper_agrees_with_numpy_in_one_chunk_or_many():
    rng = np.random.default_rng(1)
    X = rng.normal(3.0, 2.0, size=(5000, 3)).astype(np.float32)
    whole = Moments().add(X)
    chunked = Moments()
    for start in range(0, 5000, 777):
        chunked.add(X[start:start + 777])
    for moments in (whole, chunked):
        np.testing.assert_allclose(moments.mean, X.astype(float).mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(moments.variance(), X.astype(float).var(axis=0), rtol=1e-10)
        np.testing.assert_array_equal(moments.low, X.min(axis=0))
        np.testing.assert_array_equal(moments.high, X.max(axis=0))
    filled = Moments().add(np.array([1.0, 3.0])).fill(2, 2.0)  # two imputed cells at the median
    assert filled.n == 4 and filled.mean[0] == 2.0 and filled.variance()[0] == 0.5


def test_epoch_and_stream_data_are_batch_sources(tmp_path):
    from deltaprop.training.batches import BatchSource, EpochData
    from deltaprop.training.streaming import StreamData

    X, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    epoch = EpochData(X, np.eye(2)[y], None, True, True)
    net = dp.Network([dp.Dense(2, 2, "softmax")], loss="cross_entropy")
    net.set_classes(y)
    streamed = StreamData(net, dp.data.stream([(X, y)]), True)
    assert isinstance(epoch, BatchSource) and isinstance(streamed, BatchSource)
    assert epoch.in_memory and not streamed.in_memory and streamed.compiled is None


def test_a_binary_file_named_csv_and_a_fifo_are_refused_by_name(tmp_path):
    import os

    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DataError, match=r"image\.csv: not a UTF-8 text file"):
        dp.data.open(binary).read()
    os.mkfifo(tmp_path / "pipe.csv")  # opening it would block for ever
    with pytest.raises(DataError, match=r"pipe\.csv: not a regular file \(a FIFO"):
        dp.data.open(tmp_path / "pipe.csv")


def test_a_new_table_format_is_a_format_and_its_frame_reader_and_the_cli_reads_it(tmp_path):
    """JSON lines as a new table format: one Format and a TableFile whose frame() reads the file; the CLI's
    in-memory path (load_data: target column, missing targets, split, encoder) needs no change to read it."""
    from deltaprop.cli.common import load_data
    from deltaprop.data.registry import TableFile

    class JsonLines(TableFile):
        def frame(self):
            return pd.read_json(self.file, lines=True)

    fmt = formats.register(formats.Format("jsonl", (".jsonl",), table=True, opener=JsonLines))
    try:
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"size": rng.normal(size=40), "colour": rng.choice(["red", "blue"], 40),
                              "label": rng.integers(0, 2, 40).astype(float)})
        frame.loc[3, "label"] = np.nan
        frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
        assert formats.is_table(tmp_path / "t.jsonl")
        data, names, record, notes = load_data(str(tmp_path / "t.jsonl"), "label", test_size=0.25)
        assert notes == ["left out 1 row(s) whose target 'label' is missing"]
        assert len(data.y_train) + len(data.y_test) == 39 and record["target"] == "label"
        assert names == ["size", "colour=blue", "colour=red"]  # the text column one-hot encoded by name
    finally:
        for suffix in fmt.suffixes:
            formats.FORMATS.pop(suffix)
