"""The deltaprop command, run as a user runs it: a subprocess, files checked on disk."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from helpers import summary_figure

pytestmark = pytest.mark.slow  # each test runs deltaprop in subprocesses (3-36 s): not in the quick tier

PNG = b"\x89PNG\r\n\x1a\n"


def deltaprop(*args, cwd=None, check=True):
    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "deltaprop.cli"]
    result = subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                            timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = deltaprop("train", "--epochs", 10, "--out", out, "--layers", "32")
    return out, result


def test_train_on_digits_writes_model_plots_and_summary(digits_run):
    out, result = digits_run
    assert "test accuracy" in result.stdout and "epoch  10" in result.stdout
    for name in ("loss.png", "accuracy.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    net = dp.load(out / "model.safetensors")
    assert [layer.n_out for layer in net.layers] == [32, 10] and net.training.epoch == 10
    history = list(csv.DictReader((out / "history.csv").read_text().splitlines()))
    assert len(history) == 10 and float(history[-1]["loss"]) < float(history[0]["loss"])
    assert not (out / "checkpoint.safetensors").exists()  # the per-epoch checkpoint is removed at the end


def test_evaluate_prints_accuracy_report_and_confusion_matrix(digits_run):
    out, _ = digits_run
    result = deltaprop("evaluate", out / "model.safetensors")
    assert "accuracy:" in result.stdout and "precision" in result.stdout and "confusion matrix" in result.stdout
    accuracy = float(result.stdout.split("accuracy:")[1].split()[0])
    assert 0.85 < accuracy <= 1.0


def test_predict_on_a_csv_the_test_writes(digits_run, tmp_path):
    from sklearn.datasets import load_digits

    out, _ = digits_run
    X, y = load_digits(return_X_y=True)
    np.savetxt(tmp_path / "inputs.csv", X[:25], delimiter=",", fmt="%d")
    deltaprop("predict", out / "model.safetensors", "--data", tmp_path / "inputs.csv", "--proba",
              "--output", tmp_path / "pred.csv")
    rows = list(csv.reader((tmp_path / "pred.csv").read_text().splitlines()))
    assert rows[0] == ["prediction"] + [f"p_{k}" for k in range(10)]
    assert len(rows) == 26
    predicted = np.array([int(r[0]) for r in rows[1:]])
    assert (predicted == y[:25]).mean() > 0.8
    assert np.allclose([sum(map(float, r[1:])) for r in rows[1:]], 1, atol=1e-4)


def test_csv_string_labels_round_trip_and_toml_config(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in iris.feature_names]
    with (tmp_path / "iris.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["species"] + names)
        for features, label in zip(iris.data, iris.target, strict=True):
            writer.writerow([iris.target_names[label]] + list(features))
    (tmp_path / "run.toml").write_text('layers = [16]\nepochs = 40\nlr = 0.01\nbatch-size = 16\nfolds = 1\n')
    deltaprop("train", "--data", tmp_path / "iris.csv", "--target", "species", "--config", tmp_path / "run.toml",
              "--out", tmp_path / "out", "--quiet", "--no-plots")
    net = dp.load(tmp_path / "out" / "model.safetensors")
    assert net.layers[0].n_out == 16 and net.training.epoch == 40  # from the TOML file
    assert list(net.classes) == ["setosa", "versicolor", "virginica"]
    deltaprop("predict", tmp_path / "out" / "model.safetensors", "--data", tmp_path / "iris.csv",
              "--output", tmp_path / "pred.csv")
    predicted = [row["prediction"] for row in csv.DictReader((tmp_path / "pred.csv").read_text().splitlines())]
    truth = [iris.target_names[k] for k in iris.target]
    assert set(predicted) <= set(iris.target_names)
    assert np.mean(np.array(predicted) == np.array(truth)) > 0.9


def test_command_line_overrides_the_config_file(tmp_path):
    (tmp_path / "run.toml").write_text('layers = "8"\nepochs = 5\n')
    deltaprop("train", "--config", tmp_path / "run.toml", "--epochs", 1, "--out", tmp_path, "--quiet",
              "--no-plots")
    net = dp.load(tmp_path / "model.safetensors")
    assert net.layers[0].n_out == 8 and net.training.epoch == 1


@pytest.mark.parametrize("args,message", [
    (["train", "--data", "nosuch"], "no data set or file 'nosuch'"),
    (["train", "--layers", "12,x"], "--layers takes comma-separated widths"),
    (["train", "--activation", "rleu", "--epochs", "1"], "unknown activation 'rleu'"),
    (["train", "--data", "fashion-mnist", "--data-dir", "/nonexistent"], "apt-get install dataset-fashion-mnist"),
    (["evaluate", "/nonexistent/model.safetensors"], "no such model file"),
])
def test_errors_are_one_line_with_exit_code_2(args, message):
    result = deltaprop(*args, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback():
    result = deltaprop("--debug", "train", "--data", "nosuch", check=False)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_help_explains_every_option():
    text = deltaprop("train", "--help").stdout
    for option in ("--layers", "--activation", "--loss", "--optimizer", "--lr", "--epochs", "--batch-size",
                   "--seed", "--config", "--data", "--target", "--scaling", "--out"):
        assert option in text
    for command in ("train", "evaluate", "predict", "gradcheck", "info"):
        assert command in deltaprop("--help").stdout


def test_gradcheck_and_info_commands(digits_run):
    out, _ = digits_run
    result = deltaprop("gradcheck", "--layers", "6", "--samples", 4)
    assert "OK: max relative error" in result.stdout
    info = deltaprop("info", out / "model.safetensors").stdout
    assert "64 -> 32 -> 10" in info and "epochs trained: 10" in info


def test_explain_default_is_the_notes_network(tmp_path):
    text = deltaprop("explain").stdout
    assert "2-2-2 network (sigmoid, sigmoid; loss mse)" in text
    assert "0.000438568" in text  # dL/dw_11^1 of the hand-worked example
    deltaprop("explain", "--format", "html", "--output", tmp_path / "e.html")
    assert (tmp_path / "e.html").read_text().startswith("<!DOCTYPE html>")
    md = deltaprop("explain", "--format", "md", "--weight", "2,1,2").stdout
    assert "$$" in md and "w_{12}^{2}" in md


def test_explain_a_trained_model_and_train_plots_gradient_flow(tmp_path):
    deltaprop("train", "--epochs", 2, "--layers", "8,8", "--activation", "sigmoid", "--plots", "--quiet",
              "--out", tmp_path)
    assert (tmp_path / "gradient-flow.png").read_bytes()[:8] == PNG
    text = deltaprop("explain", tmp_path / "model.safetensors", "--sample", 5, "--weight", "2,3,4").stdout
    assert "64-8-8-10 network" in text and "The chain rule for one weight, w_34^2" in text
    result = deltaprop("explain", tmp_path / "model.safetensors", "--weight", "9,1,1", check=False)
    assert result.returncode == 2 and "--weight layer must be in 1..3" in result.stderr


@pytest.fixture(scope="module")
def quantity_csv(tmp_path_factory):
    """A regression CSV whose target is whole numbers in the hundred thousands (prices, say)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    price = np.round(200_000 + 40_000 * X[:, 0] - 25_000 * X[:, 1] + 5_000 * rng.normal(size=400), -3)
    path = tmp_path_factory.mktemp("csv") / "prices.csv"
    np.savetxt(path, np.column_stack([X, price]), delimiter=",", header="a,b,c,price", comments="", fmt="%.6g")
    return path, price


