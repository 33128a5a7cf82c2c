"""Forward evaluation of kernel nodes over a batch of traces: one whole-batch array step per node.

Traces are time-major (T, B) inside the monitor (see kernels.py); the public results transpose back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from . import kernels as K
from .core import CAnd, CAtom, CConst, CNext, CNot, COr, CPrev, CUntil, CWindow, Node


@dataclass
class Batch:
    """Prepared signals: atom key -> (T, B) values (-1 past each trace's end), lengths (B,), valid mask."""

    atoms: dict[str, np.ndarray]
    lengths: np.ndarray  # (B,) int64
    valid: np.ndarray  # (T, B) bool: t < lengths[b]
    dtype: np.dtype
    ragged: bool

    @property
    def shape(self) -> tuple[int, int]:
        """(T, B)."""
        return self.valid.shape


def _fill(batch: Batch, x: np.ndarray, fill) -> np.ndarray:
    """x with positions past each trace's end set to `fill` (no copy when all traces are full length)."""
    if not batch.ragged:
        return x
    return np.where(batch.valid, x, np.asarray(fill, dtype=x.dtype))


def eval_node(n: Node, vals: dict[Node, np.ndarray], batch: Batch) -> np.ndarray:
    """Trace of node `n` at every frame, given its children's traces in `vals`.    -> (T, B)"""
    one = np.ones((), dtype=batch.dtype)
    T, B = batch.shape
    if isinstance(n, CAtom):
        return batch.atoms[n.key]
    if isinstance(n, CConst):
        return np.full((T, B), one if n.value else -one, dtype=batch.dtype)
    if isinstance(n, CNot):
        return -vals[n.c]
    if isinstance(n, CAnd):
        return reduce(np.minimum, (vals[c] for c in n.cs))
    if isinstance(n, COr):
        return reduce(np.maximum, (vals[c] for c in n.cs))
    if isinstance(n, CNext):
        fill = one if n.weak else -one
        return K.shift_left(_fill(batch, vals[n.c], fill), 1, fill)
    if isinstance(n, CPrev):
        return K.shift_right(vals[n.c], 1, -one)
    if isinstance(n, CWindow):
        x = vals[n.c]
        ufunc = np.maximum if n.kind == "max" else np.minimum
        fill = -one if n.kind == "max" else one
        if n.past:
            if n.hi is None:
                return K.scan(x, ufunc)
            return K.past_window(x, n.lo, n.hi, ufunc, fill)
        x = _fill(batch, x, fill)
        if n.hi is None:
            return K.suffix_max(x) if n.kind == "max" else K.suffix_min(x)
        return K.future_window(x, n.lo, n.hi, ufunc, fill)
    if isinstance(n, CUntil):
        if T == 0:
            return np.zeros((0, B), dtype=batch.dtype)
        if n.past:
            return K.since_scan(vals[n.r], vals[n.l], -one)
        a = _fill(batch, vals[n.r], -one)
        b = _fill(batch, vals[n.l], one)
        if n.hi is None:
            return K.until_scan(a, b, one if n.weak else -one)
        return K.bounded_until(a, b, n.lo, n.hi)
    raise TypeError(f"unknown node {n!r}")  # pragma: no cover


def evaluate_nodes(
    order: list[Node], batch: Batch, cache: dict[Node, np.ndarray] | None = None
) -> dict[Node, np.ndarray]:
    """Traces of every node in `order` (children first); `cache` shares traces across formulas."""
    vals: dict[Node, np.ndarray] = {} if cache is None else cache
    for n in order:
        if n not in vals:
            vals[n] = eval_node(n, vals, batch)
    return vals
