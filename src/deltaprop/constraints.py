"""Declarative constraints on options: each option's rule stated once, beside its default, and one error
that names the option and says the rule ("batch_size must be a whole number >= 1, got 2.5").

As scikit-learn's ``_parameter_constraints``: a table maps an option to what it may be, and ``check``
refuses anything else before any work is done. TrainConfig (training/config.py), the L-BFGS settings and
the command line's options (cli/options.py) are checked with these rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError


class Constraint:
    """What an option's value must be: ``holds(value)``, and the words of the error that names the option."""

    def holds(self, value) -> bool:
        raise NotImplementedError

    def describe(self, typed: bool = False) -> str:
        """The rule in words; ``typed``: the value's type was checked already (the command line's TOML check),
        so the bound alone is said where that reads well ("at least 1")."""
        raise NotImplementedError


def whole(value) -> bool:
    """An integer that is not a bool (True is an int to Python, never an epoch count to a user)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def finite(value) -> bool:
    """A finite int or float (not a bool, not a string that looks like one)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(value)


@dataclass(frozen=True)
class Whole(Constraint):
    """A whole number in minimum..maximum (no maximum: unbounded)."""

    minimum: int = 0
    maximum: int | None = None

    def holds(self, value) -> bool:
        return whole(value) and self.minimum <= value and (self.maximum is None or value <= self.maximum)

    def describe(self, typed: bool = False) -> str:
        if self.maximum == self.minimum:
            return str(self.minimum)
        if self.maximum is not None:
            return f"{'' if typed else 'a whole number '}in {self.minimum}..{self.maximum}"
        return f"at least {self.minimum}" if typed else f"a whole number >= {self.minimum}"


@dataclass(frozen=True)
class Real(Constraint):
    """A finite number, >= minimum, > above and < below where given."""

    minimum: float | None = None
    above: float | None = None
    below: float | None = None

    def holds(self, value) -> bool:
        return finite(value) and (self.minimum is None or value >= self.minimum) and \
            (self.above is None or value > self.above) and (self.below is None or value < self.below)

    def describe(self, typed: bool = False) -> str:
        low = self.minimum if self.minimum is not None else self.above
        if self.below is not None and low is not None:
            interval = f"{'[' if self.minimum is not None else '('}{low:g}, {self.below:g})"
            return f"in {interval}" if typed else f"a number in {interval}"
        bound = f">= {self.minimum:g}" if self.minimum is not None else f"> {self.above:g}" if \
            self.above is not None else f"< {self.below:g}" if self.below is not None else ""
        return f"a finite number {bound}".rstrip()


@dataclass(frozen=True)
class Flag(Constraint):
    """True or False (a NumPy bool too; never 0, 1 or the text "no")."""

    def holds(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def describe(self, typed: bool = False) -> str:
        return "true or false"


@dataclass(frozen=True)
class Instance(Constraint):
    """An instance of one of ``kinds`` (names resolved later, by the registry that knows them)."""

    kinds: tuple
    says: str

    def holds(self, value) -> bool:
        return isinstance(value, self.kinds)

    def describe(self, typed: bool = False) -> str:
        return self.says


@dataclass(frozen=True)
class Exactly(Constraint):
    """One special value (scikit-learn's n_iter_no_change=np.inf: the rule never stops)."""

    value: float
    says: str

    def holds(self, value) -> bool:
        return isinstance(value, (float, np.floating)) and value == self.value

    def describe(self, typed: bool = False) -> str:
        return self.says


def check(name: str, value, allowed: tuple, *, typed: bool = False, why: str = "") -> None:
    """Refuse ``value`` of option ``name`` unless one of ``allowed`` (a Constraint, or None for None) holds;
    ``typed``: its type was checked already (Constraint.describe); ``why``: what the message adds."""
    if any(value is None if rule is None else rule.holds(value) for rule in allowed):
        return
    words = [rule.describe(typed) for rule in allowed if rule is not None] + (["None"] if None in allowed else [])
    raise ConfigError(f"{name} must be {' or '.join(words)}{why}, got {value!r}")
