"""The operator table: every fact about a formula operator, in one place.

`Op` names the operators (its values are the symbols the grammar reads); `OPS[op]` (or `op.info`) is the
frozen `OpInfo` row the printer (precedence, associativity), the English renderer (words), the parser
(which operators take an interval), the monitor's lowering (kernel primitive or desugaring) and spec cuts
(temporal or not) read instead of branching on operator strings. `Cmp` / `CMPS` do the same for the
comparisons inside atoms (`dist(a, b) < 0.05`).

Adding an operator: a row here, its token in grammar.lark (tests/test_spec.py checks the two agree), and,
unless it desugars into the existing ones, one kernel in ltlreward/ltlf (a node in core.py, its evaluation
in traces.py and its witness rule in witness.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class _Symbol(str, Enum):
    """An enum whose members are their symbols: equal to, hashed, printed and repr'd as the plain string
    (so AST nodes compare, hash and print exactly as when they held strings)."""

    __str__ = str.__str__
    __format__ = str.__format__
    __repr__ = str.__repr__


class Op(_Symbol):
    """A formula operator; the value is its symbol in the spec language (so `Op.UNTIL == "U"`)."""

    NOT = "!"
    NEXT = "X"
    WEAK_NEXT = "WX"
    EVENTUALLY = "F"
    ALWAYS = "G"
    YESTERDAY = "Y"
    ONCE = "O"
    HISTORICALLY = "H"
    AND = "&"
    OR = "|"
    IMPLIES = "->"
    IFF = "<->"
    UNTIL = "U"
    RELEASE = "R"
    WEAK_UNTIL = "W"
    STRONG_RELEASE = "M"
    SINCE = "S"

    @property
    def info(self) -> OpInfo:
        """This operator's row of the table."""
        return OPS[self]


class Kernel(_Symbol):
    """The monitor's primitive node an operator lowers to (ltlreward/ltlf/core.py has one builder per kind)."""

    NOT = "not"
    AND = "and"
    OR = "or"
    NEXT = "next"  # x at t+1; weak: true past the end
    PREV = "prev"  # x at t-1; false before frame 0
    WINDOW = "window"  # max (strong: F O) or min (weak: G H) over a future or past window
    UNTIL = "until"  # l U r (strong) / l W r (weak); past: l S r


@dataclass(frozen=True)
class OpInfo:
    """One operator's facts.

    `weak` is the finite-trace reading at the end of the trace (or before its start, for past operators):
    a weak operator holds there (WX, G, H, W, R), a strong one fails (X, F, Y, O, U, M, S); None for the
    Boolean connectives. `prec` is the binding strength (larger binds tighter; atoms bind tightest) and
    `assoc` is "prefix", "left" or "right". `english` is the renderer's template ({c}: the operand, {l} {r}:
    the operands, {iv}: the window of a bounded binary); `english_bounded` the template of a unary with an
    interval ({w}: the window). Exactly one of `kernel` (a primitive) and `desugar` (a formula over the
    operands `a` and `b` in the spec language; a bounded sugar passes its interval to the bounded
    operator inside) says how the monitor evaluates it.
    """

    op: Op
    name: str
    arity: int
    temporal: bool
    prec: int
    assoc: str
    english: str
    past: bool = False
    weak: bool | None = None
    boundable: bool = False
    english_bounded: str = ""
    junction: bool = False  # & and |: chains of one junction read without brackets in English
    kernel: Kernel | None = None
    desugar: str = ""

    @property
    def symbol(self) -> str:
        """The operator as written in the grammar."""
        return self.op.value

    @property
    def is_word(self) -> bool:
        """A letter operator (X, U, …): a reserved word, printed with a space before its operand."""
        return self.symbol.isalpha()


