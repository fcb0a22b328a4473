"""The piecewise-linear encoding stage (issue 29's numerical embeddings; Gorishniy et al. 2022).

Each numeric input x (scaled) becomes T ramps e_t = clip((x - b_{t-1}) / (b_t - b_{t-1}), 0, 1) over the
distinct quantiles b of its training values; 0/1 inputs and inputs of at most 2 distinct values pass as they
are. The stage is carried by the model like the scaler, through every door: net.predict, deltaprop
predict / evaluate / explain / info, the model file, and the ONNX graph. deltaprop train adds it by default
on tables of at least 1000 training rows (--bins: 0 off, N bins), never on array data.
"""

import io
import json

import numpy as np
import pandas as pd
import pytest

import deltaprop as dp
from deltaprop.data import Scaler
from deltaprop.data.piecewise import AUTO_BINS, AUTO_MAX_INPUTS, MAX_BINS, PiecewiseLinear, auto_bins
from deltaprop.preprocessing import Pipeline
from test_cli import deltaprop
from test_pipeline import _forge_record

COMMON = ["--layers", "32", "--quiet", "--no-plots"]


# --- the encoding by hand ---------------------------------------------------------------------------------------

def test_the_encoding_of_a_small_column_by_hand():
    """Column 0: 0..8, 4 bins: edges 0, 2, 4, 6, 8 (quantiles at 0, 1/4, ..., 1). 3 is [1, 0.5, 0, 0]; below the
    training range all zeros, above it all ones (both ends clipped: an outlier reads as the range's edge)."""
    X = np.column_stack([np.arange(9.0), np.arange(9.0) * 10])
    stage = PiecewiseLinear(4).fit(X)
    assert [b.tolist() for b in stage.edges] == [[0, 2, 4, 6, 8], [0, 20, 40, 60, 80]]
    assert stage.width == 8
    new = np.array([[3.0, 45.0], [-5.0, 80.0], [100.0, -1e300], [8.0, 1e300], [0.0, 20.0]])
    got = stage.transform(new)
    expected = [[1, 0.5, 0, 0, 1, 1, 0.25, 0], [0, 0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0, 0],
                [1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0, 0]]
    assert got.tolist() == expected


def test_few_distinct_values_give_fewer_bins_and_two_pass_unchanged():
    """Column 0 has 3 distinct values: its quantiles at 0, 1/4, ..., 1 of the sorted [0,0,0,0,0,1,1,5,5] are
    0, 0, 0, 1, 5, so 2 bins. Column 1 has 2 distinct values (3 and 7): passed as it is, one column. Column 2
    is many-valued but named in ``leave`` (a 0/1 input of the table): passed as it is."""
    c0 = np.array([0, 0, 0, 0, 0, 1, 1, 5, 5], dtype=float)
    c1 = np.array([3, 7, 3, 7, 3, 7, 3, 7, 3], dtype=float)
    c2 = np.linspace(-1, 1, 9)
    stage = PiecewiseLinear(4).fit(np.column_stack([c0, c1, c2]), leave=[2], names=["a", "b", "c"])
    assert stage.edges[0].tolist() == [0, 1, 5] and stage.edges[1] is None and stage.edges[2] is None
    assert stage.width == 4 and stage.n_encoded == 1
    new = np.array([[3.0, 100.0, -7.5], [0.5, -2.0, 0.25]])
    assert stage.transform(new).tolist() == [[1, 0.5, 100, -7.5], [0.5, 0, -2, 0.25]]
    assert stage.output_names() == ["a[bin 1/2]", "a[bin 2/2]", "b", "c"]


def test_at_most_bins_and_distinct_minus_one():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=500), rng.integers(0, 6, 500)])  # 6 distinct values: at most 5 bins
    stage = PiecewiseLinear(16).fit(X)
    assert len(stage.edges[0]) == 17 and 2 <= len(stage.edges[1]) <= 6
    assert np.all(np.diff(stage.edges[0]) > 0)
    a0 = stage.transform(X)
    assert a0.min() == 0 and a0.max() == 1


def test_the_names_give_the_edges_in_the_columns_original_units():
    X = np.column_stack([np.array([25, 33, 50, 66, 75, 100, 33, 50], dtype=float), np.arange(8.0) * 1000])
    for scaler in (Scaler("standard").fit(X), dp.data.RobustScaler().fit(X), Scaler("minmax").fit(X)):
        stage = PiecewiseLinear(2).fit(scaler.transform(X), names=["speed", "price"])
        assert stage.output_names(scaler) == ["speed[25,50]", "speed[50,100]", "price[0,3500]", "price[3500,7000]"]


