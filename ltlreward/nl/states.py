"""State clauses of the IR (`State`: "the cup is on the plate", "the left arm holds the bottle") → formulas and
the English of constraint descriptions.
"""

from __future__ import annotations

from ..spec.ast import Formula
from . import templates as T
from .entities import World
from .errors import NLError
from .ir import NP, Arm, State


def _subject_grip(subj: NP | Arm, world: World) -> T.Grip | None:
    return world.grip(subj) if isinstance(subj, Arm) else None


def state_formula(st: State, world: World) -> Formula:
    """The formula of a state clause: a predicate atom, a gripper's relation, or a quoted atom."""
    g = _subject_grip(st.subject, world)
    s = None if g else world.np(st.subject) if isinstance(st.subject, NP) else None
    obj = None
    if isinstance(st.obj, NP):
        obj = world.np(st.obj, exclude=(s,) if s else ())
    elif isinstance(st.obj, Arm) and st.pred == "touch":  # "the left arm never touches the right arm"
        other = world.grip(st.obj)
        if len(other.names) != 1:
            raise NLError("name one arm it touches (the left or the right arm)", text=world.text)
        obj = other.names[0]
    p = st.pred
    if p in ("on", "in", "at", "near", "above", "left", "right", "touch", "holds"):
        if obj is None:
            raise NLError(f"'{p}' needs an object", text=world.text)
        if g is not None:
            pred = {"touch": "touching", "near": "near", "holds": "holding", "at": "near"}.get(p)
            if pred is None:
                raise NLError(f"an arm cannot be '{p}' something; say it holds, touches or is near it",
                              text=world.text)
            f = g.rel(pred, obj)
        elif p == "holds":
            raise NLError("only an arm can hold something", text=world.text)
        else:
            f = T.rel_atom(p, s, obj)
    elif p == "held":
        holder = world.grip(st.obj) if isinstance(st.obj, Arm) else T.Grip(tuple(world.all_grippers()))
        f = holder.holding(s)
    elif p in ("open", "closed") and g is not None:
        parts = [T.atom("gripper_open" if p == "open" else "gripper_closed", n) for n in g.names]
        f = T.conj(*parts) if g.together else T.disj(*parts)
    elif g is not None:
        raise NLError(f"an arm cannot be '{p}'", text=world.text)
    elif p == "lifted":
        f = T.atom("lifted", s)
    elif p in ("open", "closed"):
        q = T.quoted(f"the {world.entities[s].prompt} is open")
        f = q if p == "open" else T.neg(q)
    elif p in ("switched_on", "switched_off"):
        q = T.quoted(f"the {world.entities[s].prompt} is on")
        f = q if p == "switched_on" else T.neg(q)
    elif p == "pressed":
        f = T.quoted(f"the {world.entities[s].prompt} is pressed")
    elif p == "moving":
        f = T.atom("moving", s)
    elif p == "still":
        f = T.neg(T.atom("moving", s))
    elif p == "visible":
        f = T.atom("visible", s)
    else:  # pragma: no cover
        raise NLError(f"unknown state {p!r}", text=world.text)
    return T.neg(f) if st.negated else f


def subject_name(st: State, world: World) -> str:
    """The clause's subject as a constraint-name part: its entity, the arm, or "gripper"."""
    if isinstance(st.subject, Arm):
        return world.grip(st.subject).names[0] if st.subject.which in ("left", "right") else "gripper"
    return world.np(st.subject) if isinstance(st.subject, NP) else "state"


def state_words(st: State, world: World) -> str:
    """The clause in English for a constraint's description ("the cup is on the plate")."""
    if isinstance(st.subject, Arm):
        subj = world.grip(st.subject).label
    else:
        subj = world.label(world.np(st.subject))
    pred = {"touch": "touches", "holds": "holds", "near": "is near", "on": "is on", "in": "is inside",
            "at": "is at", "above": "is above", "left": "is left of", "right": "is right of", "lifted": "is lifted",
            "held": "is held", "open": "is open", "closed": "is closed", "moving": "is moving",
            "still": "is still", "visible": "is visible", "switched_on": "is on", "switched_off": "is off",
            "pressed": "is pressed"}[st.pred]
    if st.negated:
        pred = "not " + pred
    obj = ""
    if isinstance(st.obj, NP):
        obj = " " + world.label(world.np(st.obj, exclude=()))
    elif isinstance(st.obj, Arm):
        obj = " by " + world.grip(st.obj).label
    return f"{subj} {pred}{obj}"


__all__ = ["state_formula", "state_words", "subject_name"]
