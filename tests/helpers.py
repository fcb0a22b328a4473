"""Small builders shared by the tests."""

import numpy as np

import deltaprop as dp

BUILTIN_ACTIVATIONS = sorted(dp.ACTIVATIONS)  # before any test registers its own

# Output activations each loss accepts (the pairs that make sense).
OUTPUTS_FOR_LOSS = {
    "mse": BUILTIN_ACTIVATIONS,
    "cross_entropy": ["softmax", "sigmoid"],
    "binary_cross_entropy": ["sigmoid", "softmax"],
}


def targets_for(loss: str, m: int, n_out: int, rng: np.random.Generator):
    """Plausible targets for ``loss``: labels, 0/1 matrices or real values."""
    if loss == "cross_entropy":
        return rng.integers(0, n_out, size=m)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=(m, n_out)).astype(float)
    return rng.normal(size=(m, n_out))


def make_net(sizes, hidden, output, loss, seed=0, dtype="float64"):
    """A Network with layer sizes ``sizes`` (n_0..n_L), ``hidden`` activations, ``output`` last."""
    acts = list(hidden) if not isinstance(hidden, str) else [hidden] * (len(sizes) - 2)
    acts.append(output)
    layers = [dp.Dense(sizes[l - 1], sizes[l], activation=acts[l - 1]) for l in range(1, len(sizes))]
    return dp.Network(layers, loss=loss, dtype=dtype, seed=seed)


def summary_figure(stdout: str, column: str) -> str:
    """The cell under ``column`` (e.g. "test accuracy", "out-of-fold R^2", "time") in the last summary table
    `deltaprop train` printed that has that column: one network's or a cross-fitted run's."""
    lines = stdout.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        header = [cell.strip() for cell in lines[i].split("|")]
        if column in header and i + 2 < len(lines):
            return lines[i + 2].split("|")[header.index(column)].strip()
    raise AssertionError(f"no summary column {column!r} in:\n{stdout}")