def test_a_non_finite_value_is_refused_naming_the_input_and_row():
    stage = PiecewiseLinear(4).fit(np.arange(20.0).reshape(10, 2), names=["speed", "ram"])
    with pytest.raises(dp.DataError, match=r"row 3: 'ram' is inf .*finite"):
        stage.transform(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, np.inf]]))
    with pytest.raises(dp.DataError, match=r"row 2: 'speed' is nan"):
        PiecewiseLinear(4).fit(np.array([[1.0], [np.nan], [2.0]]), names=["speed"])
    wide = np.array([-1.7e308] * 50 + [1.6e308] + [1.7e308] * 50).reshape(-1, 1)  # a gap of 3.3e308
    with pytest.raises(dp.DataError, match="'speed': its training values span more than float64 holds"):
        PiecewiseLinear(2).fit(wide, names=["speed"])


@pytest.mark.parametrize("bins", [1, 0, -3, MAX_BINS + 1, 2.5, True])
def test_a_bad_bin_count_is_refused(bins):
    with pytest.raises(dp.ConfigError, match=f"2..{MAX_BINS} bins"):
        PiecewiseLinear(bins)


def test_the_auto_rule():
    assert auto_bins(999) == 0 and auto_bins(1000) == AUTO_BINS == 16 and AUTO_MAX_INPUTS == 4096


def test_the_rows_of_a_long_table_are_numbered_across_its_parts(monkeypatch):
    """Pipeline.encoded takes a table in parts; a refusal names the row among all of them, not within its part."""
    import deltaprop.preprocessing.pipeline as pipeline_module

    frame = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) % 7})
    encoder = dp.data.TableEncoder().fit(frame)
    scaler = Scaler("none").fit(encoder.transform(frame))
    stage = PiecewiseLinear(4).fit(scaler.transform(encoder.transform(frame)), names=encoder.feature_names)
    net = dp.Network([dp.Dense(stage.width, 1, "identity")], loss="mse", dtype="float64")
    net.pipeline = Pipeline([encoder, scaler, stage], feature_names=stage.output_names(scaler))
    monkeypatch.setattr(pipeline_module, "ROW_BYTES", 8 * stage.width * 10)  # parts of 10 rows
    new = frame.copy()
    new.loc[57, "a"] = 1.7e308
    scaled = net.pipeline.inputs(new)
    assert scaled[57, :4].tolist() == [1, 1, 1, 1]  # far above the training range: the largest value
    net.pipeline.stages[1] = Scaler.from_config({"kind": "standard", "shift": [-1.7e308, 0.0], "scale": [1.0, 1.0]})
    with np.errstate(over="ignore"), pytest.raises(dp.DataError, match=r"row 58: 'a' is inf"):
        net.predict(new)  # 1.7e308 + 1.7e308 overflows in the scaler (NumPy's warning aside: the tests raise it)


def test_the_training_inputs_are_the_inputs_predict_makes(monkeypatch):
    """deltaprop train scales its arrays, then widens them (Pipeline.after_scaling, a part at a time, in the
    network's dtype): the same a^0, bit for bit, as net.predict's pipeline makes of the raw rows."""
    import deltaprop.preprocessing.pipeline as pipeline_module

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=103), "b": rng.integers(0, 9, 103), "c": rng.choice(["p", "q"], 103)})
    encoder = dp.data.TableEncoder().fit(frame)
    X = encoder.transform(frame)
    scaler = Scaler("standard").fit(X).leave(encoder.binary_outputs)
    stage = PiecewiseLinear(8).fit(scaler.transform(X), encoder.binary_outputs, encoder.feature_names)
    pipeline = Pipeline([encoder, scaler, stage], feature_names=stage.output_names(scaler))
    monkeypatch.setattr(pipeline_module, "ROW_BYTES", 8 * stage.width * 10)  # parts of 10 rows
    for dtype in (np.float32, np.float64):
        widened = pipeline.after_scaling(scaler.transform(X, in_place=True) if dtype is np.float64 else
                                         scaler.transform(X), dtype)
        assert widened.dtype == dtype and np.array_equal(widened, pipeline.inputs(frame, dtype))
    assert widened.shape == (103, stage.width) and stage.n_encoded == 2 and stage.width > 10


# --- a Python model: save, load, forged records, ONNX --------------------------------------------------------------

