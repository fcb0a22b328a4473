"""deltaprop's own training and prediction speed, for comparing versions of the library.

    python benchmarks/steps.py                          # the deltaprop this Python imports
    git worktree add /tmp/old COMMIT
    PYTHONPATH=/tmp/old/src python benchmarks/steps.py  # an older commit, same machine, same data

It uses only the public API of the first release (Network, Dense, Adam, fit, predict), so
every commit since runs it; speed.py is the comparison with PyTorch and scikit-learn, and
lends it its workloads and network builder. Random data of the workloads' shapes (no
download): for each, one untimed warm-up fit, then ``--repeats`` timed fits; the median
is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from speed import PREDICT_ROWS, WORKLOADS, deltaprop_net, epochs_for

ROWS = {"small": 1437, "medium": 15000, "large": 15000}  # training rows: digits' and speed.py --quick's


def measure(name: str, repeats: int) -> tuple[float, float]:
    """Median training samples/s and prediction samples/s (10,000 rows) for one workload."""
    import deltaprop as dp

    sizes, batch, rows, epochs = WORKLOADS[name]["sizes"], WORKLOADS[name]["batch"], ROWS[name], epochs_for(name)
    rng = np.random.default_rng(0)
    X = rng.random((rows, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], rows)
    X_predict = rng.random((PREDICT_ROWS, sizes[0]), dtype=np.float32)
    train, predict = [], []
    for repeat in range(repeats + 1):  # the first is the warm-up
        net = deltaprop_net(sizes)
        started = time.perf_counter()
        net.fit(X, y, epochs=epochs, batch_size=batch, optimizer=dp.Adam(lr=1e-3), verbose=0)
        middle = time.perf_counter()
        net.predict(X_predict)
        if repeat:
            train.append(rows * epochs / (middle - started))
            predict.append(len(X_predict) / (time.perf_counter() - middle))
    return statistics.median(train), statistics.median(predict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workloads", default="small,medium,large")
    args = parser.parse_args()
    import deltaprop as dp

    print(f"deltaprop from {dp.__file__}")
    print("| workload | train samples/s | predict samples/s |\n|---|---|---|")
    for name in args.workloads.split(","):
        train, predict = measure(name, args.repeats)
        print(f"| {name} | {train:,.0f} | {predict:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
