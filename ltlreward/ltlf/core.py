"""The monitor's small kernel language: every spec formula lowers into these nodes.

Which node an operator becomes is read from the operator table (ltlreward/spec/ops.py): a row names its
kernel primitive (`Kernel`; one builder each in `_KERNELS`, with `weak`/`past` from the row) or gives its
desugaring as a formula over the operands, expanded here (exact under min/max robustness, since negation
is an involution):
  a -> b  = !a | b            a <-> b = (!a | b) & (a | !b)
  a R b   = !(!a U !b)        a M b   = !(!a W !b)        R[lo,hi] likewise from U[lo,hi]
Intervals in seconds become frames with fps: lo = ceil(lo·fps), hi = floor(hi·fps).
Nodes are frozen and hashable, so identical subformulas share one trace. Once the trace length is known,
`clamp_windows` cuts window bounds beyond it (exact: see there), so `F[0,100000000] a` costs what `F a` does.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import MonitorError
from ..spec.ast import Atom, Binary, Compare, Const, Formula, Interval, Quoted, Unary
from ..spec.ops import Kernel, Op, OpInfo


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
    rule = _LOWER.get(type(f))
    if rule is None:
        raise TypeError(f"not a formula node: {f!r}")
    operands: list[Node] = []
    for c in f.children():  # a plain loop: one Python frame per nesting level
        operands.append(lower(c, fps))
    return rule(f, tuple(operands), fps)


def _lower_atom(f: Formula, operands: tuple[Node, ...], fps: float | None) -> Node:
    return CAtom(f.canonical, f)


def _lower_operator(f: Unary | Binary, operands: tuple[Node, ...], fps: float | None) -> Node:
    return build(f.info, operands, f.interval, fps)


# one rule per spec node type: (node, its lowered operands, fps) -> kernel node
_LOWER: dict[type, Callable[[Formula, tuple[Node, ...], float | None], Node]] = {
    Const: lambda f, operands, fps: CConst(f.value),
    Atom: _lower_atom,
    Compare: _lower_atom,
    Quoted: _lower_atom,
    Unary: _lower_operator,
    Binary: _lower_operator,
}


def build(info: OpInfo, operands: tuple[Node, ...], iv: Interval | None, fps: float | None) -> Node:
    """The kernel node of operator `info` over lowered operands: its primitive, or its desugaring."""
    if info.kernel is None:
        env = dict(zip(_OPERAND_NAMES, operands, strict=False))
        return _expand(_desugaring(info.op), env, iv, fps)
    return _KERNELS[info.kernel](info, operands, iv, fps)


_OPERAND_NAMES = ("a", "b")  # how the table's desugarings name the operands


@functools.cache
def _desugaring(op: Op) -> Formula:
    """The table's desugaring of `op`, parsed once."""
    from ..spec.parser import parse_formula

    return parse_formula(op.info.desugar)


def _expand(t: Formula, env: dict[str, Node], iv: Interval | None, fps: float | None) -> Node:
    """Lower a desugaring template: operand atoms are `env`'s nodes; its bounded operator gets `iv`."""
    if t.is_atom:
        return env[t.canonical]
    info = t.info
    operands = tuple(_expand(c, env, iv, fps) for c in t.children())
    return build(info, operands, iv if info.boundable else None, fps)


# one builder per kernel primitive; `weak` and `past` come from the operator's row
def _window_node(info: OpInfo, ops: tuple[Node, ...], iv: Interval | None, fps: float | None) -> Node:
    lo, hi = _frames(iv, fps)
    return CWindow(ops[0], "min" if info.weak else "max", info.past, lo, hi)


def _until_node(info: OpInfo, ops: tuple[Node, ...], iv: Interval | None, fps: float | None) -> Node:
    lo, hi = _frames(iv, fps)
    return CUntil(ops[0], ops[1], lo, hi, weak=info.weak, past=info.past)


_KERNELS: dict[Kernel, Callable[[OpInfo, tuple[Node, ...], Interval | None, float | None], Node]] = {
    Kernel.NOT: lambda info, ops, iv, fps: neg(ops[0]),
    Kernel.AND: lambda info, ops, iv, fps: _flat(CAnd, list(ops)),
    Kernel.OR: lambda info, ops, iv, fps: _flat(COr, list(ops)),
    Kernel.NEXT: lambda info, ops, iv, fps: CNext(ops[0], weak=info.weak),
    Kernel.PREV: lambda info, ops, iv, fps: CPrev(ops[0]),
    Kernel.WINDOW: _window_node,
    Kernel.UNTIL: _until_node,
}


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


def clamp_windows(roots: list[Node], horizon: int) -> list[Node]:
    """`roots` with every interval bound above `horizon` (the longest trace) lowered to it. Exact: past a
    trace's end a window meets only its fill value (-1 for max, +1 for min, -1 for an until's right side),
    and a bound cut to `horizon` still reaches one such position from every frame, past or future."""
    memo: dict[Node, Node] = {}
    for n in topo(roots):
        changes: dict[str, object] = {}
        for f in dataclasses.fields(n):
            v = getattr(n, f.name)
            if isinstance(v, Node):
                nv: object = memo[v]
            elif isinstance(v, tuple) and v and isinstance(v[0], Node):
                nv = tuple(memo[c] for c in v)
            elif f.name in ("lo", "hi") and isinstance(v, int) and v > horizon:
                nv = horizon
            else:
                continue
            if nv is not v and not (isinstance(v, tuple) and all(a is b for a, b in zip(v, nv, strict=True))):
                changes[f.name] = nv
        memo[n] = dataclasses.replace(n, **changes) if changes else n
    return [memo[r] for r in roots]


def atom_nodes(order: Iterable[Node]) -> list[CAtom]:
    """The atom nodes among `order`, in its order."""
    return [n for n in order if isinstance(n, CAtom)]
