"""Test accuracy of deltaprop networks on real data, with wall time.

    python benchmarks/accuracy.py            # digits + Fashion-MNIST (about 3 minutes on 2 cores)
    python benchmarks/accuracy.py --quick    # digits + 2 Fashion-MNIST epochs (under a minute)

Digits: scikit-learn's set, 25% held out (stratified, seed 0), features scaled
by statistics of the training part only. Fashion-MNIST: the 60k/10k split of the
Debian package dataset-fashion-mnist, pixels / 255. No test data is seen during
training (no early stopping or model selection on it).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import deltaprop as dp
from deltaprop.data import Scaler, load_builtin


def run(name, net, data, **fit_options):
    started = time.perf_counter()
    net.fit(data.X_train, data.y_train, verbose=0, **fit_options)
    seconds = time.perf_counter() - started
    accuracy = float((net.predict(data.X_test) == data.y_test).mean())
    epochs = fit_options["epochs"]
    print(f"| {name} | {epochs} | {accuracy:.4f} | {seconds:.1f} s |", flush=True)
    return accuracy


def digits_runs():
    data = load_builtin("digits")
    scaler = Scaler("standard").fit(data.X_train)
    data.X_train, data.X_test = scaler.transform(data.X_train), scaler.transform(data.X_test)
    relu = dp.Network([dp.Dense(64, 128, "relu"), dp.Dense(128, 10, "softmax")],
                      loss="cross_entropy", dtype="float32", seed=0)
    run("digits 64-128-10 relu, softmax + cross-entropy, Adam 1e-3, batch 32", relu, data,
        epochs=60, batch_size=32, optimizer=dp.Adam(1e-3))
    notes = dp.presets.notes_network((64, 30, 10), lr=1.0, seed=0)
    run("digits, the notes' preset: 64-30-10 sigmoid, mse, plain SGD 1.0, batch 10", notes, data,
        epochs=60, batch_size=10)


def fashion_runs(quick: bool):
    try:
        data = load_builtin("fashion-mnist")
    except dp.DataError as exc:
        print(f"| Fashion-MNIST skipped: {exc} | | | |")
        return
    base = dp.Network([dp.Dense(784, 256, "relu"), dp.Dense(256, 128, "relu"), dp.Dense(128, 10, "softmax")],
                      loss="cross_entropy", dtype="float32", seed=0)
    run("Fashion-MNIST 784-256-128-10 relu, Adam 1e-3, batch 128", base, data,
        epochs=2 if quick else 20, batch_size=128, optimizer=dp.Adam(1e-3))
    if quick:
        return
    reg = dp.Network([dp.Dense(784, 512, "relu", dropout=0.3), dp.Dense(512, 256, "relu", dropout=0.3),
                      dp.Dense(256, 10, "softmax")], loss="cross_entropy", dtype="float32", seed=0)
    run("Fashion-MNIST 784-512-256-10 relu, dropout 0.3, AdamW 1e-3 (decay 0.05), cosine, batch 128",
        reg, data, epochs=30, batch_size=128, optimizer=dp.AdamW(1e-3, weight_decay=0.05),
        schedule=dp.CosineDecay(30))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="digits and a 2-epoch Fashion-MNIST run only")
    args = parser.parse_args()
    print(f"deltaprop {dp.__version__}, NumPy {np.__version__}, {platform.processor() or platform.machine()}")
    print("| run | epochs | test accuracy | wall time |\n|---|---|---|---|")
    digits_runs()
    fashion_runs(args.quick)


if __name__ == "__main__":
    main()
