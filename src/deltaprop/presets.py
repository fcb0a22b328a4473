"""Ready-made networks."""

from __future__ import annotations

from .layers import Dense
from .network import Network
from .optimizers import SGD
from .training import TrainingState


def notes_network(sizes=(64, 30, 10), lr: float = 3.0, seed: int = 0, dtype: str = "float64") -> Network:
    """The network of the notes: sigmoid in every layer, the 1/2 squared-error loss, plain SGD.

    ``sizes`` are n_0..n_L. The optimizer is set in the network's training state, so ``net.fit(X, y,
    batch_size=10)`` trains it by plain mini-batch gradient descent with rate ``lr``.
    """
    layers = [Dense(sizes[l - 1], sizes[l], activation="sigmoid") for l in range(1, len(sizes))]
    net = Network(layers, loss="mse", dtype=dtype, seed=seed)
    net.training = TrainingState(SGD(lr=lr))
    return net
