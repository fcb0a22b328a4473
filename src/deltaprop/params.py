"""All of a network's W^l and b^l in one contiguous vector, each layer's arrays a view of it.

Training updates every parameter with a handful of whole-vector operations
(one fused optimizer step) instead of a loop of small ones per array, and the
backward pass writes dW^l, db^l straight into the matching views of one
gradient vector. ``layer.W`` and ``layer.b`` stay ordinary arrays of the
notes' shapes; they just happen to share one buffer.
"""

from __future__ import annotations

import numpy as np

from .backprop import Grads


class FlatParams:
    """``theta`` holds W^1, b^1, ..., W^L, b^L back to back; ``grad`` has the same layout."""

    def __init__(self, layers: list, dtype: np.dtype):
        self.keys, self.slices, self.shapes = [], [], []
        offset = 0
        for l, layer in enumerate(layers, start=1):
            for name in ("W", "b"):
                shape = getattr(layer, name).shape
                size = int(np.prod(shape))
                self.keys.append((l, name))
                self.slices.append(slice(offset, offset + size))
                self.shapes.append(shape)
                offset += size
        self.theta = np.empty(offset, dtype=dtype)
        self.grad = np.zeros(offset, dtype=dtype)
        self.bind(layers)

    def views(self, flat: np.ndarray) -> dict:
        """{(l, name): view of ``flat`` with that parameter's shape}."""
        return {key: flat[s].reshape(shape) for key, s, shape in zip(self.keys, self.slices, self.shapes, strict=True)}

    def bind(self, layers: list) -> None:
        """Copy the layers' current arrays into ``theta`` and make the layers use its views."""
        self._bound = self.views(self.theta)
        for (l, name), view in self._bound.items():
            view[...] = getattr(layers[l - 1], name)
            setattr(layers[l - 1], name, view)

    def is_bound(self, layers: list) -> bool:
        """True while every layer still holds the very view it was given (nobody assigned a new
        array to W or b; writing into them is fine)."""
        for (l, name), view in self._bound.items():
            if getattr(layers[l - 1], name) is not view:
                return False
        return True

    def grads_out(self, L: int) -> Grads:
        """Grads whose dW[l], db[l] are views of ``grad``: where backward(out=...) writes."""
        views = self.views(self.grad)
        return Grads([None] + [views[(l, "W")] for l in range(1, L + 1)],
                     [None] + [views[(l, "b")] for l in range(1, L + 1)], [None] * (L + 1))

    def weight_views(self, flat: np.ndarray) -> list:
        """The W^l parts of ``flat`` (weight decay applies to them, not to the biases)."""
        return [flat[s] for (l, name), s in zip(self.keys, self.slices, strict=True) if name == "W"]
