"""Violation witnesses, computed for the whole batch at once, in time linear in the trace.

Walking down from frame 0 of a violated formula, each node marks the child points that decide its value
(SPEC_LANGUAGE.md). A node is explained *low* (why its value is ≤ 0) or *high* (why it is > 0); negation swaps
the two. Under a minimum explained low (∧, G, H) and a maximum explained high (∨, F, O), every deciding child
point is marked ("all" rules). Under a maximum explained low, and a minimum explained high, one child point is
marked ("pick" rules): the nearest miss (the largest value; the smallest, explained high), ties broken by

  1. the smallest sub-witness: `cost(n, mode)` is the number of atom instances the explanation of n below
     that point marks (a sum under "all" rules, the chosen child's under "pick" rules; INF where no flip of
     atoms can change the value, e.g. `X φ` at the last frame, or where nothing would be marked), so every
     cost is ≥ 1 or INF, and `F G φ` picks the last failing suffix and
     `F (a & G b)` the frame needing fewest flips;
  2. then the frame farthest from the evaluation point (future windows: the latest, the deadline; past windows:
     the earliest) — so "it never happened" with equal values blames the deadline, not frame 0 — and among ∨/∧
     children the first.

Until and since are explained through their one-step unfolding, l U r = r ∨ (l ∧ X(l U r)) (past: Y): at each
frame of a chain either the release (r) is chosen, or l's failing point is marked and the chain moves to the next
frame while the rest still fails (low); explained high, r is marked wherever it holds and the chain stops at
the frame where l is the weakest link. A chain's frames are decided per frame once the costs are known (a
min-plus scan, `kernels.minplus_scan`), so the frames reached from all marked points are one prefix scan: no
window is gathered per point. Bounded until U[lo,hi] gathers each marked point's hi + 1 frames (O(T·hi)).

Cost: every rule is a fixed number of whole-batch (T, B) array steps (scans, shifts, sliding windows with the
van Herk/Gil–Werman kernels, prefix sums), so extracting witnesses is O(B·T·|φ|) for every operator but
bounded until (O(B·T·|φ|·hi)), nested U/S/windows under G/H included. The work runs on the violated traces
only (gathered when they are at most half the batch); costs are computed only where a pick has tied values and
the formula does not already fix them (atoms cost 1; `F G φ`'s costs shrink toward the deadline), memoised per
monitor call and shared between constraints.

Minimality (tests/test_witness.py): for a formula with each atom once and no operator that only the trace end
decides (X/WX/Y, windows past the end, constants), flipping every witness atom makes it hold; and the witness
is inclusion-minimal (no proper subset is a fix) when, in addition, every universally explained temporal
operator — G/H in positive position, F/O under a negation, every U/S/W/R/M — has propositional operands (so
explanations at different frames touch different atom instances and the costs are exact). Outside that class
the frames of a universal choose their nearest misses each on its own: `G F a` with a = [-0.5, -0.9, -0.2,
-0.7] witnesses {2, 3} where {3} suffices (nearest misses first, not fewest flips: a smallest fix is a
hitting-set problem, and even pruning to an inclusion-minimal one re-evaluates the formula once per point).

Masks are time-major (T, B) booleans per node and mode, pushed parent → child; `_PUSH` holds one rule per kernel
node type (`_push_not`, …, `_push_until`) and `_COST` one cost rule per type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels as K
from .core import CAnd, CAtom, CConst, CNext, CNot, COr, CPrev, CUntil, CWindow, Node, atom_nodes
from .traces import Batch

_CHUNK = 1 << 21  # max gathered elements per bounded-until step
LOW, HIGH = 0, 1
COST = np.float32  # costs count atom instances: exact in float32 below 2**24
INF = COST(2.0**100)  # "no flip of atoms helps": finite, so masks are products (np.where on random masks is slow)


class _Masks:
    """Marked points per (node, mode), (T, B) bool each."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.m: dict[tuple[Node, int], np.ndarray] = {}

    def get(self, n: Node, mode: int) -> np.ndarray | None:
        return self.m.get((n, mode))

    def add(self, n: Node, mode: int, mask: np.ndarray) -> None:
        """OR `mask` into n's marks. The first mask is kept without a copy: a node's marks are read only by
        its own push, after all its parents have pushed, so a later in-place OR changes nothing already read."""
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


