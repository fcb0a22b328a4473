"""Issue 28: the ONNX graph and predict agree on hostile rows, names never collide, wide tables stay bounded.

The contract (export/onnx.py): where predict answers a row, the graph gives the same answer with
``valid`` True; where predict refuses it, ``valid`` is False and the graph's numbers are NaN.
"""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaprop as dp
from deltaprop.data.columns import Column, TableEncoder
from deltaprop.data.scaling import Scaler
from deltaprop.preprocessing.pipeline import Pipeline
from test_cli import deltaprop

pytestmark = pytest.mark.slow  # fuzzed rows; a million-category subprocess (not in the quick tier)

ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
pytest.importorskip("onnx", reason="the onnx extra is in the test extra")


def table_model(frame, target, classifier=True, dtype="float64", hidden="tanh"):
    """A model trained on ``frame`` with its table encoding and scaling, as the CLI builds one."""
    encoder = TableEncoder().fit(frame, target=target)
    scaler = Scaler().fit(encoder.transform(frame)).leave(encoder.binary_outputs)
    n, y = len(encoder.feature_names), frame[target].to_numpy()
    y = y.astype(str) if classifier else y
    k = len(np.unique(y)) if classifier else 1
    head = ("softmax", "cross_entropy") if classifier else ("identity", "mse")
    net = dp.Network([dp.Dense(n, 6, hidden), dp.Dense(6, k, head[0])], loss=head[1], dtype=dtype, seed=0)
    target_scaler = None if classifier else Scaler().fit(y.reshape(-1, 1).astype(float))
    net.pipeline = Pipeline([encoder, scaler], target_scaler, encoder.feature_names)
    net.fit(frame.drop(columns=target), y, epochs=5, verbose=0)
    return net


def feeds(net, frame) -> dict:
    """The graph's inputs for a raw table: strings ("" where missing) or doubles (NaN where missing)."""
    out = {}
    for column in net.pipeline.table.columns:
        values = frame[[column.name]]
        out[column.name] = values.fillna("").astype(str).to_numpy(object) if column.kind == "categorical" \
            else values.to_numpy(np.float64)
    return out


PLAIN = {name: name for name in ("label", "probabilities", "variable", "valid")}


def run(net, frame):
    model = dp.to_onnx(net)
    names = json.loads({p.key: p.value for p in model.metadata_props}.get("outputs", json.dumps(PLAIN)))
    session = ort.InferenceSession(model.SerializeToString())
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds(net, frame)), strict=True))
    out = {key: got[name] for key, name in names.items() if name in got}
    out.setdefault("valid", np.ones(len(frame), bool))  # a graph without the flag answers every row as valid
    return out


