"""Layer kinds, by the name model files give them: a new kind is a Layer subclass and one ``register_layer``."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Layer
from .dense import Dense

LAYERS: dict[str, type[Layer]] = {"dense": Dense}


def register_layer(cls: type[Layer], overwrite: bool = False) -> type[Layer]:
    """Make ``cls`` (a Layer subclass with a ``kind``) loadable from model files; returns it."""
    if not (isinstance(cls, type) and issubclass(cls, Layer) and isinstance(cls.kind, str) and cls.kind):
        raise ConfigError("register_layer needs a Layer subclass with a non-empty 'kind'")
    if cls.kind in LAYERS and LAYERS[cls.kind] is not cls and not overwrite:
        raise ConfigError(f"layer kind {cls.kind!r} already exists; pass overwrite=True")
    LAYERS[cls.kind] = cls
    return cls


__all__ = ["LAYERS", "Dense", "Layer", "register_layer"]
