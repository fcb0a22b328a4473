"""ONNX export checked in ONNX Runtime: its outputs against deltaprop's own predictions.

Tolerances (the issue's): labels exactly; probabilities and regression outputs within 1e-5 relative in
float32 and 1e-10 in float64, relative to the largest output.
"""

import json

import numpy as np
import pandas as pd
import pytest

import deltaprop as dp
from test_cli import deltaprop

pytestmark = pytest.mark.slow  # exports CLI-trained models and runs ONNX Runtime (not in the quick tier)

ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
pytest.importorskip("onnx", reason="the onnx extra is in the test extra")

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
HEADS = [("softmax", "cross_entropy", 3), ("sigmoid", "binary_cross_entropy", 1),
         ("sigmoid", "binary_cross_entropy", 3), ("identity", "mse", 2), ("tanh", "mse", 1), ("softplus", "mse", 1)]


def run(model, feeds: dict):
    session = ort.InferenceSession(model.SerializeToString())
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def close(got, expected, dtype) -> bool:
    return np.abs(got - expected).max() <= TOLERANCE[dtype] * np.abs(expected).max()


def targets(loss, n, rng, m):
    if loss == "mse":
        return rng.normal(size=(m, n))
    if n == 1:
        return rng.choice(["no", "yes"], m)
    return rng.integers(0, 2, (m, n)).astype(float) if loss == "binary_cross_entropy" else rng.integers(0, n, m)


@pytest.mark.filterwarnings("ignore:layer .* hidden layer with softmax")  # on purpose: its Jacobian sigma'
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", sorted(dp.ACTIVATIONS))
def test_every_activation_loss_and_output_width_matches_onnx_runtime(dtype, hidden):
    rng = np.random.default_rng(0)
    for output, loss, n in HEADS:
        net = dp.Network([dp.Dense(4, 5, hidden), dp.Dense(5, 6, hidden), dp.Dense(6, n, output)], loss=loss,
                         dtype=dtype, seed=1)
        X = rng.normal(size=(40, 4)) * 3
        net.fit(X, targets(loss, n, rng, 40), epochs=2, verbose=0)
        out = run(dp.to_onnx(net), {"X": X.astype(dtype)})
        if net.is_classifier:
            assert (out["label"] == net.predict(X)).all(), (output, loss, n)
            assert close(out["probabilities"], net.predict_proba(X), dtype), (output, loss, n)
        else:
            assert close(out["variable"], net.output(X), dtype), (output, loss, n)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


def test_cli_trained_model_with_feature_scaling(folder):
    deltaprop("train", "--epochs", 3, "--layers", 32, "--out", folder / "digits", "--no-plots")
    result = deltaprop("export", folder / "digits" / "model.safetensors", "-o", folder / "digits.onnx")
    assert "inputs X; outputs label, probabilities" in result.stdout
    import onnx

    model = onnx.load(folder / "digits.onnx")
    net = dp.load(folder / "digits" / "model.safetensors")
    from sklearn.datasets import load_digits

    X = load_digits().data
    out = run(model, {"X": X.astype(np.float32)})
    assert (out["label"] == net.predict(X)).all() and close(out["probabilities"], net.predict_proba(X), "float32")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["deltaprop_version"] == dp.__version__ and json.loads(meta["classes"]) == list(range(10))
    assert len(meta["source_sha256"]) == 64 and meta["opset"] == "20"


def test_regressor_outputs_are_in_the_targets_units(folder):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"size": rng.uniform(50, 200, 300), "rooms": rng.integers(1, 6, 300)})
    frame["price"] = 1500 * frame["size"] + 10_000 * frame["rooms"] + rng.normal(0, 1000, 300)
    frame.to_csv(folder / "houses.csv", index=False)
    deltaprop("train", "--data", folder / "houses.csv", "--epochs", 30, "--dtype", "float64", "--out",
              folder / "houses", "--no-plots")
    deltaprop("export", folder / "houses" / "model.safetensors", "-o", folder / "houses.onnx")
    import onnx

    out = run(onnx.load(folder / "houses.onnx"), {c: frame[[c]].to_numpy(np.float64) for c in ("size", "rooms")})
    predicted = deltaprop("predict", folder / "houses" / "model.safetensors", "--data", folder / "houses.csv")
    ours = np.array([float(v) for v in predicted.stdout.split()[1:]])
    assert out["variable"].shape == (300, 1) and ours.mean() > 1e5  # in dollars, not standardized
    assert close(out["variable"][:, 0], ours, "float64")


def test_a_table_model_takes_its_raw_columns(folder):
    from test_tables import penguins

    frame = penguins(400)
    frame.to_csv(folder / "penguins.csv", index=False)
    deltaprop("train", "--data", folder / "penguins.csv", "--target", "species", "--epochs", 30, "--out",
              folder / "penguins", "--no-plots")
    net = dp.load(folder / "penguins" / "model.safetensors")
    new = frame.drop(columns="species").copy()
    new.loc[0, "island"], new.loc[1, "bill_mm"], new.loc[2, "sex"] = "Mars", np.nan, None  # unseen, missing
    feeds = {"island": new[["island"]].to_numpy(object), "bill_mm": new[["bill_mm"]].to_numpy(np.float64),
             "sex": new[["sex"]].fillna("").to_numpy(object)}  # a missing category is ""
    out = run(dp.to_onnx(net), feeds)
    with pytest.warns(dp.DeltapropWarning, match="'island': 1 row"):  # "Mars": unseen, said (all zeros)
        label, proba = net.predict(new), net.predict_proba(new)
    assert (out["label"] == label).all() and close(out["probabilities"], proba, "float32")


def test_a_pipeline_through_skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is in the test extra")
    from sklearn.datasets import load_iris
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deltaprop.export.sklearn_onnx import register

    register()
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    pipe = make_pipeline(StandardScaler(), dp.DeltaClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0))
    pipe.fit(X, labels)
    out = run(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32), options={dp.DeltaClassifier: {"zipmap": False}}),
              {"X": X.astype(np.float32)})
    assert (out["label"] == pipe.predict(X)).all() and close(out["probabilities"], pipe.predict_proba(X), "float32")
    zipped = run(skl2onnx.to_onnx(pipe, X[:1]), {"X": X})  # the default: probabilities as one dict per row
    assert zipped["output_probability"][0].keys() == {"setosa", "versicolor", "virginica"}
    reg = make_pipeline(StandardScaler(), dp.DeltaRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0))
    reg.fit(X[:, :3], X[:, 3])
    out = run(skl2onnx.to_onnx(reg, X[:1, :3]), {"X": X[:, :3]})
    assert close(out["variable"][:, 0], reg.predict(X[:, :3]), "float64")


def test_bad_inputs_give_one_line_and_leave_nothing_half_written(folder, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    result = deltaprop("export", tmp_path / "bad.safetensors", "-o", tmp_path / "m.onnx", check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()
    (tmp_path / "file").write_text("")
    model = folder / "digits" / "model.safetensors"
    result = deltaprop("export", model, "-o", tmp_path / "file" / "m.onnx", check=False)  # its folder is a file
    assert result.returncode == 2 and not list(tmp_path.glob("**/*.tmp"))
    dp.register_activation("cube", lambda z: z**3, lambda z: 3 * z**2)
    net = dp.Network([dp.Dense(2, 3, "cube"), dp.Dense(3, 1, "identity")], seed=0)
    with pytest.raises(dp.ConfigError, match="layer 1's activation 'cube' has no ONNX form"):
        dp.to_onnx(net, tmp_path / "cube.onnx")
    assert not (tmp_path / "cube.onnx").exists()
