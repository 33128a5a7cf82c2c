"""The typed intermediate form (IR) of an English task description: what was said, before any entity name or
formula is chosen.

    English ──parser.parse_text──▶ Parsed (this module) ──compiler.compile_ir + templates──▶ TaskSpec

A `Parsed` holds the `Step`s in execution order and the `Statement`s (constraints without an order). Noun
phrases (`NP`, `Plural`) and arms (`Arm`) are the arguments; `State` is a clause "SUBJ is [not] PRED [OBJ]";
each step modifier is its own class (`NoDrop`, `While`, …). Every node is a frozen dataclass that checks its
closed-vocabulary fields (the `Literal` aliases below are the one list of each) and argument types on
construction, so a hand-written or model-written IR fails early with the field named.

JSON: `to_json(node)` gives plain dicts with a `"type"` tag per node (fields left at their default are
omitted); `from_json(data)` rebuilds the nodes, naming the path of anything it cannot read ("$.steps[0].verb").
`Parsed.to_json()` / `Parsed.from_json()` do the same for a whole description.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from .errors import NLError

ArmWhich = Literal["left", "right", "both", "either", "other", "default", "each"]
Relation = Literal["on", "in", "at", "near", "above", "left", "right", "touch", "to"]
Verb = Literal["pick", "place", "stack", "push", "reach", "touch", "open", "close", "open_gripper", "close_gripper",
               "press", "turn_on", "turn_off", "lift", "handover", "insert", "pour", "rank", "hold", "release"]
Predicate = Literal["on", "in", "at", "near", "above", "left", "right", "touch", "holds", "held", "lifted", "open",
                    "closed", "moving", "still", "visible", "switched_on", "switched_off", "pressed"]
StackKind = Literal["bottom_up", "top_down", "bottom_is", "top_is"]
RuleKind = Literal["never", "until", "at_end", "always", "eventually", "at_most_one"]
BannedAction = Literal["drop", "touch", "contact", "lift", "move", "spill"]
TimeUnit = Literal["s", "frames"]


class IRError(NLError):
    """An IR node or JSON document that does not hold a valid description (the message names the field)."""


def _one_of(node: object, name: str, value: object, allowed: Any, optional: bool = False) -> None:
    """IRError unless `value` is one of the Literal `allowed` (or None when optional)."""
    if optional and value is None:
        return
    options = get_args(allowed)
    if value not in options:
        raise IRError(f"{type(node).__name__}.{name} must be one of {', '.join(options)}, got {value!r}")


def _typed(node: object, name: str, value: object, types: tuple[type, ...], optional: bool = False) -> None:
    """IRError unless `value` (or, for a tuple field, each of its items) is an instance of `types`."""
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if (optional and v is None) or isinstance(v, types):
            continue
        want = " | ".join(t.__name__ for t in types) + (" | None" if optional else "")
        raise IRError(f"{type(node).__name__}.{name} must be {want}, got {type(v).__name__} {v!r}")


# ------------------------------------------------------------------------------------------ arguments
@dataclass(frozen=True)
class NP:
    """A noun phrase naming one thing: "the second red bowl", "the drawer handle", or a pronoun."""

    head: str = ""
    words: tuple[str, ...] = ()  # compound modifiers before the head ("coffee" in "coffee mug")
    colour: str | None = None
    size: str | None = None  # canonical size word: large / medium / small
    ordinal: int | None = None
    place: str | None = None  # left / right / top / bottom / middle used as an adjective
    pronoun: str | None = None  # "it" / "them"; "container": the implied container of a bare "put X inside"
    text: str = ""
    one: bool = False  # "the blue one": the head noun is the one of the object said before


@dataclass(frozen=True)
class Start:
    """"back where it was": the starting position of the step's object (a region entity named after it)."""


@dataclass(frozen=True)
class Plural:
    """A plural phrase: "both bottles", "the three bowls", "the red, green and blue blocks"."""

    head: str
    words: tuple[str, ...] = ()
    count: int | None = None
    colours: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class Arm:
    """Which gripper: left, right, both, either, other (the one not named before), each (one object per arm) or
    default."""

    which: ArmWhich

    def __post_init__(self) -> None:
        _one_of(self, "which", self.which, ArmWhich)


Thing = NP | Plural
_THING = (NP, Plural)


