"""Immutable AST of formulas and task specs. Nodes hold data only; semantics live in visitors elsewhere.

Every node is a frozen, hashable dataclass, so equal subformulas compare and hash equal (the monitor
shares their traces).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..reward_modes import REWARD_MODES as _REWARD_MODES

Scalar = str | int | float  # an argument: entity/identifier name or a number


def _fmt_number(v: float | int) -> str:
    """Shortest text that reads back to an equal number; whole numbers print without a dot (1.0 -> "1")."""
    if isinstance(v, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(v, int) or (v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    return repr(float(v))


def fmt_scalar(v: Scalar) -> str:
    """Canonical text of an argument value."""
    if isinstance(v, str):
        return v
    return _fmt_number(v)


# ----------------------------------------------------------------------------------------------- terms
@dataclass(frozen=True)
class Num:
    """A numeric literal inside a comparison."""

    value: float

    @property
    def canonical(self) -> str:
        return fmt_scalar(self.value)


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
    """Base of all formula nodes."""

    __slots__ = ()


@dataclass(frozen=True)
class Const(Formula):
    value: bool


@dataclass(frozen=True)
class Atom(Formula):
    """A predicate application or bare proposition; its signal is looked up by `canonical`."""

    call: Call

    @property
    def canonical(self) -> str:
        return self.call.canonical

    @property
    def name(self) -> str:
        return self.call.name


@dataclass(frozen=True)
class Quoted(Formula):
    """A free-text atom such as "the drawer is open" (answered by a text-capable grounder)."""

    text: str

    @property
    def canonical(self) -> str:
        return f'"{self.text}"'


CMP_OPS = ("<", "<=", ">", ">=")


@dataclass(frozen=True)
class Compare(Formula):
    """`left op right` over numeric terms; robustness is the normalised signed margin."""

    left: Term
    op: str
    right: Term

    @property
    def canonical(self) -> str:
        return f"{self.left.canonical}{self.op}{self.right.canonical}"


@dataclass(frozen=True)
class Interval:
    """A closed window [lo, hi] in frames (unit 'f') or seconds (unit 's')."""

    lo: float
    hi: float
    unit: str = "f"

    def text(self) -> str:
        suffix = "s" if self.unit == "s" else ""
        return f"[{fmt_scalar(self.lo)}{suffix},{fmt_scalar(self.hi)}{suffix}]"


@dataclass(frozen=True)
class Unary(Formula):
    """`op child`: ! X WX F G Y O H (F G O H may carry an interval)."""

    op: str
    child: Formula
    interval: Interval | None = None


@dataclass(frozen=True)
class Binary(Formula):
    """`left op right`: & | -> <-> and the temporal U R W M S (U R O H … may carry an interval)."""

    op: str
    left: Formula
    right: Formula
    interval: Interval | None = None


UNARY_OPS = ("!", "X", "WX", "F", "G", "Y", "O", "H")
TEMPORAL_BINARY_OPS = ("U", "R", "W", "M", "S")
BOOL_BINARY_OPS = ("&", "|", "->", "<->")
BOUNDABLE_OPS = ("F", "G", "O", "H", "U", "R")


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
