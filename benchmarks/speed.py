"""Training and inference speed of deltaprop, PyTorch (CPU) and scikit-learn on the same MLPs.

    python benchmarks/speed.py            # 5 interleaved repeats of every workload and contender
    python benchmarks/speed.py --quick    # 3 repeats, shorter epochs, no deltaprop-numpy
    python benchmarks/speed.py --cold     # the one-time cost of loading deltaprop's kernels
    python benchmarks/speed.py --device cuda --workloads large   # deltaprop against PyTorch on a CUDA GPU
    python benchmarks/speed.py --device cpu-torch --quick         # the same code path on PyTorch CPU tensors

The full run adds a fourth contender, deltaprop-numpy: deltaprop with its fused kernels
turned off (DELTAPROP_KERNELS=numpy), which shows what the kernels buy.

Each trial runs in a fresh subprocess (so its peak memory is its own), in the order
deltaprop, the PyTorch variants, sklearn, deltaprop, ... and the medians (with their ranges)
are reported. PyTorch runs as most people first write it ("torch") and at its best on a CPU
(TORCH_VARIANTS: fused Adam, 1 or 2 threads, with and without torch.compile); the ratios
that matter are against the fastest variant, marked in the table. Every run first prints the
machine (benchmarks/machine.py: CPU and its vector flags, the BLAS kernel that ran, threads,
OPENBLAS_CORETYPE). Before the timed run each trial trains on 4 batches, untimed, so that
one-time loading (numba's compiled kernels, PyTorch's kernel selection) is not
counted as training; ``--cold`` reports that first-use cost. Prediction is timed
on 10,000 rows (digits' 360 test rows repeated), the median of 5 calls. Same architecture,
loss (softmax + cross-entropy), optimizer (Adam),
learning rate, batch size, epochs and float32 for all three; torch starts from
deltaprop's initial weights. Peak memory is the rise of the process's peak
resident set size (reset once the data and library are loaded) during training
and prediction: what the framework added on top of the data. deltaprop's FLOP rate is given as a
fraction of the float32 GEMM peak (NumPy, 2048^3, best of 5) measured once at the start, and of the
peak measured again in each deltaprop trial's own process just before it trains (median and range
over the trials): on a shared VM the peak drifts by a third between minutes.

``--device cuda`` (or cuda:N) compares deltaprop on the GPU, its backend from ``ops.for_device("cuda")``
(ArrayAPIOps on PyTorch CUDA tensors), with PyTorch on the same GPU (DEVICE_VARIANTS: as first written,
fused Adam, fused Adam + torch.compile). The training and test data are torch tensors on the device for
both; deltaprop's fit reads its inputs on the host (checks, shuffling) and sends each batch over as it is
served, and that is timed as part of its training. Every matrix product is float32 with TF32 off for both
(like for like; ``--tf32`` turns it on for both), the clock is read after torch.cuda.synchronize(), the
warm-up (4 batches and the last, shorter one, so torch.compile has seen every shape) is untimed, and
memory is the peak that PyTorch's allocator added on the GPU. The machine record adds the GPU (name,
memory, driver and CUDA versions). ``--device cpu-torch`` runs the same code on PyTorch CPU tensors: the
way to test it without a GPU, not a figure to publish. Without a GPU, ``--device cuda`` exits with a
one-line message saying so.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402  (benchmarks/machine.py: what the run ran on)
import torch_twin  # noqa: E402  (benchmarks/torch_twin.py: the same MLP in PyTorch)

WORKLOADS = {
    "small": {"sizes": [64, 64, 10], "batch": 32, "data": "digits"},
    "medium": {"sizes": [784, 256, 128, 10], "batch": 128, "data": "fashion-mnist"},
    "large": {"sizes": [784, 1024, 1024, 10], "batch": 512, "data": "fashion-mnist"},
}
# "deltaprop-numpy": deltaprop with its fused kernels off (DELTAPROP_KERNELS=numpy), what they buy
FRAMEWORKS = ("deltaprop", "torch", "sklearn", "deltaprop-numpy")
# PyTorch at its best on a CPU: fused Adam, zero_grad(set_to_none=True), 1 or 2 intra-op threads (both measured,
# the better reported), and torch.compile of the model (reported whether or not it helps). "torch" stays as
# most people first write it: default threads, torch.optim.Adam's default implementation.
TORCH_VARIANTS = {
    "torch": {},
    "torch fused, 1 thread": {"threads": 1, "fused": True},
    "torch fused, 2 threads": {"threads": 2, "fused": True},
    "torch fused + compile, 1 thread": {"threads": 1, "fused": True, "compile": True},
    "torch fused + compile, 2 threads": {"threads": 2, "fused": True, "compile": True},
}
# PyTorch at its best on a GPU (--device): fused Adam (CUDA's fused kernel), and torch.compile of the model
DEVICE_VARIANTS = {
    "torch": {},
    "torch fused": {"fused": True},
    "torch fused + compile": {"fused": True, "compile": True},
}
PREDICT_ROWS = 10_000
PREDICT_REPEATS = 5
LR = 1e-3


def load(workload: str, quick: bool):
    """Train/test arrays (float32) for a workload; random data of the same shape when a set is missing."""
    import deltaprop as dp
    from deltaprop.data import Scaler, load_builtin

    spec = WORKLOADS[workload]
    try:
        data = load_builtin(spec["data"])
        X, y, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
        if spec["data"] == "digits":
            scaler = Scaler().fit(X)
            X, X_test = scaler.transform(X), scaler.transform(X_test)
    except dp.DataError:
        rng = np.random.default_rng(0)
        X, X_test = rng.random((60000, 784)), rng.random((10000, 784))
        y, y_test = rng.integers(0, 10, 60000), rng.integers(0, 10, 10000)
    if quick and workload != "small":
        X, y = X[:15000], y[:15000]
    return (np.ascontiguousarray(X, dtype=np.float32), y.astype(np.int64),
            np.ascontiguousarray(X_test, dtype=np.float32), y_test.astype(np.int64))


def epochs_for(workload: str) -> int:
    return 5 if workload == "small" else 1


def deltaprop_net(sizes, seed=0, ops=None):
    import deltaprop as dp

    layers = [dp.Dense(sizes[l - 1], sizes[l], "relu") for l in range(1, len(sizes) - 1)]
    layers.append(dp.Dense(sizes[-2], sizes[-1], "softmax"))
    return dp.Network(layers, loss="cross_entropy", dtype="float32", seed=seed, ops=ops)


def run_deltaprop(sizes, batch, epochs, X, y, X_test, *, ops=None):
    """deltaprop on its default backend, or on ``ops`` (a device's: X, y and X_test are then its tensors)."""
    import deltaprop as dp

    net = deltaprop_net(sizes, ops=ops)
    sync = torch_twin.synchronizer(str(getattr(X, "device", "cpu")))
    sync()
    started = time.perf_counter()
    net.fit(X, y, epochs=epochs, batch_size=batch, optimizer=dp.Adam(lr=LR), verbose=0)
    sync()
    return time.perf_counter() - started, lambda: net.predict(X_test)


def run_torch(sizes, batch, epochs, X, y, X_test, *, variant: dict | None = None):
    """PyTorch from deltaprop's initial weights, on the device of X (NumPy arrays: the CPU); ``variant``
    (TORCH_VARIANTS, DEVICE_VARIANTS) sets threads, fused Adam, compile."""
    import torch

    variant = variant or {}
    if "threads" in variant:
        torch.set_num_threads(variant["threads"])
    Xt, yt, Xp = (a if torch.is_tensor(a) else torch.from_numpy(a) for a in (X, y, X_test))
    model = torch_twin.mlp(deltaprop_net(sizes)).to(Xt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, **({"fused": True} if variant.get("fused") else {}))
    forward = torch.compile(model) if variant.get("compile") else model
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    sync = torch_twin.synchronizer(str(Xt.device))
    sync()
    started = time.perf_counter()
    for _ in range(epochs):
        torch_twin.train_epoch(forward, optimizer, loss_fn, Xt, yt, batch, generator)
    sync()
    train = time.perf_counter() - started

    def predict():
        with torch.no_grad():
            return model(Xp).argmax(dim=1).cpu().numpy()

    return train, predict


def run_sklearn(sizes, batch, epochs, X, y, X_test):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", solver="adam",
                        learning_rate_init=LR, batch_size=batch, max_iter=epochs, alpha=0.0, random_state=0,
                        shuffle=True, tol=0.0, n_iter_no_change=10**9)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - started, lambda: clf.predict(X_test)


