#!/usr/bin/env bash
# The GPU checks of the array-API issue (32), in one run on a machine with a CUDA GPU, a CUDA build of PyTorch
# and this repository checked out with its virtual environment (the test extras and array-api-compat):
#   1. tests/test_backends.py's CUDA cases: the engine on torch CUDA tensors (and CuPy where it is installed)
#      against NumPy, 1e-12 in float64 and 1e-5 in float32;
#   2. scikit-learn's array-API estimator checks for DeltaClassifier / DeltaRegressor on torch CUDA;
#   3. deltaprop train --device cuda, one short run of the command line;
#   4. python benchmarks/speed.py --device cuda --workloads large --repeats 3: deltaprop against PyTorch at its
#      best on the same GPU (TF32 off for both), with the machine and GPU record.
# Everything is printed; every step runs even if one before it failed; the exit code is 1 if any failed.
#     bash benchmarks/gpu_check.sh 2>&1 | tee gpu_check.log      (VENV=/path/to/venv if not ./.venv or active)
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$venv/bin/activate" ]; then . "$venv/bin/activate"; fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
echo "== $(date -u) on $(hostname), $(git rev-parse --short HEAD 2>/dev/null) ($(git branch --show-current 2>/dev/null))"
command -v nvidia-smi >/dev/null && nvidia-smi
python - <<'PY' || { echo "gpu_check: no usable CUDA GPU from PyTorch (above); nothing run"; exit 1; }
import torch, deltaprop
print(f"python deltaprop from {deltaprop.__file__}; torch {torch.__version__} (CUDA {torch.version.cuda}),"
      f" cuda available: {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    raise SystemExit("torch.cuda.is_available() is False")
print("device 0:", torch.cuda.get_device_name(0))
PY
failed=()
step() {  # step NAME COMMAND...: run it, print its exit code, remember a failure
    echo; echo "== $1: ${*:2}"
    "${@:2}"; local rc=$?
    echo "== $1: exit code $rc"
    [ "$rc" -eq 0 ] || failed+=("$1")
}
step "engine on CUDA" python -m pytest -q -rs tests/test_backends.py -k "torch_cuda or cupy"
step "estimator checks on CUDA" python -m pytest -q -rs tests/test_backends.py -k "sklearn_array_api_checks and cuda"
out="$(mktemp -d)"
step "cli --device cuda" python -c "import sys; from deltaprop.cli import main; sys.exit(main(sys.argv[1:]))" \
    train --device cuda --epochs 2 --out "$out/run" --quiet  # (deltaprop train, this checkout's)
step "speed large" python benchmarks/speed.py --device cuda --workloads large --repeats 3
echo
if [ "${#failed[@]}" -eq 0 ]; then echo "== gpu_check: all steps passed"; else echo "== gpu_check: FAILED: ${failed[*]}"; exit 1; fi
