"""A training run that the crash tests kill (run as a script), and its setup (imported by the tests).

    python crash_child.py CHECKPOINT MODE EPOCH MARKER

MODE says where the process stops for its kill: "mid-write" (half of the checkpoint of
epoch EPOCH written to the temp file), "before-rename" (temp file complete and fsynced,
not yet renamed) or "after-epoch" (checkpoint of EPOCH in place). It creates MARKER
there and sleeps until it is killed.
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

import deltaprop as dp

EPOCHS = 6
FIT = {"batch_size": 32, "verbose": 0}


def setup():
    """Data and an untrained network; the same every time."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:600] / 16.0
    net = dp.Network([dp.Dense(64, 24, "relu", dropout=0.1), dp.Dense(24, 10, "softmax")],
                     loss="cross_entropy", dtype="float32", seed=11)
    net.training = dp.TrainingState(dp.Adam(lr=3e-3))
    return net, X, y[:600]


def stop_here(marker: str):
    Path(marker).touch()
    while True:
        time.sleep(1)


class _HalfWriter:
    def __init__(self, f, marker):
        self.f, self.marker = f, marker

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        stop_here(self.marker)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)


def main(checkpoint, mode, epoch, marker):
    epoch = int(epoch)
    saves = {"n": 0}
    real_fdopen, real_replace = os.fdopen, os.replace

    def fdopen(fd, *args, **kwargs):
        saves["n"] += 1
        f = real_fdopen(fd, *args, **kwargs)
        return _HalfWriter(f, marker) if mode == "mid-write" and saves["n"] == epoch else f

    def replace(src, dst):
        if mode == "before-rename" and saves["n"] == epoch:
            stop_here(marker)
        real_replace(src, dst)

    os.fdopen, os.replace = fdopen, replace

    class StopAfter(dp.Callback):
        def on_epoch_end(self, net, e, logs):
            if mode == "after-epoch" and e + 1 == epoch:
                stop_here(marker)

    net, X, y = setup()
    net.fit(X, y, epochs=EPOCHS, callbacks=[dp.ModelCheckpoint(checkpoint), StopAfter()], **FIT)
    np.save(Path(marker).with_suffix(".finished.npy"), net.training.flat_for(net.layers, net.dtype).theta)


if __name__ == "__main__":
    main(*sys.argv[1:])
