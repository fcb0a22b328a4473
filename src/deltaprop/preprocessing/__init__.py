"""The fitted stages a model carries between raw inputs and its network (see pipeline.py), and their record
in the model file (record.py)."""

from .pipeline import Pipeline

__all__ = ["Pipeline"]
