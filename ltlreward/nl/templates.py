"""Task templates: each verb → a `Plan`: an ordered chain of named phases, an end state, safety constraints and
the objects it carries.

ltlreward.nl.compiler calls one template per object of a step of the IR (ltlreward.nl.ir) with the entity
names and English labels it resolved, and composes the plans into constraints. Formulas use only the
predicate library (ltlreward.predicates.catalog) plus quoted atoms for states no geometric predicate
expresses (a drawer being open, a button pressed).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..spec.ast import Atom, Binary, Call, Formula, Interval, Quoted, Unary

# ------------------------------------------------------------------------------------ formula helpers


def atom(name: str, *args: str) -> Atom:
    """A predicate atom `name(args…)`."""
    return Atom(Call(name, tuple(args)))


def quoted(text: str) -> Quoted:
    return Quoted(text)


def neg(f: Formula) -> Formula:
    return Unary("!", f)


def conj(*fs: Formula) -> Formula:
    """Left-nested conjunction of one or more formulas."""
    out = fs[0]
    for f in fs[1:]:
        out = Binary("&", out, f)
    return out


def disj(*fs: Formula) -> Formula:
    out = fs[0]
    for f in fs[1:]:
        out = Binary("|", out, f)
    return out


def F(f: Formula) -> Formula:
    return Unary("F", f)


def G(f: Formula) -> Formula:
    return Unary("G", f)


def F_within(f: Formula, bound: float, unit: str) -> Formula:
    """F[0,bound] f: f happens within `bound` seconds ("s") or frames of now."""
    return Unary("F", f, _interval(bound, unit))


def G_for(f: Formula, bound: float, unit: str) -> Formula:
    """G[0,bound] f: f holds for `bound` seconds ("s") or frames from now, without a break."""
    return Unary("G", f, _interval(bound, unit))


def _interval(bound: float, unit: str) -> Interval:
    """[0, bound] in seconds ("s") or whole frames."""
    if unit == "s":
        return Interval(0.0, float(bound), "s")
    return Interval(0, int(bound), "f")


def implies(a: Formula, b: Formula) -> Formula:
    return Binary("->", a, b)


def until(a: Formula, b: Formula) -> Formula:
    return Binary("U", a, b)


def in_order(milestones: list[Formula]) -> Formula:
    """F(m1 & F(m2 & … F(mk))): the milestones happen in this order (simultaneity allowed)."""
    out = F(milestones[-1])
    for m in reversed(milestones[:-1]):
        out = F(conj(m, out))
    return out


# --------------------------------------------------------------------------------------------- grippers
@dataclass(frozen=True)
class Grip:
    """The gripper(s) acting in a step: names, and whether any one of them (`any`) or all act together."""

    names: tuple[str, ...]
    together: bool = False
    label: str = "the gripper"

    def rel(self, pred: str, obj: str) -> Formula:
        parts = [atom(pred, g, obj) for g in self.names]
        return conj(*parts) if self.together else disj(*parts)

    def holding(self, obj: str) -> Formula:
        return self.rel("holding", obj)

    def near(self, obj: str) -> Formula:
        return self.rel("near", obj)

    def touching(self, obj: str) -> Formula:
        return self.rel("touching", obj)

    def not_holding(self, obj: str) -> Formula:
        """No gripper of this step holds obj."""
        return neg(disj(*[atom("holding", g, obj) for g in self.names]))


# --------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Phase:
    """One named phase of a plan: its formula and what it says in English."""

    name: str
    formula: Formula
    english: str


@dataclass(frozen=True)
class Carried:
    """An object a plan carries: the grippers that may hold it in the air, and where it may rest (placements)."""

    holders: tuple[str, ...]
    rests: tuple[Formula, ...] = ()


@dataclass
class Plan:
    """What one step contributes: its phase chain, its end state, safety constraints and carried objects."""

    phases: list[Phase]
    subject: tuple[str, ...] = ()  # entities whose state this step sets (later steps on them override its end)
    final: bool = True  # the last phase is an end state (held to the end unless overridden)
    safety: list[Phase] = field(default_factory=list)
    carried: dict[str, Carried] = field(default_factory=dict)  # objects it carries (they get a no-drop rule)
    held_after: dict[str, Grip | None] = field(default_factory=dict)
    obj: str = ""
    effect: Formula | None = None  # what the step brings about ("only after …" forbids it before); None = last phase

    def effect_formula(self) -> Formula:
        """The step's effect: its own `effect`, else its last phase's formula."""
        return self.effect if self.effect is not None else self.phases[-1].formula


def rel_atom(rel: str, obj: str, dest: str) -> Formula:
    """The relation atom of a placement: on / in (inside) / at / near / left / right / above."""
    name = {"on": "on", "in": "inside", "at": "at", "near": "near", "left": "left_of", "right": "right_of",
            "above": "above", "touch": "touching"}[rel]
    return atom(name, obj, dest)


_REL_EN = {"on": "on", "in": "inside", "at": "at", "near": "near", "left": "left of", "right": "right of",
           "above": "above", "touch": "touching"}


def rel_english(rel: str) -> str:
    return _REL_EN[rel]


def approach(g: Grip, o: str, on: str) -> list[Phase]:
    """reach → grasp → lift of object o."""
    return [
        Phase("reach", g.near(o), f"{g.label} reaches {on}"),
        Phase("grasp", g.holding(o), f"{g.label} grasps {on}"),
        Phase("lift", conj(g.holding(o), atom("lifted", o)), f"{g.label} lifts {on} off its support"),
    ]


def pick(g: Grip, o: str, on: str) -> Plan:
    """Pick up / hold: reach, grasp, lift; at the end o is still held up."""
    return Plan(approach(g, o, on), subject=(o,), carried={o: Carried(g.names)}, held_after={o: g}, obj=o,
                effect=g.holding(o))


def grasp_fixture(g: Grip, o: str, on: str) -> Plan:
    """Grasp something fixed in place (a drawer, a door): reach and grasp, no lift and nothing carried."""
    return Plan(approach(g, o, on)[:2], subject=(), final=False, held_after={o: g}, obj=o, effect=g.holding(o))


def keep_held(g: Grip, o: str, on: str) -> Plan:
    """Hold what is already held up (a duration gives it its length): one phase, o held up."""
    return Plan([Phase("hold", conj(g.holding(o), atom("lifted", o)), f"{g.label} holds {on} up")], subject=(o,),
                carried={o: Carried(g.names)}, held_after={o: g}, obj=o)


def place(g: Grip, o: str, on: str, rel: str, d: str, dn: str, *, skip_approach: bool = False) -> Plan:
    """Pick-and-place: reach, grasp, lift, place (o rel d), release; o never falls unheld elsewhere."""
    r = rel_atom(rel, o, d)
    phases = [] if skip_approach else approach(g, o, on)
    phases += [
        Phase("place", r, f"{on} is {rel_english(rel)} {dn}"),
        Phase("release", conj(r, g.not_holding(o)), f"{on} rests {rel_english(rel)} {dn}, released"),
    ]
    return Plan(phases, subject=(o,), carried={o: Carried(g.names, (r,))}, held_after={o: None}, obj=o, effect=r)


def insert(g: Grip, o: str, on: str, d: str, dn: str, *, skip_approach: bool = False) -> Plan:
    """Peg insertion: reach, grasp, insert; o ends inside d."""
    r = atom("inside", o, d)
    phases = [] if skip_approach else approach(g, o, on)[:2]
    phases.append(Phase("insert", r, f"{on} is inserted into {dn}"))
    return Plan(phases, subject=(o,), carried={o: Carried(g.names, (r,))}, held_after={o: g}, obj=o, effect=r)


def push(g: Grip, o: str, on: str, rel: str | None, d: str | None, dn: str | None) -> Plan:
    """Push/slide: reach, contact, o moved to d (or just moved) — never lifted."""
    phases = [Phase("reach", g.near(o), f"{g.label} reaches {on}"),
              Phase("contact", g.touching(o), f"{g.label} touches {on}")]
    if d is None:
        phases.append(Phase("push", conj(g.touching(o), atom("moving", o)), f"{g.label} pushes {on} along"))
        final = False
    else:
        phases.append(Phase("push", rel_atom(rel or "at", o, d), f"{on} is pushed {rel_english(rel or 'at')} {dn}"))
        final = True
    safety = [Phase("no_lift", G(neg(atom("lifted", o))), f"{on} is pushed, never lifted")]
    return Plan(phases, subject=(o,), final=final, safety=safety, held_after={o: None}, obj=o)


def reach(g: Grip, o: str, on: str) -> Plan:
    return Plan([Phase("reach", g.near(o), f"{g.label} reaches {on}")], subject=(), final=False, obj=o)


def touch(g: Grip, o: str, on: str) -> Plan:
    return Plan([Phase("reach", g.near(o), f"{g.label} reaches {on}"),
                 Phase("touch", g.touching(o), f"{g.label} touches {on}")], subject=(), final=False, obj=o)


def articulate(g: Grip, o: str, on: str, verb: str) -> Plan:
    """open / close / turn on / turn off: reach, contact, and the object's state (a quoted atom)."""
    state = {"open": quoted(f"the {on[4:]} is open"), "close": neg(quoted(f"the {on[4:]} is open")),
             "turn_on": quoted(f"the {on[4:]} is on"), "turn_off": neg(quoted(f"the {on[4:]} is on"))}[verb]
    what = {"open": "is open", "close": "is closed", "turn_on": "is switched on", "turn_off": "is switched off"}
    name = {"open": "open", "close": "close", "turn_on": "switch_on", "turn_off": "switch_off"}[verb]
    return Plan([Phase("reach", g.near(o), f"{g.label} reaches {on}"),
                 Phase("contact", g.touching(o), f"{g.label} touches {on}"),
                 Phase(name, state, f"{on} {what[verb]}")], subject=(o,), obj=o, effect=state)