@dataclass(frozen=True)
class State:
    """A state clause "SUBJ is [not] PRED [OBJ]": a relation (on, in, near, …) or a property (open, lifted, …)."""

    subject: NP | Arm
    pred: Predicate
    obj: NP | Arm | None = None
    negated: bool = False

    def __post_init__(self) -> None:
        _typed(self, "subject", self.subject, (NP, Arm))
        _one_of(self, "pred", self.pred, Predicate)
        _typed(self, "obj", self.obj, (NP, Arm), optional=True)


# ------------------------------------------------------------------------------------------ modifiers
@dataclass(frozen=True)
class ArmMod:
    """"with the left arm", "using both arms", "together", or an arm as the sentence subject."""

    arm: Arm

    def __post_init__(self) -> None:
        _typed(self, "arm", self.arm, (Arm,))


@dataclass(frozen=True)
class NoDrop:
    """"without dropping [it | OBJS]": the object(s) never fall unheld (None = the step's own objects)."""

    target: NP | Plural | None = None

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, _THING, optional=True)


@dataclass(frozen=True)
class NoTouch:
    """"without touching X": no gripper ever touches X."""

    target: NP

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, (NP,))


@dataclass(frozen=True)
class NoLift:
    """"without lifting it": the step's object is never lifted (a target, when named, is kept as said)."""

    target: NP | Plural | None = None

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, _THING, optional=True)


@dataclass(frozen=True)
class NoGrasp:
    """"without grasping it": the step's object is never grasped (a target, when named, is kept as said)."""

    target: NP | Plural | None = None

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, _THING, optional=True)


@dataclass(frozen=True)
class NoMove:
    """"without moving X": X never moves."""

    target: NP

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, (NP,))


@dataclass(frozen=True)
class While:
    """"while keeping the gripper closed", "while S": the state holds until the step's last phase."""

    state: State

    def __post_init__(self) -> None:
        _typed(self, "state", self.state, (State,))


@dataclass(frozen=True)
class KeepThere:
    """"and keep it there": the step's end state is held to the end even if a later step acts on it."""


@dataclass(frozen=True)
class KeepState:
    """"and keep it closed": at the end the step's object is in this state (its subject is the pronoun)."""

    state: State

    def __post_init__(self) -> None:
        _typed(self, "state", self.state, (State,))


@dataclass(frozen=True)
class Manner:
    """"carefully", "slowly", …: noted, not expressible with the predicate library (a warning)."""

    word: str


@dataclass(frozen=True)
class AtEnd:
    """"… at the end": the step's end state is held to the end."""


@dataclass(frozen=True)
class ByEnd:
    """"… before the end": the step is done by the end of the video (what every step already requires)."""


def _amount(node: object, bound: float, unit: str) -> None:
    _one_of(node, "unit", unit, TimeUnit)
    if not isinstance(bound, (int, float)) or bound <= 0 or (unit == "frames" and bound != int(bound)):
        raise IRError(f"{type(node).__name__}.bound must be a positive {'whole ' if unit == 'frames' else ''}"
                      f"number, got {bound!r}")


@dataclass(frozen=True)
class Deadline:
    """"within 5 seconds", "in under 20 frames": the step's last phase happens within `bound` of the start."""

    bound: float
    unit: TimeUnit = "s"

    def __post_init__(self) -> None:
        _amount(self, self.bound, self.unit)


@dataclass(frozen=True)
class Duration:
    """"hold it up for at least 2 s": the step's end state holds for `bound` without a break."""

    bound: float
    unit: TimeUnit = "s"

    def __post_init__(self) -> None:
        _amount(self, self.bound, self.unit)


@dataclass(frozen=True)
class NoSpill:
    """"without spilling (it)": the object (None = the step's own) never spills (a quoted atom: no predicate
    measures spilling)."""

    target: NP | Plural | None = None

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, _THING, optional=True)


@dataclass(frozen=True)
class AtMostOne:
    """"carrying at most one at a time": no gripper ever holds two of the step's objects at once."""


@dataclass(frozen=True)
class Except:
    """"…, not the bowl": what the step does to its object (or its destination) never happens to `target`."""

    target: NP

    def __post_init__(self) -> None:
        _typed(self, "target", self.target, (NP,))


