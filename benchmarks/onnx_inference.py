"""Inference rows/s: deltaprop's predict_proba against ONNX Runtime running deltaprop's ONNX export.

    pip install -e ".[onnx]"
    python benchmarks/onnx_inference.py [--repeats 7]

The three networks of speed.py (float32, relu + softmax), random weights and 10,000 random rows; each
engine on the same rows, interleaved, the median of --repeats calls after one untimed call. ONNX Runtime
runs with its default settings (all graph optimizations, its own thread pool over the machine's cores);
the record printed first says which BLAS and threads NumPy used.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time

import numpy as np

from speed import PREDICT_ROWS, WORKLOADS, deltaprop_net


def rows_per_second(engines: dict, repeats: int) -> list[float]:
    """Each engine's rows/s on PREDICT_ROWS rows: one untimed call, then ``repeats`` calls interleaved."""
    times = {key: [] for key in engines}
    for engine in engines.values():
        engine()
    for _ in range(repeats):
        for key, engine in engines.items():
            started = time.perf_counter()
            engine()
            times[key].append(time.perf_counter() - started)
    return [PREDICT_ROWS / statistics.median(times[key]) for key in engines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import onnxruntime as ort
    from threadpoolctl import threadpool_info

    import deltaprop as dp

    blas = [(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; NumPy BLAS {blas}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; onnxruntime {ort.__version__}")
    print("| workload | deltaprop predict_proba rows/s | ONNX Runtime rows/s | ratio (ORT / deltaprop) |")
    print("|---|---|---|---|")
    for name, spec in WORKLOADS.items():
        net = deltaprop_net(spec["sizes"])
        X = np.random.default_rng(0).normal(size=(PREDICT_ROWS, spec["sizes"][0])).astype(np.float32)
        session = ort.InferenceSession(dp.to_onnx(net).SerializeToString())
        ours, theirs = rows_per_second({"deltaprop": functools.partial(net.predict_proba, X),
                                        "ort": functools.partial(session.run, ["probabilities"], {"X": X})},
                                       args.repeats)
        print(f"| {name} | {ours:,.0f} | {theirs:,.0f} | {theirs / ours:.2f} |", flush=True)


if __name__ == "__main__":
    main()
