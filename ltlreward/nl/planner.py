"""Steps of the IR → template plans: which template each verb uses, with which gripper, object and destination.

`plan_steps` walks the steps in order, resolving noun phrases through the `World`, and returns groups of
`Planned` plans: the plans of one group happen in parallel (one per object of "put both bottles in the bin"),
consecutive groups in order (a stack is one group per level). A step-level verb (handover, rank, stack, the
gripper's own open/close) has its handler in `_STEP_HANDLERS`; every other verb makes one plan per object from
its entry in `_OBJECT_TEMPLATES`. `held` tracks which grip holds each object after the steps so far, so "pick
up the cup and put it on the plate" skips the second approach.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

from . import templates as T
from .entities import BUTTONS, CONTAINERS, FIXTURES, PEGS, World
from .errors import NLError
from .ir import NP, Arm, Duration, Parsed, Plural, RowOrder, StackOrder, Start, Step

Held = dict[str, T.Grip | None]  # object → the grip holding it after the steps so far (None: put down)


@dataclass(frozen=True)
class Planned:
    """A template's plan, the step it came from and its group (plans of one group are not ordered)."""

    plan: T.Plan
    step: Step
    group: int
    thread: int = 0  # plans of different threads are not ordered (the step's thread)


# ------------------------------------------------------------------------------------------ per object
@dataclass(frozen=True)
class _Act:
    """One object of a step being planned: the step, the object, the grip acting on it and the destination."""

    step: Step
    world: World
    held: Held
    obj: str
    grip: T.Grip
    dest: str | None

    @property
    def on(self) -> str:
        """The object's English label."""
        return self.world.label(self.obj)

    @property
    def head(self) -> str:
        """The object's head noun ("" when it has none)."""
        return next((h for h, ns in self.world.heads.items() if self.obj in ns), "")


def _rel_for(rel: str | None, dest: str, world: World) -> str:
    """A placement's relation: as said, else from the destination's kind (on a surface, in a container, …)."""
    if rel not in (None, "to"):
        return rel
    e = world.entities[dest]
    head = next((h for h, ns in world.heads.items() if dest in ns), "")
    if e.kind == "surface":
        return "on"
    if head in CONTAINERS:
        return "in"
    if e.kind == "region":
        return "at"
    return "on"


def _pick(a: _Act) -> T.Plan | None:
    """pick / hold / lift: reach, grasp, lift (both arms together: a two-arm lift)."""
    if a.held.get(a.obj) == a.grip:
        if any(isinstance(m, Duration) for m in a.step.mods):  # "… and hold it up for 2 s": a phase of its own
            return T.keep_held(a.grip, a.obj, a.on)
        return None  # already held up by this gripper ("pick up the cup and hold it")
    if a.head in FIXTURES and a.step.verb == "pick":
        a.world.warnings.append(f'{a.on} is fixed in place: "grasp" is read as reaching and grasping it, no lift')
        return T.grasp_fixture(a.grip, a.obj, a.on)
    return T.two_arm_lift(a.grip, a.obj, a.on) if a.grip.together else T.pick(a.grip, a.obj, a.on)


def _place(a: _Act) -> T.Plan:
    """place / insert: to the destination (a peg put "in" something is inserted); no approach if already held."""
    if a.dest is None:
        raise NLError(f'where should {a.on} go? add a destination, e.g. "put {a.on} on the table"',
                      text=a.world.text, suggestion="put the cup on the plate")
    rel = _rel_for(a.step.rel, a.dest, a.world)
    skip = a.held.get(a.obj) is not None and a.held.get(a.obj) == a.grip
    if a.step.verb == "insert" or (a.head in PEGS and rel == "in"):
        return T.insert(a.grip, a.obj, a.on, a.dest, a.world.label(a.dest), skip_approach=skip)
    return T.place(a.grip, a.obj, a.on, rel, a.dest, a.world.label(a.dest), skip_approach=skip)


def _push(a: _Act) -> T.Plan:
    """push / slide: to the destination (at it unless said), or along; a button pushed is pressed."""
    if a.dest is None and a.head in BUTTONS:
        return T.press(a.grip, a.obj, a.on)
    if a.dest is not None and a.held.get(a.obj) is not None and a.held.get(a.obj) == a.grip:
        return _place(a)  # "pick up the peg, then push it into the hole": a held object is placed (inserted)
    rel = None if a.dest is None else ("at" if a.step.rel in (None, "to") else a.step.rel)
    return T.push(a.grip, a.obj, a.on, rel, a.dest, a.world.label(a.dest) if a.dest else None)


def _touch(a: _Act) -> T.Plan:
    """touch / hit: reach and touch (a button touched is not pressed: a warning says to say "press")."""
    if a.head in BUTTONS:
        a.world.warnings.append(f'touching {a.on} does not press it; say "press" if it must be pressed')
    return T.touch(a.grip, a.obj, a.on)