def predicted(net, row):
    """predict's answer for one row (label, probabilities) or (values,), or None where it refuses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.DeltapropWarning)  # unseen categories: said, and all zeros
        try:
            if net.is_classifier:
                return net.predict(row), net.predict_proba(row)
            return (net.predict(row),)
        except dp.DeltapropError:
            return None


def assert_agree(net, frame):
    """Row by row: predict's answer equals the graph's and valid is True, or predict refuses and valid is False."""
    out = run(net, frame)
    for i in range(len(frame)):
        answer = predicted(net, frame.iloc[[i]])
        if answer is None:
            assert not out["valid"][i], f"predict refuses row {i} ({frame.iloc[i].to_dict()}), the graph answers"
            assert np.isnan(out["probabilities" if net.is_classifier else "variable"][i]).all()
            continue
        assert out["valid"][i], f"predict answers row {i} ({frame.iloc[i].to_dict()}), the graph marks it invalid"
        if net.is_classifier:
            assert out["label"][i] == answer[0][0], (i, frame.iloc[i].to_dict())
            np.testing.assert_allclose(out["probabilities"][i], answer[1][0], rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(out["variable"][i, 0], answer[0][0], rtol=1e-9)


def penguin_frame(m=120, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"colour": rng.choice(["red", "blue", "dark green"], m), "size": rng.normal(10, 3, m),
                          "weight": rng.normal(size=m)})
    frame.loc[::7, "colour"], frame.loc[::11, "size"] = None, np.nan
    frame["species"] = np.where(frame["size"].fillna(10) > 10, "big", np.where(frame["weight"] > 0, "odd", "small"))
    frame["mass"] = frame["size"].fillna(10) * 3 + frame["weight"]
    return frame


@pytest.fixture(scope="module")
def classifier():
    return table_model(penguin_frame().drop(columns="mass"), "species")


@pytest.fixture(scope="module")
def regressor():
    return table_model(penguin_frame().drop(columns="species"), "mass", classifier=False)


def test_categories_padded_with_spaces_agree(classifier):
    """Item 6: predict strips "red " and " blue"; the graph did not (0 of 3 rows agreed)."""
    rows = pd.DataFrame({"colour": ["red ", " blue", "\tdark green\u3000", " dark  green", "  ", ""],
                         "size": [9.0, 11.0, 10.0, 10.0, 12.0, 8.0], "weight": [0.1, -0.2, 0.3, 0.0, 1.0, -1.0]})
    out = run(classifier, rows)
    encoded = classifier.pipeline.table.transform(rows)
    assert encoded[:3, :3].sum() == 3  # the three padded known categories are known to predict
    assert_agree(classifier, rows)
    assert out["valid"].all()


def test_a_huge_input_is_marked_invalid_where_predict_refuses(tmp_path):
    """Item 7: 1e300 made predict exit 2 while the graph answered [nan, nan, nan] as if valid."""
    frame = penguin_frame(200).drop(columns="mass")
    frame.to_csv(tmp_path / "t.csv", index=False)
    deltaprop("train", "--data", tmp_path / "t.csv", "--target", "species", "--epochs", 3, "--out", tmp_path / "m",
              "--no-plots")
    rows = frame.drop(columns="species").iloc[:3].copy()
    rows.loc[1, "size"] = 1e300
    rows.to_csv(tmp_path / "new.csv", index=False)
    result = deltaprop("predict", tmp_path / "m" / "model.safetensors", "--data", tmp_path / "new.csv", check=False)
    assert result.returncode == 2
    out = run(dp.load(tmp_path / "m" / "model.safetensors"), rows)
    assert out["valid"].tolist() == [True, False, True] and np.isnan(out["probabilities"][1]).all()


@pytest.mark.parametrize("name", ["probabilities", "label", "X", "variable", "valid", "dp/encoded_3", "dp/a0_4"])
def test_a_column_named_like_a_graph_name_exports(name):
    """Item 22: a column named probabilities or label broke the export (ONNX's "SSA form" ValidationError)."""
    frame = penguin_frame().rename(columns={"weight": name})
    for target, drop in (("species", "mass"), ("mass", "species")):
        net = table_model(frame.drop(columns=drop), target, classifier=target == "species")
        assert_agree(net, frame.drop(columns=[drop, target]).iloc[:20])


HOSTILE_NUMBERS = st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300, 1e-300, 5e-324, 0.0, -0.0, 1e30, 3.5])
HOSTILE_TEXT = st.sampled_from(["red", "blue", "dark green", "red ", " blue", "\tdark green\n", "dark  green", "",
                                " ", "Mars", "RED", "\u00a0red", "red\u200b", "3", "3.0"]) | st.none() \
    | st.text(max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_onnx_against_predict_on_hostile_rows(classifier, regressor, data):
    """Random rows of missing values, unseen and padded categories, huge and tiny numbers and empty strings:
    wherever predict answers, the graph gives the same answer; wherever it refuses, the row is invalid."""
    m = data.draw(st.integers(1, 6))
    rows = pd.DataFrame({"colour": data.draw(st.lists(HOSTILE_TEXT, min_size=m, max_size=m)),
                         "size": data.draw(st.lists(HOSTILE_NUMBERS, min_size=m, max_size=m)),
                         "weight": data.draw(st.lists(HOSTILE_NUMBERS, min_size=m, max_size=m))})
    rows["colour"] = rows["colour"].astype(object)
    for net in (classifier, regressor):
        assert_agree(net, rows)


BOMB = textwrap.dedent("""
    import resource, sys, time
    import numpy as np, pandas as pd
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
    import deltaprop as dp
    net = dp.load(sys.argv[1])
    start = time.perf_counter()
    rows = pd.DataFrame({"c": [str(i * 499) for i in range(300)], "x": np.arange(300.0)})
    labels = net.predict(rows)
    peak_kb = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]  # (ru_maxrss may carry the parent's)
    print(len(labels), time.perf_counter() - start, peak_kb)
""")


def test_a_forged_model_with_a_million_categories_predicts_in_bounded_memory_and_time(tmp_path):
    """Item 17: a model whose table record holds 10^6 categories; predict on rows of it is bounded in memory
    (under an address-space limit, peak RSS measured) and in time (the categories were hashed once per part,
    and each part built the million input names: 2 rows a second)."""
    K = 10**6
    encoder = TableEncoder()
    encoder.columns = [Column("c", "categorical", categories=[str(i) for i in range(K)]),
                       Column("x", "numeric", median=0.0)]
    net = dp.Network([dp.Dense(K + 1, 2, "tanh"), dp.Dense(2, 3, "softmax")], loss="cross_entropy", seed=0)
    net.classes = np.array(["a", "b", "c"])
    net.pipeline = Pipeline([encoder])
    net.save(tmp_path / "wide.safetensors")
    result = subprocess.run([sys.executable, "-c", BOMB, str(tmp_path / "wide.safetensors")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows, seconds, peak_kb = result.stdout.split()
    assert int(rows) == 300 and int(peak_kb) < 1.5 * 2**20  # KB: under 1.5 GiB
    assert float(seconds) < 60, f"300 rows took {float(seconds):.0f} s"
    with pytest.raises(dp.ConfigError, match="1000000 categories"):
        dp.to_onnx(dp.load(tmp_path / "wide.safetensors"))


def test_labels_of_a_dataframe_export_as_text():
    """Labels from a pandas column (object dtype) were exported as integers: ValueError from the exporter."""
    frame = penguin_frame().drop(columns="mass")
    net = table_model(frame, "species")
    net.classes = net.classes.astype(object)
    assert_agree(net, frame.drop(columns="species").iloc[:10])
