"""Training: fit (loop.py) and its options (TrainConfig), the Trainer's epochs, batches and steps, L-BFGS,
evaluation, History, and the TrainingState it keeps."""

from __future__ import annotations

from .config import TrainConfig
from .evaluation import evaluate, evaluate_encoded
from .history import History
from .loop import fit
from .state import TrainingState
from .trainer import Trainer

__all__ = ["History", "TrainConfig", "Trainer", "TrainingState", "evaluate", "evaluate_encoded", "fit"]
