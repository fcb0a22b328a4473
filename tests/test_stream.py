"""Training from shards on disk (dp.data.stream): the same weights as in memory with a full shuffle buffer,
every row once per epoch with a small one, exact streaming statistics, resumes, bad shards named, bounded memory."""

import gc
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import DataError
from deltaprop.training.streaming import StreamData

pytestmark = pytest.mark.slow  # streams shard files for several epochs, under memory budgets (not in the quick tier)


def blobs(m=1000, n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)).astype(np.float32) * [1, 2, 3, 0.5, 10][:n] + 3
    y = ((X[:, 0] - 3) + (X[:, 1] - 3) / 2 > 0).astype(np.int64) + (X[:, 2] > 6)
    return X, y


def npy_shards(folder: Path, X, y, n_shards=4) -> tuple:
    for i, (Xs, ys) in enumerate(zip(np.array_split(X, n_shards), np.array_split(y, n_shards), strict=True)):
        np.save(folder / f"X_{i}.npy", Xs)
        np.save(folder / f"y_{i}.npy", ys)
    return str(folder / "X_*.npy"), str(folder / "y_*.npy")


def parquet_shards(folder: Path, X, y, n_shards=4, reverse_last=True) -> str:
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
    import pyarrow.parquet as pq

    names = [f"f{j}" for j in range(X.shape[1])]
    for i, (Xs, ys) in enumerate(zip(np.array_split(X, n_shards), np.array_split(y, n_shards), strict=True)):
        columns = {name: Xs[:, j] for j, name in enumerate(names)} | {"label": ys}
        if reverse_last and i == n_shards - 1:  # same columns, another order: matched by name
            columns = dict(reversed(list(columns.items())))
        pq.write_table(pa.table(columns), folder / f"part-{i}.parquet", row_group_size=97)
    return str(folder / "*.parquet")


def net(dropout=0.1, dtype="float32", n_in=5):
    return dp.Network([dp.Dense(n_in, 16, "relu", dropout=dropout), dp.Dense(16, 3, "softmax")],
                      loss="cross_entropy", dtype=dtype, seed=3)


def assert_same_weights(a, b):
    for key, value in a.params().items():
        np.testing.assert_array_equal(b.params()[key], value, err_msg=str(key))


@pytest.mark.parametrize("kind", ["npy", "parquet", "parquet, no cache", "chunks", "csv"])
def test_a_full_shuffle_buffer_trains_the_weights_of_in_memory_training(tmp_path, kind):
    """Same seed, same batches, same dropout masks: bit for bit, over 3 epochs, from every kind of source
    (Parquet and CSV from the second epoch on through their decoded cache, and Parquet decoded every epoch)."""
    X, y = blobs()
    in_memory = net()
    expected = in_memory.fit(X, y, epochs=3, batch_size=32, verbose=0)
    if kind == "npy":
        data = dp.data.stream(npy_shards(tmp_path, X, y), chunk_rows=100)
    elif kind.startswith("parquet"):
        data = dp.data.stream(parquet_shards(tmp_path, X, y), target="label", chunk_rows=100,
                              cache=kind == "parquet")
    elif kind == "csv":
        X = X.astype(np.float64)  # CSV holds decimal text: compare with the float64 values it parses to
        for i, (Xs, ys) in enumerate(zip(np.array_split(X, 3), np.array_split(y, 3), strict=True)):
            rows = np.column_stack([Xs, ys])
            np.savetxt(tmp_path / f"p{i}.csv", rows, delimiter=",", header="a,b,c,d,e,label", comments="",
                       fmt=["%.17g"] * 5 + ["%d"])
        in_memory = net()
        expected = in_memory.fit(X, y, epochs=3, batch_size=32, verbose=0)
        data = dp.data.stream(str(tmp_path / "*.csv"), target="label", chunk_rows=128)
    else:
        data = dp.data.stream([(X[i:i + 300], y[i:i + 300]) for i in range(0, 1000, 300)])
    streamed = net()
    history = streamed.fit(data, epochs=3, batch_size=32, verbose=0)
    assert history["loss"] == expected["loss"] and history["accuracy"] == expected["accuracy"]
    assert_same_weights(in_memory, streamed)
    assert streamed.classes.tolist() == [0, 1, 2]


