"""TrainingState: what training carries from one fit to the next, and what a checkpoint adds to a model.

The model (Network) is layers, loss, dtype, classes and preprocessing. Everything that
exists because the model is being trained lives here: the optimizer and its moment
estimates, the History, the number of epochs trained, the stop flag callbacks set,
early stopping's record, and the flat parameter and gradient vectors the fused
optimizer steps run on. ``fit`` creates it (or continues ``net.training``, the state a
previous fit or a loaded checkpoint left), and checkpoints save model + state.
"""

from __future__ import annotations

import numpy as np

from ..distributed import Single
from ..params import FlatParams
from .history import History


class TrainingState:
    """optimizer, history, epoch (epochs trained), stop, early_stopping (a record dict or None), flat, comm."""

    def __init__(self, optimizer=None, history: History | None = None, epoch: int = 0,
                 early_stopping: dict | None = None):
        self.optimizer = optimizer
        self.history = history if history is not None else History()
        self.epoch = int(epoch)
        self.stop = False  # set by a callback to end fit after this epoch
        self.early_stopping = early_stopping  # EarlyStopping's record during a fit: checkpoints carry it
        self.flat: FlatParams | None = None
        self.comm = Single()  # the ranks of a data-parallel job (set by fit; not saved)
        self.solver_result: dict | None = None  # how the last L-BFGS fit ended (lbfgs.py; not saved)

    def flat_for(self, layers: list, dtype: np.dtype, ops=None) -> FlatParams:
        """The one-vector view of all parameters, made on first use and again if a layer's parameter was
        replaced (``layer.W = ...``): the layers' arrays become views of its ``theta``, allocated by ``ops``
        (the network's backend; NumPy's by default)."""
        if self.flat is None or not self.flat.is_bound(layers):
            self.flat = FlatParams(layers, dtype, ops)
            if self.optimizer is not None:  # its flat state belonged to the old vector
                self.optimizer.load_state_arrays(self.optimizer.state_arrays(), self.optimizer.t)
        return self.flat
