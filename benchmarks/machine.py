"""What a benchmark ran on, printed with every run: the CPU (model, cores, the vector extensions that pick
kernels), the BLAS library and the kernel it selected (threadpoolctl), thread counts, OPENBLAS_CORETYPE.

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


def describe() -> str:
    """The lines every benchmark prints first."""
    import deltaprop as dp

    return (f"CPU: {cpu()}\nBLAS: {blas()}\nOPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
            f"threads: {threads()}\nPython {platform.python_version()}, NumPy {np.__version__}, deltaprop "
            f"{dp.__version__}, backend {dp.ops.describe()}")


if __name__ == "__main__":
    print(describe())