def test_parquet_is_decoded_once_and_its_cache_checks_the_files_and_goes_with_the_stream(tmp_path, monkeypatch):
    """The first pass writes the decoded chunks; epochs read them, not the Parquet files, yet a file changed
    or removed since is an error naming it; the folder is removed with the stream."""
    from deltaprop.data.sources import ParquetSource

    X, y = blobs()
    data = dp.data.stream(parquet_shards(tmp_path, X, y), target="label", chunk_rows=100, cache=tmp_path)
    decoded = []
    read = ParquetSource.chunks
    monkeypatch.setattr(ParquetSource, "chunks", lambda self, s, rows: (decoded.append(s), read(self, s, rows))[1])
    net().fit(data, epochs=2, batch_size=32, verbose=0)
    assert decoded == list(range(12))  # the first pass only: 4 files of 3 row groups (97, 97, 56 rows)
    folder = data.cache.folder
    assert folder.parent == tmp_path and len(list(folder.glob("*-X.npy"))) == 12  # a chunk per row group
    (tmp_path / "part-2.parquet").write_bytes((tmp_path / "part-1.parquet").read_bytes())
    with pytest.raises(DataError, match=r"part-2\.parquet: the file changed while training"):
        net().fit(data, epochs=1, batch_size=32, verbose=0)
    (tmp_path / "part-2.parquet").unlink()
    with pytest.raises(DataError, match=r"part-2\.parquet: no such file"):
        net().fit(data, epochs=1, batch_size=32, verbose=0)
    del data
    gc.collect()
    assert not folder.exists()


def test_a_cache_that_would_fill_the_disk_stops_with_a_warning_and_training_goes_on(tmp_path, monkeypatch):
    from deltaprop.data import cache

    X, y = blobs()
    monkeypatch.setattr(cache, "KEEP_FREE", 2**62)
    data = dp.data.stream(parquet_shards(tmp_path, X, y), target="label", chunk_rows=100)
    with pytest.warns(UserWarning, match="cache .* stopped: the disk would have less than"):
        history = net().fit(data, epochs=2, batch_size=32, verbose=0)
    assert not list(data.cache.folder.iterdir()) and not data.cache.shards
    expected = net().fit(X, y, epochs=2, batch_size=32, verbose=0)
    assert history["loss"] == expected["loss"]


def _epoch_rows(data, net_, seed, epoch, batch_size=32):
    """The rows (by their feature values) StreamData serves in one epoch, batch by batch."""
    stream_data = StreamData(net_, data, shuffle=True)
    stream_data.workspace(net_.layers, dp.TrainingState().flat_for(net_.layers, net_.dtype), batch_size)
    stream_data.new_epoch(np.random.default_rng([seed, epoch]))
    batches = [stream_data.batch(s, s + batch_size)[0].copy() for s in range(0, stream_data.m, batch_size)]
    with pytest.raises(StopIteration):
        stream_data.batch(0, 0)
    return batches


def test_a_small_buffer_serves_every_row_once_per_epoch_in_a_new_reproducible_order(tmp_path):
    X, y = blobs(1003)
    X[:, 4] = np.arange(1003)  # a row id, to count the rows served
    data = dp.data.stream(npy_shards(tmp_path, X, y, n_shards=5), chunk_rows=64, shuffle_buffer=150)
    model = net()
    data.prepare()
    model.set_classes(data.labels)
    first, again, second = (_epoch_rows(data, model, 3, e) for e in (0, 0, 1))
    ids = [np.sort(np.concatenate([b[:, 4] for b in epoch])) for epoch in (first, second)]
    for served in ids:
        np.testing.assert_array_equal(served, np.arange(1003))  # each row exactly once
    assert all(len(b) == 32 for b in first[:-1]) and len(first[-1]) == 1003 % 32
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # (seed, epoch) fixes the order
    order0, order1 = (np.concatenate([b[:, 4] for b in epoch]) for epoch in (first, second))
    assert not np.array_equal(order0, order1)
    assert abs(np.corrcoef(order0, np.arange(1003))[0, 1]) < 0.9  # shuffled, within the buffer's reach


def test_streaming_statistics_equal_the_in_memory_scaler(tmp_path):
    """Chan's pairwise merge of chunk means and squared deviations: the exact mean and std (float64)."""
    X, y = blobs(2000)
    X[:, 4] *= 1e4  # a large offset and spread: a naive sum of squares would lose digits
    for kind in ("standard", "minmax"):
        data = dp.data.stream(npy_shards(tmp_path, X, y, n_shards=7), chunk_rows=33, scaling=kind).prepare()
        reference = dp.data.Scaler(kind).fit(X)
        np.testing.assert_allclose(data.scaler.shift, reference.shift, rtol=1e-12)
        np.testing.assert_allclose(data.scaler.scale, reference.scale, rtol=1e-12)


