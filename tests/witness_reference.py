"""A reference for violation witnesses, written point by point from the rules in ltlreward/ltlf/witness.py
(test oracle for the batched implementation): recursion over kernel nodes and frames, no arrays.

Given the monitor's node values on one trace, `reference_witness` returns the set of (atom key, frame) the
rules mark: "all" rules mark every deciding child point, "pick" rules the nearest child point, then the one
with the smallest cost (atom instances below it, INF when no flip helps), then the farthest frame (windows)
or the first child (∧/∨); until/since follow their one-step unfolding; bounded until picks the nearest,
cheapest, earliest release.
"""

from __future__ import annotations

import functools

import numpy as np

from ltlreward.ltlf.core import CAnd, CAtom, CConst, CNext, CNot, COr, CPrev, CUntil, CWindow, Node

LOW, HIGH = 0, 1
INF = float(2.0**100)


def _flip(mode: int) -> int:
    return HIGH if mode == LOW else LOW


def _deciding(v: float, mode: int) -> bool:
    return v <= 0 if mode == LOW else v > 0


class Reference:
    """Costs and explanations of one trace of length L; `val(n, t)` is the monitor's value of n at t."""

    def __init__(self, vals: dict[Node, np.ndarray], column: int, L: int) -> None:
        self.vals, self.b, self.L = vals, column, L
        self.cost = functools.lru_cache(maxsize=None)(self._cost)

    def val(self, n: Node, t: int) -> float:
        return float(self.vals[n][t, self.b])

    def y(self, n: Node, mode: int, t: int) -> float:
        """The value a pick maximises: the value explained low, its negation explained high."""
        return self.val(n, t) if mode == LOW else -self.val(n, t)

    # ------------------------------------------------------------------ the choices
    def window_frames(self, n: CWindow, t: int) -> list[int]:
        if not n.past:
            hi = self.L - 1 if n.hi is None else min(self.L - 1, t + n.hi)
            return list(range(t + n.lo, hi + 1))
        lo = 0 if n.hi is None else max(0, t - n.hi)
        return list(range(lo, t - n.lo + 1))

    def window_pick(self, n: CWindow, mode: int, t: int) -> int | None:
        frames = self.window_frames(n, t)
        if not frames:
            return None
        far = (lambda u: u) if not n.past else (lambda u: -u)  # farthest from t
        return max(frames, key=lambda u: (self.y(n.c, mode, u), -self.cost(n.c, mode, u), far(u)))

    def junction_pick(self, n: CAnd | COr, mode: int, t: int) -> Node:
        return max(n.cs, key=lambda c: (self.y(c, mode, t), -self.cost(c, mode, t), -n.cs.index(c)))

    def nxt(self, n: CUntil, t: int) -> float:
        """The value of the rest of the chain after t (past the end: the weak/strong identity)."""
        u = t + 1 if not n.past else t - 1
        if 0 <= u < self.L:
            return self.val(n, u)
        return 1.0 if n.weak else -1.0

    def step(self, n: CUntil, mode: int, t: int) -> tuple[bool, bool]:
        """(stop here, go on to the next frame) of the unfolding at t."""
        r, l, nx = self.val(n.r, t), self.val(n.l, t), self.nxt(n, t)
        if mode == LOW:
            cont = min(l, nx)
            stop_ok, cont_ok, goes = r >= cont, cont >= r, cont >= r and nx <= 0
            rc, cc = self.cost(n.r, LOW, t), (self.cost(n.l, LOW, t) if l <= 0 else 0.0)
        else:
            pos = min(l, nx) > 0
            stop_ok, cont_ok = (not pos) or l <= nx, pos and nx <= l
            goes = cont_ok
            here = self.cost(n.r, HIGH, t) if r > 0 else 0.0
            rc, cc = here + (self.cost(n.l, HIGH, t) if pos else 0.0), here
        rest = self.chain_cost(n, mode, t + (1 if not n.past else -1)) if goes else 0.0
        stop = stop_ok and (not cont_ok or min(rc, INF) <= min(cc + rest, INF))
        return stop, (not stop) and goes

    def chain_cost(self, n: CUntil, mode: int, t: int) -> float:
        if not 0 <= t < self.L:
            return INF
        return self.cost(n, mode, t)

    def bounded_pick(self, n: CUntil, mode: int, t: int):
        """LOW: the release offset j (nearest, cheapest, earliest) or None. HIGH: the marked points."""
        js = [j for j in range(n.lo, n.hi + 1) if t + j < self.L]

        def g(j):
            return min([self.val(n.r, t + j)] + [self.val(n.l, t + i) for i in range(j)])

        def total(j):
            c = self.cost(n.r, LOW, t + j) if self.val(n.r, t + j) <= 0 else 0.0
            return min(INF, c + sum(self.cost(n.l, LOW, t + i) for i in range(j) if self.val(n.l, t + i) <= 0))

        if mode == LOW:
            return max(js, key=lambda j: (g(j), -total(j), -j)) if js else None
        marks = []
        for j in js:
            if g(j) <= 0:
                continue
            excl = min([1.0] + [self.val(n.l, t + i) for i in range(j)])
            if j == 0 or self.val(n.r, t + j) < excl:
                marks.append((n.r, t + j))
            else:  # the earliest minimum of l before the release
                vals = [self.val(n.l, t + i) for i in range(j)]
                marks.append((n.l, t + int(np.argmin(vals))))
        return marks

    # ------------------------------------------------------------------ costs
    def _cost(self, n: Node, mode: int, t: int) -> float:
        if isinstance(n, CAtom):
            return 1.0
        if isinstance(n, CConst):
            return INF
        if isinstance(n, CNot):
            return self.cost(n.c, _flip(mode), t)
        if isinstance(n, CNext):
            return self.cost(n.c, mode, t + 1) if t + 1 < self.L else INF
        if isinstance(n, CPrev):
            return self.cost(n.c, mode, t - 1) if t >= 1 else INF
        parts = self.children_at(n, mode, t)
        if parts is None:  # a pick with nothing to pick
            return INF
        total = min(INF, sum(self.cost(c, mode, u) for c, u in parts))
        return INF if total == 0 else total  # marking nothing explains nothing

    def children_at(self, n: Node, mode: int, t: int) -> list[tuple[Node, int]] | None:
        """The child points n's rule explains at t (chains: every frame of the chain); None: a pick with no
        candidate."""
        if isinstance(n, (CAnd, COr)):
            if isinstance(n, CAnd) == (mode == LOW):
                return [(c, t) for c in n.cs if _deciding(self.val(c, t), mode)]
            return [(self.junction_pick(n, mode, t), t)]
        if isinstance(n, CWindow):
            if (n.kind == "min") == (mode == LOW):
                return [(n.c, u) for u in self.window_frames(n, t) if _deciding(self.val(n.c, u), mode)]
            u = self.window_pick(n, mode, t)
            return None if u is None else [(n.c, u)]
        if isinstance(n, CUntil):
            return self.until_points(n, mode, t)
        raise TypeError(n)

    def until_points(self, n: CUntil, mode: int, t: int) -> list[tuple[Node, int]]:
        if n.hi is not None:
            if mode == HIGH:
                return self.bounded_pick(n, HIGH, t)
            j = self.bounded_pick(n, LOW, t)
            if j is None:
                return None
            pts = [(n.l, t + i) for i in range(j) if self.val(n.l, t + i) <= 0]
            return pts + ([(n.r, t + j)] if self.val(n.r, t + j) <= 0 else [])
        pts, k, d = [], t, (1 if not n.past else -1)
        while 0 <= k < self.L:
            stop, go = self.step(n, mode, k)
            r, l = self.val(n.r, k), self.val(n.l, k)
            if mode == LOW:
                pts += [(n.r, k)] if stop else ([(n.l, k)] if l <= 0 else [])
            else:
                pts += [(n.r, k)] if r > 0 else []
                pts += [(n.l, k)] if stop and min(l, self.nxt(n, k)) > 0 else []
            if not go:
                break
            k += d
        return pts

    # ------------------------------------------------------------------ explanations
    def explain(self, n: Node, mode: int, t: int) -> set[tuple[str, int]]:
        if isinstance(n, CAtom):
            return {(n.key, t)}
        if isinstance(n, CConst):
            return set()
        if isinstance(n, CNot):
            return self.explain(n.c, _flip(mode), t)
        if isinstance(n, CNext):
            return self.explain(n.c, mode, t + 1) if t + 1 < self.L else set()
        if isinstance(n, CPrev):
            return self.explain(n.c, mode, t - 1) if t >= 1 else set()
        out: set[tuple[str, int]] = set()
        for c, u in self.children_at(n, mode, t) or ():
            out |= self.explain(c, mode, u)
        return out


def reference_witness(root: Node, vals: dict[Node, np.ndarray], column: int, L: int) -> set[tuple[str, int]]:
    """The (atom key, frame) points the witness rules mark for a violated root on trace `column` (length L)."""
    if L == 0 or float(vals[root][0, column]) > 0:
        return set()
    return Reference(vals, column, L).explain(root, LOW, 0)