class WitnessMemo:
    """Costs and choices of (node, mode) pairs over one batch; shared by the constraints of one monitor call."""

    def __init__(self, vals: dict[Node, np.ndarray], batch: Batch) -> None:
        self.vals, self.batch = vals, batch
        self.costs: dict[tuple[Node, int], np.ndarray] = {}
        self.plans: dict[tuple[str, Node, int], object] = {}

    def cost(self, n: Node, mode: int) -> np.ndarray:
        """(T, B) float32 (or a scalar) number of atom instances explaining n in `mode` at each frame, ≤ INF."""
        key = (n, mode)
        stack: list[tuple[Node, int, bool]] = [(n, mode, False)]
        while key not in self.costs:  # post-order without recursion (deep formulas)
            x, md, ready = stack.pop()
            if (x, md) in self.costs:
                continue
            if ready:
                self.costs[(x, md)] = _no_zero(_COST[type(x)](x, md, self))
                continue
            stack.append((x, md, True))
            cm = _flip(md) if isinstance(x, CNot) else md
            stack.extend((c, cm, False) for c in x.children() if (c, cm) not in self.costs)
        return self.costs[key]

    def full(self, x) -> np.ndarray:
        """A cost (scalar or array) as a (T, B) float32 array (a broadcast view of a scalar)."""
        return np.broadcast_to(np.asarray(x, dtype=COST), self.batch.shape)


def _no_zero(c):
    """A cost of 0 marks nothing: the node is not in that mode there (e.g. a value of exactly 0 and its negation
    are both "false"), so no explanation exists: INF. Every cost is then ≥ 1 or INF, which the shortcuts use."""
    if np.ndim(c) == 0:
        return INF if c == 0 else c
    return np.maximum(c, (c == 0).view(np.uint8) * INF)


def _flip(mode: int) -> int:
    return HIGH if mode == LOW else LOW


def witness_masks(
    order: list[Node], vals: dict[Node, np.ndarray], batch: Batch, violated: np.ndarray,
    memos: dict[bytes, WitnessMemo] | None = None,
) -> dict[CAtom, np.ndarray]:
    """Per atom node, the (T, B) frames at which it is part of the witness of its violated root.

    `order` lists the root's nodes children-first (its last entry is the root); `violated` is (B,) bool. The
    work runs on the violated traces only; `memos` shares costs between the constraints of one monitor call
    that are violated on the same traces."""
    T, B = batch.shape
    cols = np.flatnonzero(violated & (batch.lengths > 0))
    if cols.size == 0 or T == 0:
        return {}
    memos = {} if memos is None else memos
    if 2 * cols.size > B:  # most traces violated: the whole batch (gathering the traces would cost more)
        cols = np.arange(B)
    key = cols.tobytes()
    if key not in memos:
        if cols.size == B:
            memos[key] = WitnessMemo(vals, batch)
        else:
            L = batch.lengths[cols]
            sub = Batch({}, L, batch.valid[:, cols], batch.dtype, bool((L < T).any()))
            memos[key] = WitnessMemo(_Columns(vals, cols), sub)
    memo = memos[key]
    masks = _Masks((T, cols.size))
    start = np.zeros((T, cols.size), dtype=bool)
    start[0] = (violated & (batch.lengths > 0))[cols]
    masks.add(order[-1], LOW, start)
    for n in reversed(order):
        for mode in (LOW, HIGH):
            m = masks.get(n, mode)
            if m is not None:
                _PUSH[type(n)](n, mode, m, memo, masks)
    out: dict[CAtom, np.ndarray] = {}
    for n in atom_nodes(order):
        lo, hi = masks.get(n, LOW), masks.get(n, HIGH)
        if lo is None and hi is None:
            continue
        m = lo if hi is None else (hi if lo is None else lo | hi)
        if cols.size < B:
            full = np.zeros((T, B), dtype=bool)
            full[:, cols] = m
            m = full
        out[n] = m
    return out


class _Columns(dict):
    """The traces of some columns of the batch, gathered on first use (node -> (T, len(cols)))."""

    def __init__(self, vals: dict[Node, np.ndarray], cols: np.ndarray) -> None:
        super().__init__()
        self.src, self.cols = vals, cols

    def __missing__(self, n: Node) -> np.ndarray:
        v = self[n] = self.src[n][:, self.cols]
        return v


def _nonzero(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, columns) of the True entries of a (T, B) mask (flat search: much faster than np.nonzero)."""
    idx = np.flatnonzero(m)
    return np.divmod(idx, m.shape[1])


def _deciding(x: np.ndarray, mode: int) -> np.ndarray:
    """Points that decide a minimum explained low (≤ 0) or a maximum explained high (> 0)."""
    return (x <= 0) if mode == LOW else (x > 0)


# cost arithmetic without np.where: costs are ≥ 0 and ≤ INF, so selections are products and maxima
def _only(c, cond: np.ndarray) -> np.ndarray:
    """c where cond, else 0."""
    return c * cond.view(np.uint8)


def _or_inf(c, cond: np.ndarray) -> np.ndarray:
    """c where cond, else INF."""
    return np.maximum(c, (~cond).view(np.uint8) * INF)


def _pick(cond: np.ndarray, a, b) -> np.ndarray:
    """a where cond, else b (exact: one of the two products is 0)."""
    return a * cond.view(np.uint8) + b * (~cond).view(np.uint8)


def _cap(c: np.ndarray) -> np.ndarray:
    """Sums of costs stay ≤ INF."""
    return np.minimum(c, INF)


def _revc(n: CUntil, c):
    """A cost in the chain's time order (scalars as they are)."""
    return c if np.ndim(c) == 0 else _rev(n, c)