def test_scaled_streaming_matches_in_memory_training_on_scaled_data(tmp_path):
    X, y = blobs()
    data = dp.data.stream(npy_shards(tmp_path, X, y), scaling="standard")
    streamed = net(dropout=0.0, dtype="float64")
    streamed.fit(data, epochs=2, batch_size=50, verbose=0)
    in_memory = net(dropout=0.0, dtype="float64")
    in_memory.fit(data.scaler.transform(X.astype(np.float64)), y, epochs=2, batch_size=50, verbose=0)
    for key, value in in_memory.params().items():
        np.testing.assert_allclose(streamed.params()[key], value, rtol=1e-12, atol=1e-14)


def test_validation_rows_are_fixed_held_out_and_evaluated(tmp_path):
    X, y = blobs(2000)
    X[:, 4] = np.arange(2000)
    data = dp.data.stream(npy_shards(tmp_path, X, y), chunk_rows=77, validation_fraction=0.1).prepare()
    assert data.n_train + data.n_val == 2000 and 180 <= data.n_val <= 220
    held = np.concatenate([c[0][:, 4] for c in data.epoch_chunks(data.epoch_shards(None), "val")])
    again = np.concatenate([c[0][:, 4] for c in data.epoch_chunks(data.epoch_shards(np.random.default_rng(5)), "val")])
    trained = np.concatenate([c[0][:, 4] for c in data.epoch_chunks(data.epoch_shards(None), "train")])
    np.testing.assert_array_equal(np.sort(held), np.sort(again))
    assert not set(held) & set(trained) and len(held) + len(trained) == 2000
    model = net(n_in=5)
    history = model.fit(data, epochs=2, batch_size=32, verbose=0)
    rows = held.astype(int)
    expected = dp.evaluate(model, X[rows], y[rows])
    assert history["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == expected["accuracy"]


class _Stop(dp.Callback):
    def __init__(self, after):
        self.after = after

    def on_epoch_end(self, net, epoch, logs):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt


def test_a_streamed_run_resumes_from_its_checkpoint_exactly(tmp_path):
    X, y = blobs()
    shards = npy_shards(tmp_path, X, y)

    def stream():
        return dp.data.stream(shards, chunk_rows=50, shuffle_buffer=200, validation_fraction=0.1)

    whole = net()
    whole.fit(stream(), epochs=4, batch_size=32, verbose=0)
    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        net().fit(stream(), epochs=4, batch_size=32, verbose=0, callbacks=[dp.ModelCheckpoint(path), _Stop(2)])
    resumed = dp.resume(path, stream(), None, epochs=4, batch_size=32, verbose=0)
    assert resumed.training.epoch == 4
    assert_same_weights(whole, resumed)


def test_a_shard_with_other_columns_is_refused_naming_it(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
    import pyarrow.parquet as pq

    X, y = blobs(200)
    pattern = parquet_shards(tmp_path, X, y, n_shards=2, reverse_last=False)
    pq.write_table(pa.table({"f0": X[:10, 0], "other": X[:10, 1], "label": y[:10]}), tmp_path / "part-9.parquet")
    with pytest.raises(DataError, match=r"part-9\.parquet: its columns \['f0', 'other', 'label'\] differ"):
        dp.data.stream(pattern, target="label").prepare()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_shard_naming_two_columns_alike_is_refused_naming_it(tmp_path, kind):
    """Reproduction: a CSV shard with two columns "x" trained on "x" and "x.1" (pandas' renaming), and a Parquet
    one stopped with pyarrow's KeyError; the in-memory reader refused both."""
    rows = [[1.0, 2.0, 0], [3.0, 4.0, 1]]
    if kind == "csv":
        (tmp_path / "b.csv").write_text("x,label\n1,0\n2,1\n")
        (tmp_path / "a.csv").write_text("x,x,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    else:
        pa = pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
        import pyarrow.parquet as pq

        columns = [pa.array(column) for column in zip(*rows, strict=True)]
        pq.write_table(pa.table({"x": [1.0, 2.0], "label": [0, 1]}), tmp_path / "b.parquet")
        pq.write_table(pa.Table.from_arrays(columns, names=["x", "x", "label"]), tmp_path / "a.parquet")
    for files in (f"a.{kind}", f"*.{kind}"):  # the file alone (a CSV one trained), and first of two
        with pytest.raises(DataError, match=rf"a\.{kind}: duplicated column name\(s\) \['x'\]"):
            dp.data.stream(str(tmp_path / files), target="label").prepare()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_labels_that_are_numbers_in_one_shard_and_text_in_another_are_refused_naming_both(tmp_path, kind):
    """Reproduction: for CSV, sorting the labels of the first pass stopped with Python's TypeError ('<' not
    supported between 'str' and 'int'), naming no file; Parquet said the columns ['x', 'label'] differed from
    ['x', 'label'], not which one or how."""
    import pandas as pd

    frames = {"a": pd.DataFrame({"x": [0.5, 1.5], "label": [0, 1]}),
              "b": pd.DataFrame({"x": [2.5, 3.5], "label": ["cat", "dog"]})}
    for name, frame in frames.items():
        if kind == "csv":
            frame.to_csv(tmp_path / f"{name}.csv", index=False)
        else:
            pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
            frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    message = {"csv": r"b\.csv: the target column 'label' holds text, but in .*a\.csv it holds numbers",
               "parquet": r"b\.parquet: column 'label' is of type (large_)?string, in the first shard "
                          r".*a\.parquet of type int64"}[kind]
    with pytest.raises(DataError, match=message):
        dp.data.stream(str(tmp_path / f"*.{kind}"), target="label").prepare()


def test_a_truncated_parquet_file_is_refused_naming_it(tmp_path):
    X, y = blobs(400)
    pattern = parquet_shards(tmp_path, X, y, n_shards=2)
    part = tmp_path / "part-1.parquet"
    part.write_bytes(part.read_bytes()[:-300])
    with pytest.raises(DataError, match=r"part-1\.parquet: not a readable Parquet file"):
        dp.data.stream(pattern, target="label").prepare()


def test_a_truncated_npy_shard_is_refused_naming_it(tmp_path):
    X, y = blobs(400)
    shards = npy_shards(tmp_path, X, y, n_shards=2)
    part = tmp_path / "X_1.npy"
    part.write_bytes(part.read_bytes()[:-64])
    with pytest.raises(DataError, match=r"X_1\.npy: truncated \.npy file"):
        dp.data.stream(shards)


def test_a_shard_that_disappears_mid_run_is_named_with_the_checkpoint_to_resume_from(tmp_path):
    X, y = blobs()
    shards = npy_shards(tmp_path, X, y)

    class Remove(dp.Callback):
        def on_epoch_end(self, net, epoch, logs):
            if epoch == 1:
                (tmp_path / "X_2.npy").unlink()

    path = tmp_path / "ckpt.safetensors"
    before = threading.active_count()
    with pytest.raises(DataError, match=r"X_2\.npy: no such file .*checkpoint .*ckpt\.safetensors holds epoch 2"):
        net().fit(dp.data.stream(shards, chunk_rows=100, shuffle_buffer=100), epochs=5, batch_size=32, verbose=0,
                  callbacks=[dp.ModelCheckpoint(path), Remove()])
    assert threading.active_count() == before  # the reader thread ended with the run
    assert dp.load(path).training.epoch == 2


def test_a_stream_refuses_in_memory_options_and_mismatched_networks(tmp_path):
    X, y = blobs(100)
    data = dp.data.stream(npy_shards(tmp_path, X, y, n_shards=1))
    with pytest.raises(dp.ConfigError, match="y=None"):
        net().fit(data, y, epochs=1, verbose=0)
    with pytest.raises(dp.ConfigError, match="validation from its validation_fraction"):
        net().fit(data, epochs=1, validation_split=0.2, verbose=0)
    with pytest.raises(dp.ConfigError, match="the stream has 5 features per row, the network's first layer takes 4"):
        net(n_in=4).fit(data, epochs=1, verbose=0)
    with pytest.raises(DataError, match="gzip-compressed IDX cannot be streamed"):
        gz = tmp_path / "images.gz"
        gz.write_bytes(b"\x1f\x8b" + bytes(30))
        dp.data.stream((str(gz), str(gz)))


def test_idx_files_stream_like_the_arrays_they_hold(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (300, 4, 4), dtype=np.uint8)
    labels = rng.integers(0, 3, 300).astype(np.uint8)
    (tmp_path / "img").write_bytes(b"\x00\x00\x08\x03" + np.array([300, 4, 4], ">u4").tobytes() + images.tobytes())
    (tmp_path / "lab").write_bytes(b"\x00\x00\x08\x01" + np.array([300], ">u4").tobytes() + labels.tobytes())

    def model():
        return dp.Network([dp.Dense(16, 8, "relu"), dp.Dense(8, 3, "softmax")], loss="cross_entropy", seed=0)

    streamed, in_memory = model(), model()
    streamed.fit(dp.data.stream((str(tmp_path / "img"), str(tmp_path / "lab")), chunk_rows=64), epochs=2, verbose=0)
    in_memory.fit(images.reshape(300, 16), labels, epochs=2, verbose=0)
    assert_same_weights(in_memory, streamed)


MEMORY_CHILD = textwrap.dedent("""
    import re, sys
    import numpy as np
    import deltaprop as dp

    def hwm():
        return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024

    folder, n = sys.argv[1], int(sys.argv[2])
    net = dp.Network([dp.Dense(n, 32, "relu"), dp.Dense(32, 2, "softmax")], loss="cross_entropy",
                     dtype="float32", seed=0)
    data = dp.data.stream((f"{folder}/train_X_*.npy", f"{folder}/train_y_*.npy"), chunk_rows=8192,
                          shuffle_buffer=32768, scaling="standard")
    baseline = hwm()
    net.fit(data, epochs=1, batch_size=256, optimizer=dp.Adam(3e-3), verbose=0)
    peak = hwm()
    X_test, y_test = np.load(f"{folder}/test_X.npy"), np.load(f"{folder}/test_y.npy")
    print(baseline, peak, float((net.predict(data.scaler.transform(X_test)) == y_test).mean()))
""")


def test_training_on_data_several_times_a_memory_budget_stays_under_it(tmp_path):
    """Shards of 5 x 80 MB of float32 (400 MB, over 5 times the budget) written here; a child trains with a budget of
    64 MB over its resident memory before training (VmHWM, the kernel's high-water mark, read in the child),
    and the model learns (accuracy on held-out rows). In memory the data alone would take 400 MB."""
    budget = 64 * 2**20
    rows, n, n_shards = 200_000, 100, 5
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n)
    for i in range(n_shards + 1):
        X = rng.standard_normal((rows if i < n_shards else 20_000, n), dtype=np.float32) + 1
        y = ((X - 1) @ w > 0).astype(np.int8)
        np.save(tmp_path / (f"train_X_{i}.npy" if i < n_shards else "test_X.npy"), X)
        np.save(tmp_path / (f"train_y_{i}.npy" if i < n_shards else "test_y.npy"), y)
    del X
    env = dict(os.environ, DELTAPROP_KERNELS="numpy")
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(tmp_path), str(n)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    baseline, peak, accuracy = out.stdout.split()
    assert rows * n * 4 * n_shards > 5 * budget  # the data: more than 5 times the budget
    assert int(peak) - int(baseline) < budget, f"training used {(int(peak) - int(baseline)) / 2**20:.0f} MB"
    assert float(accuracy) > 0.9


def test_the_cli_trains_from_a_glob_of_parquet_shards_and_resumes(tmp_path):
    """`deltaprop train --data 'shards/*.parquet' --target label`: the scaler from the first pass is saved
    with the model, predictions by name work on a shard, and a killed run resumes to the same model."""
    from test_cli import deltaprop

    X, y = blobs(3000)
    folder = tmp_path / "shards"
    folder.mkdir()
    pattern = parquet_shards(folder, X, y, n_shards=3)
    options = ["--data", pattern, "--target", "label", "--epochs", "4", "--batch-size", "64", "--shuffle-buffer",
               "500", "--no-plots", "--quiet"]
    deltaprop("train", *options, "--out", tmp_path / "whole")
    model = dp.load(tmp_path / "whole" / "model.safetensors")
    assert model.training.epoch == 4 and model.pipeline.feature_names == [f"f{j}" for j in range(5)]
    scaler = model.pipeline.scaler
    np.testing.assert_allclose(scaler.shift, dp.data.stream(pattern, target="label", scaling="standard",
                                                            validation_fraction=0.1).prepare().scaler.shift)
    assert (model.predict(X) == y).mean() > 0.8  # raw rows: the model scales them (4 short epochs)
    report = deltaprop("evaluate", tmp_path / "whole" / "model.safetensors", "--data", folder / "part-0.parquet",
                       "--target", "label").stdout
    assert "accuracy" in report
    two = deltaprop("train", *options[:5], "2", *options[6:], "--out", tmp_path / "half")
    assert two.returncode == 0
    half = tmp_path / "half" / "model.safetensors"
    (tmp_path / "half" / "checkpoint.safetensors").write_bytes(half.read_bytes())  # as if killed after epoch 2
    deltaprop("train", *options, "--resume", tmp_path / "half" / "checkpoint.safetensors")
    assert_same_weights(model, dp.load(tmp_path / "half" / "model.safetensors"))


def _penguins_like(m=900, seed=4):
    """A table with a text column, missing numbers and missing categories, and a label from them."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], m)
    mass = rng.normal(4000, 600, m)
    bill = rng.normal(44, 5, m)
    label = np.where((mass > 4000) ^ (island == "Dream"), "big", "small")
    mass[rng.random(m) < 0.1] = np.nan
    island = island.astype(object)
    island[rng.random(m) < 0.05] = None
    return pd.DataFrame({"island": island, "mass": mass, "bill": bill, "label": label})


def test_a_streamed_table_is_encoded_like_the_table_in_memory(tmp_path):
    """Text columns one-hot with the whole stream's categories, missing numbers set to the whole stream's
    median with an indicator, the scaler of the encoded inputs without a second pass: the encoder equals the
    in-memory TableEncoder's, the scaler agrees to 1e-12, and training agrees to rounding."""
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
    import pyarrow.parquet as pq

    frame = _penguins_like()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        pq.write_table(pa.Table.from_pandas(frame.iloc[part], preserve_index=False), tmp_path / f"t{i}.parquet")
    data = dp.data.stream(str(tmp_path / "*.parquet"), target="label", scaling="standard", chunk_rows=128).prepare()
    assert data.table and data.n_features == 3 + 1 + 2 + 1  # 3 islands + missing level, mass + indicator, bill
    features = frame.drop(columns="label")
    encoder = dp.data.TableEncoder().fit(features)
    assert data.encoder.to_config() == encoder.to_config()
    X = encoder.transform(features)
    scaler = dp.data.Scaler("standard").fit(X).leave(encoder.binary_outputs)
    np.testing.assert_allclose(data.scaler.shift, scaler.shift, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.scaler.scale, scaler.scale, rtol=1e-12)

    def model():
        return dp.Network([dp.Dense(7, 8, "tanh"), dp.Dense(8, 2, "softmax")], loss="cross_entropy", seed=1)

    streamed, in_memory = model(), model()
    streamed.fit(data, epochs=3, batch_size=32, verbose=0)
    in_memory.fit(scaler.transform(X), frame["label"].to_numpy(), epochs=3, batch_size=32, verbose=0)
    for key, value in in_memory.params().items():
        np.testing.assert_allclose(streamed.params()[key], value, rtol=1e-9, atol=1e-12)
    assert streamed.classes.tolist() == ["big", "small"]


def test_the_median_of_a_long_column_comes_from_a_bounded_sample(tmp_path):
    """Past SAMPLE values a column's median is that of a uniform sample of SAMPLE values (reservoir): memory stays
    bounded, and the estimate lands within a fraction of a standard deviation of the exact median."""
    import pandas as pd

    from deltaprop.data import table_stats

    rng = np.random.default_rng(2)
    values = rng.exponential(3.0, 250_000)
    chunks = [pd.DataFrame({"x": values[i:i + 10_000], "c": ["a"] * 10_000}) for i in range(0, 250_000, 10_000)]
    every, rows = np.ones(10_000, bool), np.arange(10_000)
    stats = table_stats.TableStats(chunks[0], every, rows, dp.data.TableEncoder())
    for chunk in chunks:
        stats.add(chunk, every, rows)
    assert len(stats.samples["x"]) == table_stats.SAMPLE
    encoder, _ = stats.finish("standard")
    median = encoder.columns[0].median
    assert abs(median - np.median(values)) < 0.02 * values.std()


def test_a_column_without_values_in_the_first_chunk_is_decided_where_its_values_appear(tmp_path):
    """Reproduction: a numeric column empty in the first 600 rows and a text column empty in the first 100 were
    dropped as having "no values" (decided on the first chunk of 100 rows), their data silently unused. Now the
    streamed encoder equals the in-memory one on the whole table, and the scaler agrees to 1e-12; a column with
    no values anywhere is dropped as in memory, and one named numeric is refused."""
    frame = _penguins_like(1000)
    frame.loc[:599, "mass"] = np.nan
    frame.loc[:99, "island"] = None
    frame["empty"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = dp.data.stream(str(tmp_path / "t.csv"), target="label", scaling="standard", chunk_rows=100).prepare()
    features = frame.drop(columns="label")
    encoder = dp.data.TableEncoder().fit(features)
    assert data.encoder.feature_names == encoder.feature_names == [
        "island=Biscoe", "island=Dream", "island=Torgersen", "island=<missing>", "mass", "mass missing", "bill"]
    assert data.encoder.to_config() == encoder.to_config()  # categories, the median, indicators, ("empty", ...)
    scaler = dp.data.Scaler("standard").fit(encoder.transform(features)).leave(encoder.binary_outputs)
    np.testing.assert_allclose(data.scaler.shift, scaler.shift, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(data.scaler.scale, scaler.scale, rtol=1e-12)
    named = dp.data.stream(str(tmp_path / "t.csv"), target="label", chunk_rows=100,
                           encoder=dp.data.TableEncoder(numeric=["empty"]))
    with pytest.raises(DataError, match="column 'empty' has no values in the whole stream"):
        named.prepare()


def test_a_boolean_column_that_later_holds_numbers_is_scaled_as_a_number(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    pd.DataFrame({"b": rng.random(50) > 0.5, "x": rng.random(50), "label": rng.integers(0, 2, 50)}).to_csv(
        tmp_path / "a.csv", index=False)
    pd.DataFrame({"b": rng.normal(5, 2, 50), "x": rng.random(50), "label": rng.integers(0, 2, 50)}).to_csv(
        tmp_path / "b.csv", index=False)
    data = dp.data.stream(str(tmp_path / "*.csv"), target="label", scaling="standard").prepare()
    assert [c.kind for c in data.encoder.columns] == ["numeric", "numeric"]
    assert data.scaler.scale[0] > 1  # scaled (booleans are left as 0/1): 0/1 and N(5, 2) values together


def test_text_in_a_numeric_column_names_the_file_and_its_data_row_held_out_rows_included(tmp_path):
    """Reproduction: text at data row 701 of a file read in chunks of 100 was reported as "data row 1", with no
    file named; a held-out (validation) row was not checked before training."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.random(1000).astype(object), "label": rng.integers(0, 2, 1000)})
    frame.loc[700, "x"] = "oops"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"t\.csv: column 'x' is numeric but data row 701 holds 'oops'"):
        dp.data.stream(str(tmp_path / "t.csv"), target="label", chunk_rows=100).prepare()
    data = dp.data.stream(str(tmp_path / "t.csv"), target="label", chunk_rows=100, validation_fraction=0.3)
    held = int(np.flatnonzero(data._held_out(0, 0, 1000))[-1])
    frame.loc[700, "x"], frame.loc[held, "x"] = 0.5, "held"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=rf"data row {held + 1} holds 'held'"):
        data.prepare()


def test_streamed_csv_files_are_read_as_read_table_reads_them(tmp_path):
    """Reproduction: the stream read CSV with pandas' defaults, not as read_table (and predict) reads a file:
    a ";"-separated file with decimal commas was not read at all, --na-values was ignored, and "?" was a category
    while predict reads it as missing: the same cell encoded one way in training and another in predict. Now
    the streamed encoder equals the in-memory one on the same files, and the CLI passes and saves the options."""
    import pandas as pd

    from test_cli import deltaprop

    frame = _penguins_like(900)
    frame["mass"] = [("-" if np.isnan(v) else int(v)) for v in frame["mass"]]
    frame.loc[frame.index % 17 == 0, "island"] = "?"
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_csv(tmp_path / f"part{i}.csv", sep=";", decimal=",", index=False)
    read = dp.data.ReadOptions(na_values=["-"])
    data = dp.data.stream(str(tmp_path / "*.csv"), target="label", chunk_rows=100, read=read).prepare()
    whole = pd.concat([dp.data.read_table(tmp_path / f"part{i}.csv", read) for i in range(3)], ignore_index=True)
    encoder = dp.data.TableEncoder().fit(whole.drop(columns="label"))
    assert data.encoder.to_config() == encoder.to_config()
    assert encoder.columns[0].missing_level and "?" not in encoder.columns[0].categories
    assert [c.kind for c in encoder.columns] == ["categorical", "numeric", "numeric"]
    deltaprop("train", "--data", tmp_path / "*.csv", "--target", "label", "--na-values", "-", "--epochs", "2",
              "--no-plots", "--quiet", "--out", tmp_path / "run")
    model = dp.load(tmp_path / "run" / "model.safetensors")
    assert model.pipeline.source["read"]["na_values"] == ["-"]
    deltaprop("evaluate", tmp_path / "run" / "model.safetensors", "--data", tmp_path / "part0.csv")


def test_the_cli_streams_a_table_with_text_and_missing_values(tmp_path):
    from test_cli import deltaprop

    frame = _penguins_like(1500)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_csv(tmp_path / f"part{i}.csv", index=False)
    deltaprop("train", "--data", tmp_path / "*.csv", "--target", "label", "--epochs", "20", "--no-plots", "--quiet",
              "--out", tmp_path / "run")
    model = dp.load(tmp_path / "run" / "model.safetensors")
    assert model.pipeline.feature_names[:4] == ["island=Biscoe", "island=Dream", "island=Torgersen",
                                                "island=<missing>"]
    report = deltaprop("evaluate", tmp_path / "run" / "model.safetensors", "--data", tmp_path / "part0.csv",
                       "--target", "label").stdout
    accuracy = float(report.split("accuracy")[1].split()[1])  # "accuracy: 0.95"
    assert accuracy > 0.85
    missing = deltaprop("evaluate", tmp_path / "run" / "model.safetensors", check=False)
    assert missing.returncode != 0 and "streamed" in missing.stderr


def test_held_out_shards_validate_through_a_second_stream(tmp_path):
    """validation_data: a Stream of other shards, read with the training stream's scaling (not its own)."""
    X, y = blobs(1200)
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    train = dp.data.stream(npy_shards(tmp_path / "train", X[:1000], y[:1000]), scaling="standard")
    val = dp.data.stream(npy_shards(tmp_path / "val", X[1000:], y[1000:], n_shards=2), scaling="standard")
    model = net()
    history = model.fit(train, epochs=2, batch_size=32, validation_data=val, verbose=0)
    expected = dp.evaluate(model, train.scaler.transform(X[1000:]), y[1000:])  # the training rows' scaling
    assert history["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == expected["accuracy"]
    with pytest.raises(dp.ConfigError, match="validation_data must be a Stream too"):
        model.fit(train, epochs=1, validation_data=(X, y), verbose=0)


def test_a_parquet_row_group_is_a_shard_so_one_file_spreads_over_ranks(tmp_path):
    """One Parquet file of 4 row groups is 4 shards: each of 2 ranks reads its two row groups, and only those
    rows (the column f0 holds the row number)."""
    pa = pytest.importorskip("pyarrow", reason="Parquet needs the [parquet] extra (pyarrow)")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"f0": np.arange(400.0), "label": np.arange(400) % 2}), tmp_path / "one.parquet",
                   row_group_size=100)
    data = dp.data.stream(str(tmp_path / "one.parquet"), target="label", cache=False).prepare()
    assert len(data.source.shards) == 4 and data.shard_rows == [100] * 4
    for rank, groups in ((0, [0, 2]), (1, [1, 3])):
        shards = data.epoch_shards(None, rank, 2)
        assert shards == groups
        rows = np.concatenate([X[:, 0] for X, _ in data.epoch_chunks(shards, "all")])
        np.testing.assert_array_equal(rows, np.concatenate([np.arange(100 * g, 100 * g + 100) for g in groups]))


@pytest.mark.parametrize("sizes", [(3, 997), (150, 90, 200, 60, 120), (0, 500, 40)])
def test_ranks_share_every_global_batch_in_whole_rows_and_serve_each_row_once(tmp_path, sizes):
    """The batches of 2 and 3 ranks, computed in one process: each global batch of 32 rows is split into whole
    rows summing to 32 (the last: what is left), each rank serves its own shards' rows once per epoch, and a
    rank with 3 rows of 1000 (most of its batches empty), or none, ends with the others."""
    from deltaprop.training.state import TrainingState

    rng = np.random.default_rng(0)
    for i, n in enumerate(sizes):
        np.save(tmp_path / f"X_{i}.npy", np.column_stack([np.arange(n) + 1000 * i, rng.normal(size=(n, 4))]))
        np.save(tmp_path / f"y_{i}.npy", rng.integers(0, 3, n))
    data = dp.data.stream((str(tmp_path / "X_*.npy"), str(tmp_path / "y_*.npy")), chunk_rows=50,
                          shuffle_buffer=100).prepare()
    model = net(n_in=5)
    model.classes = data.labels
    flat = TrainingState().flat_for(model.layers, model.dtype)
    for ranks in (2, 3):
        if ranks > len(sizes):
            continue
        for epoch in range(2):
            served, per_batch = [], []
            for rank in range(ranks):
                part = StreamData(model, data, shuffle=True)
                part.part = (rank, ranks)
                part.workspace(model.layers, flat, 32)
                part.new_epoch(np.random.default_rng([7, epoch]))
                mine = []
                for start in range(0, data.n_train, 32):
                    X, _, _ = part.batch(start, start + 32)
                    share = part.share
                    assert len(X) == share.weight and share.rows == min(32, data.n_train - start)
                    mine.append(len(X))
                    served += X[:, 0].tolist()
                per_batch.append(mine)
            assert np.sum(per_batch, axis=0).tolist() == [min(32, data.n_train - s) for s in range(0, data.n_train, 32)]
            assert sorted(served) == sorted(float(r + 1000 * i) for i, n in enumerate(sizes) for r in range(n))