@dataclass(frozen=True)
class OnlyAfter:
    """"only after the door is open" / "and only after that …": the step's effect does not happen before the
    state holds (None = before the previous step's last phase)."""

    state: State | None = None

    def __post_init__(self) -> None:
        _typed(self, "state", self.state, (State,), optional=True)


@dataclass(frozen=True)
class NoContact:
    """"without letting it touch the laptop": the subject (the step's object when a pronoun) never touches the
    target."""

    subject: NP
    target: NP

    def __post_init__(self) -> None:
        _typed(self, "subject", self.subject, (NP,))
        _typed(self, "target", self.target, (NP,))


Modifier = (ArmMod | NoDrop | NoTouch | NoLift | NoGrasp | NoMove | While | KeepThere | KeepState | Manner | AtEnd
            | ByEnd | Deadline | Duration | NoSpill | AtMostOne | Except | OnlyAfter | NoContact)
MODIFIERS: tuple[type, ...] = get_args(Modifier)


# ------------------------------------------------------------------------------------------ steps
@dataclass(frozen=True)
class StackOrder:
    """The order of a stack: bottom-up as listed, top-down, or with a named object at the bottom / top."""

    kind: StackKind = "bottom_up"
    pivot: NP | None = None  # the named object of bottom_is / top_is

    def __post_init__(self) -> None:
        _one_of(self, "kind", self.kind, StackKind)
        _typed(self, "pivot", self.pivot, (NP,), optional=True)


@dataclass(frozen=True)
class RowOrder:
    """How a row is ordered: by colour or size, the colour sequence, size order, direction (None = not said)."""

    by: Literal["colour", "size"] | None = None
    colours: tuple[str, ...] = ()
    size_order: Literal["asc", "desc"] | None = None  # asc = smallest first
    direction: Literal["ltr", "rtl"] | None = None

    def __post_init__(self) -> None:
        _one_of(self, "by", self.by, Literal["colour", "size"], optional=True)
        _one_of(self, "size_order", self.size_order, Literal["asc", "desc"], optional=True)
        _one_of(self, "direction", self.direction, Literal["ltr", "rtl"], optional=True)

    def merge(self, later: RowOrder) -> RowOrder:
        """This order with every field that `later` sets taken from `later` (a later phrase wins)."""
        return RowOrder(by=later.by or self.by, colours=later.colours or self.colours,
                        size_order=later.size_order or self.size_order, direction=later.direction or self.direction)


@dataclass(frozen=True)
class Step:
    """One action: a verb (the template's name) and its arguments; verb-specific fields are None elsewhere."""

    verb: Verb
    objs: tuple[NP | Plural, ...] = ()
    dest: NP | Arm | Start | None = None  # where the objects go; an Arm for a handover's receiver
    rel: Relation | None = None  # the destination's relation as said ("to" = the template's default)
    src: NP | Arm | None = None  # "from the table" (noted only) or a handover's giver
    arm: Arm | None = None  # the arm doing the step (the last ArmMod, or for reach its arm argument)
    mods: tuple[Modifier, ...] = ()
    arm_arg: Arm | None = None  # an arm named as the verb's argument ("open the left gripper")
    contents: NP | None = None  # pour: what is poured ("pour the water from the cup …")
    stack: StackOrder | None = None  # stack: the order (None = bottom-up)
    row: RowOrder | None = None  # rank: how the row is ordered
    thread: int = 0  # steps of different threads are not ordered ("Left arm: … Right arm: …"); 0 = the main one

    def __post_init__(self) -> None:
        _one_of(self, "verb", self.verb, Verb)
        _typed(self, "objs", self.objs, _THING)
        _typed(self, "dest", self.dest, (NP, Arm, Start), optional=True)
        _one_of(self, "rel", self.rel, Relation, optional=True)
        _typed(self, "src", self.src, (NP, Arm), optional=True)
        _typed(self, "arm", self.arm, (Arm,), optional=True)
        _typed(self, "mods", self.mods, MODIFIERS)
        _typed(self, "arm_arg", self.arm_arg, (Arm,), optional=True)
        _typed(self, "contents", self.contents, (NP,), optional=True)


