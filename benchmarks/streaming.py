"""Training speed from shards on disk (dp.data.stream) against the same data in memory, and memory.

    python benchmarks/streaming.py              # medium workload, 60,000 rows, 5 interleaved rounds
    python benchmarks/streaming.py --rows 20000 --rounds 3

The medium workload of speed.py (784-256-128-10 relu/softmax, Adam, batch 128, float32) on
random data of Fashion-MNIST's shape, written as 6 shards of .npy pairs and of Parquet files,
with pyarrow's default encoding (snappy, dictionary) and uncompressed (in the page cache after
the first read, as a data set that is read every epoch is). Parquet is read twice: by default
(decoded once in the first pass into the stream's cache of raw arrays, which later epochs
read) and with cache=False (decoded every epoch). Each
round trains one network per contender for 2 epochs; the figure is the median over rounds
of the second epoch's samples/s (History's "time": the epoch's batches, reading included;
the stream's first pass, which counts rows and fits the scaler, comes before and is timed
separately). Contenders run interleaved in one process, so machine noise hits all alike.
The memory figures come from a child process per contender: its peak resident memory
(VmHWM) after loading the data and training one epoch, over its peak before (numba's kernels
already loaded); the in-memory contender's includes its data.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import deltaprop as dp

sys.path.insert(0, str(Path(__file__).parent))
import machine  # noqa: E402  (benchmarks/machine.py: what the run ran on)

SIZES, BATCH = (784, 256, 128, 10), 128


def network() -> dp.Network:
    layers = [dp.Dense(SIZES[l - 1], SIZES[l], "relu" if l < len(SIZES) - 1 else "softmax")
              for l in range(1, len(SIZES))]
    return dp.Network(layers, loss="cross_entropy", dtype="float32", seed=0)


def write_shards(folder: Path, rows: int, shards: int = 6) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    for i, part in enumerate(np.array_split(np.arange(rows), shards)):
        X = rng.random((len(part), SIZES[0]), dtype=np.float32)
        y = rng.integers(0, SIZES[-1], len(part)).astype(np.int64)
        np.save(folder / f"X_{i}.npy", X)
        np.save(folder / f"y_{i}.npy", y)
        table = pa.table({f"p{j}": X[:, j] for j in range(SIZES[0])} | {"label": y})
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=8192)  # pyarrow's defaults: snappy
        pq.write_table(table, folder / f"plain-{i}.pq", row_group_size=32768, compression="none",
                       use_dictionary=False)  # random floats gain nothing from either


@functools.cache
def in_memory(folder: Path) -> tuple:
    return (np.concatenate([np.load(folder / f"X_{i}.npy") for i in range(6)]),
            np.concatenate([np.load(folder / f"y_{i}.npy") for i in range(6)]))


def contenders(folder: Path) -> dict:
    """How each contender gets its data (the in-memory arrays are loaded once per process and kept)."""
    return {
        "in memory": lambda: in_memory(folder),
        "stream .npy": lambda: (dp.data.stream((str(folder / "X_*.npy"), str(folder / "y_*.npy")),
                                               shuffle_buffer=32768), None),
        "stream Parquet": lambda: (dp.data.stream(str(folder / "*.parquet"), target="label",
                                                  shuffle_buffer=32768), None),
        "stream Parquet, uncompressed": lambda: (dp.data.stream(str(folder / "plain-*.pq"), target="label",
                                                                shuffle_buffer=32768), None),
        "stream Parquet, decoded every epoch": lambda: (dp.data.stream(str(folder / "*.parquet"), target="label",
                                                                       shuffle_buffer=32768, cache=False), None),
        "stream Parquet, uncompressed, decoded every epoch": lambda: (
            dp.data.stream(str(folder / "plain-*.pq"), target="label", shuffle_buffer=32768, cache=False), None),
    }


def one_run(make) -> tuple[float, float]:
    """(samples/s of the second epoch, seconds of the first pass) for one fresh network."""
    data, labels = make()
    started = time.perf_counter()
    if labels is None:
        data.prepare()
    first_pass = time.perf_counter() - started
    history = network().fit(data, labels, epochs=2, batch_size=BATCH, verbose=0)
    rows = data.n_train if labels is None else len(labels)
    return rows / history["time"][-1], first_pass


def memory(folder: Path, name: str) -> float:
    """MB of peak resident memory a child adds by training one epoch (over its peak before training)."""
    code = (f"import re, sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from pathlib import Path\nfrom streaming import contenders, network, BATCH\n"
            "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
            "import numpy as np\n"  # numba's kernels load on the first fit (about 100 MB): before the measurement
            f"network().fit(np.zeros((2, {SIZES[0]}), np.float32), [0, 1], epochs=1, verbose=0)\n"
            f"before = hwm()\ndata, labels = contenders(Path({str(folder)!r}))[{name!r}]()\n"
            "network().fit(data, labels, epochs=1, batch_size=BATCH, verbose=0)\nprint(before, hwm())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    return (after - before) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine.describe())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_shards(folder, args.rows)
        runs = contenders(folder)
        speed = {name: [] for name in runs}
        first = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, make in runs.items():
                rate, seconds = one_run(make)
                speed[name].append(rate)
                first[name].append(seconds)
        base = statistics.median(speed["in memory"])
        print(f"| source | train samples/s (median of {args.rounds}) | vs in memory | first pass | "
              "peak memory added |\n|---|---|---|---|---|")
        for name in runs:
            rate = statistics.median(speed[name])
            print(f"| {name} | {rate:,.0f} ({min(speed[name]):,.0f}-{max(speed[name]):,.0f}) | {rate / base:.0%} | "
                  f"{statistics.median(first[name]):.2f} s | {memory(folder, name):.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
