"""Violation witnesses, computed for the whole batch at once.

Walking down from frame 0 of a violated formula, each node marks the child points that decide its value
(SPEC_LANGUAGE.md): under a minimum (∧, G, until's left side, …) every child point whose value is ≤ 0;
under a maximum (∨, F, …) the argmax point, ties to the earliest frame; negation swaps the two (a node
reached through an odd number of negations is explained "high": all points > 0 under a maximum, the
argmin under a minimum). Masks are time-major (T, B) booleans per node and mode, pushed parent → child
with whole-batch array steps; until/since gather each marked point's future (or past) window.
`_PUSH` holds one rule per kernel node type (`_push_not`, `_push_and`, …, `_push_until`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels as K
from .core import CAnd, CAtom, CConst, CNext, CNot, COr, CPrev, CUntil, CWindow, Node, atom_nodes
from .traces import Batch

_CHUNK = 1 << 21  # max gathered elements per until step
LOW, HIGH = 0, 1


class _Masks:
    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.m: dict[tuple[Node, int], np.ndarray] = {}

    def get(self, n: Node, mode: int) -> np.ndarray | None:
        return self.m.get((n, mode))

    def add(self, n: Node, mode: int, mask: np.ndarray) -> None:
        if not mask.any():
            return
        cur = self.m.get((n, mode))
        if cur is None:
            self.m[(n, mode)] = mask.copy()
        else:
            cur |= mask

    def scatter(self, n: Node, mode: int, t: np.ndarray, b: np.ndarray) -> None:
        if t.size == 0:
            return
        cur = self.m.get((n, mode))
        if cur is None:
            cur = self.m[(n, mode)] = np.zeros(self.shape, dtype=bool)
        cur[t, b] = True


def witness_masks(
    order: list[Node], vals: dict[Node, np.ndarray], batch: Batch, violated: np.ndarray
) -> dict[CAtom, np.ndarray]:
    """Per atom node, the (T, B) frames at which it is part of the witness of its violated root.

    `order` lists the root's nodes children-first (its last entry is the root); `violated` is (B,) bool.
    """
    T, B = batch.shape
    masks = _Masks((T, B))
    root = order[-1]
    start = np.zeros((T, B), dtype=bool)
    if T:
        start[0] = violated & (batch.lengths > 0)
    masks.add(root, LOW, start)
    for n in reversed(order):
        for mode in (LOW, HIGH):
            m = masks.get(n, mode)
            if m is not None:
                _push(n, mode, m, vals, batch, masks)
    out: dict[CAtom, np.ndarray] = {}
    for n in atom_nodes(order):
        lo, hi = masks.get(n, LOW), masks.get(n, HIGH)
        if lo is not None or hi is not None:
            out[n] = lo if hi is None else (hi if lo is None else lo | hi)
    return out


def _argpick(values: list[np.ndarray], pick_max: bool) -> np.ndarray:
    """Index of the extreme child at each point, the first child on ties."""
    best = values[0]
    idx = np.zeros(best.shape, dtype=np.int8)
    for k, v in enumerate(values[1:], start=1):
        better = (v > best) if pick_max else (v < best)
        # k exceeds every earlier index, so max() writes k exactly where this child is strictly better
        np.maximum(idx, better.view(np.int8) * np.int8(k), out=idx)
        best = np.maximum(best, v) if pick_max else np.minimum(best, v)
    return idx


# ------------------------------------------------------------------- one push rule per kernel node type
# Each rule gets (node, mode, its (T, B) mask in that mode, all traces, batch, masks) and marks its children.
def _push_leaf(n: CAtom | CConst, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """Atoms keep their marks (they are the witness); constants have nothing below them."""


def _push_not(n: CNot, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """Negation swaps the explanation: a low !x is a high x."""
    masks.add(n.c, HIGH if mode == LOW else LOW, m)


def _push_junction(n: CAnd | COr, mode: int, m: np.ndarray, vals, masks: _Masks, *, is_min: bool) -> None:
    """∧ is a minimum, ∨ a maximum: every deciding child, or the single nearest one."""
    low = mode == LOW
    if is_min == low:  # every deciding child
        for c in n.cs:
            masks.add(c, mode, m & ((vals[c] <= 0) if low else (vals[c] > 0)))
    else:  # the single nearest child (first child on ties)
        idx = _argpick([vals[c] for c in n.cs], pick_max=low)
        for k, c in enumerate(n.cs):
            masks.add(c, mode, m & (idx == k))


def _push_next(n: CNext, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """A mark at t explains the child at t + 1 (inside the trace)."""
    masks.add(n.c, mode, K.shift_right(m, 1, False) & batch.valid)


def _push_prev(n: CPrev, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """A mark at t explains the child at t - 1."""
    masks.add(n.c, mode, K.shift_left(m, 1, False))


def _push(n: Node, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """Mark the children of `n` that decide its marked points `m` (explained `mode`)."""
    rule = _PUSH.get(type(n))
    if rule is None:  # pragma: no cover
        raise TypeError(f"unknown node {n!r}")
    rule(n, mode, m, vals, batch, masks)


def _argmax0(x: np.ndarray) -> np.ndarray:
    """argmax over time (axis 0), first on ties; via a contiguous transpose (strided argmax is slow)."""
    return np.argmax(np.ascontiguousarray(x.T), axis=1)


def _cover(n: CWindow, m: np.ndarray) -> np.ndarray:
    """Child points inside the window of some marked point.                       (T, B) -> (T, B)"""
    if n.hi is None:  # future [t, end): from the first mark on; past [0, t]: up to the last mark
        return K.scan(m, np.logical_or, reverse=n.past)
    out = np.zeros_like(m)
    for j in range(n.lo, n.hi + 1):  # future: child t' = t + j; past: t' = t - j
        out |= K.shift_right(m, j, False) if not n.past else K.shift_left(m, j, False)
    return out


def _nonzero(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, columns) of the True entries of a (T, B) mask (flat search: much faster than np.nonzero)."""
    idx = np.flatnonzero(m)
    return np.divmod(idx, m.shape[1])


