"""Activations a = sigma(z), each with its derivative sigma'(z) written beside it.

Every derivative is evaluated at the pre-activation ``z`` (the notes: "sigma' is
evaluated at z, not at a"). All functions work element-wise on arrays of shape
(m, n_l), keep the input's dtype, and are written so that |z| up to 1e4 raises
no overflow: exponentials only ever see non-positive arguments.

softmax couples the neurons of a layer, so it has no element-wise sigma'; it
provides the Jacobian-vector product ``delta = a ⊙ (g - rowsum(g ⊙ a))`` instead.

The fresh forms (sigma(z) without ``out``, sigma_prime, the jvp) take the array's own
namespace (arrays.namespace: numpy itself for NumPy arrays, same bits), so ArrayAPIOps runs
them on array_api_strict, PyTorch or CuPy arrays; the ``out=`` and ``_chain`` forms are NumPy's.

The package, one idea to a module: base.py (Activation, Kernel, the registry, register_activation),
then one module per family of rules, each registering its activations when imported. The imports below run
them in the registry's order (sigmoid, tanh, relu, leaky_relu, elu, softplus, identity, softmax, mish); a
new activation is a new module imported here (or a rule added to its family's module), and its test.
"""

from .base import ACTIVATIONS, Activation, Array, Kernel, get_activation, register_activation

# The families register in import order, which is the registry's order: not sorted.
# isort: off
from .logistic import (sigmoid, sigmoid_chain, sigmoid_chain_loop, sigmoid_forward_loop, sigmoid_prime, tanh,
                       tanh_chain, tanh_chain_loop, tanh_forward_loop, tanh_prime)
from .rectifiers import (LEAKY_ALPHA, RELU, elu, elu_chain, elu_chain_loop, elu_forward_loop, elu_prime, leaky_relu,
                         leaky_relu_chain, leaky_relu_chain_loop, leaky_relu_forward_loop, leaky_relu_prime, relu,
                         relu_chain, relu_chain_loop, relu_forward_loop, relu_over_z_loop, relu_prime, step)
from .softplus import softplus, softplus_chain, softplus_chain_loop, softplus_forward_loop
from .identity import identity, identity_chain, identity_chain_loop, identity_forward_loop, identity_prime
from .softmax import SOFTMAX, log_softmax, softmax, softmax_chain, softmax_forward_loop, softmax_jvp
from .mish import mish, mish_chain, mish_chain_loop, mish_forward_loop, mish_prime
# isort: on

__all__ = [
    "ACTIVATIONS", "LEAKY_ALPHA", "RELU", "SOFTMAX", "Activation", "Array", "Kernel", "elu", "elu_chain",
    "elu_chain_loop", "elu_forward_loop", "elu_prime", "get_activation", "identity", "identity_chain",
    "identity_chain_loop", "identity_forward_loop", "identity_prime", "leaky_relu", "leaky_relu_chain",
    "leaky_relu_chain_loop", "leaky_relu_forward_loop", "leaky_relu_prime", "log_softmax", "mish", "mish_chain",
    "mish_chain_loop", "mish_forward_loop", "mish_prime", "register_activation", "relu", "relu_chain",
    "relu_chain_loop", "relu_forward_loop", "relu_over_z_loop", "relu_prime", "sigmoid", "sigmoid_chain",
    "sigmoid_chain_loop", "sigmoid_forward_loop", "sigmoid_prime", "softmax", "softmax_chain",
    "softmax_forward_loop", "softmax_jvp", "softplus", "softplus_chain", "softplus_chain_loop",
    "softplus_forward_loop", "step", "tanh", "tanh_chain", "tanh_chain_loop", "tanh_forward_loop", "tanh_prime",
]
