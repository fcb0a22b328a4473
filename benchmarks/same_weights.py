"""Do two versions of deltaprop train the same weights? A check for engine refactors, not a speed benchmark.

    python benchmarks/same_weights.py --base 9646065          # this checkout against commit 9646065
    python benchmarks/same_weights.py --base 9646065 --only relu

Each configuration (activation, loss, optimizer, backend, dtype, batch size, sample weights, L2, clipping,
dropout) is trained twice, in two subprocesses: once with ``src/`` of the base commit (``git archive`` into a
temporary folder), once with this checkout's ``src/``. The script prints, per configuration, whether the
weights are the same bits, else their largest absolute difference, and exits 1 when any configuration
differs by more than ``--tolerance`` (1e-12 by default; float32 configurations are held to 1e-5 relative).
Only the public API of both versions is used (Network, Dense, fit with keyword options, get_weights).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, hidden activation, output activation, loss, optimizer, options)
CONFIGS = [
    ("relu-softmax-xent-adam", "relu", "softmax", "cross_entropy", "adam", {}),
    ("relu-softmax-xent-sgd", "relu", "softmax", "cross_entropy", "sgd", {}),
    ("relu-softmax-xent-momentum", "relu", "softmax", "cross_entropy", "momentum", {}),
    ("relu-softmax-xent-nesterov", "relu", "softmax", "cross_entropy", "nesterov", {}),
    ("relu-softmax-xent-adamw", "relu", "softmax", "cross_entropy", "adamw", {}),
    ("relu-softmax-xent-rmsprop", "relu", "softmax", "cross_entropy", "rmsprop", {}),
    ("relu-softmax-xent-rmsprop-mom", "relu", "softmax", "cross_entropy", "rmsprop_momentum", {}),
    ("relu-identity-mse-adam", "relu", "identity", "mse", "adam", {}),
    ("relu-identity-mse-sgd-l2-clip", "relu", "identity", "mse", "sgd", {"l2": 0.01, "clip_norm": 0.5}),
    ("relu-softmax-xent-adam-weights", "relu", "softmax", "cross_entropy", "adam", {"weights": True}),
    ("relu-softmax-xent-adam-dropout", "relu", "softmax", "cross_entropy", "adam", {"dropout": 0.2}),
    ("relu-softmax-xent-adam-f32", "relu", "softmax", "cross_entropy", "adam", {"dtype": "float32"}),
    ("relu-softmax-xent-adam-big", "relu", "softmax", "cross_entropy", "adam", {"hidden": 300, "batch": 256}),
    ("sigmoid-sigmoid-bce-adam", "sigmoid", "sigmoid", "binary_cross_entropy", "adam", {"binary": True}),
    ("tanh-softmax-xent-sgd", "tanh", "softmax", "cross_entropy", "momentum", {}),
    ("tanh-identity-mse-adam", "tanh", "identity", "mse", "adam", {}),
    ("sigmoid-sigmoid-mse-sgd", "sigmoid", "sigmoid", "mse", "sgd", {}),
    ("leaky_relu-softmax-xent-adam", "leaky_relu", "softmax", "cross_entropy", "adam", {}),
    ("elu-softmax-xent-adam", "elu", "softmax", "cross_entropy", "adam", {}),
    ("softplus-identity-mse-adam", "softplus", "identity", "mse", "adam", {}),
    ("relu-softmax-mse-adam", "relu", "softmax", "mse", "adam", {}),
]

TRAIN = r'''
import json, sys
import numpy as np
import deltaprop as dp
from deltaprop import ops

name, hidden_act, out_act, loss, opt, options, backend = json.loads(sys.argv[1])
ops.set_default(backend)
rng = np.random.default_rng(7)
m, n0, k = 300, 12, 1 if options.get("binary") else 4
X = rng.normal(size=(m, n0))
y = (X[:, 0] > 0).astype(int) if k == 1 else rng.integers(0, k, m)
if loss == "mse" and out_act == "identity":
    y = X @ rng.normal(size=(n0, 2)) + 0.1 * rng.normal(size=(m, 2)); k = 2
hidden = options.get("hidden", 16)
dtype = options.get("dtype", "float64")
net = dp.Network([dp.Dense(n0, hidden, hidden_act, dropout=options.get("dropout", 0.0)),
                  dp.Dense(hidden, hidden, hidden_act), dp.Dense(hidden, k, out_act)],
                 loss=loss, dtype=dtype, seed=3)
optimizer = {"adam": lambda: dp.Adam(lr=1e-2), "sgd": lambda: dp.SGD(lr=0.05),
             "momentum": lambda: dp.SGD(lr=0.05, momentum=0.9),
             "nesterov": lambda: dp.SGD(lr=0.05, momentum=0.9, nesterov=True),
             "adamw": lambda: dp.AdamW(lr=1e-2, weight_decay=0.01),
             "rmsprop": lambda: dp.RMSprop(lr=1e-3),
             "rmsprop_momentum": lambda: dp.RMSprop(lr=1e-3, momentum=0.5)}[opt]()
kwargs = dict(epochs=4, batch_size=options.get("batch", 32), optimizer=optimizer, verbose=0)
if options.get("weights"):
    kwargs["sample_weight"] = rng.random(m) + 0.5
for key in ("l2", "clip_norm"):
    if key in options:
        kwargs[key] = options[key]
net.fit(X, y, **kwargs)
weights = net.get_weights()
print(json.dumps({str(key): np.asarray(value, np.float64).ravel().tolist()
                  for key, value in sorted(weights.items(), key=str)}))
'''


def train(src: Path, config: tuple, backend: str) -> dict:
    """The weights one configuration trains to, with deltaprop imported from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", TRAIN, json.dumps([*config, backend])], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(old: dict, new: dict) -> float | str:
    """0.0 for the same bits, else the largest absolute difference (or what failed)."""
    import numpy as np

    if "error" in old or "error" in new:
        return f"old: {old.get('error', 'ok')}; new: {new.get('error', 'ok')}"
    if sorted(old) != sorted(new):
        return f"different parameters: {sorted(old)} vs {sorted(new)}"
    worst = 0.0
    for key in old:
        a, b = np.asarray(old[key]), np.asarray(new[key])
        if a.shape != b.shape:
            return f"{key}: shapes {a.shape} vs {b.shape}"
        if not np.array_equal(a, b):
            worst = max(worst, float(np.max(np.abs(a - b))), 1e-300)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--only", default="", help="run only configurations whose name contains this")
    parser.add_argument("--backends", default="numpy,numba", help="comma-separated: numpy, numba")
    parser.add_argument("--tolerance", type=float, default=1e-12)
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base, "src"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old_src, new_src = Path(tmp) / "src", ROOT / "src"
        for backend in args.backends.split(","):
            for config in CONFIGS:
                if args.only not in config[0]:
                    continue
                result = compare(train(old_src, config, backend), train(new_src, config, backend))
                limit = 1e-5 if config[5].get("dtype") == "float32" else args.tolerance
                same = result == 0.0
                ok = isinstance(result, float) and result <= limit
                failed += not ok
                verdict = "same bits" if same else (f"max |diff| {result:.3g}" if isinstance(result, float) else result)
                print(f"{backend:6s} {config[0]:34s} {verdict}{'' if ok else '  <-- FAILS'}", flush=True)
    print(f"{failed} configuration(s) beyond tolerance" if failed else "all configurations within tolerance")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
