"""Losses L(a^L, y): summed over the output neurons, averaged over the batch.

Each loss gives its per-sample value and ``dL/da^L``; the ``1/m`` of the batch
average (and any sample weights) is carried by ``dL/da``, as the notes say.

Two pairs cancel sigma' in equation (1) and take the named shortcut
``delta^L = (a^L - y) / m``: softmax + cross_entropy and sigmoid +
binary_cross_entropy. Their loss values are then computed from z (log-sum-exp,
softplus), so logits of +-1000 never take log(0). The crossed pairs (cross_entropy
after sigmoid, binary_cross_entropy after softmax) do not cancel, but they too are
computed from z, value and delta^L, because log(a) of an a below the dtype's eps
would otherwise be clipped and the gradient would vanish.

With sample weights w_i the batch loss is the weighted mean sum_i w_i L_i / sum_i w_i
(scikit-learn's and PyTorch's normalisation): a weight of 2 is the same loss as the
row repeated, in the batch that holds it.

The rules take the array's own namespace (arrays.namespace: numpy itself for NumPy arrays,
same bits): on another Array API library ``out`` is scratch they may ignore, or, for dL/da,
the buffer the fresh result is written into (arrays.put).

The package, one idea to a module: base.py (Loss, LossKernel, FromZ, the batch scaling, the LOSSES
registry and get_loss), then one module per loss (mse.py, cross_entropy.py, binary_cross_entropy.py), each
with its NumPy lines, dL/da, its values from z and its numba kernels side by side, registering its Loss when
imported; the imports below run them in the registry's order (mse, cross_entropy, binary_cross_entropy).
A new loss is a new module imported here, and its test.
"""

# The modules register in import order, which is the registry's order: not sorted.
# isort: off
from .base import (LOSSES, Array, FromZ, Loss, LossKernel, batch_scale, batch_scale_loop, get_loss, mean_factor,
                   shortcut_delta)
from .mse import difference_loop, mse, mse_dL_da, mse_total_loop
from .cross_entropy import (cross_entropy, cross_entropy_dL_da, cross_entropy_from_z, cross_entropy_sigmoid_delta,
                            cross_entropy_sigmoid_from_z, cross_entropy_total_loop, softmax_cross_entropy_total)
from .binary_cross_entropy import (binary_cross_entropy, binary_cross_entropy_dL_da, binary_cross_entropy_from_z,
                                   binary_cross_entropy_softmax_delta, binary_cross_entropy_softmax_from_z,
                                   binary_cross_entropy_total_loop)
# isort: on

__all__ = [
    "LOSSES", "Array", "FromZ", "Loss", "LossKernel", "batch_scale", "batch_scale_loop", "binary_cross_entropy",
    "binary_cross_entropy_dL_da", "binary_cross_entropy_from_z", "binary_cross_entropy_softmax_delta",
    "binary_cross_entropy_softmax_from_z", "binary_cross_entropy_total_loop", "cross_entropy", "cross_entropy_dL_da",
    "cross_entropy_from_z", "cross_entropy_sigmoid_delta", "cross_entropy_sigmoid_from_z", "cross_entropy_total_loop",
    "difference_loop", "get_loss", "mean_factor", "mse", "mse_dL_da", "mse_total_loop", "shortcut_delta",
    "softmax_cross_entropy_total",
]