def press(g: Grip, o: str, on: str) -> Plan:
    pressed = quoted(f"the {on[4:]} is pressed")
    return Plan([Phase("reach", g.near(o), f"{g.label} reaches {on}"),
                 Phase("press", conj(g.touching(o), pressed), f"{g.label} presses {on} down")], subject=(), final=False,
                obj=o, effect=pressed)


def gripper_state(g: Grip, opened: bool) -> Plan:
    parts = [atom("gripper_open" if opened else "gripper_closed", n) for n in g.names]
    f = conj(*parts) if g.together or len(parts) == 1 else disj(*parts)
    return Plan([Phase("open_gripper" if opened else "close_gripper", f,
                       f"{g.label} is {'open' if opened else 'closed'}")], subject=g.names, obj=g.names[0])


def release(g: Grip, o: str, on: str) -> Plan:
    return Plan([Phase("release", g.not_holding(o), f"{g.label} lets go of {on}")], subject=(),
                held_after={o: None}, obj=o)


def two_arm_lift(g: Grip, o: str, on: str) -> Plan:
    """Both arms reach, grasp and lift o together; o is only ever in the air held by both."""
    both = Grip(g.names, together=True, label=g.label)
    phases = [Phase("reach", both.near(o), f"{g.label} reach {on}"),
              Phase("grasp", both.holding(o), f"{g.label} grasp {on}"),
              Phase("lift", conj(both.holding(o), atom("lifted", o)), f"{g.label} lift {on} together")]
    safety = [Phase("balance", G(implies(atom("lifted", o), both.holding(o))),
                    f"{on} is only in the air when {g.label} hold it")]
    return Plan(phases, subject=(o,), safety=safety, held_after={o: both}, obj=o)


