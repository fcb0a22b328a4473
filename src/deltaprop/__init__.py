"""deltaprop: fully-connected networks trained by the backpropagation of the notes.

    import deltaprop as dp
    net = dp.Network([dp.Dense(4, 8, activation="tanh"),
                      dp.Dense(8, 3, activation="softmax")],
                     loss="cross_entropy", dtype="float64", seed=0)
    trace = net.forward(X)            # trace.z[l], trace.a[l] for l = 1..L; trace.a[0] is X
    grads = net.backward(trace, y)    # grads.dW[l], grads.db[l], grads.delta[l]
    history = net.fit(X, y, epochs=20)  # the training state (optimizer, history, epochs) on net.training

Only NumPy is imported here; heavier libraries load where they are used.
"""

from . import (
    callbacks,
    data,
    explain,  # the subpackage, callable: dp.explain(net, x, y)
    ops,
    optimizers,
    presets,
    schedules,
)
from .activations import ACTIVATIONS, Activation, Kernel, get_activation, register_activation
from .backprop import Grads, Trace, backward
from .callbacks import Callback, EarlyStopping, GradientFlow, ModelCheckpoint
from .errors import (
    ActivationError,
    ConfigError,
    DataError,
    DeltapropError,
    DeltapropWarning,
    DivergenceError,
    ModelFileError,
    ShapeError,
)
from .gradcheck import GradcheckReport, gradcheck
from .io import save
from .layers import Dense, Layer, register_layer
from .losses import LOSSES, Loss, get_loss
from .network import Network, load, resume
from .optimizers import SGD, Adam, AdamW, RMSprop
from .schedules import CosineDecay, ExponentialDecay, StepDecay
from .training import History, TrainConfig, TrainingState, evaluate, fit
from .version import __version__


def __getattr__(name: str):
    """DeltaClassifier and DeltaRegressor load scikit-learn, to_onnx the onnx package: imported on first use."""
    if name in ("DeltaClassifier", "DeltaRegressor"):
        from . import estimators

        return getattr(estimators, name)
    if name == "to_onnx":  # loads the onnx package
        from .export.onnx import to_onnx

        return to_onnx
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS", "LOSSES", "Activation", "DeltaClassifier", "DeltaRegressor", "ActivationError", "Adam",
    "AdamW", "Callback", "ConfigError",
    "CosineDecay", "DataError", "Dense", "DeltapropError", "DeltapropWarning", "DivergenceError", "EarlyStopping",
    "ExponentialDecay", "GradcheckReport", "GradientFlow", "Grads", "History", "Layer", "Loss", "ModelCheckpoint",
    "Kernel", "ModelFileError", "TrainConfig", "TrainingState", "data", "explain", "ops", "register_layer",
    "Network", "RMSprop", "SGD", "ShapeError", "StepDecay", "Trace", "backward", "callbacks", "evaluate",
    "fit", "get_activation", "get_loss", "gradcheck", "load", "optimizers", "presets", "register_activation",
    "resume", "save", "schedules", "to_onnx", "__version__",
]