def runner_for(framework: str, device: str):
    """The function that trains ``framework`` (its variant's settings, its device's backend bound in)."""
    if framework.startswith("torch"):
        variants = TORCH_VARIANTS if device == "cpu" else DEVICE_VARIANTS
        return functools.partial(run_torch, variant=variants[framework])
    if framework == "sklearn":
        return run_sklearn
    return run_deltaprop if device == "cpu" else functools.partial(run_deltaprop,
                                                                    ops=torch_twin.deltaprop_ops(device))


def child(framework: str, workload: str, quick: bool, device: str = "cpu", tf32: bool = False) -> dict:
    """One trial, in this (fresh) process: train, predict, report. With a ``device`` (speed.py --device), the
    data are torch tensors there and its clock, GEMM peak and memory are the device's."""
    X, y, X_test, y_test = load(workload, quick)
    spec = WORKLOADS[workload]
    epochs = epochs_for(workload)
    data_mb = X.nbytes / 2**20
    # predict is timed on 10,000 rows: the test set, repeated cyclically when smaller (digits has 360)
    X_predict = np.resize(X_test, (PREDICT_ROWS, X_test.shape[1])) if len(X_test) < PREDICT_ROWS else X_test
    if device != "cpu":
        torch_twin.set_tf32(tf32)
        X, y, X_predict = on_device(device, X, y, X_predict)
    runner, sync = runner_for(framework, device), torch_twin.synchronizer(device)
    # warm-up, untimed: the same training on 4 batches and the last, shorter one loads what each library loads
    # on first use (deltaprop's compiled kernels from numba's cache, PyTorch's kernel choices, torch.compile's
    # graphs for both batch shapes)
    n = 4 * spec["batch"] + len(X) % spec["batch"]
    runner(spec["sizes"], spec["batch"], 1, X[:n], y[:n], X_predict[:n])[1]()
    # this machine's GEMM rate now, beside the trial (the VM's rate drifts: a peak measured once, minutes
    # away, gave 65-85% for the same large trials); deltaprop's fraction of it is taken trial by trial
    gemm = device_gemm_peak(device) if framework.startswith("deltaprop") else None
    meter = torch_twin.memory_meter(device)  # on a GPU: its memory; elsewhere the resident set
    base = reset_peak_rss()  # after the data and the library are loaded
    train, predict = runner(spec["sizes"], spec["batch"], epochs, X, y, X_predict)
    infer = []
    for _ in range(PREDICT_REPEATS):  # median of a few calls: one call of a few ms is noisy
        sync()
        started = time.perf_counter()
        predicted = predict()
        sync()
        infer.append(time.perf_counter() - started)
    infer = statistics.median(infer)
    peak_mb = meter() if meter else (status_kb("VmHWM") - base) / 1024
    return {"samples_per_s": epochs * len(X) / train, "predict_per_s": len(X_predict) / infer,
            "accuracy": float((predicted[:len(y_test)] == y_test).mean()), "peak_mb": peak_mb,
            "data_mb": data_mb, **({} if gemm is None else {"gemm_peak": gemm})}