def python_model(dtype: str = "float64", bins: int = 4):
    """An array model of 3 inputs (the third 0/1, left alone), standard scaling, then the encoding."""
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=300), rng.normal(size=300) * 0.01, rng.integers(0, 2, 300)])
    y = X[:, 0] ** 2 + 100 * X[:, 1] + X[:, 2]
    scaler = Scaler("standard").fit(X).leave([2])
    stage = PiecewiseLinear(bins).fit(scaler.transform(X), leave=[2], names=["u", "v", "flag"])
    net = dp.Network([dp.Dense(stage.width, 8, "tanh"), dp.Dense(8, 1, "identity")], loss="mse", seed=0,
                     dtype=dtype)
    net.pipeline = Pipeline([scaler, stage], Scaler("standard").fit(y[:, None]), stage.output_names(scaler))
    net.fit(X, y, epochs=5, verbose=0)
    return net, X, y


def test_a_model_with_the_stage_round_trips_bit_for_bit(tmp_path):
    net, X, _ = python_model("float32")
    net.save(tmp_path / "m.safetensors")
    again = dp.load(tmp_path / "m.safetensors")
    stage = again.pipeline.piecewise
    assert stage.to_config() == net.pipeline.piecewise.to_config() and again.pipeline.feature_names[:2] == [
        net.pipeline.feature_names[0], net.pipeline.feature_names[1]]
    assert np.array_equal(again.predict(X), net.predict(X))
    assert "piecewise-linear: 3 inputs -> 9 inputs, 4 bins (2 input(s) encoded" in "\n".join(
        again.pipeline.describe())


def _stage_config(record):
    return next(s for s in record["stages"] if s["stage"] == "piecewise")["config"]


def _set(key, value):
    def change(record):
        _stage_config(record)[key] = value
        return record
    return change


def _edge(index, value):
    def change(record):
        _stage_config(record)["edges"][0][index] = value
        return record
    return change


FORGED = [
    ("edges not increasing", _edge(2, -5.0), "strictly increasing"),
    ("a repeated edge", lambda r: _edge(1, _stage_config(r)["edges"][0][0])(r), "strictly increasing"),
    ("an infinite edge", _edge(0, float("-inf")), "must be finite numbers"),
    ("a NaN edge", _edge(0, float("nan")), "must be finite numbers"),
    ("an edge as text", _edge(0, "0.5"), "must be finite numbers"),
    ("an edge of 1e400", _edge(0, 10**400), "must be finite numbers"),
    ("a boolean edge", _edge(0, True), "must be finite numbers"),
    ("more bins than the cap", _set("bins", MAX_BINS + 1), f"2..{MAX_BINS} bins"),
    ("a negative bin count", _set("bins", -4), f"2..{MAX_BINS} bins"),
    ("more edges than bins + 1", lambda r: _set("bins", 2)(r), "a list of 2..3 numbers"),
    ("one edge", _set("edges", [[0.5], None, None]), "a list of 2..5 numbers"),
    ("edges as text", _set("edges", "0,1,2"), "'edges' must be a list"),
    ("names of the wrong count", _set("names", ["u"]), "'names' must be one name per input"),
    ("a key missing", lambda r: (_stage_config(r).pop("names"), r)[1], "needs exactly bins, edges and names"),
    ("a bin dropped (width disagrees with layer 1)", lambda r: _edge(slice(4, 5), [])(r),
     "the preprocessing gives 8 inputs, layer 1 takes 9"),
    ("an input more than the scaler gives", lambda r: _set("names", _stage_config(r)["names"] + ["w"])(
        _set("edges", _stage_config(r)["edges"] + [None])(r)),
     "the piecewise-linear stage takes 4 inputs, the stage before it gives 3"),
    ("two piecewise stages", lambda r: {**r, "stages": r["stages"] + [r["stages"][-1]]},
     "at most one stage may be piecewise-linear"),
]


@pytest.mark.parametrize("name,change,message", FORGED, ids=[f[0] for f in FORGED])
def test_a_forged_piecewise_record_is_refused_by_name(tmp_path, name, change, message):
    net, _, _ = python_model()
    net.save(tmp_path / "m.safetensors")
    path = _forge_record(tmp_path / "m.safetensors", tmp_path / "forged.safetensors", change)
    with pytest.raises(dp.ModelFileError, match=f"invalid preprocessing record: .*{message}"):
        dp.load(path)


