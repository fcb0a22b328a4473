"""The PyTorch twin of a deltaprop MLP, for the benchmarks that compare the two: the same layers and initial
weights, and one shuffled epoch of mini-batch training written the way PyTorch users write it. Also the
device settings of ``speed.py --device``: deltaprop's backend on that device, TF32, the clock's barrier."""

from __future__ import annotations

import importlib.util
import time


def mlp(net, dropout: float = 0.0):
    """torch.nn.Sequential of Linear layers holding ``net``'s initial weights (torch keeps W^T: (n_out, n_in)), a
    ReLU after each hidden layer (the hidden activation the benchmarks use), and Dropout after it if asked."""
    import torch

    modules = []
    for l, layer in enumerate(net.layers, start=1):
        if l < net.L and layer.activation.name != "relu":
            raise ValueError(f"the torch twin has relu hidden layers; layer {l} has {layer.activation.name}")
        linear = torch.nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.W.T.copy()))
            linear.bias.copy_(torch.from_numpy(layer.b))
        modules.append(linear)
        if l < net.L:
            modules += [torch.nn.ReLU()] + ([torch.nn.Dropout(dropout)] if dropout else [])
    return torch.nn.Sequential(*modules)


def train_epoch(forward, optimizer, loss_fn, Xt, yt, batch: int, generator) -> None:
    """One epoch: a new permutation from ``generator``, then zero_grad(set_to_none=True), forward, backward and a
    step for each mini-batch (``forward`` is the model, or its torch.compile'd version). The permutation is drawn
    on the host (the same stream on every device) and moved once to the data's device (a no-op on the CPU), so
    that the batches are gathered where the data lives."""
    import torch

    order = torch.randperm(len(Xt), generator=generator).to(Xt.device)
    for start in range(0, len(Xt), batch):
        idx = order[start:start + batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(forward(Xt[idx]), yt[idx]).backward()
        optimizer.step()


# --- speed.py --device: "cuda" (or "cuda:N"), or "cpu-torch" (the same code path on PyTorch CPU tensors) -------
def torch_device(device: str) -> str:
    """PyTorch's name for a ``--device`` of speed.py."""
    return "cpu" if device == "cpu-torch" else device


def deltaprop_ops(device: str):
    """deltaprop's backend on ``device``: ``ops.for_device`` for cuda (a ConfigError naming what is missing where
    there is no GPU or no PyTorch); for cpu-torch, ArrayAPIOps on PyTorch CPU tensors through array-api-compat,
    the code path of cuda on a machine without one."""
    from deltaprop import ConfigError, ops

    if device != "cpu-torch":
        return ops.for_device(device)
    if importlib.util.find_spec("torch") is None:
        raise ConfigError('--device cpu-torch needs PyTorch: pip install "deltaprop[torch]"')
    import torch

    return ops.ArrayAPIOps(ops.compat().array_namespace(torch.zeros(0)), torch.device("cpu"))


def set_tf32(enabled: bool) -> str:
    """TF32 for float32 matrix products (cuBLAS and cuDNN) on or off, for deltaprop's products and PyTorch's
    alike (deltaprop's run through torch.matmul on a torch device); returns a line saying which."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    if enabled:
        return "TF32 on for both contenders (float32 matmuls rounded to TF32 on Ampere and later GPUs)"
    return ("TF32 off for both contenders: every matmul in full float32 (torch.backends.cuda.matmul.allow_tf32="
            "False, float32_matmul_precision 'highest'), a like-for-like comparison")


def synchronizer(device: str):
    """A function to call before reading the clock: torch.cuda.synchronize on a GPU (its kernels run
    asynchronously), nothing on the CPU."""
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    return torch.cuda.synchronize


def memory_meter(device: str):
    """On a GPU, a function giving the MB that PyTorch's allocator added at its peak since this call (the
    GPU memory both contenders allocate through); None elsewhere (speed.py measures resident memory)."""
    if not device.startswith("cuda"):
        return None
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    return lambda: (torch.cuda.max_memory_allocated() - base) / 2**20


def gemm_peak(device: str, n: int, repeats: int = 5) -> float:
    """The float32 matrix-multiply rate of ``device`` through torch.matmul, in GFLOP/s (best of ``repeats``,
    synchronized), under the TF32 setting in force."""
    import torch

    generator = torch.Generator().manual_seed(0)
    A, B = (torch.rand((n, n), generator=generator).to(torch_device(device)) for _ in range(2))
    sync = synchronizer(device)
    A @ B
    sync()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        A @ B
        sync()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9
