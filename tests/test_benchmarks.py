"""benchmarks/speed.py's device comparison runs: ``--device cpu-torch`` (deltaprop through ArrayAPIOps on
PyTorch CPU tensors against PyTorch, the code path of ``--device cuda``) prints both contenders' figures, and
``--device cuda`` on a machine without a GPU says so in one line instead of a traceback.

A GPU's own figures come from benchmarks/gpu_check.sh on a machine that has one."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow  # fresh processes importing torch, one of them torch.compile (about 40 s)

ROOT = Path(__file__).resolve().parent.parent
SPEED = ROOT / "benchmarks" / "speed.py"
# one row of the table: | small | framework | samples/s (min-max) | ratio | predict/s | accuracy | MB |
ROW = re.compile(r"^\| small \| (?P<name>deltaprop|torch[^|]*?)(?: \(PyTorch at its best\))? \| "
                 r"(?P<rate>[\d,]+) \([\d,]+-[\d,]+\) \| (?P<ratio>[\d.]+)x \| (?P<predict>[\d,]+) \| "
                 r"(?P<accuracy>[\d.]+) \| -?\d+ \|$", re.M)


def run_speed(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # one torch thread per process: on a shared 2-core machine PyTorch's thread pool, waiting on busy cores,
    # made both contenders ten times slower than with one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SPEED), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_cpu_torch_prints_both_contenders_figures():
    """One repeat of the small workload: the device line, TF32 stated, deltaprop on the torch backend, and a row
    of figures for deltaprop and each PyTorch variant, every one of which trained (accuracy well above chance)."""
    result = run_speed("--device", "cpu-torch", "--quick", "--workloads", "small", "--repeats", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "device: PyTorch" in out and "TF32 off for both contenders" in out, out
    assert re.search(r"deltaprop trains through array_api \(\S*torch\S* on cpu\)", out), out
    rows = {m["name"]: m for m in ROW.finditer(out)}
    assert set(rows) == {"deltaprop", "torch", "torch fused", "torch fused + compile"}, out
    assert "(PyTorch at its best)" in out
    for name, row in rows.items():
        assert float(row["rate"].replace(",", "")) > 0 and float(row["predict"].replace(",", "")) > 0, name
        assert float(row["accuracy"]) > 0.8, (name, row["accuracy"])  # 10 classes: chance is 0.1
    assert float(rows["deltaprop"]["ratio"]) == 1.0
    assert re.search(r"\| small \| deltaprop FLOP rate \| [\d.]+ GFLOP/s", out), out


def test_cuda_without_a_gpu_says_so_in_one_line():
    """No GPU (or a CPU build of torch): exit code 1 and one line naming the cause, before any trial."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: benchmarks/gpu_check.sh runs the comparison")
    result = run_speed("--device", "cuda", "--workloads", "large", timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert re.match(r"speed\.py --device cuda: .*no CUDA GPU on this machine", result.stderr), result.stderr