def test_explain_shows_an_array_models_raw_inputs_and_its_bins(tmp_path):
    """An array model with the stage (made in Python): explain names the sample's raw inputs u, v, flag and the
    bins of a^0 (it zipped the 9 bin names with the 3 raw values before: a traceback)."""
    net, X, y = python_model()
    net.save(tmp_path / "m.safetensors")
    np.savez(tmp_path / "rows.npz", X=X[:5], y=y[:5])
    text = deltaprop("explain", tmp_path / "m.safetensors", "--data", tmp_path / "rows.npz").stdout
    assert f"The sample as given: u = {X[0, 0]:.6g}" in text and "Inputs: u[" in text


def test_a_model_without_the_stage_is_as_before(tmp_path):
    """The record of a model without the stage holds no piecewise entry and loads as it was."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    net = dp.Network([dp.Dense(2, 4, "tanh"), dp.Dense(4, 1, "identity")], loss="mse", seed=0)
    net.pipeline = Pipeline([Scaler("standard").fit(X)], Scaler("standard").fit(y[:, None]), ["a", "b"])
    net.fit(X, y, epochs=2, verbose=0)
    net.save(tmp_path / "m.safetensors")
    again = dp.load(tmp_path / "m.safetensors")
    assert again.pipeline.piecewise is None and np.array_equal(again.predict(X), net.predict(X))


def test_onnx_of_an_array_model_equals_predict_and_flags_what_predict_refuses():
    """float64: the graph gives predict's answer within 1e-10 (relative); a row whose scaled input overflows
    (1e307 / 0.01) is refused by predict, naming the input, and ``valid`` is False for it alone, although the
    encoding's clip would make its a^0 finite."""
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
    net, X, _ = python_model("float64")
    new = np.vstack([X[:20], [[40.0, -40.0, 1.0]]])  # beyond the training range on both ends: clipped
    session = ort.InferenceSession(dp.to_onnx(net).SerializeToString())
    got, valid = session.run(["variable", "valid"], {"X": new})
    expected = net.predict(new)
    assert valid.all() and np.abs(got[:, 0] - expected).max() <= 1e-10 * np.abs(expected).max()
    overflow = np.vstack([X[:3], [[0.0, 1e307, 0.0]]])
    with np.errstate(over="ignore"), pytest.raises(dp.DataError, match="row 4: 'v' is inf"):
        net.predict(overflow)  # (NumPy's overflow warning in the scaler aside: the tests raise it)
    _, valid = session.run(["variable", "valid"], {"X": overflow})
    assert valid.tolist() == [True, True, True, False]
    metadata = {p.key: p.value for p in dp.to_onnx(net).metadata_props}
    assert json.loads(metadata["inputs"]) == ["u", "v", "flag"]


# --- deltaprop train on tables ------------------------------------------------------------------------------------

def price_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n),
                          "colour": rng.choice(["red", "blue"], n), "premium": rng.integers(0, 2, n)})
    frame["y"] = 2 * frame.x1 + frame.x2 + np.abs(frame.x3) + (frame.colour == "red") + frame.premium + \
        rng.normal(0, 0.1, n)
    return frame


@pytest.fixture(scope="module")
def table_runs(tmp_path_factory):
    """A 1500-row table (1125 training rows: the encoding by default) trained with the defaults and with --bins
    0, and a test file whose row 0 has x3 31.8 standard deviations out (the issue's outlier)."""
    folder = tmp_path_factory.mktemp("piecewise")
    frame = price_table(1520)
    train, test = frame.iloc[:1500], frame.iloc[1500:].reset_index(drop=True)
    test.loc[0, ["x1", "x2", "x3"]] = [0.0, 0.0, 31.8 * train.x3.std()]
    train.to_csv(folder / "train.csv")  # pandas' defaults: the index is written, and the encoder drops it
    test.to_csv(folder / "test.csv", index=False)
    runs = {}
    for name, options in (("auto", []), ("off", ["--bins", 0])):
        runs[name] = deltaprop("train", "--data", folder / "train.csv", "--target", "y", "--epochs", 40, *options,
                               *COMMON, "--out", folder / name)
    return folder, train, test, runs


