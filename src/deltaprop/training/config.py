"""TrainConfig: fit's options, checked once when made, then read by the trainer instead of passed by hand.

The options were once 17 parameters of ``fit`` handed down by position through five functions, each
re-listing ``batch_size, clip_norm, l2``. Here each option is one field with its default and its
constraint, declared side by side (as scikit-learn's ``_parameter_constraints``), and a config that exists
is a valid one: the loop never re-checks. The command line reads its defaults for the same options from
here (cli/options.py), so a default is written once.

What is config and what is not: a config is a handful of settings that mean the same on any data set
(it could be a TOML file). The data of a fit is not: X, y, validation_data, and the sample and class
weights, which are per row or per label of y (a class_weight names y's labels, "balanced" counts them)
and are checked against y (inputs.FitData). Nor are the collaborators a fit runs with, callbacks and
the communicator, which hold state and belong to the Trainer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..constraints import Flag, Instance, Real, Whole, check
from ..optimizers import Optimizer, get_optimizer
from ..schedules import Schedule, get_schedule
from .lbfgs import LBFGS


@dataclass(frozen=True)
class TrainConfig:
    """fit's options (see ``deltaprop.training.fit`` for what each does), checked when made."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: Any = None  # an Optimizer, a name, "lbfgs" or an lbfgs.LBFGS; None: keep the current (Adam first)
    validation_split: float = 0.0
    shuffle: bool = True
    schedule: Any = None  # a Schedule or a name; None: the optimizer's rate throughout
    clip_norm: float | None = None
    l2: float = 0.0
    verbose: int = 1

    CONSTRAINTS: ClassVar[dict[str, tuple]] = {
        "epochs": (Whole(0),), "batch_size": (Whole(1),),
        "optimizer": (None, Instance((str, Optimizer, LBFGS), "a name, an Optimizer or an LBFGS")),
        "validation_split": (None, Real(minimum=0, below=1)), "shuffle": (Flag(),),
        "schedule": (None, Instance((str, Schedule), "a name or a Schedule")),
        "clip_norm": (None, Real(above=0)), "l2": (Real(minimum=0),), "verbose": (Flag(), Whole(0)),
    }

    def __post_init__(self) -> None:
        for field in fields(self):
            check(field.name, getattr(self, field.name), self.CONSTRAINTS[field.name])
        if isinstance(self.optimizer, str) and not self.full_batch:  # a name: known now, not first at fit
            get_optimizer(self.optimizer)
        if isinstance(self.schedule, str):
            get_schedule(self.schedule)

    @classmethod
    def of(cls, config: TrainConfig | None = None, **options) -> TrainConfig:
        """``config`` (default: the defaults) with ``options`` replaced; an unknown option is a TypeError that
        names it and the known ones, as a misspelt keyword argument is."""
        if config is not None and not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig (dp.TrainConfig(epochs=..., ...)), got "
                            f"{type(config).__name__}")
        unknown = sorted(set(options) - set(cls.defaults()))
        if unknown:
            raise TypeError(f"fit() got unexpected option(s) {', '.join(unknown)}; its options are "
                            f"{', '.join(cls.defaults())}, and callbacks, validation_data, sample_weight, "
                            "class_weight, comm")
        return dataclasses.replace(config, **options) if config is not None else cls(**options)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each option's default, by name (the command line's defaults for the options it shares)."""
        return {field.name: field.default for field in fields(cls)}

    @property
    def full_batch(self) -> bool:
        """optimizer="lbfgs" or an lbfgs.LBFGS: the full-batch solver (lbfgs.py), not the epoch loop."""
        return isinstance(self.optimizer, LBFGS) or \
            isinstance(self.optimizer, str) and self.optimizer.lower() == "lbfgs"
