"""All of a network's parameters in one contiguous vector, each layer's arrays a view of it.

Training updates every parameter with a handful of whole-vector operations
(one fused optimizer step) instead of a loop of small ones per array, and the
backward pass writes each gradient straight into the matching view of one
gradient vector. The layout follows what the layers declare (``param_shapes``:
Dense's W^l then b^l, layer after layer); ``layer.W`` and ``layer.b`` stay
ordinary arrays of the notes' shapes that happen to share one buffer. Both vectors are
allocated by the network's backend (``ops.alloc``), so they live where its passes run.
"""

from __future__ import annotations

import math

import numpy as np

from .backprop import Grads
from .ops import get_ops


class FlatParams:
    """``theta`` holds every declared parameter back to back; ``grad`` has the same layout."""

    def __init__(self, layers: list, dtype: np.dtype, ops=None):
        self.keys, self.slices, self.shapes, self.decayed = [], [], [], []
        offset = 0
        for l, layer in enumerate(layers, start=1):
            for name, shape in layer.param_shapes().items():
                size = math.prod(shape)
                self.keys.append((l, name))
                self.slices.append(slice(offset, offset + size))
                self.shapes.append(shape)
                self.decayed.append(name in layer.decayed)
                offset += size
        self.L = len(layers)
        self.ops = ops = get_ops("numpy") if ops is None else ops
        self.theta = ops.alloc((offset,), dtype)
        self.grad = ops.alloc((offset,), dtype)
        self.bind(layers)

    def views(self, flat) -> dict:
        """{(l, name): view of ``flat`` with that parameter's shape}."""
        reshape = self.ops.xp.reshape
        return {key: reshape(flat[s], shape) for key, s, shape in zip(self.keys, self.slices, self.shapes, strict=True)}

    def bind(self, layers: list) -> None:
        """Copy the layers' current arrays into ``theta`` and make the layers use its views."""
        self._bound = self.views(self.theta)
        for (l, name), view in self._bound.items():
            view[...] = getattr(layers[l - 1], name)
            setattr(layers[l - 1], name, view)

    def is_bound(self, layers: list) -> bool:
        """True while every layer still holds the very view it was given (nobody assigned a new
        array to a parameter; writing into them is fine)."""
        if len(layers) != self.L:
            return False
        for (l, name), view in self._bound.items():
            if getattr(layers[l - 1], name) is not view:
                return False
        return True

    def grads_out(self) -> Grads:
        """Grads whose parameter gradients are views of ``grad``: where backward(out=...) writes."""
        grads = Grads.empty(self.L)
        for (l, name), view in self.views(self.grad).items():
            grads.params[l][name] = view
        return grads
