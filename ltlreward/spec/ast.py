"""Immutable AST of formulas and task specs. Nodes hold data only; semantics live in visitors elsewhere.

Operator nodes store an `Op` (spec/ops.py): the table says everything else about it. Construction checks
the operator (known, right arity, interval only where the table allows one), so a node built in code is
as valid as a parsed one.

Every node is a frozen, hashable dataclass, so equal subformulas compare and hash equal (the monitor
shares their traces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import SpecError
from ..reward_modes import REWARD_MODES as _REWARD_MODES
from .ops import OPS, Cmp, Op, OpInfo, ops_where, takes_no_interval
from .units import UNITS, Quantity, fmt_number

Scalar = str | int | float | Quantity  # an argument: entity/identifier name, a number, a number with a unit
_fmt_number = fmt_number


def fmt_scalar(v: Scalar) -> str:
    """Canonical text of an argument value."""
    if isinstance(v, str):
        return v
    if isinstance(v, Quantity):
        return v.canonical
    return _fmt_number(v)


# ----------------------------------------------------------------------------------------------- terms
@dataclass(frozen=True)
class Num:
    """A numeric literal inside a comparison, with an optional unit suffix (spec/units.py; "" = bare)."""

    value: float
    unit: str = ""

    def __post_init__(self) -> None:
        if self.unit and self.unit not in UNITS:
            raise SpecError(f"unknown unit {self.unit!r} (units: {', '.join(UNITS)})")

    @property
    def canonical(self) -> str:
        return fmt_scalar(self.value) + self.unit

    @property
    def quantity(self) -> float | Quantity:
        """The literal as an argument value: the bare number, or a Quantity."""
        return Quantity(self.value, self.unit) if self.unit else self.value


@dataclass(frozen=True)
class Call:
    """`name(arg, …, key=value)`: a predicate (as an atom) or a numeric function (inside a comparison)."""

    name: str
    args: tuple[Scalar, ...] = ()
    kwargs: tuple[tuple[str, Scalar], ...] = ()  # sorted by key

    @property
    def canonical(self) -> str:
        if not self.args and not self.kwargs:
            return self.name
        parts = [fmt_scalar(a) for a in self.args] + [f"{k}={fmt_scalar(v)}" for k, v in self.kwargs]
        return f"{self.name}({','.join(parts)})"

    @property
    def identifiers(self) -> tuple[str, ...]:
        """Identifier arguments (entity names), in order."""
        return tuple(a for a in self.args if isinstance(a, str))


Term = Num | Call


# -------------------------------------------------------------------------------------------- formulas
class Formula:
    """Base of all formula nodes: leaves (Const and the atoms) and operator nodes (Unary, Binary).

    Generic traversals use `children()` / `map_children()` (spec/walk.py); the operator nodes carry the
    table row of their operator as `info` (spec/ops.py), the leaves `None`.
    """

    __slots__ = ()
    is_atom = False  # Atom, Quoted and Compare: leaves whose value is a signal, looked up by `canonical`

    def children(self) -> tuple[Formula, ...]:
        """The direct subformulas, left to right."""
        return ()

    def map_children(self, fn: Callable[[Formula], Formula]) -> Formula:
        """This node with `fn` applied to each direct subformula (itself when nothing changes)."""
        return self

    @property
    def info(self) -> OpInfo | None:
        """The operator's row of the table (None for leaves)."""
        return None

    def calls(self) -> tuple[Call, ...]:
        """The predicate / numeric-function applications in this leaf (none for other nodes)."""
        return ()

    def map_calls(self, fn: Callable[[Call], Call]) -> Formula:
        """This leaf with `fn` applied to its calls (operator nodes and constants: unchanged)."""
        return self


@dataclass(frozen=True)
class Const(Formula):
    value: bool


@dataclass(frozen=True)
class Atom(Formula):
    """A predicate application or bare proposition; its signal is looked up by `canonical`."""

    call: Call
    is_atom = True

    @property
    def canonical(self) -> str:
        return self.call.canonical

    def calls(self) -> tuple[Call, ...]:
        return (self.call,)

    def map_calls(self, fn: Callable[[Call], Call]) -> Formula:
        return Atom(fn(self.call))

    @property
    def name(self) -> str:
        return self.call.name


@dataclass(frozen=True)
class Quoted(Formula):
    """A free-text atom such as "the drawer is open" (answered by a text-capable grounder)."""

    text: str
    is_atom = True

    @property
    def canonical(self) -> str:
        return f'"{self.text}"'


CMP_OPS = tuple(Cmp)  # "<", "<=", ">", ">="


@dataclass(frozen=True)
class Compare(Formula):
    """`left op right` over numeric terms; robustness is the normalised signed margin."""

    left: Term
    op: Cmp  # a plain "<" is accepted and stored as Cmp.LT (equal, same hash)
    right: Term
    is_atom = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "op", Cmp(self.op))
        except ValueError:
            raise SpecError(f"unknown comparison {self.op!r} (comparisons: {' '.join(Cmp)})") from None

    @property
    def canonical(self) -> str:
        return f"{self.left.canonical}{self.op}{self.right.canonical}"

    def calls(self) -> tuple[Call, ...]:
        return tuple(t for t in (self.left, self.right) if isinstance(t, Call))

    def map_calls(self, fn: Callable[[Call], Call]) -> Formula:
        def term(t: Term) -> Term:
            return fn(t) if isinstance(t, Call) else t

        return Compare(term(self.left), self.op, term(self.right))