def _pour(a: _Act) -> T.Plan:
    """pour: the container above the target and tilted (what is poured is only noted)."""
    if a.step.contents is not None:
        a.world.warnings.append(f'contents "{a.step.contents.text}" are not tracked; pouring is judged by {a.on}')
    return T.pour(a.grip, a.obj, a.on, a.dest, a.world.label(a.dest), skip_approach=a.held.get(a.obj) == a.grip)


def _articulate(a: _Act) -> T.Plan:
    return T.articulate(a.grip, a.obj, a.on, a.step.verb)


_OBJECT_TEMPLATES: dict[str, Callable[[_Act], T.Plan | None]] = {
    "pick": _pick, "hold": _pick, "lift": _pick, "place": _place, "insert": _place, "push": _push,
    "reach": lambda a: T.reach(a.grip, a.obj, a.on), "touch": _touch,
    "open": _articulate, "close": _articulate, "turn_on": _articulate, "turn_off": _articulate,
    "press": lambda a: T.press(a.grip, a.obj, a.on), "pour": _pour,
    "release": lambda a: T.release(a.grip, a.obj, a.on),
}


def _arguments(step: Step, world: World) -> tuple[str | None, list[str]]:
    """The step's destination entity and object entities, resolved in the order they were said (a pronoun or
    implied destination is another object than the step's own; "where it was" is the object's start region); a
    source is noted as an entity only."""
    world.said_before = len(world.mentions)  # "the blue one" names the head of an object said before this step
    dest = world.np(step.dest) if isinstance(step.dest, NP) and not step.dest.pronoun else None
    objs = world.objs(step.objs, remember=False)
    world.said_before = None
    if isinstance(step.dest, NP) and step.dest.pronoun:
        dest = world.np(step.dest, exclude=tuple(objs))
    if isinstance(step.dest, Start):
        if len(objs) != 1:
            raise NLError('"back where it was" needs one object', text=world.text)
        dest = world.start_of(objs[0])
    if objs:
        world.recent.append(objs)
    if isinstance(step.src, NP):
        src = world.np(step.src)
        world.warnings.append(f'source "{world.entities[src].prompt}" noted as an entity only '
                              "(the task does not constrain where objects start)")
    return dest, objs


def _object_step(step: Step, world: World, held: Held) -> list[list[T.Plan]]:
    """One plan per object from the verb's template, all in one parallel group."""
    template = _OBJECT_TEMPLATES.get(step.verb)
    if template is None:  # pragma: no cover - every verb of the IR has a template or a step handler
        raise NLError(f"no template for verb {step.verb!r}", text=world.text)
    dest, objs = _arguments(step, world)
    grips = _each_arm(objs, world) if step.arm is not None and step.arm.which == "each" else None
    plans = []
    for i, o in enumerate(objs):
        g = world.grip(step.arm) if step.arm is not None or held.get(o) is None else held[o]
        plan = template(_Act(step, world, held, o, grips[i] if grips else g, dest))
        if plan is not None:
            plans.append(_with_duration(plan, step))
    return [plans]


def _each_arm(objs: list[str], world: World) -> list[T.Grip]:
    """"each arm … one of the two bottles": the left arm takes the first object, the right arm the second."""
    if len(objs) != 2:
        raise NLError(f'"each arm" needs one object per arm (two), got {len(objs)}', text=world.text)
    grips = [world.grip(Arm("left")), world.grip(Arm("right"))]
    world.warnings.append(f'"each arm": {grips[0].label} takes {world.label(objs[0])}, {grips[1].label} takes '
                          f"{world.label(objs[1])} (at the same time)")
    return grips


def _with_duration(plan: T.Plan, step: Step) -> T.Plan:
    """A step with a duration ("for at least 2 s"): its last phase must hold that long without a break."""
    d = next((m for m in step.mods if isinstance(m, Duration)), None)
    if d is None:
        return plan
    last = plan.phases[-1]
    unit = "s" if d.unit == "s" else " frames"
    held = T.Phase(last.name, T.G_for(last.formula, d.bound, d.unit), f"{last.english} for {d.bound:g}{unit}")
    return replace(plan, phases=[*plan.phases[:-1], held])


# ------------------------------------------------------------------------------------------ per step
def _stack(step: Step, world: World, held: Held) -> list[list[T.Plan]]:
    """Each object placed on the one below it, bottom first (or as the order says), one level at a time."""
    names = world.objs(step.objs)
    if len(names) < 2:
        raise NLError("stacking needs at least two objects", text=world.text)
    order = step.stack or StackOrder()
    if order.kind == "top_down":
        names = names[::-1]
    elif order.kind in ("bottom_is", "top_is"):
        pivot = world.np(order.pivot)
        rest = [n for n in names if n != pivot]
        names = [pivot, *rest] if order.kind == "bottom_is" else [*rest, pivot]
    g = world.grip(step.arm)
    plans = [T.place(g, top, world.label(top), "on", bottom, world.label(bottom), skip_approach=held.get(top) == g)
             for bottom, top in itertools.pairwise(names)]
    return [[p] for p in plans]


