"""Public tables with text and missing values: `deltaprop train` with no options against scikit-learn.

    pip install palmerpenguins vega_datasets     # the tables ship inside these packages (no download)
    python benchmarks/tables.py [--repeats 3]

For each table and seed, the suite's split (benchmark_split) gives the training and test rows; deltaprop trains on
the training rows written to a CSV file as a user would (`deltaprop train --data TRAIN.csv --target T --test-size
0`) and is scored with `deltaprop evaluate MODEL --data TEST.csv`; the baseline is what a careful
practitioner writes with scikit-learn on the same training and test rows: a ColumnTransformer
(numbers: median imputation with missing indicators, standard scaling; text: a "missing" level and
one-hot encoding, unknown categories ignored; the same identifier columns left out) in front of
MLPClassifier, or MLPRegressor on a standardized target. Test accuracy for classes, R^2 for
quantities; the median over --repeats seeds.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TABLES = {
    # name: (loader, target, task)
    "penguins (species)": ("penguins", "species", "classification"),
    "penguins (body mass)": ("penguins", "body_mass_g", "regression"),
    "cars (origin)": ("cars", "Origin", "classification"),
    "cars (mpg)": ("cars", "Miles_per_Gallon", "regression"),
}


def load(name: str):
    if name == "penguins":
        from palmerpenguins import load_penguins

        return load_penguins()
    from vega_datasets import data

    cars = data.cars()
    cars["Year"] = cars["Year"].dt.year
    return cars


def summary_cell(stdout: str, column: str) -> str:
    """The cell under ``column`` in the last summary table that has it (one network's or a cross-fitted run's)."""
    lines = stdout.splitlines()
    for i in range(len(lines) - 1, 1, -1):
        header = [cell.strip() for cell in lines[i - 2].split("|")]
        if column in header:
            return lines[i].split("|")[header.index(column)].strip()
    raise RuntimeError(f"no {column!r} in deltaprop's summary:\n{stdout}")


def deltaprop_on_split(path: Path, target: str, seed: int, out: Path) -> tuple[float, float, float]:
    """`deltaprop train --data TRAIN --target T --test-size 0` on the suite's training rows of seed ``seed``
    (written to a CSV file, as pandas writes one), then `deltaprop evaluate MODEL --data TEST` on its test rows:
    (the test figure, the time column of the training summary, the training command's wall seconds)."""
    from deltaprop.cli.tables import _labelled_rows
    from deltaprop.data import ReadOptions

    frame, _, y = _labelled_rows(path, target, ReadOptions(), [])
    train, test = benchmark_split(y, seed)
    files = {part: out.parent / f"{path.stem}_{part}{seed}.csv" for part in ("train", "test")}
    for part, rows in (("train", train), ("test", test)):
        frame.iloc[rows].assign(**{target: y[rows]}).to_csv(files[part], index=False)
    started = time.perf_counter()
    trained = _cli("train", "--data", files["train"], "--target", target, "--seed", seed, "--test-size", 0,
                   "--out", out, "--overwrite", "--no-plots", "--quiet")
    wall = time.perf_counter() - started
    scored = _cli("evaluate", out / "model.safetensors", "--data", files["test"], "--target", target)
    figure = re.search(r"(?:accuracy|R\^2): (-?[0-9.]+)", scored).group(1)
    return float(figure), float(summary_cell(trained, "time").split()[0]), wall


def _cli(*args) -> str:
    result = subprocess.run([sys.executable, "-m", "deltaprop.cli", *map(str, args)], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"deltaprop {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def run_deltaprop(path: Path, target: str, seed: int, out: Path) -> float:
    return deltaprop_on_split(path, target, seed, out)[0]


def benchmark_split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The suite's training and test rows of seed ``seed``: 25% held out with scikit-learn's train_test_split,
    stratified by class where every class has 2+ rows (the rule deltaprop's own split followed when the suite
    was first run, kept here so that the rows stay the same whatever deltaprop's split becomes)."""
    from sklearn.model_selection import train_test_split

    counts = np.unique(y, return_counts=True)[1] if y.dtype.kind in "iuUSOb" else None
    stratify = y if counts is not None and counts.min() >= 2 and len(counts) <= 0.25 * len(y) else None
    return train_test_split(np.arange(len(y)), test_size=0.25, random_state=seed, stratify=stratify)


def split_columns(path: Path, target: str, seed: int):
    """The file as deltaprop reads it, the suite's split of seed ``seed`` and the feature columns deltaprop's
    encoder keeps (identifier columns left out), numbers and text apart: (X, y, train, test, numeric, text)."""
    from deltaprop.cli.tables import _labelled_rows
    from deltaprop.data import ReadOptions, TableEncoder

    frame, name, y = _labelled_rows(path, target, ReadOptions(), [])
    train, test = benchmark_split(y, seed)
    kept = TableEncoder().fit(frame.iloc[train], target=name)
    numeric = [c.name for c in kept.columns if c.kind != "categorical"]
    text = [c.name for c in kept.columns if c.kind == "categorical"]
    return frame[numeric + text], y, train, test, numeric, text


def sklearn_pipeline(task: str, seed: int, numeric: list, text: list):
    """The careful scikit-learn pipeline: ColumnTransformer + MLP (the regressor on a standardized target)."""
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore")), text)])
    if task == "classification":
        return make_pipeline(columns, MLPClassifier(max_iter=1000, random_state=seed))
    return make_pipeline(columns, TransformedTargetRegressor(MLPRegressor(max_iter=1000, random_state=seed),
                                                             transformer=StandardScaler()))


def run_sklearn(path: Path, target: str, task: str, seed: int) -> float:
    """The careful scikit-learn pipeline on deltaprop's own split of the same file."""
    X, y, train, test, numeric, text = split_columns(path, target, seed)
    X = X.astype({c: object for c in text})
    model = sklearn_pipeline(task, seed, numeric, text)
    model.fit(X.iloc[train], y[train])
    return float(model.score(X.iloc[test], y[test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")  # MLP's convergence warnings at max_iter
    print("| table | rows | metric | deltaprop train (no options) | scikit-learn ColumnTransformer + MLP |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for label, (source, target, task) in TABLES.items():
            path = Path(folder) / f"{source}.csv"
            frame = load(source)
            frame.to_csv(path, index=False)
            ours = [run_deltaprop(path, target, seed, Path(folder) / f"run{seed}") for seed in range(args.repeats)]
            theirs = [run_sklearn(path, target, task, seed) for seed in range(args.repeats)]
            metric = "accuracy" if task == "classification" else "R^2"
            print(f"| {label} | {len(frame)} | {metric} | {statistics.median(ours):.4f} "
                  f"({min(ours):.4f}-{max(ours):.4f}) | {statistics.median(theirs):.4f} "
                  f"({min(theirs):.4f}-{max(theirs):.4f}) |", flush=True)


if __name__ == "__main__":
    main()