@pytest.mark.slow
def test_a_table_of_1000_training_rows_gets_the_stage_and_info_shows_it(table_runs):
    folder, *_ = table_runs
    net = dp.load(folder / "auto" / "model.safetensors")
    stage = net.pipeline.piecewise
    # x1, x2, x3 encoded (16 bins each); the one-hot colour and the 0/1 premium pass as they are
    assert stage.bins == 16 and stage.n_encoded == 3 and stage.width == 3 * 16 + 3 == net.layers[0].n_in
    names = net.pipeline.feature_names
    assert len(names) == stage.width and [names[k][:3] for k in (0, 15, 16, 31, 32, 47)] == ["x1["] * 2 + \
        ["x2["] * 2 + ["x3["] * 2
    assert [n for n in names if "[" not in n] == ["colour=blue", "colour=red", "premium"]
    info = deltaprop("info", folder / "auto" / "model.safetensors").stdout
    assert "piecewise-linear: 6 inputs -> 51 inputs, 16 bins (3 input(s) encoded" in info
    off = dp.load(folder / "off" / "model.safetensors")
    assert off.pipeline.piecewise is None and off.layers[0].n_in == 6
    assert "piecewise-linear" not in deltaprop("info", folder / "off" / "model.safetensors").stdout


@pytest.mark.slow
def test_the_edges_come_from_the_training_rows_only(table_runs):
    """The edges are the quantiles of the scaled training split (re-derived from the model's source), not of all
    rows; the names give them in the column's units, from the training minimum to the training maximum."""
    from deltaprop.cli.tables import read_for, split_rows

    folder, *_ = table_runs
    net = dp.load(folder / "auto" / "model.safetensors")
    frame = read_for(net.pipeline, folder / "train.csv")  # read as training read it (the same floats)
    train_rows, _ = split_rows(frame.y.to_numpy(), 0.25, 0, str(folder / "train.csv"))
    pipeline, levels = net.pipeline, np.linspace(0, 1, 17)

    def edges(rows):
        X = pipeline.scaler.transform(pipeline.table.transform(rows))
        return [np.unique(np.quantile(X[:, j], levels)) for j in range(3)]

    for got, expected, everything in zip(pipeline.piecewise.edges[:3], edges(frame.iloc[train_rows]), edges(frame),
                                         strict=True):
        assert np.array_equal(got, expected) and not np.array_equal(got, everything)
    x1 = frame.x1.iloc[train_rows]
    assert pipeline.feature_names[0].startswith(f"x1[{x1.min():.4g},")
    assert pipeline.feature_names[15].endswith(f",{x1.max():.4g}]")


@pytest.mark.slow
def test_the_issues_outlier_is_seen_as_the_largest_training_value(table_runs):
    """The row with x3 31.8 std out: without the stage the network extrapolates it far beyond every training
    target; with it, x3 reads as the training maximum and the prediction stays within the targets' range."""
    folder, train, test, _ = table_runs
    low, high = train.y.min(), train.y.max()
    raw = test.drop(columns="y")
    encoded = dp.load(folder / "auto" / "model.safetensors").predict(raw)
    plain = dp.load(folder / "off" / "model.safetensors").predict(raw)
    assert plain[0] > high + (high - low) / 2, (plain[0], low, high)  # the failure the issue reports
    assert low <= encoded[0] <= high, (encoded[0], low, high)
    typical = slice(1, None)
    residual = encoded[typical] - test.y[typical]
    assert 1 - (residual**2).sum() / ((test.y[typical] - test.y[typical].mean()) ** 2).sum() > 0.9


@pytest.mark.slow
def test_every_door_agrees(table_runs, tmp_path):
    """net.predict on the raw frame, deltaprop predict on the CSV (the same code: within 1e-6 relative, the
    printing's rounding) and the ONNX graph (float32 network, its matrix products in another order: within 1e-5
    of the largest prediction); evaluate and explain run, explain naming the bins."""
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
    folder, train, test, _ = table_runs
    model = folder / "auto" / "model.safetensors"
    net = dp.load(model)
    raw = pd.read_csv(folder / "train.csv", index_col=0).drop(columns="y").iloc[:300]
    raw = pd.concat([raw, test.drop(columns="y")], ignore_index=True)
    raw.to_csv(tmp_path / "rows.csv", index=False)
    python = net.predict(raw)
    cli = pd.read_csv(io.StringIO(deltaprop("predict", model, "--data", tmp_path / "rows.csv").stdout))
    assert np.allclose(cli.iloc[:, 0].to_numpy(), python, rtol=1e-6, atol=0)
    deltaprop("export", model, "--output", tmp_path / "m.onnx")
    feeds = {c: raw[[c]].to_numpy(np.float64) for c in ("x1", "x2", "x3", "premium")}
    feeds["colour"] = raw[["colour"]].to_numpy(object)
    got, valid = ort.InferenceSession(str(tmp_path / "m.onnx")).run(["variable", "valid"], feeds)
    assert valid.all() and np.abs(got[:, 0] - python).max() <= 1e-5 * np.abs(python).max()
    assert "R^2" in deltaprop("evaluate", model).stdout
    assert "samples: 20" in deltaprop("evaluate", model, "--data", folder / "test.csv").stdout
    explained = deltaprop("explain", model).stdout
    assert "piecewise-linear encoding" in explained and "Inputs: x1[" in explained
    assert "51-160-1 network" in explained and "5 cross-fitted networks side by side" in explained  # (--layers 32)