def test_integer_quantities_are_regressed_on_standardized_targets(quantity_csv, tmp_path):
    """Whole-number targets with many distinct values are a quantity (auto task); the target is
    standardized for training, and evaluate/predict answer in the target's units."""
    path, price = quantity_csv
    result = deltaprop("train", "--data", path, "--epochs", 40, "--out", tmp_path, "--quiet", "--no-plots")
    assert "test R^2" in result.stdout and "test accuracy" not in result.stdout
    r2 = float(summary_figure(result.stdout, "test R^2"))
    assert r2 > 0.8  # a near-linear target: an unscaled 2e5 output would still be far off after 40 epochs
    net = dp.load(tmp_path / "model.safetensors")
    assert not net.is_classifier and net.loss_fn.name == "mse" and net.pipeline.target is not None
    predicted = np.array([float(row["prediction"]) for row in csv.DictReader(
        deltaprop("predict", tmp_path / "model.safetensors", "--data", path).stdout.splitlines())])
    assert abs(predicted.mean() - price.mean()) < 0.1 * price.std()  # in dollars, not in standard units
    report = deltaprop("evaluate", tmp_path / "model.safetensors").stdout
    assert "standardized targets" in report and float(report.split("R^2:")[1].split()[0]) > 0.8


def test_a_class_missing_from_training_is_refused_before_training(quantity_csv, tmp_path):
    path, _ = quantity_csv
    result = deltaprop("train", "--data", path, "--task", "classification", "--epochs", 1, "--out", tmp_path,
                       check=False)
    assert result.returncode == 2 and "never seen in training" in result.stderr
    assert "--task regression" in result.stderr and "epoch" not in result.stdout