def _window_argmax(n: CWindow, m: np.ndarray, y: np.ndarray, wmax: np.ndarray, batch: Batch) -> np.ndarray:
    """Child mask: for each marked (t, b), the earliest frame of its window that maximises y.  -> (T, B)

    `wmax` is the window maximum of y at each t (the node's value, or its negation for a min window)."""
    T, B = m.shape
    tt = np.arange(T)[:, None]
    neg = np.float32(-np.inf)
    yv = np.where(batch.valid, y.astype(np.float32), neg) if batch.ragged else y.astype(np.float32, copy=False)
    child = np.zeros((T, B), dtype=bool)
    if n.hi is None:
        t, b = _nonzero(m)
        if len(np.unique(b)) == len(b):  # one point per trace: a masked argmax per column
            cols, t0 = b, t
            outside = (tt < t0) if not n.past else (tt > t0)
            v = yv[:, cols] - np.float32(4) * outside  # branch-free mask: values live in [-1, 1]
            arg = _argmax0(v)
            ok = v[arg, np.arange(len(cols))] >= -1
            child[arg[ok], cols[ok]] = True
            return child
        # dense: suffix (future) or prefix (past) argmax via a scan over packed (value, earliest-frame) keys
        bits = yv.view(np.int32).astype(np.int64)
        order = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # float order as integers
        key = (order << 24) | (T - 1 - tt)  # larger key = larger value, then earlier frame
        frames = T - 1 - (K.scan(key, np.maximum, reverse=not n.past) & ((1 << 24) - 1))
        f = frames[t, b]
        ok = batch.valid[f, b]
        child[f[ok], b[ok]] = True
        return child
    # bounded: the earliest offset whose value reaches the window maximum `wmax` (the node's own value)
    offsets = list(range(n.lo, n.hi + 1)) if not n.past else list(range(n.hi, n.lo - 1, -1))
    wmax = wmax.astype(np.float32, copy=False)
    todo = m.copy()
    for j in offsets:  # earliest frame first; slices instead of shifted copies
        if j >= T:
            continue
        if not n.past:  # child frame t + j
            hit = todo[: T - j] & (yv[j:] == wmax[: T - j])
            todo[: T - j] &= ~hit
            child[j:] |= hit
        else:  # child frame t - j
            hit = todo[j:] & (yv[: T - j] == wmax[j:])
            todo[j:] &= ~hit
            child[: T - j] |= hit
    return child


