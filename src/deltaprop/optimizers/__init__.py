"""Optimizers: ``step(params, grads)`` updates each parameter in place, by an array backend's update.

``params`` and ``grads`` are dicts keyed by (l, name), e.g. (2, "W"), as
``Network.params()`` and ``Grads.items()`` give them. The optimizer's own state
(momentum, moment estimates) is keyed the same way and holds only its own
arrays, never a reference to a weight array, so replacing a network's arrays
(load, set_weights) cannot leave it updating stale copies.

The update rules follow PyTorch's optimizers of the same name, so a run can be
compared with torch step for step. Each rule is written once, in its module, as three plain
functions side by side: its NumPy lines (the readable reference), its kernel (a loop
numba compiles, for NumbaOps and the compiled training step) and its step constants
(computed from the hyperparameters and the step t, in Python or compiled). Both forms
take (theta, g, state, k): the state arrays in ``slots`` order and the constants k, so
the compiled step calls the kernel as the readable step does. A new optimizer is a
class with those three in a module of this package, which registers it, imported below
(tests/test_compiled_step.py defines one in the test).

The package: base.py (Optimizer, the state flush, the OPTIMIZERS registry and get_optimizer), then sgd.py,
adam.py (Adam, AdamW) and rmsprop.py, each registering its classes when imported; the imports below run
them in the registry's order (sgd, adam, adamw, rmsprop), which help texts and ``deltaprop info`` list.
"""

# The modules register in import order, which is the registry's order: not sorted.
# isort: off
from .base import (FLUSH_EVERY, OPTIMIZERS, Array, Optimizer, flush_small, flush_small_loop, flush_threshold,
                   get_optimizer)
from .sgd import SGD, sgd_constants, sgd_loop, sgd_momentum_loop
from .adam import Adam, AdamW, adam_constants, adam_loop
from .rmsprop import RMSprop, rmsprop_constants, rmsprop_loop, rmsprop_momentum_loop
# isort: on

__all__ = [
    "FLUSH_EVERY", "OPTIMIZERS", "SGD", "Adam", "AdamW", "Array", "Optimizer", "RMSprop", "adam_constants", "adam_loop",
    "flush_small", "flush_small_loop", "flush_threshold", "get_optimizer", "rmsprop_constants", "rmsprop_loop",
    "rmsprop_momentum_loop", "sgd_constants", "sgd_loop", "sgd_momentum_loop",
]
