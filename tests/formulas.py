"""Random formulas and a brute-force reference semantics straight from the definitions (test oracle)."""

from __future__ import annotations

import numpy as np

from ltlreward.spec.ast import Atom, Binary, Call, Const, Formula, Interval, Unary

ATOMS = ("a", "b", "c")
FUTURE_UNARY = ("!", "X", "WX", "F", "G")
PAST_UNARY = ("Y", "O", "H")
FUTURE_BINARY = ("&", "|", "->", "<->", "U", "R", "W", "M")
PAST_BINARY = ("S",)


def random_formula(rng: np.random.Generator, depth: int, *, past: bool = True, bounded: bool = True,
                   ops_unary=None, ops_binary=None, consts: bool = True) -> Formula:
    """A random formula over ATOMS; intervals on F G U R (and O H when past)."""
    ops_unary = ops_unary or (FUTURE_UNARY + (PAST_UNARY if past else ()))
    ops_binary = ops_binary or (FUTURE_BINARY + (PAST_BINARY if past else ()))
    if depth == 0 or rng.random() < 0.2:
        r = rng.random()
        if consts and r < 0.05:
            return Const(bool(rng.integers(2)))
        return Atom(Call(str(rng.choice(ATOMS))))
    if rng.random() < 0.45:
        op = str(rng.choice(ops_unary))
        iv = None
        if bounded and op in ("F", "G", "O", "H") and rng.random() < 0.4:
            lo = int(rng.integers(0, 4))
            iv = Interval(lo, lo + int(rng.integers(0, 4)))
        return Unary(op, random_formula(rng, depth - 1, past=past, bounded=bounded, ops_unary=ops_unary,
                                        ops_binary=ops_binary, consts=consts), iv)
    op = str(rng.choice(ops_binary))
    iv = None
    if bounded and op in ("U", "R") and rng.random() < 0.4:
        lo = int(rng.integers(0, 4))
        iv = Interval(lo, lo + int(rng.integers(0, 4)))
    kw = dict(past=past, bounded=bounded, ops_unary=ops_unary, ops_binary=ops_binary, consts=consts)
    return Binary(op, random_formula(rng, depth - 1, **kw), random_formula(rng, depth - 1, **kw), iv)


def reference(f: Formula, s: dict[str, np.ndarray], t: int, L: int) -> float:
    """ρ(f, t) on one trace of length L, computed literally from SPEC_LANGUAGE.md's definitions."""
    if isinstance(f, Const):
        return 1.0 if f.value else -1.0
    if isinstance(f, Atom):
        return float(s[f.canonical][t]) if 0 <= t < L else -1.0
    if isinstance(f, Unary):
        op, c = f.op, f.child
        if op == "!":
            return -reference(c, s, t, L)
        if op == "X":
            return reference(c, s, t + 1, L) if t + 1 < L else -1.0
        if op == "WX":
            return reference(c, s, t + 1, L) if t + 1 < L else 1.0
        if op == "Y":
            return reference(c, s, t - 1, L) if t - 1 >= 0 else -1.0
        lo, hi = (int(f.interval.lo), int(f.interval.hi)) if f.interval else (0, None)
        if op in ("F", "G"):
            last = L - 1 if hi is None else min(L - 1, t + hi)
            vals = [reference(c, s, u, L) for u in range(t + lo, last + 1)]
            if op == "F":
                return max(vals) if vals else -1.0
            return min(vals) if vals else 1.0
        first = 0 if hi is None else max(0, t - hi)
        vals = [reference(c, s, u, L) for u in range(first, t - lo + 1)]
        if op == "O":
            return max(vals) if vals else -1.0
        return min(vals) if vals else 1.0
    if isinstance(f, Binary):
        op, l, r = f.op, f.left, f.right
        if op == "&":
            return min(reference(l, s, t, L), reference(r, s, t, L))
        if op == "|":
            return max(reference(l, s, t, L), reference(r, s, t, L))
        if op == "->":
            return max(-reference(l, s, t, L), reference(r, s, t, L))
        if op == "<->":
            x, y = reference(l, s, t, L), reference(r, s, t, L)
            return min(max(-x, y), max(x, -y))
        if op in ("U", "W"):
            lo, hi = (int(f.interval.lo), int(f.interval.hi)) if f.interval else (0, None)
            last = L - 1 if hi is None else min(L - 1, t + hi)
            best = -1.0
            for u in range(t + lo, last + 1):
                v = reference(r, s, u, L)
                for k in range(t, u):
                    v = min(v, reference(l, s, k, L))
                best = max(best, v)
            if op == "W":
                g = 1.0
                for k in range(t, L):
                    g = min(g, reference(l, s, k, L))
                best = max(best, g)
            return best
        if op == "R":
            return -reference(Binary("U", Unary("!", l), Unary("!", r), f.interval), s, t, L)
        if op == "M":
            return -reference(Binary("W", Unary("!", l), Unary("!", r)), s, t, L)
        if op == "S":
            best = -1.0
            for u in range(t, -1, -1):
                v = reference(r, s, u, L)
                for k in range(u + 1, t + 1):
                    v = min(v, reference(l, s, k, L))
                best = max(best, v)
            return best
    raise TypeError(f)


def random_signals(rng: np.random.Generator, B: int, T: int, *, boolean: bool = False) -> dict[str, np.ndarray]:
    if boolean:
        return {k: rng.integers(0, 2, size=(B, T)).astype(bool) for k in ATOMS}
    levels = np.array([-1.0, -0.6, -0.25, 0.0, 0.25, 0.5, 1.0], dtype=np.float32)
    return {k: rng.choice(levels, size=(B, T)) for k in ATOMS}