def _push_window(n: CWindow, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """F/G/O/H: all failing (low) or holding (high) points of a minimum's window, or a maximum's extreme point."""
    x, value = vals[n.c], vals[n]
    low = mode == LOW
    if (n.kind == "min") == low:  # all failing (low) / holding (high) points of the window
        cond = (x <= 0) if low else (x > 0)
        cover = _cover(n, m) & cond
        masks.add(n.c, mode, cover & batch.valid if batch.ragged else cover)
        return
    # the single extreme point: argmax when explaining a low max, argmin when explaining a high min
    masks.add(n.c, mode, _window_argmax(n, m, x if low else -x, value if low else -value, batch))


@dataclass
class _UntilWindows:
    """The windows of P marked points of an until/since, gathered as (P, W) arrays over offsets j."""

    bb: np.ndarray  # (P,) trace of each point
    rows: np.ndarray  # (P,) 0..P-1
    j_all: np.ndarray  # (W,) offsets
    cols: np.ndarray  # (P, W) frame of offset j (t + j; since: t - j)
    inb: np.ndarray  # (P, W) the frame lies inside its trace
    psi: np.ndarray  # (P, W) right operand there
    phi: np.ndarray  # (P, W) left operand there, +1 (min's identity) outside the trace
    pm: np.ndarray  # (P, W) min of the left operand over offsets 0..j
    excl: np.ndarray  # (P, W) the same over 0..j-1
    g: np.ndarray  # (P, W) value of releasing at offset j
    cand: np.ndarray  # (P, W) offset j may release (inside the trace and the interval)
    last: np.ndarray  # (P,) last in-trace offset


def _until_windows(n: CUntil, tt: np.ndarray, bb: np.ndarray, vals, batch: Batch, W: int) -> _UntilWindows:
    """Gather the W-offset windows of the marked points (tt, bb) of `n`."""
    R, L = vals[n.r], vals[n.l]
    T = R.shape[0]
    P = len(bb)
    j_all = np.arange(W)
    cols = tt[:, None] - j_all if n.past else tt[:, None] + j_all  # (P, W) frame of offset j
    inb = (cols >= 0) & (cols < batch.lengths[bb][:, None])
    if not n.past and (tt == tt[0]).all() and tt[0] + W <= T:  # one start frame (a top-level until): slices
        psi = R[tt[0] : tt[0] + W][:, bb].T.astype(np.float32)
        phi = L[tt[0] : tt[0] + W][:, bb].T.astype(np.float32) * inb + ~inb
    else:  # gather each point's window
        cc = np.clip(cols, 0, T - 1)
        psi = R[cc, bb[:, None]].astype(np.float32)
        phi = L[cc, bb[:, None]].astype(np.float32) * inb + ~inb  # +1 (min's identity) outside the trace
    pm = K.scan(phi.T, np.minimum).T  # min of l over offsets 0..j
    excl = np.concatenate([np.ones((P, 1), np.float32), pm[:, :-1]], axis=1)  # over 0..j-1
    g = np.minimum(psi, excl)  # value of choosing offset j
    cand = inb & (j_all >= n.lo)
    last = np.minimum(np.maximum(batch.lengths[bb] - 1 - tt, 0), W - 1)  # last in-trace offset
    return _UntilWindows(bb, np.arange(P), j_all, cols, inb, psi, phi, pm, excl, g, cand, last)


def _push_until(n: CUntil, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """l U r: max over j of min(r@t+j, l@t..t+j-1) (past: S mirrors time). Gathers each point's window."""
    T, _B = m.shape
    t, b = _nonzero(m)
    if t.size == 0:
        return
    W = T if n.hi is None else n.hi + 1
    W = max(1, min(W, T))
    step = max(1, _CHUNK // W)
    explain = _until_low if mode == LOW else _until_high
    for s in range(0, t.size, step):
        explain(n, _until_windows(n, t[s : s + step], b[s : s + step], vals, batch, W), masks)


def _until_low(n: CUntil, w: _UntilWindows, masks: _Masks) -> None:
    """A failing until: at the best release point, r's failure and every failing l before it."""
    W, rows, bb, cols = w.j_all.size, w.rows, w.bb, w.cols
    gm = w.g - np.float32(4) * ~w.cand  # values live in [-1, 1]: non-candidates fall below -2
    j = (W - 1 - np.argmax(gm[:, ::-1], axis=1)) if n.past else np.argmax(gm, axis=1)
    has = gm[rows, j] >= -1
    best = np.where(has, gm[rows, j], -np.inf)
    never = np.zeros(len(bb), dtype=bool)
    if n.weak:  # "l forever" competes with every release point
        never = w.pm[rows, w.last] > best
        ji, pi = np.nonzero((w.inb & (w.phi <= 0) & never[:, None]).T)
        masks.scatter(n.l, LOW, cols[pi, ji], bb[pi])
    use = has & ~never
    sel = use & (w.psi[rows, j] <= 0)
    masks.scatter(n.r, LOW, cols[rows, j][sel], bb[sel])
    before = (w.j_all[None, :] < j[:, None]) & w.inb & (w.phi <= 0) & use[:, None]
    pi, ji = np.nonzero(before)
    masks.scatter(n.l, LOW, cols[pi, ji], bb[pi])


def _until_high(n: CUntil, w: _UntilWindows, masks: _Masks) -> None:
    """A holding until: at every releasing offset, r or the earliest minimum of l before it (weak: l forever)."""
    P, rows, bb, cols, j_all = len(w.bb), w.rows, w.bb, w.cols, w.j_all
    pos = w.cand & (w.g > 0)
    # earliest-frame argmin of l over offsets 0..j-1
    prev = np.concatenate([np.full((P, 1), np.inf, np.float32), w.pm[:, :-1]], axis=1)
    rec = (w.phi <= prev) if n.past else (w.phi < prev)  # past: a larger offset is an earlier frame
    am = K.scan(((j_all[None, :] + 1) * rec - 1).T, np.maximum).T
    am_ex = np.concatenate([np.full((P, 1), -1), am[:, :-1]], axis=1)
    r_wins = ((w.psi <= w.excl) if n.past else (w.psi < w.excl)) | (j_all[None, :] == 0)
    pi, ji = np.nonzero(pos & r_wins)
    masks.scatter(n.r, HIGH, cols[pi, ji], bb[pi])
    pi, ji = np.nonzero(pos & ~r_wins)
    masks.scatter(n.l, HIGH, cols[pi, am_ex[pi, ji]], bb[pi])
    if n.weak:
        keep = w.pm[rows, w.last] > 0
        k = am[rows, w.last]
        masks.scatter(n.l, HIGH, cols[rows, k][keep], bb[keep])


def _push_and(n: CAnd, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    _push_junction(n, mode, m, vals, masks, is_min=True)


def _push_or(n: COr, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    _push_junction(n, mode, m, vals, masks, is_min=False)


# one push rule per kernel node type (#14 extends witnesses here, one function per kind)
_PUSH = {
    CAtom: _push_leaf,
    CConst: _push_leaf,
    CNot: _push_not,
    CAnd: _push_and,
    COr: _push_or,
    CNext: _push_next,
    CPrev: _push_prev,
    CWindow: _push_window,
    CUntil: _push_until,
}
