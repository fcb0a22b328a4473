"""Data-parallel training on MPI, measured on this machine, and a cost model that projects it to clusters.

    python benchmarks/distributed.py            # needs the [mpi] extra (mpich wheel + mpi4py)

1. The Allreduce of a float32 vector on 2 ranks over loopback (mpiexec -n 2), sizes 4 KB to 32 MB,
   median of 20 calls: the latency alpha (the smallest message's time, per ring step) and the
   bandwidth beta (bytes moved by a ring allreduce, 2 (N-1)/N of the vector, over the time).
2. Training samples/s of the medium and large workloads (speed.py's networks, random data, 15,000
   rows, batch 128 / 512, one epoch after a warm-up): 1 process with 2 BLAS threads against 2 ranks
   with 1 thread each (the same global batch), and 1 process with 1 thread, interleaved, median of 3.
3. The ring allreduce's cost per step, T = 2 (N-1) alpha + 2 (N-1)/N S / beta for a gradient of S
   bytes, against the compute of a rank's share of the batch (the measured 1-thread step time divided
   by N: optimistic for small shares, whose products run below the BLAS peak), projected to 8, 64
   and 512 ranks on 10 and 100 Gbit/s links (alpha 5 us a hop there; the loopback figures above are
   this machine's own).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {"medium": ((784, 256, 128, 10), 128), "large": ((784, 1024, 1024, 10), 512)}
ROWS = 15000


def child_allreduce() -> dict:
    from mpi4py import MPI

    comm, out = MPI.COMM_WORLD, {}
    for n in (1024, 16384, 262144, 2097152, 8388608):  # float32: 4 KB .. 32 MB
        x = np.ones(n, np.float32)
        times = []
        for _ in range(20):
            comm.Barrier()
            started = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, x, op=MPI.SUM)
            times.append(time.perf_counter() - started)
        out[n * 4] = statistics.median(times)
    return out


def child_train(workload: str) -> float:
    """Samples/s of one epoch (after a one-epoch warm-up), in this process or this job."""
    import deltaprop as dp

    sizes, batch = SIZES[workload]
    rng = np.random.default_rng(0)
    X, y = rng.random((ROWS, sizes[0]), dtype=np.float32), rng.integers(0, sizes[-1], ROWS)
    layers = [dp.Dense(sizes[l - 1], sizes[l], "relu") for l in range(1, len(sizes) - 1)]
    net = dp.Network(layers + [dp.Dense(sizes[-2], sizes[-1], "softmax")], loss="cross_entropy",
                     dtype="float32", seed=0)
    net.fit(X[:batch * 4], y[:batch * 4], epochs=1, batch_size=batch, verbose=0)
    history = net.fit(X, y, epochs=1, batch_size=batch, verbose=0)
    return ROWS / history["time"][-1]


def run(ranks: int, threads: int, *args) -> str:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or "mpiexec"
    command = [sys.executable, __file__, "--child", *args]
    if ranks > 1:
        command = [mpiexec, "-n", str(ranks)] + command
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return out.strip().splitlines()[0]


def ring_seconds(ranks: int, size_bytes: float, alpha: float, beta: float) -> float:
    return 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * size_bytes / beta


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        from mpi4py import MPI

        result = child_allreduce() if sys.argv[2] == "allreduce" else child_train(sys.argv[2])
        if MPI.COMM_WORLD.Get_rank() == 0:
            print(json.dumps(result))
        return
    times = {int(k): v for k, v in json.loads(run(2, 1, "allreduce")).items()}
    alpha = min(times.values()) / 2  # the 4 KB message: latency-bound, 2 (N - 1) = 2 hops on 2 ranks
    beta = max(2 * 1 / 2 * s / t for s, t in times.items())  # bytes a ring moves per second, at its best
    print("| vector | Allreduce on 2 ranks (loopback) |\n|---|---|")
    for size, seconds in times.items():
        print(f"| {size / 2**20:.3g} MB | {seconds * 1e6:,.0f} us |")
    print(f"\nloopback: alpha {alpha * 1e6:.1f} us, beta {beta / 1e9:.2f} GB/s\n")
    print("| workload | 1 process x 2 threads | 2 ranks x 1 thread | ratio |\n|---|---|---|---|")
    step_1thread = {}  # seconds of a whole batch's step in one process on one thread
    for workload in SIZES:
        one, two, single = [], [], []
        for _ in range(3):
            one.append(float(run(1, 2, workload)))
            two.append(float(run(2, 1, workload)))
            single.append(float(run(1, 1, workload)))
        step_1thread[workload] = SIZES[workload][1] / statistics.median(single)
        print(f"| {workload} | {statistics.median(one):,.0f} | {statistics.median(two):,.0f} | "
              f"{statistics.median(two) / statistics.median(one):.2f} |", flush=True)
    print("\n| workload | gradient | ranks | link | allreduce per step | compute per step | efficiency |\n"
          "|---|---|---|---|---|---|---|")
    for workload, (sizes, batch) in SIZES.items():
        params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        compute_full = step_1thread[workload]  # the whole batch on one 1-thread rank; a rank does 1/N of it
        for ranks in (8, 64, 512):
            for link, bandwidth in (("10 Gbit/s", 1.25e9), ("100 Gbit/s", 12.5e9)):
                comm = ring_seconds(ranks, params * 4, 5e-6, bandwidth)
                compute = compute_full / ranks
                print(f"| {workload} (batch {batch}) | {params * 4 / 2**20:.1f} MB | {ranks} | {link} | "
                      f"{comm * 1e3:.2f} ms | {compute * 1e3:.3f} ms | {compute / (compute + comm):.0%} |")


if __name__ == "__main__":
    main()
