"""Data readers: IDX (plain and gz, truncated), CSV (headers, labels, bad columns), NPZ, scaling."""

import gzip
import struct

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.data import Scaler, TableEncoder, load_builtin, read_idx, read_npz, read_table
from deltaprop.data.builtin import load_idx_folder


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0D: ">f4", 0x0C: ">i4"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("code,values", [(0x08, np.arange(24).reshape(2, 3, 4)),
                                         (0x0D, np.linspace(-1, 1, 6).reshape(3, 2)),
                                         (0x0C, np.array([-5, 0, 7, 2**20]))])
def test_idx_round_trip(tmp_path, compress, code, values):
    raw = idx_bytes(values, code)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    result = read_idx(path)
    np.testing.assert_array_equal(result, values.astype(result.dtype))
    assert result.shape == values.shape and result.dtype.isnative


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_idx_is_a_clear_error(tmp_path, compress):
    raw = idx_bytes(np.arange(100).reshape(10, 10))[:-7]
    path = tmp_path / "t.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(dp.DataError, match="truncated IDX file: shape \\(10, 10\\) needs 100 bytes of data, "
                                           "found 93"):
        read_idx(path)


@pytest.mark.parametrize("content,message", [
    (b"", "bad magic number empty"), (b"\x01\x00\x08\x01abcd", "bad magic"), (b"\x00\x00\x08\x02\x00", "truncated"),
    (idx_bytes(np.arange(4)) + b"x", "data beyond"), (b"\x1f\x8b\x08\x00garbage", "corrupt IDX"),
    (b"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "more than any supported"),
])
def test_bad_idx_files(tmp_path, content, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(dp.DataError, match=message):
        read_idx(path)


def test_idx_folder_like_fashion_mnist(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, m in (("train", 12), ("t10k", 5)):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(rng.integers(0, 256, (m, 4, 4)))))
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(rng.integers(0, 10, m)))
    data = load_idx_folder(tmp_path, "mnist")
    assert data.X_train.shape == (12, 16) and data.X_test.shape == (5, 16)
    assert data.X_train.dtype == np.float32 and 0 <= data.X_train.min() and data.X_train.max() <= 1


def test_missing_idx_set_says_how_to_get_it(tmp_path):
    with pytest.raises(dp.DataError, match="apt-get install dataset-fashion-mnist"):
        load_builtin("fashion-mnist", data_dir=tmp_path)


def test_builtin_sklearn_sets_split_stratified():
    data = load_builtin("iris")
    assert data.X_train.shape == (112, 4) and data.X_test.shape == (38, 4)
    assert sorted(np.bincount(data.y_test)) == [12, 13, 13]
    with pytest.raises(dp.DataError, match="unknown data set"):
        load_builtin("imagenet")


def test_csv_with_header_string_labels_and_target_by_name(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label,b\n1,cat,2.5\n3,dog,4\n5,cat,6\n")
    frame = read_table(path)
    assert list(frame.columns) == ["a", "label", "b"] and list(frame["label"]) == ["cat", "dog", "cat"]
    X = TableEncoder().fit(frame, target="label").transform(frame)
    np.testing.assert_array_equal(X, [[1, 2.5], [3, 4], [5, 6]])


def test_csv_without_header_names_columns_by_position(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2,0\n3,4,1\n")
    frame = read_table(path)
    assert list(frame.columns) == ["column0", "column1", "column2"] and frame.shape == (2, 3)


@pytest.mark.parametrize("text,message", [
    ("a,y\n1,0\n2,1,5\n", "malformed CSV"),
    ("", "empty"),
    ("a,b,a\n1,2,3\n", "duplicated column name\\(s\\) \\['a'\\]"),
    ("a,y\n", "has a header but no data rows"),
    ("a,y\n\x00\x01,2\n", "not a text file"),
])
def test_bad_csv_files(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(dp.DataError, match=message):
        read_table(path)


def test_npz_needs_X_and_y_and_refuses_pickles(tmp_path):
    np.savez(tmp_path / "ok.npz", X=np.ones((3, 2)), y=np.arange(3))
    X, y = read_npz(tmp_path / "ok.npz")
    assert X.shape == (3, 2) and list(y) == [0, 1, 2]
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    with pytest.raises(dp.DataError, match="needs arrays 'X' and 'y'"):
        read_npz(tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([object()] * 2), y=np.arange(2))
    with pytest.raises(dp.DataError, match="holds Python objects; only numeric arrays are read"):
        read_npz(tmp_path / "obj.npz")
    with (tmp_path / "claims.npy").open("wb") as f:  # a header claiming 10^12 values over 8 bytes of data
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        f.write(b"\0" * 8)
    import zipfile

    with zipfile.ZipFile(tmp_path / "big.npz", "w") as z:
        z.write(tmp_path / "claims.npy", "X.npy")
        z.write(tmp_path / "claims.npy", "y.npy")
    with pytest.raises(dp.DataError, match=r"claims shape \(1000000000000,\) \(8000000000000 bytes\), more than"):
        read_npz(tmp_path / "big.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(dp.DataError):
        read_npz(tmp_path / "junk.npz")


def test_scaler_fits_on_training_data_and_round_trips():
    X = np.array([[0.0, 10.0, 5.0], [2.0, 30.0, 5.0]])
    scaler = Scaler("standard").fit(X)
    np.testing.assert_allclose(scaler.transform(X), [[-1, -1, 0], [1, 1, 0]])  # constant column -> 0
    again = Scaler.from_config(scaler.to_config())
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
    np.testing.assert_allclose(Scaler("minmax").fit(X).transform(np.array([[1.0, 20.0, 5.0]])), [[0.5, 0.5, 0]])
    with pytest.raises(dp.DataError, match="X has 4 features per sample, the model expects 3"):
        scaler.transform(np.ones((2, 4)))


def test_csv_huge_whole_numbers_stay_floats(tmp_path):
    """1e20 is integral but no int64: the target stays float instead of overflowing (found by fuzzing)."""
    from deltaprop.data.tables import target_values

    path = tmp_path / "big.csv"
    path.write_text("1,1e20\n2,3\n")
    y = target_values(read_table(path)["column1"], "column1")
    assert y.dtype == np.float64 and y[0] == 1e20
