"""The monitor's small kernel language: every spec formula desugars into these nodes.

Sugar and its expansion (exact under min/max robustness, since negation is an involution):
  a -> b  = !a | b            a <-> b = (!a | b) & (a | !b)
  a R b   = !(!a U !b)        a M b   = !(!a W !b)        R[lo,hi] likewise from U[lo,hi]
Intervals in seconds become frames with fps: lo = ceil(lo·fps), hi = floor(hi·fps).
Nodes are frozen and hashable, so identical subformulas share one trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import MonitorError
from ..spec.ast import Atom, Binary, Compare, Const, Formula, Interval, Quoted, Unary


class Node:
    """Base of kernel nodes. Hashes are cached: nodes key the trace tables and deep formulas rehash a lot."""

    def children(self) -> tuple[Node, ...]:
        return ()


def _cached_hash(self) -> int:
    h = self.__dict__.get("_hash")
    if h is None:
        h = hash((type(self).__name__, *(getattr(self, f) for f in self.__dataclass_fields__)))
        object.__setattr__(self, "_hash", h)
    return h


def _node(cls):
    """Register a frozen dataclass as a kernel node with a cached hash."""
    cls.__hash__ = _cached_hash
    return cls


@_node
@dataclass(frozen=True)
class CAtom(Node):
    key: str  # canonical atom string
    source: Formula  # the Atom / Compare / Quoted it came from


@_node
@dataclass(frozen=True)
class CConst(Node):
    value: bool


@_node
@dataclass(frozen=True)
class CNot(Node):
    c: Node

    def children(self):
        return (self.c,)


@_node
@dataclass(frozen=True)
class CAnd(Node):
    cs: tuple[Node, ...]

    def children(self):
        return self.cs


@_node
@dataclass(frozen=True)
class COr(Node):
    cs: tuple[Node, ...]

    def children(self):
        return self.cs


@_node
@dataclass(frozen=True)
class CNext(Node):
    c: Node
    weak: bool

    def children(self):
        return (self.c,)


@_node
@dataclass(frozen=True)
class CPrev(Node):
    c: Node

    def children(self):
        return (self.c,)


@_node
@dataclass(frozen=True)
class CWindow(Node):
    """F ('max') / G ('min') over [t+lo, t+hi], or past O / H over [t-hi, t-lo]; hi None = to the end."""

    c: Node
    kind: str  # "max" | "min"
    past: bool
    lo: int
    hi: int | None

    def children(self):
        return (self.c,)


@_node
@dataclass(frozen=True)
class CUntil(Node):
    """l U[lo,hi] r (weak=False) or l W r (weak=True); past=True is l S r."""

    l: Node
    r: Node
    lo: int
    hi: int | None
    weak: bool
    past: bool = False

    def children(self):
        return (self.l, self.r)


def _frames(iv: Interval | None, fps: float | None) -> tuple[int, int | None]:
    if iv is None:
        return 0, None
    if iv.unit == "f":
        return int(iv.lo), int(iv.hi)
    if fps is None or not fps > 0:
        raise MonitorError(f"interval {iv.text()} is in seconds: pass fps (frames per second) to the monitor")
    lo = math.ceil(iv.lo * fps - 1e-9)
    hi = math.floor(iv.hi * fps + 1e-9)
    if hi < lo:
        raise MonitorError(f"interval {iv.text()} contains no frame at {fps:g} fps")
    return lo, hi


def neg(n: Node) -> Node:
    """Negation with double negations removed."""
    return n.c if isinstance(n, CNot) else CNot(n)


def _flat(cls, parts: list[Node]) -> Node:
    out: list[Node] = []
    for p in parts:
        out.extend(p.cs if isinstance(p, cls) else (p,))
    return cls(tuple(out))


def lower(f: Formula, fps: float | None = None) -> Node:
    """Desugar a spec formula into kernel nodes (seconds resolved with `fps`)."""
    if isinstance(f, Const):
        return CConst(f.value)
    if isinstance(f, (Atom, Compare, Quoted)):
        return CAtom(f.canonical, f)
    if isinstance(f, Unary):
        c = lower(f.child, fps)
        op = f.op
        if op == "!":
            return neg(c)
        if op in ("X", "WX"):
            return CNext(c, weak=op == "WX")
        if op == "Y":
            return CPrev(c)
        lo, hi = _frames(f.interval, fps)
        kind = "max" if op in ("F", "O") else "min"
        return CWindow(c, kind, op in ("O", "H"), lo, hi)
    if isinstance(f, Binary):
        l, r = lower(f.left, fps), lower(f.right, fps)
        op = f.op
        if op == "&":
            return _flat(CAnd, [l, r])
        if op == "|":
            return _flat(COr, [l, r])
        if op == "->":
            return _flat(COr, [neg(l), r])
        if op == "<->":
            return CAnd((_flat(COr, [neg(l), r]), _flat(COr, [l, neg(r)])))
        lo, hi = _frames(f.interval, fps)
        if op == "U":
            return CUntil(l, r, lo, hi, weak=False)
        if op == "W":
            return CUntil(l, r, 0, None, weak=True)
        if op == "R":
            return neg(CUntil(neg(l), neg(r), lo, hi, weak=False))
        if op == "M":
            return neg(CUntil(neg(l), neg(r), 0, None, weak=True))
        if op == "S":
            return CUntil(l, r, 0, None, weak=False, past=True)
    raise TypeError(f"not a formula node: {f!r}")


def topo(roots: list[Node]) -> list[Node]:
    """All nodes reachable from `roots`, children before parents, each once (iterative, no recursion limit)."""
    order: list[Node] = []
    seen: set[Node] = set()
    stack: list[tuple[Node, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            order.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(n.children()) if c not in seen)
    return order