def on_device(device: str, *arrays) -> list:
    """NumPy arrays as torch tensors on ``device`` (copied there once, before any timing)."""
    import torch

    return [torch.from_numpy(a).to(torch_twin.torch_device(device)) for a in arrays]


def device_gemm_peak(device: str) -> float:
    """The float32 GEMM rate of where the products run: NumPy on the CPU, torch.matmul on a device (4096^3 on a
    GPU, where 2048^3 takes well under a millisecond)."""
    if device == "cpu":
        return gemm_peak()
    return torch_twin.gemm_peak(device, 4096 if device.startswith("cuda") else 2048)


def cold_child() -> dict:
    """The first fit (one batch of the small workload) in a fresh process: one-time loading included."""
    import deltaprop as dp

    X, y, _, _ = load("small", True)
    base = reset_peak_rss()
    started = time.perf_counter()
    deltaprop_net(WORKLOADS["small"]["sizes"]).fit(X[:32], y[:32], epochs=1, batch_size=32, verbose=0)
    return {"seconds": time.perf_counter() - started, "peak_mb": (status_kb("VmHWM") - base) / 1024,
            "backend": dp.ops.default_ops().name}


def cold_start(repeats: int = 3) -> None:
    """Median first-fit time and memory, with the numba kernels (cached) and with NumPy alone."""
    for kernels in ("numba", "numpy"):
        env = dict(os.environ, DELTAPROP_KERNELS=kernels)
        runs = [json.loads(subprocess.run([sys.executable, __file__, "--child", "cold", "small"], env=env,
                                          capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                for _ in range(repeats)]
        print(f"first fit in a fresh process, kernels {runs[0]['backend']}: "
              f"{statistics.median(r['seconds'] for r in runs):.2f} s, "
              f"+{statistics.median(r['peak_mb'] for r in runs):.0f} MB")


def status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> int:
    """Reset the peak resident set size to the current one (Linux clear_refs 5); returns it in kB."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return status_kb("VmRSS")


def gemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """This machine's float32 matrix-multiply rate in GFLOP/s (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    A @ B
    best = min(_timed(lambda: A @ B) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def flops_per_sample(sizes) -> int:
    """Multiply-adds x 2 per training sample: forward z = aW, dW = a^T delta, and delta a layer
    down for every layer but the first (the input layer needs no delta)."""
    products = [sizes[l - 1] * sizes[l] for l in range(1, len(sizes))]
    return 2 * (2 * sum(products) + sum(products[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats on 15k samples, without deltaprop-numpy")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per framework (default 5, quick 3)")
    parser.add_argument("--workloads", default="small,medium,large")
    parser.add_argument("--cold", action="store_true", help="only the first-use cost of deltaprop's kernels")
    parser.add_argument("--device", default="cpu", help="cpu (the default: NumPy/numba, PyTorch CPU, scikit-learn); "
                        "cuda or cuda:N: deltaprop through ops.for_device against PyTorch on that GPU; cpu-torch: "
                        "that code path on PyTorch CPU tensors, to test it without a GPU")
    parser.add_argument("--tf32", action="store_true", help="with --device: TF32 matrix products for both "
                        "contenders (default: off, full float32)")
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(cold_child() if args.child[0] == "cold" else
                         child(*args.child, args.quick, args.device, args.tf32)))
        return
    if args.cold:
        cold_start()
        return
    peak = check_device(args.device, args.tf32)
    repeats = args.repeats or (3 if args.quick else 5)
    print("| workload | framework | train samples/s (min-max) | deltaprop's ratio | predict samples/s | test accuracy "
          f"| {'peak GPU MB (PyTorch allocator)' if args.device.startswith('cuda') else 'peak MB over the data'} |"
          "\n|---|---|---|---|---|---|---|")
    for workload in args.workloads.split(","):
        frameworks = (["deltaprop", *TORCH_VARIANTS, "sklearn"] + ([] if args.quick else ["deltaprop-numpy"])
                      if args.device == "cpu" else ["deltaprop", *DEVICE_VARIANTS])
        results = {f: [] for f in frameworks}
        for _ in range(repeats):
            for framework in frameworks:
                command = [sys.executable, __file__, "--child", framework, workload, "--device", args.device]
                command += (["--quick"] if args.quick else []) + (["--tf32"] if args.tf32 else [])
                env = dict(os.environ, DELTAPROP_KERNELS="numpy" if framework == "deltaprop-numpy" else "numba")
                trial = subprocess.run(command, capture_output=True, text=True, env=env)
                if trial.returncode != 0:  # (what went wrong, shown: a GPU run is not repeated lightly)
                    sys.exit(f"speed.py: the {framework} trial of {workload} failed (exit code {trial.returncode}):"
                             f"\n{trial.stderr[-4000:]}")
                results[framework].append(json.loads(trial.stdout.strip().splitlines()[-1]))
        report(workload, results, peak)


def check_device(device: str, tf32: bool) -> float:
    """Print the machine (and the device) and measure the GEMM peak the ratios are read against; a device this
    machine does not have (no GPU, no PyTorch) ends the run with one line saying so, before any trial."""
    import deltaprop as dp

    if device != "cpu":
        try:
            ops = torch_twin.deltaprop_ops(device)
        except dp.ConfigError as error:
            sys.exit(f"speed.py --device {device}: {error} (speed.py takes cpu, cpu-torch, cuda or cuda:N)")
        print(machine.describe(device))
        print(f"deltaprop trains through {ops.describe()}, data on {torch_twin.torch_device(device)}; "
              f"{torch_twin.set_tf32(tf32)}")
    else:
        print(machine.describe())
    peak = device_gemm_peak(device)
    where = "NumPy, 2048^3" if device == "cpu" else f"torch.matmul on {torch_twin.torch_device(device)}"
    print(f"float32 GEMM peak {peak:.1f} GFLOP/s ({where})")
    return peak


def report(workload: str, results: dict, peak: float) -> None:
    """Medians (and ranges) per contender; deltaprop's ratio to each, and to PyTorch at its best (the fastest
    of the tuned variants: the one the headline compares with)."""
    med = {f: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for f, runs in results.items()}
    ours = med["deltaprop"]["samples_per_s"]
    tuned = [f for f in med if f.startswith("torch ")]
    best = max(tuned, key=lambda f: med[f]["samples_per_s"]) if tuned else None
    for framework, m in med.items():
        rates = [r["samples_per_s"] for r in results[framework]]
        mark = " (PyTorch at its best)" if framework == best else ""
        print(f"| {workload} | {framework}{mark} | {m['samples_per_s']:,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) | "
              f"{ours / m['samples_per_s']:.2f}x | {m['predict_per_s']:,.0f} | {m['accuracy']:.4f} | "
              f"{m['peak_mb']:.0f} |", flush=True)
    flops = flops_per_sample(WORKLOADS[workload]["sizes"]) / 1e9
    rate = ours * flops
    beside = [r["samples_per_s"] * flops / r["gemm_peak"] for r in results["deltaprop"]]
    print(f"| {workload} | deltaprop FLOP rate | {rate:.1f} GFLOP/s | {rate / peak:.0%} of the GEMM peak measured "
          f"at the start; {statistics.median(beside):.0%} ({min(beside):.0%}-{max(beside):.0%}) of the peak measured "
          f"in each trial's process, before it trained | | training data: {med['deltaprop']['data_mb']:.0f} MB | |",
          flush=True)


if __name__ == "__main__":
    main()
