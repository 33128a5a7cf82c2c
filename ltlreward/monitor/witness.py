"""Violation witnesses, computed for the whole batch at once.

Walking down from frame 0 of a violated formula, each node marks the child points that decide its value
(SPEC_LANGUAGE.md): under a minimum (∧, G, until's left side, …) every child point whose value is ≤ 0;
under a maximum (∨, F, …) the argmax point, ties to the earliest frame; negation swaps the two (a node
reached through an odd number of negations is explained "high": all points > 0 under a maximum, the
argmin under a minimum). Masks are (B, T) booleans per node and mode, pushed parent → child in one
array step per node; until/since gather each marked point's future (or past) window.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .core import CAnd, CAtom, CConst, CNext, CNot, COr, CPrev, CUntil, CWindow, Node
from .evaluate import Batch

_CHUNK = 1 << 21  # max gathered elements per until step


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
        self.m[(n, mode)] = mask.copy() if cur is None else (cur | mask)

    def scatter(self, n: Node, mode: int, b: np.ndarray, t: np.ndarray) -> None:
        if b.size == 0:
            return
        cur = self.m.get((n, mode))
        if cur is None:
            cur = self.m[(n, mode)] = np.zeros(self.shape, dtype=bool)
        cur[b, t] = True


LOW, HIGH = 0, 1


def witness_masks(order: list[Node], vals: dict[Node, np.ndarray], batch: Batch, violated: np.ndarray) -> dict[CAtom, np.ndarray]:
    """Per atom node, the (B, T) frames at which it is part of the witness of its violated root.

    `order` lists the root's nodes children-first (its last entry is the root); `violated` is (B,) bool.
    """
    B, T = batch.shape
    masks = _Masks((B, T))
    root = order[-1]
    start = np.zeros((B, T), dtype=bool)
    if T:
        start[:, 0] = violated & (batch.lengths > 0)
    masks.add(root, LOW, start)
    for n in reversed(order):
        for mode in (LOW, HIGH):
            m = masks.get(n, mode)
            if m is not None:
                _push(n, mode, m, vals, batch, masks)
    out: dict[CAtom, np.ndarray] = {}
    for n in order:
        if isinstance(n, CAtom):
            lo, hi = masks.get(n, LOW), masks.get(n, HIGH)
            if lo is not None or hi is not None:
                out[n] = lo if hi is None else (hi if lo is None else lo | hi)
    return out


def _argpick(values: list[np.ndarray], pick_max: bool) -> np.ndarray:
    stack = np.stack(values)
    return np.argmax(stack, axis=0) if pick_max else np.argmin(stack, axis=0)


def _push(n: Node, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    low = mode == LOW
    if isinstance(n, (CAtom, CConst)):
        return
    if isinstance(n, CNot):
        masks.add(n.c, HIGH if low else LOW, m)
        return
    if isinstance(n, (CAnd, COr)):
        is_min = isinstance(n, CAnd)
        if is_min == low:  # every deciding child
            for c in n.cs:
                masks.add(c, mode, m & ((vals[c] <= 0) if low else (vals[c] > 0)))
        else:  # the single nearest child (first child on ties)
            idx = _argpick([vals[c] for c in n.cs], pick_max=low)
            for k, c in enumerate(n.cs):
                masks.add(c, mode, m & (idx == k))
        return
    if isinstance(n, CNext):
        masks.add(n.c, mode, K.shift_right(m, 1, False) & batch.valid)
        return
    if isinstance(n, CPrev):
        masks.add(n.c, mode, K.shift_left(m, 1, False))
        return
    if isinstance(n, CWindow):
        _push_window(n, mode, m, vals[n.c], batch, masks)
        return
    if isinstance(n, CUntil):
        _push_until(n, mode, m, vals, batch, masks)
        return
    raise TypeError(f"unknown node {n!r}")  # pragma: no cover


def _push_window(n: CWindow, mode: int, m: np.ndarray, x: np.ndarray, batch: Batch, masks: _Masks) -> None:
    low = mode == LOW
    B, T = m.shape
    if (n.kind == "min") == low:  # all failing (low) / holding (high) points of the window
        mi = m.view(np.int8)
        if not n.past:
            cover = np.logical_or.accumulate(m, axis=1) if n.hi is None else K.past_window(mi, n.lo, n.hi, np.maximum, 0) > 0
        else:
            cover = K.suffix_max(mi) > 0 if n.hi is None else K.future_window(mi, n.lo, n.hi, np.maximum, 0) > 0
        cond = (x <= 0) if low else (x > 0)
        masks.add(n.c, mode, cover & cond & batch.valid)
        return
    # the single extreme point: argmax when explaining a low max, argmin when explaining a high min
    y = x if low else -x  # now always an argmax, ties to the earliest frame
    b, t = np.nonzero(m)
    if b.size == 0:
        return
    if n.hi is None:
        if not n.past:
            yf = np.where(batch.valid, y, y.dtype.type(-2)) if batch.ragged else y
            yf = yf.astype(np.float32)
            nxt = np.concatenate([K.suffix_max(yf)[:, 1:], np.full((B, 1), -np.inf, np.float32)], axis=1)
            new = yf >= nxt  # t is the earliest argmax of its suffix
            idx = np.where(new, np.arange(T)[None, :], T)
            arg = K.suffix_min(idx)
        else:
            yf = y.astype(np.float32)
            prev = np.concatenate([np.full((B, 1), -np.inf, np.float32), np.maximum.accumulate(yf, axis=1)[:, :-1]], axis=1)
            rec = yf > prev  # a new strict record: the earliest frame reaching the prefix max
            idx = np.where(rec, np.arange(T)[None, :], -1)
            arg = np.maximum.accumulate(idx, axis=1)
        masks.scatter(n.c, mode, b, arg[b, t])
        return
    w = n.hi - n.lo + 1
    offs = np.arange(w)
    for s in range(0, b.size, max(1, _CHUNK // w)):
        bb, tt = b[s : s + _CHUNK // w], t[s : s + _CHUNK // w]
        cols = (tt[:, None] + n.lo + offs) if not n.past else (tt[:, None] - n.hi + offs)  # earliest first
        ok = (cols >= 0) & (cols < batch.lengths[bb][:, None])
        v = np.where(ok, y[bb[:, None], np.clip(cols, 0, T - 1)].astype(np.float32), -np.inf)
        j = np.argmax(v, axis=1)
        has = ok[np.arange(len(bb)), j]
        masks.scatter(n.c, mode, bb[has], cols[np.arange(len(bb)), j][has])


def _push_until(n: CUntil, mode: int, m: np.ndarray, vals, batch: Batch, masks: _Masks) -> None:
    """l U r: max over j of min(r@t+j, l@t..t+j-1) (past: S mirrors time). Gathers each point's window."""
    low = mode == LOW
    B, T = m.shape
    b, t = np.nonzero(m)
    if b.size == 0:
        return
    R, L = vals[n.r], vals[n.l]
    W = T if n.hi is None else n.hi + 1
    W = max(1, min(W, T))
    j_all = np.arange(W)
    step = max(1, _CHUNK // W)
    for s in range(0, b.size, step):
        bb, tt = b[s : s + step], t[s : s + step]
        P = len(bb)
        cols = tt[:, None] - j_all if n.past else tt[:, None] + j_all  # (P, W) position of offset j
        inb = (cols >= 0) & (cols < batch.lengths[bb][:, None])
        cc = np.clip(cols, 0, T - 1)
        psi = R[bb[:, None], cc].astype(np.float32)
        phi = np.where(inb, L[bb[:, None], cc], 1).astype(np.float32)
        pm = np.minimum.accumulate(phi, axis=1)  # min of l over offsets 0..j
        excl = np.concatenate([np.ones((P, 1), np.float32), pm[:, :-1]], axis=1)  # over 0..j-1
        g = np.minimum(psi, excl)  # value of choosing offset j
        cand = inb & (j_all >= n.lo)
        rows = np.arange(P)
        if low:
            gm = np.where(cand, g, -np.inf)
            j = (W - 1 - np.argmax(gm[:, ::-1], axis=1)) if n.past else np.argmax(gm, axis=1)
            has = cand[rows, j]
            best = np.where(has, gm[rows, j], -np.inf)
            never = np.zeros(P, dtype=bool)
            if n.weak:  # "l forever" competes with every release point
                last = np.maximum(batch.lengths[bb] - 1 - tt, 0)
                gl = pm[rows, np.minimum(last, W - 1)]
                never = gl > best
                full = inb & (phi <= 0) & never[:, None]
                bi, ji = np.nonzero(full)
                masks.scatter(n.l, LOW, bb[bi], cols[bi, ji])
            use = has & ~never
            sel = use & (psi[rows, j] <= 0)
            masks.scatter(n.r, LOW, bb[sel], cols[rows, j][sel])
            before = (j_all[None, :] < j[:, None]) & inb & (phi <= 0) & use[:, None]
            bi, ji = np.nonzero(before)
            masks.scatter(n.l, LOW, bb[bi], cols[bi, ji])
        else:
            pos = cand & (g > 0)
            # earliest-frame argmin of l over offsets 0..j-1
            prev = np.concatenate([np.full((P, 1), np.inf, np.float32), pm[:, :-1]], axis=1)
            rec = (phi <= prev) if n.past else (phi < prev)  # past: a larger offset is an earlier frame
            am = np.maximum.accumulate(np.where(rec, j_all[None, :], -1), axis=1)
            am_ex = np.concatenate([np.full((P, 1), -1), am[:, :-1]], axis=1)
            r_wins = (psi <= excl) if n.past else (psi < excl)
            r_wins |= j_all[None, :] == 0
            bi, ji = np.nonzero(pos & r_wins)
            masks.scatter(n.r, HIGH, bb[bi], cols[bi, ji])
            bi, ji = np.nonzero(pos & ~r_wins)
            masks.scatter(n.l, HIGH, bb[bi], cols[bi, am_ex[bi, ji]])
            if n.weak:
                last = np.maximum(batch.lengths[bb] - 1 - tt, 0)
                gl = pm[rows, np.minimum(last, W - 1)]
                keep = gl > 0
                k = am[rows, np.minimum(last, W - 1)]
                masks.scatter(n.l, HIGH, bb[keep], cols[rows, k][keep])
