"""deltaprop: fully-connected networks trained by the backpropagation of the notes.

    import deltaprop as dp
    net = dp.Network([dp.Dense(4, 8, activation="tanh"),
                      dp.Dense(8, 3, activation="softmax")],
                     loss="cross_entropy", dtype="float64", seed=0)
    trace = net.forward(X)            # trace.z[l], trace.a[l] for l = 1..L; trace.a[0] is X
    grads = net.backward(trace, y)    # grads.dW[l], grads.db[l], grads.delta[l]

Only NumPy is imported here; heavier libraries load where they are used.
"""

from .activations import ACTIVATIONS, Activation, get_activation, register_activation
from .backprop import Grads, Trace, backward
from .errors import (
    ActivationError,
    ConfigError,
    DataError,
    DeltapropError,
    DivergenceError,
    ModelFileError,
    ShapeError,
)
from .gradcheck import GradcheckReport, gradcheck
from .layers import Dense
from .losses import LOSSES, Loss, get_loss
from .network import Network

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "Activation", "ActivationError", "ConfigError", "DataError",
    "Dense", "DeltapropError", "DivergenceError", "GradcheckReport", "Grads", "Loss",
    "ModelFileError", "Network", "ShapeError", "Trace", "backward", "get_activation",
    "get_loss", "gradcheck", "register_activation", "__version__",
]
