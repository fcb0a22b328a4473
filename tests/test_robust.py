"""Robust preprocessing and --test-size 0 (issue 29).

The robust stage: per-feature median and IQR, then the smooth clip x / sqrt(1 + (x/3)^2), fitted on the
training rows and carried in the model file like the standard scaler. The issue's reproduction in
miniature: one test row with a feature 30 standard deviations out is predicted far outside every training
target under standard scaling, and within the training targets' range under --scaling robust.
"""

import json
import math
import struct

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import RobustScaler as SklearnRobustScaler

import deltaprop as dp
from deltaprop.data import RobustScaler, Scaler
from deltaprop.data.robust import smooth_clip
from test_cli import deltaprop
from test_pipeline import _forge_record

pytestmark = pytest.mark.slow  # trains models with the CLI in subprocesses (not in the quick tier)

COMMON = ["--layers", "32", "--quiet", "--no-plots"]


def clip(x: float) -> float:
    return x / math.sqrt(1 + (x / 3) ** 2)


def test_the_stage_against_a_hand_computation():
    """Column 1: median 3, quartiles 2 and 4 (IQR 2). Column 2: IQR 0, so half the range, (5 - 0) / 2.
    Column 3: constant, scale 1 (its training value maps to 0)."""
    X = np.array([[1, 0, 7], [2, 0, 7], [3, 0, 7], [4, 0, 7], [100, 5, 7]], dtype=np.float64)
    stage = RobustScaler().fit(X)
    assert stage.shift.tolist() == [3, 0, 7] and stage.scale.tolist() == [2, 2.5, 1]
    got = stage.transform(np.array([[1.0, 5.0, 8.0], [100.0, 0.0, 7.0]]))
    expected = [[clip(-1.0), clip(2.0), clip(1.0)], [clip(48.5), 0.0, 0.0]]
    assert np.allclose(got, expected, rtol=1e-14, atol=0)
    assert clip(48.5) == pytest.approx(2.99427, abs=1e-5)  # the outlier: under 3, never beyond


def test_the_scaling_part_equals_scikit_learns_robust_scaler():
    rng = np.random.default_rng(0)
    X = rng.standard_t(2, size=(301, 5)) * [1, 10, 1e3, 0.01, 5] + [0, -3, 1e4, 2, 0]
    ours = RobustScaler(clip=False).fit(X)
    theirs = SklearnRobustScaler().fit(X)
    assert np.allclose(ours.shift, theirs.center_, rtol=1e-14) and np.allclose(ours.scale, theirs.scale_, rtol=1e-14)
    new = rng.normal(size=(50, 5)) * 100
    assert np.allclose(ours.transform(new), theirs.transform(new), rtol=1e-12)
    assert np.allclose(RobustScaler().fit(X).transform(new), smooth_clip(theirs.transform(new)), rtol=1e-12)


def test_the_clip_is_bounded_monotone_and_keeps_the_dtype():
    x = np.array([-1e300, -1e6, -3.0, 0.0, 0.5, 3.0, 1e6, 1e300])
    y = smooth_clip(x)
    assert np.all(np.abs(y) <= 3) and np.all(np.diff(y) > 0) and y[0] == -3 and y[-1] == 3  # no inf / inf
    assert smooth_clip(x[1:-1].astype(np.float32)).dtype == np.float32
    assert smooth_clip(np.array([1e-3]))[0] == pytest.approx(1e-3, rel=1e-6)  # small values pass


def test_a_target_is_scaled_without_the_clip_and_inverts_exactly():
    y = np.random.default_rng(1).lognormal(size=(200, 1)) * 1000
    target = RobustScaler(clip=False).fit(y)
    assert np.allclose(target.inverse_transform(target.transform(y)), y, rtol=1e-13)
    with pytest.raises(dp.ConfigError, match="no inverse"):
        RobustScaler().fit(y).inverse_transform(y)