def _gripper(step: Step, world: World, held: Held) -> list[list[T.Plan]]:
    """open / close the gripper itself (the arm named as the verb's argument, else the step's arm)."""
    return [[T.gripper_state(world.grip(step.arm_arg or step.arm), step.verb == "open_gripper")]]


def _handover(step: Step, world: World, held: Held) -> list[list[T.Plan]]:
    """Hand each object from the giver (named, else whoever holds it, else an arm other than the taker) to
    the taker (named, else the other arm)."""
    taker_arm = step.dest if isinstance(step.dest, Arm) else None
    giver_arm = step.src if isinstance(step.src, Arm) else step.arm
    plans = []
    for o in world.objs(step.objs):
        giver = world.grip(giver_arm) if giver_arm else held.get(o)
        if giver is None or len(giver.names) != 1:
            if taker_arm is not None and taker_arm.which in ("left", "right"):
                giver = world.grip(Arm("right" if taker_arm.which == "left" else "left"))
            else:
                giver = world.grip(Arm("left"))
        world.last_arm = giver.names[0]
        if taker_arm is None or taker_arm.which in ("default", "either", "other"):
            taker = world.grip(Arm("right" if giver.names[0] == "left" else "left"))
        else:
            taker = world.grip(taker_arm)
        if len(taker.names) != 1 or taker.names == giver.names:
            raise NLError("a handover needs two different arms (e.g. from the left arm to the right arm)",
                          text=world.text, suggestion="hand the bottle from the left arm to the right arm")
        plans.append(T.handover(giver.names[0], taker.names[0], giver.label, taker.label, o, world.label(o),
                                skip_grasp=held.get(o) == giver))
    return [plans]


def _row_items(step: Step, row: RowOrder, world: World) -> tuple[NP | Plural, ...]:
    """The row's objects: a plural phrase gets the colours or sizes the order names (sizes largest first)."""
    items = step.objs
    head_np = next((x for x in items if isinstance(x, (Plural, NP))), None)
    if row.colours and isinstance(head_np, Plural) and not head_np.colours:
        return (Plural(head=head_np.head, words=head_np.words, colours=row.colours, text=head_np.text),)
    if (row.by == "size" or row.size_order is not None) and isinstance(head_np, Plural) and not head_np.sizes:
        if row.size_order is None:
            world.warnings.append("size order not given: assuming largest first")
        sizes = ("large", "medium", "small")[: head_np.count or 3]
        return (Plural(head=head_np.head, words=head_np.words, sizes=sizes, text=head_np.text),)
    if isinstance(head_np, Plural) and not (head_np.colours or head_np.sizes):
        raise NLError("say the order of the row, e.g. 'by colour: red, green, blue' or 'from largest to smallest'",
                      text=world.text, suggestion="arrange the blocks by colour from left to right: red, green, blue")
    return items


def _rank(step: Step, world: World, held: Held) -> list[list[T.Plan]]:
    """Arrange the objects in a left-to-right row, in the order said."""
    row = step.row or RowOrder()
    names = world.objs(_row_items(step, row, world))
    if row.size_order == "asc":
        names = names[::-1]
    if row.direction == "rtl":
        names = names[::-1]
    if len(names) < 2:
        raise NLError("a row needs at least two objects", text=world.text)
    return [[T.rank(world.grip(step.arm), names, [world.entities[n].prompt for n in names])]]


_STEP_HANDLERS: dict[str, Callable[[Step, World, Held], list[list[T.Plan]]]] = {
    "handover": _handover, "rank": _rank, "stack": _stack, "open_gripper": _gripper, "close_gripper": _gripper,
}


def _as_planned(step: Step) -> Step:
    """The step as planned: a pick / place / hold / lift to an arm is a handover; a reach's arm argument is
    the arm that reaches."""
    if step.verb in ("place", "hold", "pick", "lift") and isinstance(step.dest, Arm):
        return replace(step, verb="handover")
    if step.verb == "reach" and step.arm_arg is not None:
        return replace(step, arm=step.arm_arg)
    return step


def plan_steps(parsed: Parsed, world: World) -> list[list[Planned]]:
    """The plans of every step in order, as groups (see the module docstring)."""
    groups: list[list[Planned]] = []
    held: Held = {}
    for step in map(_as_planned, parsed.steps):
        for plans in _STEP_HANDLERS.get(step.verb, _object_step)(step, world, held):
            if plans:
                groups.append([Planned(p, step, len(groups), step.thread) for p in plans])
            for p in plans:
                held.update(p.held_after)
    return groups


__all__ = ["Held", "Planned", "plan_steps"]
