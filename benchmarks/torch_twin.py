"""The PyTorch twin of a deltaprop MLP, for the benchmarks that compare the two: the same layers and initial
weights, and one shuffled epoch of mini-batch training written the way PyTorch users write it."""

from __future__ import annotations


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
    step for each mini-batch (``forward`` is the model, or its torch.compile'd version)."""
    import torch

    order = torch.randperm(len(Xt), generator=generator)
    for start in range(0, len(Xt), batch):
        idx = order[start:start + batch]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(forward(Xt[idx]), yt[idx]).backward()
        optimizer.step()