def outlier_tables(folder, n: int = 600):
    """A regression table (y = 2 x1 + x2 + x3 + noise) and a test file whose row 0 has x3 30 std out."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n + 20, 3)), columns=["x1", "x2", "x3"])
    frame["colour"] = rng.choice(["red", "blue"], n + 20)
    frame["y"] = 2 * frame.x1 + frame.x2 + frame.x3 + (frame.colour == "red") + rng.normal(0, 0.1, n + 20)
    train, test = frame.iloc[:n], frame.iloc[n:].reset_index(drop=True)
    test.loc[0, ["x1", "x2", "x3"]] = [0.0, 0.0, 30 * frame.x3.std()]
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return train, test


@pytest.fixture(scope="module")
def outlier_runs(tmp_path_factory):
    """The same table trained with standard and robust scaling (all rows: --test-size 0)."""
    folder = tmp_path_factory.mktemp("robust")
    train, test = outlier_tables(folder)
    results = {}
    for scaling in ("standard", "robust"):
        results[scaling] = deltaprop("train", "--data", folder / "train.csv", "--target", "y", "--scaling", scaling,
                                     "--epochs", 40, "--test-size", 0, *COMMON, "--out", folder / scaling)
    return folder, train, test, results


def test_an_impossible_feature_value_cannot_drive_the_prediction_out_of_range(outlier_runs):
    """The issue's outlier in miniature: with standard scaling the row 30 std out is predicted far beyond every
    training target (the network extrapolates linearly); with robust scaling it stays within their range."""
    folder, train, test, _ = outlier_runs
    low, high = train.y.min(), train.y.max()
    standard = dp.load(folder / "standard" / "model.safetensors").predict(test.drop(columns="y"))
    robust = dp.load(folder / "robust" / "model.safetensors").predict(test.drop(columns="y"))
    assert standard[0] > high + (high - low) / 2, (standard[0], low, high)  # the failure the issue reports
    assert low <= robust[0] <= high, (robust[0], low, high)
    typical = slice(1, None)  # the other rows: both models fit them
    for predicted in (standard, robust):
        residual = predicted[typical] - test.y[typical]
        assert 1 - (residual**2).sum() / ((test.y[typical] - test.y[typical].mean()) ** 2).sum() > 0.95


def test_a_robust_model_file_round_trips_and_says_what_it_holds(outlier_runs, tmp_path):
    folder, _, test, _ = outlier_runs
    net = dp.load(folder / "robust" / "model.safetensors")
    features, target = net.pipeline.stages[1], net.pipeline.target
    assert type(features) is RobustScaler and type(target) is RobustScaler and not target.clip.any()
    # x1..x3 and the one-hot colour columns: only the numbers are clipped; the 0/1 inputs pass unchanged
    names = net.pipeline.feature_names
    assert [n for n, c in zip(names, features.clip, strict=True) if c] == ["x1", "x2", "x3"]
    a0 = net.pipeline.inputs(test.drop(columns="y"))
    assert set(np.unique(a0[:, ~features.clip]).tolist()) == {0.0, 1.0}
    assert np.abs(a0).max() < 3
    net.save(tmp_path / "again.safetensors")
    again = dp.load(tmp_path / "again.safetensors")
    assert again.pipeline.stages[1].to_config() == features.to_config()
    assert np.array_equal(again.predict(test.drop(columns="y")), net.predict(test.drop(columns="y")))
    info = deltaprop("info", folder / "robust" / "model.safetensors").stdout
    assert "scaling: robust over" in info and "target scaling: robust" in info


def _robust_stage(record):
    return record["stages"][1]["config"]


FORGED = [
    ("a NaN scale", lambda c: c["scale"].__setitem__(0, float("nan")), "scales that are not finite and positive"),
    ("a negative scale", lambda c: c["scale"].__setitem__(1, -2.0), "scales that are not finite and positive"),
    ("a clip flag short", lambda c: c["clip"].pop(), "'clip' must be one true/false per feature"),
    ("a bound of 0", lambda c: c.__setitem__("bound", 0), "bound must be a finite number > 0"),
    ("a key missing", lambda c: c.pop("bound"), "needs exactly kind 'robust'"),
]


@pytest.mark.parametrize("name,change,message", FORGED, ids=[f[0] for f in FORGED])
def test_a_forged_robust_stage_is_refused_by_name(outlier_runs, tmp_path, name, change, message):
    folder, *_ = outlier_runs

    def forge(record):
        change(_robust_stage(record))
        return record

    path = _forge_record(folder / "robust" / "model.safetensors", tmp_path / "forged.safetensors", forge)
    with pytest.raises(dp.ModelFileError, match=f"the robust stage: .*{message}"):
        dp.load(path)


def test_a_clipping_target_stage_is_refused(outlier_runs, tmp_path):
    folder, *_ = outlier_runs

    def forge(record):
        record["target"]["config"]["clip"] = [True]
        return record

    path = _forge_record(folder / "robust" / "model.safetensors", tmp_path / "forged.safetensors", forge)
    with pytest.raises(dp.ModelFileError, match="the target's robust stage must not clip"):
        dp.load(path)


def test_the_record_names_the_robust_stage(outlier_runs):
    folder, *_ = outlier_runs
    data = (folder / "robust" / "model.safetensors").read_bytes()
    header = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])
    record = json.loads(header["__metadata__"]["config"])["preprocessing"]
    assert [s["stage"] for s in record["stages"]] == ["table", "robust"] and record["target"]["stage"] == "robust"
    assert record["stages"][1]["config"]["bound"] == 3.0


def test_onnx_graph_equals_predict_on_raw_rows(outlier_runs, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
    folder, _, test, _ = outlier_runs
    for dtype in ("float32", "float64"):
        deltaprop("train", "--data", folder / "train.csv", "--target", "y", "--scaling", "robust", "--epochs", 5,
                  "--dtype", dtype, *COMMON, "--out", tmp_path / dtype)
        net = dp.load(tmp_path / dtype / "model.safetensors")
        raw = test.drop(columns="y")
        feeds = {c: raw[[c]].to_numpy(np.float64) for c in ("x1", "x2", "x3")}
        feeds["colour"] = raw[["colour"]].to_numpy(object)
        session = ort.InferenceSession(dp.to_onnx(net).SerializeToString())
        (got,) = session.run(["variable"], feeds)
        expected = net.predict(raw)
        tolerance = {"float32": 1e-5, "float64": 1e-10}[dtype]
        assert np.abs(got[:, 0] - expected).max() <= tolerance * np.abs(expected).max(), dtype


def test_onnx_clip_of_an_array_model_with_a_huge_input(tmp_path):
    """An array model (no table): the clip in the graph gives +-3 for an input of 1e30, as NumPy does."""
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3))
    net = dp.Network([dp.Dense(3, 8, "tanh"), dp.Dense(8, 1, "identity")], loss="mse", seed=0)
    net.pipeline = dp.preprocessing.Pipeline([RobustScaler().fit(X)], RobustScaler(clip=False).fit(X[:, :1]))
    net.fit(X, X[:, :1] ** 2, epochs=3, verbose=0)
    new = np.vstack([X[:5], [[1e30, -1e30, 0.0]]])
    (got,) = ort.InferenceSession(dp.to_onnx(net).SerializeToString()).run(["variable"], {"X": new})
    assert np.abs(got - net.predict(new).reshape(got.shape)).max() <= 1e-10 * np.abs(got).max()
    assert np.array_equal(net.pipeline.inputs(new)[-1, :2], [3.0, -3.0])


def test_robust_scaling_is_refused_for_streamed_shards(tmp_path):
    (tmp_path / "shards").mkdir()
    pd.DataFrame({"a": np.arange(40.0), "y": np.arange(40.0) % 2}).to_csv(tmp_path / "shards" / "0.csv", index=False)
    result = deltaprop("train", "--data", tmp_path / "shards", "--target", "y", "--scaling", "robust", *COMMON,
                       "--out", tmp_path / "run", check=False)
    assert result.returncode == 2 and "--scaling robust" in result.stderr and "shards" in result.stderr


def test_an_unknown_scaling_names_every_choice(tmp_path):
    result = deltaprop("train", "--data", "iris", "--scaling", "quantile", *COMMON, "--out", tmp_path / "r",
                       check=False)
    assert result.returncode == 2 and "standard, minmax, none, robust" in result.stderr


def test_the_standard_scaler_is_unchanged_by_the_subclass():
    """The record keeps writing "scaler" for a Scaler: exact types, since a RobustScaler is a Scaler too."""
    from deltaprop.preprocessing.record import to_record

    X = np.arange(12.0).reshape(4, 3)
    pipeline = dp.preprocessing.Pipeline([Scaler("standard").fit(X)], RobustScaler(clip=False).fit(X[:, :1]))
    record = to_record(pipeline)
    assert record["stages"][0]["stage"] == "scaler" and record["target"]["stage"] == "robust"


# --- --test-size 0 -----------------------------------------------------------------------------------------

def test_test_size_zero_trains_on_every_row_and_says_how_to_score(outlier_runs):
    folder, train, test, results = outlier_runs
    out = results["standard"].stdout
    assert "no test split (--test-size 0)" in out and f"all {len(train)} rows" in out
    assert f"deltaprop evaluate {folder / 'standard' / 'model.safetensors'} --data OTHER.csv" in out
    net = dp.load(folder / "standard" / "model.safetensors")
    assert net.pipeline.source["test_size"] == 0
    rows = deltaprop("evaluate", folder / "standard" / "model.safetensors", "--data", folder / "test.csv").stdout
    assert f"samples: {len(test)}" in rows


def test_evaluate_without_data_on_a_model_without_test_split_says_so(outlier_runs, tmp_path):
    folder, *_ = outlier_runs
    result = deltaprop("evaluate", folder / "standard" / "model.safetensors", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--test-size 0" in result.stderr and "no held-out test rows" in result.stderr and "--data" in result.stderr
    built_in = deltaprop("train", "--data", "iris", "--test-size", 0, "--epochs", 3, *COMMON, "--out", tmp_path / "i")
    assert "all 150 rows" in built_in.stdout
    result = deltaprop("evaluate", tmp_path / "i" / "model.safetensors", check=False)
    assert result.returncode == 2 and "no held-out test rows" in result.stderr


def test_a_negative_or_whole_test_size_is_still_refused(tmp_path):
    for size in (-0.1, 1):
        result = deltaprop("train", "--data", "iris", "--test-size", size, *COMMON, "--out", tmp_path / "r",
                           check=False)
        assert result.returncode == 2 and "test_size must be in [0, 1)" in result.stderr