# ------------------------------------------------------------------------------------------ statements
@dataclass(frozen=True)
class Forbid:
    """"never drop / touch / let A touch B / lift / move …": an action that never happens (targets as said;
    empty for "never drop" = the objects mentioned last)."""

    action: BannedAction
    targets: tuple[NP | Plural, ...] = ()

    def __post_init__(self) -> None:
        _one_of(self, "action", self.action, BannedAction)
        _typed(self, "targets", self.targets, _THING)


@dataclass(frozen=True)
class Rule:
    """A state rule: never S / S until S' / at the end S / always S / eventually S / at most one arm at a time
    (the state's subject stands for each arm in turn)."""

    kind: RuleKind
    states: tuple[State, ...] = ()

    def __post_init__(self) -> None:
        _one_of(self, "kind", self.kind, RuleKind)
        _typed(self, "states", self.states, (State,))
        if len(self.states) != (2 if self.kind == "until" else 1):
            raise IRError(f"Rule {self.kind!r} takes {2 if self.kind == 'until' else 1} state(s), "
                          f"got {len(self.states)}")


Statement = Forbid | Rule


@dataclass(frozen=True)
class Parsed:
    """A parsed description: the steps in execution order and the statements."""

    steps: tuple[Step, ...] = ()
    statements: tuple[Statement, ...] = field(default=())

    def __post_init__(self) -> None:
        _typed(self, "steps", self.steps, (Step,))
        _typed(self, "statements", self.statements, (Forbid, Rule))

    def to_json(self) -> dict[str, Any]:
        """This description as plain JSON data (see the module docstring)."""
        return to_json(self)

    @classmethod
    def from_json(cls, data: Any) -> Parsed:
        """A description from `to_json` data; IRError naming the path of anything that does not fit."""
        node = from_json(data)
        if not isinstance(node, Parsed):
            raise IRError(f"$: expected a Parsed document, got {type(node).__name__}")
        return node


# ------------------------------------------------------------------------------------------ JSON
NODES: dict[str, type] = {c.__name__: c for c in (NP, Plural, Arm, Start, State, *MODIFIERS, StackOrder, RowOrder, Step,
                                                   Forbid, Rule, Parsed)}


def to_json(node: Any) -> Any:
    """Plain JSON data for an IR node (dict with a "type" tag, non-default fields), tuple (list) or scalar."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {"type": type(node).__name__}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue
            out[f.name] = to_json(value)
        return out
    if isinstance(node, (tuple, list)):
        return [to_json(v) for v in node]
    return node


def from_json(data: Any, path: str = "$") -> Any:
    """IR nodes from `to_json` data (lists become tuples); IRError naming the path of what does not fit."""
    if isinstance(data, list):
        return tuple(from_json(v, f"{path}[{i}]") for i, v in enumerate(data))
    if not isinstance(data, dict):
        return data
    cls = NODES.get(data.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise IRError(f"{path}: unknown node type {data.get('type')!r}; known: {', '.join(NODES)}")
    known = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - known - {"type"})
    if extra:
        raise IRError(f"{path}: {cls.__name__} has no field {extra[0]!r}; fields: {', '.join(sorted(known))}")
    kwargs = {k: from_json(v, f"{path}.{k}") for k, v in data.items() if k != "type"}
    try:
        return cls(**kwargs)
    except IRError as e:
        raise IRError(f"{path}: {e.message}") from None
    except TypeError as e:
        raise IRError(f"{path}: {cls.__name__}: {e}") from None


def walk(node: Any) -> Iterator[Any]:
    """Every IR node inside `node` (itself included), depth first in field order."""
    if isinstance(node, (tuple, list)):
        for v in node:
            yield from walk(v)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        yield node
        for f in dataclasses.fields(node):
            yield from walk(getattr(node, f.name))


__all__ = ["MODIFIERS", "NODES", "NP", "Arm", "ArmMod", "ArmWhich", "AtEnd", "AtMostOne", "BannedAction", "ByEnd",
           "Deadline", "Duration", "Except", "Forbid", "IRError", "KeepState", "KeepThere", "Manner", "Modifier",
           "NoContact", "NoDrop", "NoGrasp", "NoLift", "NoMove", "NoSpill", "NoTouch", "OnlyAfter", "Parsed", "Plural",
           "Predicate", "Relation", "RowOrder", "Rule", "RuleKind", "StackKind", "StackOrder", "Start", "State",
           "Statement", "Step", "Thing", "TimeUnit", "Verb", "While", "from_json", "to_json", "walk"]
