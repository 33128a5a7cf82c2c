"""Forward evaluation of kernel nodes over a batch of traces: one whole-batch array step per node.

Traces are time-major (T, B) inside the monitor (see kernels.py); the public results transpose back.
`_EVAL` holds one rule per kernel node type; each runs once per (sub)formula per batch, so the dispatch
is outside the array work.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _one(batch: Batch) -> np.ndarray:
    """+1 (true, the identity of min) in the batch's dtype."""
    return np.ones((), dtype=batch.dtype)


def _const(n: CConst, vals: dict[Node, np.ndarray], batch: Batch) -> np.ndarray:
    one = _one(batch)
    return np.full(batch.shape, one if n.value else -one, dtype=batch.dtype)


def _next(n: CNext, vals: dict[Node, np.ndarray], batch: Batch) -> np.ndarray:
    one = _one(batch)
    fill = one if n.weak else -one
    return K.shift_left(_fill(batch, vals[n.c], fill), 1, fill)


def _window(n: CWindow, vals: dict[Node, np.ndarray], batch: Batch) -> np.ndarray:
    one = _one(batch)
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


def _until(n: CUntil, vals: dict[Node, np.ndarray], batch: Batch) -> np.ndarray:
    one = _one(batch)
    T, B = batch.shape
    if T == 0:
        return np.zeros((0, B), dtype=batch.dtype)
    if n.past:
        return K.since_scan(vals[n.r], vals[n.l], -one)
    a = _fill(batch, vals[n.r], -one)
    b = _fill(batch, vals[n.l], one)
    if n.hi is None:
        return K.until_scan(a, b, one if n.weak else -one)
    return K.bounded_until(a, b, n.lo, n.hi)


# one evaluation rule per kernel node type: (node, children's traces, batch) -> (T, B) trace
_EVAL: dict[type, Callable[[Node, dict[Node, np.ndarray], Batch], np.ndarray]] = {
    CAtom: lambda n, vals, batch: batch.atoms[n.key],
    CConst: _const,
    CNot: lambda n, vals, batch: -vals[n.c],
    CAnd: lambda n, vals, batch: reduce(np.minimum, (vals[c] for c in n.cs)),
    COr: lambda n, vals, batch: reduce(np.maximum, (vals[c] for c in n.cs)),
    CNext: _next,
    CPrev: lambda n, vals, batch: K.shift_right(vals[n.c], 1, -_one(batch)),
    CWindow: _window,
    CUntil: _until,
}


def eval_node(n: Node, vals: dict[Node, np.ndarray], batch: Batch) -> np.ndarray:
    """Trace of node `n` at every frame, given its children's traces in `vals`.    -> (T, B)"""
    rule = _EVAL.get(type(n))
    if rule is None:  # pragma: no cover
        raise TypeError(f"unknown node {n!r}")
    return rule(n, vals, batch)


def evaluate_nodes(
    order: list[Node], batch: Batch, cache: dict[Node, np.ndarray] | None = None
) -> dict[Node, np.ndarray]:
    """Traces of every node in `order` (children first); `cache` shares traces across formulas."""
    vals: dict[Node, np.ndarray] = {} if cache is None else cache
    for n in order:
        if n not in vals:
            vals[n] = eval_node(n, vals, batch)
    return vals
