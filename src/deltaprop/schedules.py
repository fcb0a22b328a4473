"""Learning-rate schedules: the rate in force during an epoch, from the base rate.

Epochs count from 0 over the network's whole life, so a second ``fit`` call
continues the schedule where the first stopped.
"""

from __future__ import annotations

import math

from .errors import ConfigError


class Schedule:
    """Base class: ``lr_at(base_lr, epoch)``."""

    name = "constant"

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr

    def config(self) -> dict:
        return {"name": self.name, **vars(self)}


class StepDecay(Schedule):
    """lr = base * gamma^floor(epoch / step_size)."""

    name = "step"

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        if step_size < 1 or not 0 < gamma <= 1:
            raise ConfigError("StepDecay needs step_size >= 1 and 0 < gamma <= 1")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    """lr = base * gamma^epoch."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95):
        if not 0 < gamma <= 1:
            raise ConfigError("ExponentialDecay needs 0 < gamma <= 1")
        self.gamma = float(gamma)

    def lr_at(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class CosineDecay(Schedule):
    """lr = min + (base - min) (1 + cos(pi epoch / epochs)) / 2, then min after ``epochs``."""

    name = "cosine"

    def __init__(self, epochs: int = 30, lr_min: float = 0.0):
        if epochs < 1 or lr_min < 0:
            raise ConfigError("CosineDecay needs epochs >= 1 and lr_min >= 0")
        self.epochs, self.lr_min = int(epochs), float(lr_min)

    def lr_at(self, base_lr, epoch):
        progress = min(epoch, self.epochs) / self.epochs
        return self.lr_min + (base_lr - self.lr_min) * (1 + math.cos(math.pi * progress)) / 2


SCHEDULES = {cls.name: cls for cls in (Schedule, StepDecay, ExponentialDecay, CosineDecay)}


def get_schedule(spec, **kwargs) -> Schedule:
    """A Schedule from an instance, None (constant) or a name plus keyword arguments."""
    if spec is None:
        return Schedule()
    if isinstance(spec, Schedule):
        return spec
    try:
        return SCHEDULES[str(spec).lower()](**kwargs)
    except KeyError:
        raise ConfigError(f"unknown schedule {spec!r}; known: {', '.join(SCHEDULES)}") from None
