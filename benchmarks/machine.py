"""What a benchmark ran on, printed with every run: the CPU (model, cores, the vector extensions that pick
kernels), the BLAS library and the kernel it selected (threadpoolctl), thread counts, OPENBLAS_CORETYPE; and,
for a run on a device (speed.py --device), the GPU as PyTorch sees it (name, memory, compute capability,
driver and CUDA versions) or the PyTorch CPU tensors that stand in for one.

On some machines OPENBLAS_CORETYPE is set to an older core for safety; it makes NumPy's products slower (the
kernel named below is the one that ran). A user's machine without it gets the kernel OpenBLAS detects.
"""

from __future__ import annotations

import os
import platform

import numpy as np

FLAGS = ("avx512f", "avx512_bf16", "avx512_vnni", "avx2", "fma", "avx", "sse4_2", "neon", "asimd")


def cpu() -> str:
    """Model, logical cores and the vector extensions among FLAGS that /proc/cpuinfo lists."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags |= set(value.split())
    except OSError:
        pass
    present = [f for f in FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} logical cores, {' '.join(present) or 'no listed vector flags'}"


def blas() -> str:
    """Every BLAS threadpoolctl finds: its library, version, the kernel it chose (architecture), threads."""
    from threadpoolctl import threadpool_info

    found = [f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')} x{i.get('num_threads')} "
             f"threads ({os.path.basename(i.get('filepath', ''))})"
             for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(found) or "none found"


def threads() -> str:
    """numba's and (when installed) torch's thread settings."""
    parts = []
    try:
        import numba

        parts.append(f"numba {numba.__version__} {numba.get_num_threads()} threads")
    except ImportError:
        parts.append("numba not installed")
    try:
        import torch

        parts.append(f"torch {torch.__version__} {torch.get_num_threads()} intra-op threads")
    except ImportError:
        pass
    return ", ".join(parts)


def gpu(device: str) -> str:
    """The device a run trains on, from PyTorch: a CUDA GPU's name, memory, compute capability, multiprocessors,
    the driver (nvidia-smi's version where it is on the PATH, and the CUDA driver API version torch reports)
    and the CUDA and cuDNN versions torch was built with; or the CPU tensors of "cpu-torch"."""
    import torch

    if not device.startswith("cuda"):
        return f"PyTorch {torch.__version__} CPU tensors (cpu-torch: the device code path, on the CPU)"
    index = torch.device(device).index or 0
    p = torch.cuda.get_device_properties(index)
    api = getattr(torch._C, "_cuda_getDriverVersion", lambda: None)()  # (e.g. 12040: the CUDA 12.4 driver API)
    return (f"{device} = {p.name}, {p.total_memory / 2**30:.1f} GiB, compute capability {p.major}.{p.minor}, "
            f"{p.multi_processor_count} SMs; driver {nvidia_driver()}"
            f"{'' if api is None else f' (CUDA driver API {api // 1000}.{api % 1000 // 10})'}; PyTorch "
            f"{torch.__version__} built with CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")


def nvidia_driver() -> str:
    """The NVIDIA driver's version from nvidia-smi, or why it is not known."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return "version unknown (no nvidia-smi on the PATH)"
    found = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=30)
    return found.stdout.splitlines()[0].strip() if found.returncode == 0 and found.stdout else "version unknown"


def describe(device: str | None = None) -> str:
    """The lines every benchmark prints first; with ``device`` (speed.py --device), the GPU line too."""
    import deltaprop as dp

    lines = (f"CPU: {cpu()}\nBLAS: {blas()}\nOPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
             f"threads: {threads()}\nPython {platform.python_version()}, NumPy {np.__version__}, deltaprop "
             f"{dp.__version__}, backend {dp.ops.describe()}")
    if device is None or device == "cpu":
        return lines
    return f"{lines}\n{'GPU' if device.startswith('cuda') else 'device'}: {gpu(device)}"


if __name__ == "__main__":
    print(describe())