# ------------------------------------------------------------------------------ leaves, ¬, X, Y
def _push_leaf(n: CAtom | CConst, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """Atoms keep their marks (they are the witness); constants have nothing below them."""


def _cost_atom(n: CAtom, mode: int, memo: WitnessMemo) -> np.ndarray:
    return COST(1.0)


def _cost_const(n: CConst, mode: int, memo: WitnessMemo) -> np.ndarray:
    return INF  # no flip of atoms changes a constant


def _push_not(n: CNot, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """Negation swaps the explanation: a low !x is a high x."""
    masks.add(n.c, _flip(mode), m)


def _cost_not(n: CNot, mode: int, memo: WitnessMemo) -> np.ndarray:
    return memo.costs[(n.c, _flip(mode))]


def _push_next(n: CNext, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """A mark at t explains the child at t + 1 (inside the trace)."""
    masks.add(n.c, mode, K.shift_right(m, 1, False) & memo.batch.valid)


def _cost_next(n: CNext, mode: int, memo: WitnessMemo) -> np.ndarray:
    """The child's cost one frame later; INF at the last frame (the trace end decides there)."""
    c = K.shift_left(memo.full(memo.costs[(n.c, mode)]), 1, INF)
    return _or_inf(c, K.shift_left(memo.batch.valid, 1, False))


def _push_prev(n: CPrev, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """A mark at t explains the child at t - 1."""
    masks.add(n.c, mode, K.shift_left(m, 1, False))


def _cost_prev(n: CPrev, mode: int, memo: WitnessMemo) -> np.ndarray:
    return K.shift_right(memo.full(memo.costs[(n.c, mode)]), 1, INF)


# ------------------------------------------------------------------------------ ∧ and ∨
def _junction_is_all(n: CAnd | COr, mode: int) -> bool:
    """∧ is a minimum, ∨ a maximum: "all" when a minimum is explained low or a maximum high."""
    return isinstance(n, CAnd) == (mode == LOW)


def _junction_choice(n: CAnd | COr, mode: int, memo: WitnessMemo) -> np.ndarray:
    """(T, B) int8 index of the picked child: the nearest, then (where values tie and the children's costs
    differ) the cheapest, then the first. Ties are rare with graded values: they are resolved point by point."""
    key = ("junction", n, mode)
    if key not in memo.plans:
        ys = [memo.vals[c] if mode == LOW else -memo.vals[c] for c in n.cs]  # pick the largest
        units = _same_scalar([_static_cost(c, mode) for c in n.cs])  # costs known equal: they break no tie
        best, idx, tied = ys[0], np.zeros(ys[0].shape, dtype=np.int8), np.zeros(ys[0].shape, dtype=bool)
        for k, y in enumerate(ys[1:], start=1):
            if not units:
                tied |= y == best
            np.maximum(idx, (y > best).view(np.int8) * np.int8(k), out=idx)  # k exceeds every earlier index
            best = np.maximum(best, y)
        unit = np.array([_static_cost(c, mode) == 1.0 for c in n.cs])
        if unit.any() and tied.any():  # a nearest child costing one atom wins every tie (no cost is below 1)
            tied &= ~unit[idx]  # … when it is the first nearest one (idx: the first maximum)
        costs = [memo.cost(c, mode) for c in n.cs] if tied.any() else []
        if costs and not _same_scalar(costs):
            t, b = _nonzero(tied)
            yv = np.stack([y[t, b] for y in ys])  # (k, P)
            cv = np.stack([memo.full(c)[t, b] for c in costs])
            cv = np.where(yv == yv.max(axis=0), cv, np.inf)  # (true inf: above every capped cost)
            idx[t, b] = np.argmin(cv, axis=0)  # the cheapest nearest child, the first on ties
        memo.plans[key] = idx
    return memo.plans[key]  # type: ignore[return-value]


def _static_cost(n: Node, mode: int) -> float | None:
    """The cost of explaining n in `mode`, when it is the same at every frame of the trace and known from the
    formula alone (atoms: 1; picks of a window from its own frame on, lo = 0, over such a child), else None."""
    if isinstance(n, CAtom):
        return 1.0
    if isinstance(n, CNot):
        return _static_cost(n.c, _flip(mode))
    if isinstance(n, CWindow) and not _window_is_all(n, mode) and n.lo == 0:
        return _static_cost(n.c, mode)
    if isinstance(n, (CAnd, COr)) and not _junction_is_all(n, mode):
        costs = [_static_cost(c, mode) for c in n.cs]
        return costs[0] if _same_scalar(costs) else None
    return None


def _same_scalar(costs: list) -> bool:
    """Whether every cost is the same scalar (then costs break no tie)."""
    return all(c is not None and np.ndim(c) == 0 for c in costs) and len({float(c) for c in costs}) == 1


def _push_junction(n: CAnd | COr, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """Every deciding child, or the single nearest one."""
    if _junction_is_all(n, mode):
        for c in n.cs:
            masks.add(c, mode, m & _deciding(memo.vals[c], mode))
        return
    idx = _junction_choice(n, mode, memo)
    for k, c in enumerate(n.cs):
        masks.add(c, mode, m & (idx == k))


def _cost_junction(n: CAnd | COr, mode: int, memo: WitnessMemo) -> np.ndarray:
    if not _junction_is_all(n, mode):
        costs = [memo.costs[(c, mode)] for c in n.cs]
        if _same_scalar(costs):
            return costs[0]
        return np.choose(_junction_choice(n, mode, memo), [memo.full(c) for c in costs])
    total = np.zeros(memo.batch.shape, COST)
    for c in n.cs:
        total += _only(memo.costs[(c, mode)], _deciding(memo.vals[c], mode))
    return _cap(total)


# ------------------------------------------------------------------------------ windows F G O H
def _window_is_all(n: CWindow, mode: int) -> bool:
    return (n.kind == "min") == (mode == LOW)


def _cover(n: CWindow, m: np.ndarray) -> np.ndarray:
    """Child points inside the window of some marked point.                       (T, B) -> (T, B)"""
    if n.hi is None:  # future [t, end): from the first mark on; past [0, t]: up to the last mark
        return K.scan(m, np.logical_or, reverse=n.past)
    if not n.past:  # child t' is in [t + lo, t + hi] of a mark t  <=>  a mark in [t' - hi, t' - lo]
        return K.past_window(m, n.lo, n.hi, np.logical_or, False)
    return K.future_window(m, n.lo, n.hi, np.logical_or, False)


def _window_total(n: CWindow, x: np.ndarray) -> np.ndarray:
    """Sum of x (T, B) float32 ≥ 0, +inf allowed, over each frame's window (prefix sums).      -> (T, B)"""
    T, B = x.shape
    if n.hi is None:  # future [t, end): suffix sums; past [0, t]: prefix sums (INF absorbs, no difference)
        return _cap(K.scan(x.astype(COST, copy=False), np.add, reverse=not n.past))  # (np.cumsum is slower)
    inf = x >= INF
    zero = np.zeros((1, B), COST)
    cs = np.concatenate([zero, K.scan(_only(x, ~inf).astype(COST, copy=False), np.add)])  # (T + 1, B): sum x[:k]
    ci = np.concatenate([zero, K.scan(inf.view(np.uint8).astype(COST), np.add)])
    t = np.arange(T)
    lo, hi = (t + n.lo, t + n.hi + 1) if not n.past else (t - n.hi, t - n.lo + 1)
    lo, hi = np.clip(lo, 0, T), np.clip(hi, 0, T)
    hi = np.maximum(hi, lo)
    return _cap(np.maximum(cs[hi] - cs[lo], (ci[hi] > ci[lo]).view(np.uint8) * INF))


def _position_bits(T: int) -> int:
    return max(1, int(T - 1).bit_length())


def _cost_field_max(T: int) -> int:
    """Costs above this compare equal in the window keys (2**14 - 1 at T = 100 000, 2**19 - 1 at 3 000)."""
    return (1 << (31 - _position_bits(T))) - 1


_NONE = np.iinfo(np.int64).min  # the key of a point outside the trace: below every real key


def _keys(y: np.ndarray, cost, late: bool, batch: Batch) -> tuple[np.ndarray, int]:
    """int64 keys ordering points by value y, then lower cost, then position (latest or earliest).

    Layout: the float32 order of y as a signed 32-bit integer | cost field (only when costs differ) | position
    field (pb bits); points outside the trace get `_NONE`."""
    T, _B = y.shape
    pb = _position_bits(T)
    bits = (y.astype(np.float32, copy=False) + np.float32(0)).view(np.int32)  # -0.0 → 0.0: equal values, equal keys
    order = (bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))).astype(np.int64)  # float order as int (branch-free)
    if np.ndim(cost) > 0:  # a scalar cost breaks no tie
        cmax = _cost_field_max(T)
        cq = cmax - np.minimum(np.asarray(cost, dtype=np.float64), cmax).astype(np.int64)  # exact integers
        key = (order << 31) | (cq << pb)
    else:
        key = order << pb
    key |= (np.arange(T, dtype=np.int64) if late else np.arange(T - 1, -1, -1, dtype=np.int64))[:, None]
    if batch.ragged:
        key = np.where(batch.valid, key, np.int64(_NONE))
    return key, pb


def _window_choice(n: CWindow, mode: int, memo: WitnessMemo) -> np.ndarray:
    """(T, B) int64: the child frame picked in each frame's window (-1: none in the trace)."""
    key_ = ("window", n, mode)
    if key_ not in memo.plans:
        x = memo.vals[n.c]
        y = x if mode == LOW else -x  # a max explained low picks its largest point; a min high its smallest
        late = not n.past  # ties: farthest from the evaluation point
        key, pb = _keys(y, _tie_cost(n, mode, memo), late, memo.batch)
        none = np.int64(_NONE)
        if n.hi is None:
            best = K.scan(key, np.maximum, reverse=not n.past)
        elif not n.past:
            best = K.future_window(key, n.lo, n.hi, np.maximum, none)
        else:
            best = K.past_window(key, n.lo, n.hi, np.maximum, none)
        pos = best & ((1 << pb) - 1)
        frame = pos if late else (x.shape[0] - 1 - pos)
        ok = best != none
        memo.plans[key_] = (frame + 1) * ok - 1  # -1 where the window holds no frame of the trace
    return memo.plans[key_]  # type: ignore[return-value]


def _tie_cost(n: CWindow, mode: int, memo: WitnessMemo):
    """The child's cost for breaking ties in n's picks, or a scalar when the position rule already picks the
    cheapest: a child that is an unbounded window of the same direction explained "all" (`F G φ`, `O H φ`) has
    costs monotone in t (nested suffixes / prefixes), smallest at the farthest frame."""
    c = n.c
    if isinstance(c, CWindow) and c.hi is None and c.past == n.past and _window_is_all(c, mode):
        return COST(1.0)
    return memo.cost(c, mode)


def _sparse_picks(n: CWindow, mode: int, memo: WitnessMemo, t: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The picked child frames for points (t, b) of an unbounded window, one point per trace: the same rule
    as `_window_choice`, as masked reductions over those traces only.                        -> (P,), -1 none"""
    T, B = memo.batch.shape
    every = b.size == B and bool((b == np.arange(B)).all())  # one point in every trace, in order
    x = memo.vals[n.c] if every else memo.vals[n.c][:, b]  # (T, P)
    y = x if mode == LOW else -x
    tt = np.arange(T, dtype=np.int32)[:, None]
    t = t.astype(np.int32)
    if not n.past:
        inside = (tt >= t) & (memo.batch.valid if every else memo.batch.valid[:, b])
    else:
        inside = tt <= t
    v = y.astype(np.float32) - np.float32(4) * ~inside  # branch-free mask: values live in [-1, 1]
    tie = inside & (v == v.max(axis=0))
    c = _tie_cost(n, mode, memo)
    if np.ndim(c) > 0:
        cc = np.minimum(np.asarray(c if every else c[:, b], np.float64), _cost_field_max(T))  # as in the keys
        cc = np.where(tie, cc, np.inf)
        tie &= cc == cc.min(axis=0)
    if not n.past:  # the latest tied frame
        f = ((tt + 1) * tie).max(axis=0) - 1
    else:  # the earliest
        f = T - ((T - tt) * tie).max(axis=0)
    return f * inside.any(axis=0) - ~inside.any(axis=0)


def _bounded_marks(n: CWindow, mode: int, m: np.ndarray, memo: WitnessMemo) -> np.ndarray:
    """Child marks of a bounded window's picks when costs break no tie: for each marked frame, the farthest
    offset whose value reaches the window's extreme (the node's own value), offsets farthest first."""
    T = m.shape[0]
    x, v = memo.vals[n.c], memo.vals[n]
    y, w = (x, v) if mode == LOW else (-x, -v)
    if memo.batch.ragged:
        y = y - np.float32(4) * ~memo.batch.valid  # never equal to a window extreme (values live in [-1, 1])
    todo, child = m.copy(), np.zeros_like(m)
    for j in range(min(n.hi, T - 1), n.lo - 1, -1):
        if not n.past:  # child frame t + j
            hit = todo[: T - j] & (y[j:] == w[: T - j])
            child[j:] |= hit
            todo[: T - j] &= ~hit
        else:  # child frame t - j
            hit = todo[j:] & (y[: T - j] == w[j:])
            child[: T - j] |= hit
            todo[j:] &= ~hit
    return child


def _push_window(n: CWindow, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """F/G/O/H: all deciding points of the marked windows, or each marked window's picked point."""
    if _window_is_all(n, mode):
        cover = _cover(n, m) & _deciding(memo.vals[n.c], mode)
        masks.add(n.c, mode, cover & memo.batch.valid if memo.batch.ragged else cover)
        return
    if n.hi is not None and ("window", n, mode) not in memo.plans and np.ndim(_tie_cost(n, mode, memo)) == 0:
        masks.add(n.c, mode, _bounded_marks(n, mode, m, memo))
        return
    t, b = _nonzero(m)
    if ("window", n, mode) in memo.plans:
        f = _window_choice(n, mode, memo)[t, b]
    elif n.hi is None and len(np.unique(b)) == len(b):
        f = _sparse_picks(n, mode, memo, t, b)
    else:
        f = _window_choice(n, mode, memo)[t, b]
    ok = f >= 0
    masks.scatter(n.c, mode, f[ok], b[ok])


def _cost_window(n: CWindow, mode: int, memo: WitnessMemo) -> np.ndarray:
    c = memo.costs[(n.c, mode)]
    if _window_is_all(n, mode):
        dec = _deciding(memo.vals[n.c], mode) & memo.batch.valid
        return _window_total(n, _only(c, dec))
    if np.ndim(c) == 0:  # every pick costs the same: INF only where the window holds no frame of the trace
        return c if n.lo == 0 else _or_inf(c, _window_nonempty(n, memo.batch))
    sel = _window_choice(n, mode, memo)
    picked = np.take_along_axis(memo.full(c), np.maximum(sel, 0), axis=0)
    return _or_inf(picked, sel >= 0)


def _window_nonempty(n: CWindow, batch: Batch) -> np.ndarray:
    """(T, B) bool: the window of the frame holds at least one frame of its trace."""
    t = np.arange(batch.shape[0])[:, None]
    if not n.past:
        return t + n.lo < batch.lengths[None, :]
    return t - n.lo >= 0


# ------------------------------------------------------------------------------ until / since chains
@dataclass
class _Chain:
    """An unbounded until/since explained in one mode, in "future" time order (since: reversed), per frame:
    `r_at`/`l_at` (T, B) where a reached frame marks r / l, `go` (T, B) where the chain moves on to the next
    frame."""

    r_at: np.ndarray
    l_at: np.ndarray
    go: np.ndarray


@dataclass
class _Steps:
    """The value side of a chain's per-frame choice (see `_chain`), in "future" time order."""

    r: np.ndarray  # (T, B) right operand
    l: np.ndarray  # (T, B) left operand
    nxt: np.ndarray  # (T, B) value of the rest of the chain, from t + 1
    valid: np.ndarray  # (T, B) frame inside the trace
    stop_ok: np.ndarray  # stopping here is a nearest miss
    cont_ok: np.ndarray  # continuing is a nearest miss
    goes: np.ndarray  # continuing explains the next frame too
    tie: np.ndarray  # both are nearest misses


def _rev(n: CUntil, x: np.ndarray) -> np.ndarray:
    """Time reversed for since (so one future-time implementation serves both)."""
    return x[::-1] if n.past else x


def _steps(n: CUntil, mode: int, memo: WitnessMemo) -> _Steps:
    """The unfolding l U r = r ∨ (l ∧ X(l U r)) at every frame: which choices are nearest misses."""
    key = ("steps", n, mode)
    if key not in memo.plans:
        r, l, rho = (_rev(n, memo.vals[x]) for x in (n.r, n.l, n))
        valid = _rev(n, memo.batch.valid)
        nxt = K.shift_left(rho, 1, np.ones((), rho.dtype) * (1 if n.weak else -1))
        if mode == LOW:  # stop = release at r; continue = l's failure, and the rest while it fails
            cont = np.minimum(l, nxt)
            stop_ok, cont_ok = r >= cont, cont >= r
            goes = cont_ok & (nxt <= 0)
        else:  # r wherever it holds; then stop on l where it is the weakest link, else continue
            pos = np.minimum(l, nxt) > 0
            stop_ok, cont_ok = ~pos | (l <= nxt), pos & (nxt <= l)
            goes = cont_ok
        memo.plans[key] = _Steps(r, l, nxt, valid, stop_ok, cont_ok, goes, stop_ok & cont_ok & valid)
    return memo.plans[key]  # type: ignore[return-value]


def _option_costs(n: CUntil, mode: int, s: _Steps, memo: WitnessMemo) -> tuple[np.ndarray, np.ndarray]:
    """(cost of stopping, cost of continuing without the next frame's), +inf where not a nearest miss."""
    key = ("options", n, mode)
    if key not in memo.plans:
        cr, cl = (_revc(n, memo.cost(x, mode)) for x in (n.r, n.l))
        if mode == LOW:
            rc, cc = cr, _only(cl, s.l <= 0)
        else:
            cc = _only(cr, s.r > 0)
            rc = _cap(cc + _only(cl, np.minimum(s.l, s.nxt) > 0))
        memo.plans[key] = (_or_inf(rc, s.stop_ok), _or_inf(cc, s.cont_ok))
    return memo.plans[key]  # type: ignore[return-value]


def _chain_cost(n: CUntil, mode: int, memo: WitnessMemo) -> np.ndarray:
    """(T, B) cost of the chain from each frame ("future" order): c(t) = min(stop, continue + c(t+1))."""
    key = ("chaincost", n, mode)
    if key not in memo.plans:
        s = _steps(n, mode, memo)
        rc, cc = _option_costs(n, mode, s, memo)
        alpha = _or_inf(_pick(s.goes, rc, np.minimum(rc, cc)), s.valid)
        beta = _or_inf(cc, s.valid & s.goes)
        memo.plans[key] = _no_zero(K.minplus_scan(alpha, beta, INF))
    return memo.plans[key]  # type: ignore[return-value]


def _chain(n: CUntil, mode: int, memo: WitnessMemo) -> _Chain:
    """Per-frame decisions: the nearest miss; where stopping and continuing tie, the cheaper (stop on a cost
    tie: fewer frames). Costs are computed only when some frame ties."""
    key = ("chain", n, mode)
    if key not in memo.plans:
        s = _steps(n, mode, memo)
        stop = s.stop_ok
        if s.tie.any() and _static_cost(n.r if mode == LOW else n.l, mode) != 1.0:
            # (a stop that costs one atom wins every tie: continuing explains at least one failing atom)
            rc, cc = _option_costs(n, mode, s, memo)
            after = _only(K.shift_left(_chain_cost(n, mode, memo), 1, INF), s.goes)
            stop = s.stop_ok & (~s.cont_ok | (rc <= _cap(cc + after)))
        if mode == LOW:
            r_at, l_at = stop, ~stop & (s.l <= 0)
        else:
            r_at, l_at = s.r > 0, stop & (np.minimum(s.l, s.nxt) > 0)
        memo.plans[key] = _Chain(r_at, l_at, ~stop & s.goes)
    return memo.plans[key]  # type: ignore[return-value]


def _reach(m: np.ndarray, go: np.ndarray) -> np.ndarray:
    """Frames on a chain from a marked frame: reach(k) = m(k) or (reach(k-1) and go(k-1)).   (T, B)"""
    T = m.shape[0]
    idx = np.arange(T, dtype=np.int32)[:, None]
    last_mark = K.scan((idx + 1) * m - 1, np.maximum)  # last marked frame ≤ k (-1: none)
    last_stop = K.shift_right(K.scan((idx + 1) * ~go - 1, np.maximum), 1, np.int32(-1))  # last stop < k
    return (last_mark >= 0) & (last_mark > last_stop)


def _push_until(n: CUntil, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    """l U r / l W r / l S r: the chains from the marked points; bounded until gathers each window."""
    if n.hi is not None:
        _push_bounded(n, mode, m, memo, masks)
        return
    ch = _chain(n, mode, memo)
    reach = _reach(_rev(n, m), ch.go)
    masks.add(n.r, mode, _rev(n, reach & ch.r_at))
    masks.add(n.l, mode, _rev(n, reach & ch.l_at))


def _cost_until(n: CUntil, mode: int, memo: WitnessMemo) -> np.ndarray:
    if n.hi is not None:
        return _cost_bounded(n, mode, memo)
    return _rev(n, _chain_cost(n, mode, memo))


# ------------------------------------------------------------------------------ bounded until (gathered)
@dataclass
class _Gathered:
    """The windows of P points (tt, bb) of a bounded until, as (P, W) arrays over offsets j."""

    bb: np.ndarray  # (P,) trace of each point
    cols: np.ndarray  # (P, W) frame t + j
    inb: np.ndarray  # (P, W) the frame lies inside its trace
    psi: np.ndarray  # (P, W) right operand there
    phi: np.ndarray  # (P, W) left operand there, +1 (min's identity) outside the trace
    excl: np.ndarray  # (P, W) min of the left operand over offsets 0..j-1
    g: np.ndarray  # (P, W) value of releasing at offset j
    cand: np.ndarray  # (P, W) offset j may release (inside the trace and the interval)
    cr: np.ndarray  # (P, W) cost of r there
    cl: np.ndarray  # (P, W) cost of l there


def _gather(n: CUntil, mode: int, tt: np.ndarray, bb: np.ndarray, memo: WitnessMemo) -> _Gathered:
    """Gather the hi + 1 offsets of the points (tt, bb) of a bounded (future, strong) until."""
    vals, batch = memo.vals, memo.batch
    T = batch.shape[0]
    W = max(1, min(int(n.hi) + 1, T))
    j = np.arange(W)
    cols = tt[:, None] + j
    inb = cols < batch.lengths[bb][:, None]
    cc, bcol = np.minimum(cols, T - 1), bb[:, None]
    psi = vals[n.r][cc, bcol].astype(np.float32)
    phi = np.where(inb, vals[n.l][cc, bcol].astype(np.float32), np.float32(1))
    pm = np.minimum.accumulate(phi, axis=1)
    excl = np.concatenate([np.ones((len(bb), 1), np.float32), pm[:, :-1]], axis=1)
    cr = memo.full(memo.cost(n.r, mode))[cc, bcol]
    cl = memo.full(memo.cost(n.l, mode))[cc, bcol]
    return _Gathered(bb, cols, inb, psi, phi, excl, np.minimum(psi, excl), inb & (j >= n.lo), cr, cl)


def _bounded_low(w: _Gathered) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low: the nearest release, then the cheapest, then the earliest. -> (r marks, l marks, cost) (P, W)x2, (P,)"""
    P, W = w.psi.shape
    lcost = _only(w.cl, w.inb & (w.phi <= 0))
    before = np.concatenate([np.zeros((P, 1), COST), np.cumsum(lcost, axis=1)[:, :-1]], axis=1)
    total = _cap(_only(w.cr, w.psi <= 0) + before)
    gm = np.where(w.cand, w.g, -np.inf)
    best = gm.max(axis=1)
    j = np.argmin(np.where(w.cand & (gm == best[:, None]), total, np.inf), axis=1)  # earliest on ties
    has = w.cand.any(axis=1)
    rows = np.arange(P)
    rmark = np.zeros((P, W), bool)
    rmark[rows, j] = has & (w.psi[rows, j] <= 0)
    lmark = (np.arange(W)[None, :] < j[:, None]) & w.inb & (w.phi <= 0) & has[:, None]
    return rmark, lmark, _or_inf(total[rows, j], has)


def _bounded_high(w: _Gathered) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High: every holding release is broken at r or at the earliest minimum of l before it."""
    P, W = w.psi.shape
    j_all = np.arange(W)
    pos = w.cand & (w.g > 0)
    prev = np.concatenate([np.full((P, 1), np.inf, np.float32), np.minimum.accumulate(w.phi, axis=1)[:, :-1]],
                          axis=1)
    am = np.maximum.accumulate((j_all[None, :] + 1) * (w.phi < prev) - 1, axis=1)  # earliest argmin of l[0..j]
    am_ex = np.concatenate([np.full((P, 1), -1), am[:, :-1]], axis=1)
    r_wins = (w.psi < w.excl) | (j_all[None, :] == 0)
    rmark = pos & r_wins
    lmark = np.zeros((P, W), bool)
    pi, ji = np.nonzero(pos & ~r_wins)
    lmark[pi, am_ex[pi, ji]] = True
    cost = _cap(_only(w.cr, rmark).sum(axis=1) + _only(w.cl, lmark).sum(axis=1))
    return rmark, lmark, cost


def _bounded_steps(n: CUntil, mode: int, tt: np.ndarray, bb: np.ndarray, memo: WitnessMemo):
    """Yield (gathered windows, r marks, l marks, cost) for the points (tt, bb) in memory-bounded chunks."""
    W = max(1, min(int(n.hi) + 1, memo.batch.shape[0]))
    step = max(1, _CHUNK // W)
    explain = _bounded_low if mode == LOW else _bounded_high
    for s in range(0, tt.size, step):
        w = _gather(n, mode, tt[s : s + step], bb[s : s + step], memo)
        yield (w, *explain(w))


def _push_bounded(n: CUntil, mode: int, m: np.ndarray, memo: WitnessMemo, masks: _Masks) -> None:
    t, b = _nonzero(m)
    for w, rmark, lmark, _ in _bounded_steps(n, mode, t, b, memo):
        pi, ji = np.nonzero(rmark)
        masks.scatter(n.r, mode, w.cols[pi, ji], w.bb[pi])
        pi, ji = np.nonzero(lmark)
        masks.scatter(n.l, mode, w.cols[pi, ji], w.bb[pi])


def _cost_bounded(n: CUntil, mode: int, memo: WitnessMemo) -> np.ndarray:
    out = np.full(memo.batch.shape, INF, COST)
    t, b = _nonzero(memo.batch.valid)
    k = 0
    for _w, _r, _l, cost in _bounded_steps(n, mode, t, b, memo):
        out[t[k : k + cost.size], b[k : k + cost.size]] = cost
        k += cost.size
    return out


# one push rule and one cost rule per kernel node type
_PUSH = {
    CAtom: _push_leaf,
    CConst: _push_leaf,
    CNot: _push_not,
    CAnd: _push_junction,
    COr: _push_junction,
    CNext: _push_next,
    CPrev: _push_prev,
    CWindow: _push_window,
    CUntil: _push_until,
}
_COST = {
    CAtom: _cost_atom,
    CConst: _cost_const,
    CNot: _cost_not,
    CAnd: _cost_junction,
    COr: _cost_junction,
    CNext: _cost_next,
    CPrev: _cost_prev,
    CWindow: _cost_window,
    CUntil: _cost_until,
}