_UNARY, _TEMPORAL_BINARY = 6, 5  # precedence levels; the Boolean binaries sit below, loosest first
_ROWS = (
    OpInfo(Op.NOT, "not", 1, False, _UNARY, "prefix", "it is not the case that {c}", kernel=Kernel.NOT),
    OpInfo(Op.NEXT, "next", 1, True, _UNARY, "prefix", "at the next frame, {c}", weak=False,
           kernel=Kernel.NEXT),
    OpInfo(Op.WEAK_NEXT, "weak next", 1, True, _UNARY, "prefix", "at the next frame (if there is one), {c}",
           weak=True, kernel=Kernel.NEXT),
    OpInfo(Op.EVENTUALLY, "eventually", 1, True, _UNARY, "prefix", "eventually, {c}", weak=False,
           boundable=True, english_bounded="at some moment {w}, {c}", kernel=Kernel.WINDOW),
    OpInfo(Op.ALWAYS, "always", 1, True, _UNARY, "prefix", "always, {c}", weak=True, boundable=True,
           english_bounded="at every moment {w}, {c}", kernel=Kernel.WINDOW),
    OpInfo(Op.YESTERDAY, "yesterday", 1, True, _UNARY, "prefix", "at the previous frame, {c}", past=True,
           weak=False, kernel=Kernel.PREV),
    OpInfo(Op.ONCE, "once", 1, True, _UNARY, "prefix", "at some moment so far, {c}", past=True, weak=False,
           boundable=True, english_bounded="at some moment {w}, {c}", kernel=Kernel.WINDOW),
    OpInfo(Op.HISTORICALLY, "historically", 1, True, _UNARY, "prefix", "at every moment so far, {c}",
           past=True, weak=True, boundable=True, english_bounded="at every moment {w}, {c}",
           kernel=Kernel.WINDOW),
    OpInfo(Op.AND, "and", 2, False, 4, "left", "{l} and {r}", junction=True, kernel=Kernel.AND),
    OpInfo(Op.OR, "or", 2, False, 3, "left", "{l} or {r}", junction=True, kernel=Kernel.OR),
    OpInfo(Op.IMPLIES, "implies", 2, False, 2, "right", "if {l}, then {r}", desugar="!a | b"),
    OpInfo(Op.IFF, "iff", 2, False, 1, "left", "{l} exactly when {r}", desugar="(!a | b) & (a | !b)"),
    OpInfo(Op.UNTIL, "until", 2, True, _TEMPORAL_BINARY, "right", "{l} until {r}{iv}, which must happen",
           weak=False, boundable=True, kernel=Kernel.UNTIL),
    OpInfo(Op.RELEASE, "release", 2, True, _TEMPORAL_BINARY, "right",
           "{r}, until and including the moment {l}{iv}, or forever", weak=True, boundable=True,
           desugar="!(!a U !b)"),
    OpInfo(Op.WEAK_UNTIL, "weak until", 2, True, _TEMPORAL_BINARY, "right", "{l} until {r}, or forever",
           weak=True, kernel=Kernel.UNTIL),
    OpInfo(Op.STRONG_RELEASE, "strong release", 2, True, _TEMPORAL_BINARY, "right",
           "{r}, until and including the moment {l}, which must happen", weak=False, desugar="!(!a W !b)"),
    OpInfo(Op.SINCE, "since", 2, True, _TEMPORAL_BINARY, "right", "{l} ever since {r}", past=True, weak=False,
           kernel=Kernel.UNTIL),
)
OPS: dict[Op, OpInfo] = {row.op: row for row in _ROWS}
ATOM_PREC = max(row.prec for row in _ROWS) + 1  # atoms, constants and comparisons bind tightest


def ops_where(pred: Callable[[OpInfo], bool]) -> tuple[Op, ...]:
    """The operators whose row satisfies `pred`, in table order."""
    return tuple(row.op for row in _ROWS if pred(row))


def takes_no_interval(op: Op | str) -> str:
    """The error text for an interval on an operator the table does not bound."""
    bounded = " ".join(ops_where(lambda o: o.boundable))
    return f"operator {op} takes no interval (bounded operators: {bounded})"


# ------------------------------------------------------------------------------------------ comparisons
class Cmp(_Symbol):
    """A comparison between numeric terms; the value is its symbol."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="

    @property
    def info(self) -> CmpInfo:
        """This comparison's row of the table."""
        return CMPS[self]


@dataclass(frozen=True)
class CmpInfo:
    """A comparison's facts: its Boolean test, which side must be larger (`upper`: the right), its words."""

    cmp: Cmp
    test: Callable
    upper: bool  # True for < and <=: the robustness margin is right - left, else left - right
    english: str


CMPS: dict[Cmp, CmpInfo] = {
    row.cmp: row
    for row in (
        CmpInfo(Cmp.LT, operator.lt, True, "is below"),
        CmpInfo(Cmp.LE, operator.le, True, "is at most"),
        CmpInfo(Cmp.GT, operator.gt, False, "is above"),
        CmpInfo(Cmp.GE, operator.ge, False, "is at least"),
    )
}

__all__ = ["ATOM_PREC", "CMPS", "OPS", "Cmp", "CmpInfo", "Kernel", "Op", "OpInfo", "ops_where", "takes_no_interval"]
