"""Training: the fit loop (loop.py), its batches, evaluation, History, and the TrainingState it keeps."""

from __future__ import annotations

from .evaluation import evaluate, evaluate_encoded
from .history import History
from .loop import fit
from .state import TrainingState

__all__ = ["History", "TrainingState", "evaluate", "evaluate_encoded", "fit"]