@pytest.mark.slow
def test_a_small_table_gets_no_stage_unless_asked(tmp_path):
    price_table(300).to_csv(tmp_path / "small.csv", index=False)
    for name, options in (("default", []), ("eight", ["--bins", 8])):
        deltaprop("train", "--data", tmp_path / "small.csv", "--target", "y", "--epochs", 3, *options, *COMMON,
                  "--out", tmp_path / name)
    assert dp.load(tmp_path / "default" / "model.safetensors").pipeline.piecewise is None
    eight = dp.load(tmp_path / "eight" / "model.safetensors")
    assert eight.pipeline.piecewise.bins == 8 and eight.layers[0].n_in == 3 * 8 + 3
    assert len(eight.pipeline.piecewise.edges[0]) == 9
    frame = pd.read_csv(tmp_path / "small.csv")
    assert np.isfinite(eight.predict(frame.drop(columns="y"))).all()


@pytest.mark.slow
def test_bins_on_array_data_and_bad_counts_are_refused(tmp_path):
    result = deltaprop("train", "--data", "digits", "--bins", 4, *COMMON, "--out", tmp_path / "d", check=False)
    assert result.returncode == 2 and "--bins" in result.stderr and "array data" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "d" / "model.safetensors").exists()
    assert dp.load(_digits_without_bins(tmp_path)).pipeline.piecewise is None  # --bins 0 there is fine
    for bins in (1, -2, MAX_BINS + 1):
        result = deltaprop("train", "--data", "iris", "--bins", bins, *COMMON, "--out", tmp_path / "r", check=False)
        assert result.returncode == 2 and f"bins must be 0 or in 2..{MAX_BINS}" in result.stderr, bins
    (tmp_path / "shards").mkdir()
    price_table(40).to_csv(tmp_path / "shards" / "0.csv", index=False)
    result = deltaprop("train", "--data", tmp_path / "shards", "--target", "y", "--bins", 8, *COMMON,
                       "--out", tmp_path / "s", check=False)
    assert result.returncode == 2 and "--bins" in result.stderr and "shards" in result.stderr


def _digits_without_bins(tmp_path):
    deltaprop("train", "--data", "digits", "--bins", 0, "--epochs", 1, *COMMON, "--out", tmp_path / "d0")
    return tmp_path / "d0" / "model.safetensors"


def test_the_auto_rule_leaves_a_wide_table_alone(capsys):
    """Without --bins: a table whose encoding would exceed AUTO_MAX_INPUTS inputs gets none, with a note; --bins
    given applies it anyway."""
    from deltaprop.cli.options import DEFAULTS
    from deltaprop.cli.prepare import piecewise_stage

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(1000, AUTO_MAX_INPUTS // 16 + 1)), columns=None).add_prefix("c")
    encoder = dp.data.TableEncoder().fit(frame)
    X = encoder.transform(frame)
    scaler = Scaler("standard").fit(X)
    assert piecewise_stage({**DEFAULTS}, X, scaler, encoder, encoder.feature_names) is None
    assert f"more than {AUTO_MAX_INPUTS}" in capsys.readouterr().out
    forced = piecewise_stage({**DEFAULTS, "bins": 16}, X, scaler, encoder, encoder.feature_names)
    assert forced.width == 16 * X.shape[1]
    narrow = piecewise_stage({**DEFAULTS}, X[:, :10], Scaler("standard").fit(X[:, :10]),
                             dp.data.TableEncoder().fit(frame.iloc[:, :10]), encoder.feature_names[:10])
    assert narrow.bins == AUTO_BINS and narrow.width == 160
    few = piecewise_stage({**DEFAULTS}, X[:999, :10], Scaler("standard").fit(X[:999, :10]),
                          dp.data.TableEncoder().fit(frame.iloc[:999, :10]), encoder.feature_names[:10])
    assert few is None