def handover(giver: str, taker: str, gl: str, tl: str, o: str, on: str, *, skip_grasp: bool = False) -> Plan:
    """Handover: the giver grasps first, both hold at some moment, the taker alone holds at the end."""
    h1, h2 = atom("holding", giver, o), atom("holding", taker, o)
    phases = [] if skip_grasp else [Phase("grasp", h1, f"{gl} grasps {on}")]
    phases += [Phase("exchange", conj(h1, h2), f"{gl} and {tl} both hold {on}"),
               Phase("handover", conj(h2, neg(h1)), f"{tl} alone holds {on}")]
    safety = [Phase("grasp_first", until(neg(atom("touching", taker, o)), h1),
                    f"{gl} has {on} before {tl} touches it")]
    return Plan(phases, subject=(o,), safety=safety, carried={o: Carried((giver, taker))},
                held_after={o: Grip((taker,), label=tl)}, obj=o)


def pour(g: Grip, c: str, cn: str, t: str, tn: str, *, skip_approach: bool = False) -> Plan:
    """Pour: grasp and lift the container, hold it above the target, tilt it there."""
    over = conj(g.holding(c), atom("above", c, t))
    phases = [] if skip_approach else approach(g, c, cn)
    phases += [Phase("align", over, f"{cn} is held above {tn}"),
               Phase("pour", conj(over, quoted(f"the {cn[4:]} is tilted")), f"{cn} is tilted over {tn}")]
    return Plan(phases, subject=(c,), final=False, carried={c: Carried(g.names)}, held_after={c: g}, obj=c)


def rank(g: Grip, objs: list[str], names: list[str]) -> Plan:
    """Arrange objects in a left-to-right row: at the end each is left of the next."""
    order = conj(*[atom("left_of", a, b) for a, b in itertools.pairwise(objs)])
    row = ", ".join(names)
    return Plan([Phase("arrange", order, f"from left to right: {row}")], subject=tuple(objs),
                carried={o: Carried(g.names) for o in objs}, held_after=dict.fromkeys(objs), obj="row")