@dataclass(frozen=True)
class Interval:
    """A closed window [lo, hi] in frames (unit 'f') or seconds (unit 's')."""

    lo: float
    hi: float
    unit: str = "f"

    def text(self) -> str:
        suffix = "s" if self.unit == "s" else ""
        return f"[{fmt_scalar(self.lo)}{suffix},{fmt_scalar(self.hi)}{suffix}]"


def _check_op(node: Unary | Binary, arity: int) -> None:
    """Store the operator as an `Op` and check it against the table: known, right arity, interval allowed."""
    try:
        op = Op(node.op)
    except ValueError:
        raise SpecError(f"unknown operator {node.op!r} (operators: {' '.join(Op)})") from None
    if op.info.arity != arity:
        kind = "unary" if arity == 1 else "binary"
        raise SpecError(f"operator {op} is not {kind} (it takes {op.info.arity} operand(s))")
    if node.interval is not None and not op.info.boundable:
        raise SpecError(takes_no_interval(op))
    object.__setattr__(node, "op", op)


@dataclass(frozen=True)
class Unary(Formula):
    """`op child`: ! X WX F G Y O H (F G O H may carry an interval)."""

    op: Op  # a plain "G" is accepted and stored as Op.ALWAYS (equal, same hash)
    child: Formula
    interval: Interval | None = None

    def __post_init__(self) -> None:
        _check_op(self, 1)

    @property
    def info(self) -> OpInfo:
        return OPS[self.op]

    def children(self) -> tuple[Formula, ...]:
        return (self.child,)

    def map_children(self, fn: Callable[[Formula], Formula]) -> Formula:
        c = fn(self.child)
        return self if c is self.child else Unary(self.op, c, self.interval)


@dataclass(frozen=True)
class Binary(Formula):
    """`left op right`: & | -> <-> and the temporal U R W M S (U R may carry an interval)."""

    op: Op
    left: Formula
    right: Formula
    interval: Interval | None = None

    def __post_init__(self) -> None:
        _check_op(self, 2)

    @property
    def info(self) -> OpInfo:
        return OPS[self.op]

    def children(self) -> tuple[Formula, ...]:
        return (self.left, self.right)

    def map_children(self, fn: Callable[[Formula], Formula]) -> Formula:
        l, r = fn(self.left), fn(self.right)
        return self if l is self.left and r is self.right else Binary(self.op, l, r, self.interval)


# derived from the operator table (spec/ops.py), in its order
UNARY_OPS = ops_where(lambda o: o.arity == 1)  # ! X WX F G Y O H
TEMPORAL_BINARY_OPS = ops_where(lambda o: o.arity == 2 and o.temporal)  # U R W M S
BOOL_BINARY_OPS = ops_where(lambda o: o.arity == 2 and not o.temporal)  # & | -> <->
BOUNDABLE_OPS = ops_where(lambda o: o.boundable)  # F G O H U R


# ------------------------------------------------------------------------------------------ task spec
@dataclass(frozen=True)
class Entity:
    """`entity NAME = "prompt" [: kind] [key=value …]`."""

    name: str
    prompt: str
    kind: str = "object"
    hints: tuple[tuple[str, Scalar | tuple[float, ...]], ...] = ()

    def hint(self, key: str, default=None):
        for k, v in self.hints:
            if k == key:
                return v
        return default


ENTITY_KINDS = ("object", "gripper", "surface", "region", "agent")


@dataclass(frozen=True)
class Macro:
    """`let name(params) := body`; the stored body has every other macro already expanded."""

    name: str
    params: tuple[str, ...]
    body: Formula


@dataclass(frozen=True)
class Constraint:
    """`constraint NAME [weight=W] "description": formula` (formula with macros expanded)."""

    name: str
    formula: Formula
    description: str = ""
    weight: float = 1.0


REWARD_MODES = _REWARD_MODES  # the reward-mode registry (ltlreward.reward_modes): the validator reads names here


@dataclass(frozen=True)
class TaskSpec:
    """A parsed spec file: task text, entities, macros, constraints and the reward mode."""

    task: str = ""
    entities: tuple[Entity, ...] = ()
    macros: tuple[Macro, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    reward: str = "weighted_mean"
    path: str | None = field(default=None, compare=False)
    locations: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)  # atom -> line, col

    def where(self, atom: str) -> tuple[int | None, int | None]:
        """(line, column) where canonical atom `atom` is first written in the spec file ((None, None) if unknown)."""
        return self.locations.get(atom, (None, None))

    def entity(self, name: str) -> Entity:
        for e in self.entities:
            if e.name == name:
                return e
        raise KeyError(name)

    def constraint(self, name: str) -> Constraint:
        for c in self.constraints:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def entity_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entities)