def test_predict_piped_into_head_exits_quietly(digits_run):
    out, _ = digits_run
    exe = shutil.which("deltaprop", path=str(Path(sys.executable).parent))
    data = out / "rows.npz"
    np.savez(data, X=np.random.default_rng(0).random((20000, 64)), y=np.zeros(20000, int))  # ~2 MB of CSV:
    # far more than a pipe holds, so predict is still writing when head exits
    result = subprocess.run(f"'{exe}' predict '{out / 'model.safetensors'}' --data '{data}' --proba | head -1",
                            shell=True, capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("prediction,p_0") and result.stderr == ""


def test_a_prefix_of_an_option_is_not_taken_for_it(tmp_path):
    """argparse would read "--output m.safetensors" as --output-activation and fail on an unknown
    activation (or train with a wrong one): options must be spelled out."""
    result = deltaprop("train", "--output", tmp_path / "m.safetensors", check=False)
    assert result.returncode == 2
    assert "unrecognized arguments: --output" in result.stderr and "activation" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_resuming_a_model_without_feature_scaling_is_refused_by_name(tmp_path):
    """A model made in Python with no preprocessing has no scaling stage for the run's data: --resume said
    AttributeError ('NoneType' object has no attribute 'transform'); it names the file and the cause."""
    net = dp.Network([dp.Dense(64, 8, "relu"), dp.Dense(8, 10, "softmax")], loss="cross_entropy", seed=0)
    dp.save(net, tmp_path / "bare.safetensors")
    result = deltaprop("train", "--resume", tmp_path / "bare.safetensors", "--epochs", 2, "--out", tmp_path / "o",
                       "--quiet", "--no-plots", check=False)
    assert result.returncode == 2
    assert "bare.safetensors: the model has no feature scaling stage" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    """sklearn's iris as pandas writes it by default: its index first (blank header cell), the species as text
    in a column named "target"."""
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(target=iris.frame["target"].map(dict(enumerate(iris.target_names))))
    path = tmp_path_factory.mktemp("iris") / "iris.csv"
    frame.to_csv(path)
    return path


@pytest.mark.parametrize("option", [["--task", "regression"], ["--loss", "mse"]])
def test_a_text_target_with_regression_settings_is_refused_in_one_line(iris_csv, tmp_path, option):
    """A text target with --task regression or --loss mse was a traceback (could not convert string to float)
    from the target's scaling; it is refused naming the column, a value and what to leave out to classify."""
    result = deltaprop("train", "--data", iris_csv, "--target", "target", *option, "--epochs", 2, "--out", tmp_path,
                       "--quiet", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "'target' holds text (e.g. '" in result.stderr and " ".join(option) in result.stderr
    assert "needs numbers" in result.stderr and "to classify" in result.stderr


def test_target_by_number_refuses_pandas_index_column(iris_csv, tmp_path):
    """--target 0 on a file pandas wrote picked its index column (counted by number, never a feature) and
    regressed on the row numbers in silence; it is refused, saying what the column is and how to name the target."""
    result = deltaprop("train", "--data", iris_csv, "--target", 0, "--epochs", 1, "--out", tmp_path / "o", "--quiet",
                       check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "column 0 ('Unnamed: 0') is pandas' index" in result.stderr and "--target NAME" in result.stderr
    assert "5 'target'" in result.stderr and not (tmp_path / "o").exists()


def test_help_lists_every_hidden_activation_of_the_registry():
    """--activation's help was written by hand and left out mish when it was registered; it is the registry's."""
    text = " ".join(deltaprop("train", "--help").stdout.split())
    listed = text.split("hidden activation: ")[1].split(" (default")[0].split(", ")
    # the registry of a fresh process, as the CLI's: this one's holds activations other tests registered
    registry = subprocess.run([sys.executable, "-c", "import deltaprop as dp; print(*dp.ACTIVATIONS)"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert listed == [name for name in registry if name != "softmax"] and "mish" in listed
