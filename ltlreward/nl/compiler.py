"""The rules backend: English → IR (ltlreward.nl.parser) → plans (ltlreward.nl.planner) → named constraints.

Composition: each step contributes an ordered chain of phases (one named constraint per phase); consecutive
steps concatenate into `order` constraints F(m1 & F(m2 & …)); a step's last phase is an end state held to
the end (F G) unless a later step acts on the same object; carried objects get a no-drop invariant. Step
modifiers (`NoTouch`, `While`, …) and statements (`Forbid`, `Rule`) add their own constraints.

`compile_ir(parsed, text)` compiles an IR built by any front end (the grammar, or JSON via `Parsed.from_json`);
`compile_rules(text)` is the grammar's whole path.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..spec.ast import Constraint, Formula, TaskSpec
from . import templates as T
from .entities import World, ident
from .errors import NLError
from .ir import (
    NP,
    Arm,
    ArmMod,
    AtEnd,
    AtMostOne,
    ByEnd,
    Deadline,
    Duration,
    Except,
    Forbid,
    KeepState,
    KeepThere,
    Manner,
    Modifier,
    NoContact,
    NoDrop,
    NoGrasp,
    NoLift,
    NoMove,
    NoSpill,
    NoTouch,
    OnlyAfter,
    Parsed,
    Plural,
    Rule,
    State,
    Statement,
    While,
    walk,
)
from .parser import parse
from .planner import Planned, plan_steps
from .states import state_formula, state_words, subject_name


@dataclass(frozen=True)
class CompileResult:
    """A compiled description: the spec, its .ltl text, warnings (things noted but not expressible), backend."""

    spec: TaskSpec
    text: str
    warnings: tuple[str, ...] = ()
    backend: str = "rules"
    attempts: int = 1


# ------------------------------------------------------------------------------------------ collectors
class _Constraints:
    """The constraints so far: a formula said twice counts once, a taken name gets a _2, _3 … suffix."""

    def __init__(self) -> None:
        self.items: list[Constraint] = []
        self.names: set[str] = set()

    def add(self, name: str, formula: Formula, description: str, weight: float = 1.0) -> None:
        if any(c.formula == formula for c in self.items):
            return  # the same requirement said twice counts once
        base = ident(name)
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        self.items.append(Constraint(name, formula, description, float(weight)))


@dataclass
class _NoDrop:
    """One object's no-drop invariant being collected: who may hold it in the air, where it may rest, weight."""

    holders: list[str] = field(default_factory=list)
    rests: list[Formula] = field(default_factory=list)
    weight: float = 1.0


def _stress_no_drop(no_drop: dict[str, _NoDrop], obj: str, grippers: Sequence[str]) -> None:
    """"without dropping" / "never drop": the object's no-drop rule weighs 2 (held by `grippers` if new)."""
    no_drop.setdefault(obj, _NoDrop(list(grippers), [], 2.0)).weight = 2.0


# ------------------------------------------------------------------------------------------ plans
def _held_to_end(p: Planned, later: Sequence[Planned]) -> bool:
    """Whether a plan's end state holds to the end: unless a later group acts on the same objects, or the
    step says "at the end" / "keep it there"."""
    overridden = any(set(p.plan.subject) & set(q.plan.subject) for q in later if q.group > p.group)
    force_final = any(isinstance(m, (AtEnd, KeepThere)) for m in p.step.mods)
    return p.plan.final and (not overridden or force_final)


def _plan_constraints(p: Planned, held_to_end: bool, cs: _Constraints, no_drop: dict[str, _NoDrop]) -> None:
    """A plan's phases (F each; F G the end state when it holds to the end), its safety rules, its carries."""
    plan = p.plan
    for ph in plan.phases[:-1]:
        cs.add(f"{ph.name}_{plan.obj}", T.F(ph.formula), ph.english)
    last = plan.phases[-1]
    if held_to_end:
        cs.add(f"{last.name}_{plan.obj}", T.F(T.G(last.formula)), f"at the end {last.english}")
    else:
        cs.add(f"{last.name}_{plan.obj}", T.F(last.formula), last.english)
    for ph in plan.safety:
        cs.add(f"{ph.name}_{plan.obj}", ph.formula, ph.english)
    for o, carried in plan.carried.items():
        entry = no_drop.setdefault(o, _NoDrop())
        entry.holders += [h for h in carried.holders if h not in entry.holders]
        entry.rests += [r for r in carried.rests if r not in entry.rests]


def _order_constraints(groups: Sequence[Sequence[Planned]], cs: _Constraints) -> None:
    """One `order` chain per path through each thread's groups (one plan of each), named after what differs."""
    threads = sorted({g[0].thread for g in groups})
    if len(threads) > 1:
        for t in threads:
            _thread_order([g for g in groups if g[0].thread == t], cs)
        return
    _thread_order(groups, cs)


def _thread_order(groups: Sequence[Sequence[Planned]], cs: _Constraints) -> None:
    paths = list(itertools.product(*[list(g) for g in groups])) if groups else []
    for k, path in enumerate(paths):
        phases = [ph for p in path for ph in p.plan.phases]
        if len(phases) < 2:
            continue
        name = "order" if len(paths) == 1 else f"order_{path[-1].plan.obj if len(paths) <= 4 else k + 1}"
        if len(paths) > 1 and len({p.plan.obj for p in path}) > 1:
            name = "order_" + "_".join(dict.fromkeys(p.plan.obj for p in path if len(_group(groups, p)) > 1))
        cs.add(name, T.in_order([ph.formula for ph in phases]),
               "in this order: " + ", ".join(f"{ph.name} ({_short(ph.english)})" for ph in phases))


def _group(groups: Sequence[Sequence[Planned]], p: Planned) -> Sequence[Planned]:
    return next(g for g in groups if p in g)


def _short(english: str) -> str:
    return english.replace("the gripper ", "").replace("either arm ", "")


# ------------------------------------------------------------------------------------------ modifiers
@dataclass(frozen=True)
class _ModContext:
    """What a step modifier's rule sees: the plan it modifies, the world, the collectors, the step's grippers."""

    plan: T.Plan
    world: World
    cs: _Constraints
    no_drop: dict[str, _NoDrop]
    grippers: list[str]
    step_objs: tuple[str, ...] = ()  # every object of the step (one plan each)
    before: T.Plan | None = None  # the plan just before this step's in its thread ("only after that")
    step: Any = None


def _no_drop_mod(m: NoDrop, c: _ModContext) -> None:
    t = m.target
    if isinstance(t, (NP, Plural)) and not getattr(t, "pronoun", None):
        objs = c.world.objs((t,), remember=False)
    else:
        objs = [c.plan.obj] if c.plan.obj != "row" else list(c.plan.subject)
    for o in objs:
        _stress_no_drop(c.no_drop, o, c.grippers)


def _no_touch_mod(m: NoTouch, c: _ModContext) -> None:
    x = c.world.np(m.target)
    c.cs.add(f"avoid_{x}", T.G(T.neg(T.disj(*[T.atom("touching", h, x) for h in c.grippers]))),
             f"{c.world.label(x)} is never touched")


def _no_lift_mod(m: NoLift, c: _ModContext) -> None:
    o = c.plan.obj
    c.cs.add(f"no_lift_{o}", T.G(T.neg(T.atom("lifted", o))), f"{c.world.label(o)} is never lifted")


def _no_grasp_mod(m: NoGrasp, c: _ModContext) -> None:
    o = c.plan.obj
    c.cs.add(f"no_grasp_{o}", T.G(T.neg(T.disj(*[T.atom("holding", h, o) for h in c.grippers]))),
             f"{c.world.label(o)} is never grasped")


def _no_move_mod(m: NoMove, c: _ModContext) -> None:
    x = c.world.np(m.target)
    c.cs.add(f"still_{x}", T.G(T.neg(T.atom("moving", x))), f"{c.world.label(x)} never moves")


def _while_mod(m: While, c: _ModContext) -> None:
    f = state_formula(m.state, c.world)
    last = c.plan.phases[-1]
    c.world.warnings.append(f'read "while / keeping {state_words(m.state, c.world)}" as: it holds from the start '
                            f"until {last.english}")
    c.cs.add(f"while_{c.plan.obj}", T.until(f, last.formula), f"the condition holds until {last.english}")


def _keep_state_mod(m: KeepState, c: _ModContext) -> None:
    c.cs.add(f"keep_{c.plan.obj}", T.F(T.G(state_formula(m.state, c.world))),
             f"at the end {c.world.label(c.plan.obj)} stays so")


def _manner_mod(m: Manner, c: _ModContext) -> None:
    c.world.warnings.append(f'"{m.word}" is not expressible with the predicate library; ignored')


def _deadline_mod(m: Deadline, c: _ModContext) -> None:
    last = c.plan.phases[-1]
    unit = "s" if m.unit == "s" else " frames"
    c.cs.add(f"deadline_{c.plan.obj}", T.F_within(last.formula, m.bound, m.unit),
             f"within {m.bound:g}{unit}: {last.english}")


def spills(world: World, obj: str) -> Formula:
    """"the mug spills": a quoted atom, since no predicate of the library measures spilling."""
    return T.quoted(f"{world.label(obj)} spills")


def _no_spill_mod(m: NoSpill, c: _ModContext) -> None:
    t = m.target
    objs = c.world.objs((t,), remember=False) if t is not None and not getattr(t, "pronoun", None) else \
        [c.plan.obj]
    for o in objs:
        c.cs.add(f"no_spill_{o}", T.G(T.neg(spills(c.world, o))), f"{c.world.label(o)} never spills")


def _at_most_one_mod(m: AtMostOne, c: _ModContext) -> None:
    objs = list(c.step_objs)
    if len(objs) < 2:
        raise NLError('"at most one at a time" needs a step with several objects', text=c.world.text)
    pairs = [T.conj(T.atom("holding", g, a), T.atom("holding", g, b))
             for g in c.grippers for a, b in itertools.combinations(objs, 2)]
    c.cs.add("one_at_a_time", T.G(T.neg(T.disj(*pairs))),
             f"no gripper holds two of {', '.join(c.world.label(o) for o in objs)} at once")


def _except_mod(m: Except, c: _ModContext) -> None:
    """", not X": the step's destination relation (a placement) or its action on the object never meets X."""
    o, w = c.plan.obj, c.world
    x = w.np(m.target, exclude=(o,))
    step = c.step
    if step is not None and isinstance(step.dest, NP) and step.verb in ("place", "insert", "push", "pour"):
        from .planner import _rel_for

        rel = _rel_for(step.rel, x, w) if step.rel in (None, "to") else step.rel
        f, what = T.rel_atom(rel, o, x), f"{w.label(o)} is never {T.rel_english(rel)} {w.label(x)}"
    else:
        pred = {"touch": "touching", "press": "touching", "push": "touching", "open": "touching",
                "close": "touching", "turn_on": "touching", "turn_off": "touching", "reach": "near"}.get(
            step.verb if step is not None else "", "holding")
        f = T.disj(*[T.atom(pred, g, x) for g in c.grippers])
        what = f"{w.label(x)} is never " + {"holding": "held", "touching": "touched", "near": "reached"}[pred]
    w.warnings.append(f'read "not the {m.target.text}" as: {what}')
    c.cs.add(f"not_{x}", T.G(T.neg(f)), what)


def _only_after_mod(m: OnlyAfter, c: _ModContext) -> None:
    if m.state is not None:
        cond, words = state_formula(m.state, c.world), state_words(m.state, c.world)
    elif c.before is not None:
        cond, words = c.before.phases[-1].formula, c.before.phases[-1].english
    else:
        raise NLError('"only after that" needs a step before it', text=c.world.text)
    c.cs.add(f"only_after_{c.plan.obj}", T.until(T.neg(c.plan.effect_formula()), cond),
             f"not before {words}: {c.plan.phases[-1].english}")


def _no_contact_mod(m: NoContact, c: _ModContext) -> None:
    a = c.plan.obj if m.subject.pronoun else c.world.np(m.subject)
    b = c.world.np(m.target, exclude=(a,))
    c.cs.add(f"apart_{a}_{b}", T.G(T.neg(T.atom("touching", a, b))),
             f"{c.world.label(a)} never touches {c.world.label(b)}")


def _nothing(m: Modifier, c: _ModContext) -> None:
    """ArmMod is read by the parser, AtEnd / KeepThere by `_held_to_end`, Duration by the planner; ByEnd asks
    for what every step already requires."""


_MOD_RULES: dict[type, Callable[[Any, _ModContext], None]] = {
    ArmMod: _nothing, AtEnd: _nothing, KeepThere: _nothing, NoDrop: _no_drop_mod, NoTouch: _no_touch_mod,
    NoLift: _no_lift_mod, NoGrasp: _no_grasp_mod, NoMove: _no_move_mod, While: _while_mod,
    KeepState: _keep_state_mod, Manner: _manner_mod, ByEnd: _nothing, Duration: _nothing, Deadline: _deadline_mod,
    NoSpill: _no_spill_mod, AtMostOne: _at_most_one_mod, Except: _except_mod, OnlyAfter: _only_after_mod,
    NoContact: _no_contact_mod,
}


def _step_mods(p: Planned, flat: Sequence[Planned], world: World, cs: _Constraints,
               no_drop: dict[str, _NoDrop]) -> None:
    """The constraints of a step's modifiers, for the grippers of the step (all of them when it names none)."""
    g = world.grip(p.step.arm) if p.step.arm and p.step.arm.which != "each" else None
    grippers = list(g.names) if g else world.all_grippers()
    objs = tuple(q.plan.obj for q in flat if q.step is p.step)
    before = next((q.plan for q in reversed(flat[: flat.index(p)]) if q.step is not p.step and q.thread == p.thread),
                  None)
    ctx = _ModContext(p.plan, world, cs, no_drop, grippers, objs, before, p.step)
    for m in p.step.mods:
        _MOD_RULES[type(m)](m, ctx)


# ------------------------------------------------------------------------------------------ statements
def _forbid(st: Forbid, grippers: list[str], world: World, cs: _Constraints, no_drop: dict[str, _NoDrop]) -> None:
    """"never drop / touch / let A touch B / lift / move …" → a G ¬ rule (drop: a stressed no-drop rule)."""
    if st.action == "drop":
        objs = world.objs(st.targets, remember=False) if st.targets else [n for g in world.recent[-1:] for n in g]
        if not objs:
            raise NLError('"never drop" needs an object mentioned before', text=world.text)
        for o in objs:
            _stress_no_drop(no_drop, o, grippers)
        return
    if st.action == "spill":
        objs = world.objs(st.targets, remember=False) if st.targets else [n for g in world.recent[-1:] for n in g]
        if not objs:
            raise NLError('"never spill" needs an object mentioned before', text=world.text)
        for o in objs:
            cs.add(f"no_spill_{o}", T.G(T.neg(spills(world, o))), f"{world.label(o)} never spills")
        return
    names = [world.np(n) for n in st.targets]
    x = names[0]
    if st.action == "touch":
        cs.add(f"avoid_{x}", T.G(T.neg(T.disj(*[T.atom("touching", h, x) for h in grippers]))),
               f"{world.label(x)} is never touched")
    elif st.action == "contact":
        a, b = names
        cs.add(f"apart_{a}_{b}", T.G(T.neg(T.atom("touching", a, b))),
               f"{world.label(a)} never touches {world.label(b)}")
    elif st.action == "lift":
        cs.add(f"no_lift_{x}", T.G(T.neg(T.atom("lifted", x))), f"{world.label(x)} is never lifted")
    elif st.action == "move":
        cs.add(f"still_{x}", T.G(T.neg(T.atom("moving", x))), f"{world.label(x)} never moves")


def _rule(st: Rule, world: World, cs: _Constraints) -> None:
    """never S → G ¬S; S until S' → S U S' ("it" in S' is S's subject); at the end → F G; always; eventually."""
    states = list(st.states)
    if st.kind == "until" and isinstance(states[1].subject, NP) and states[1].subject.pronoun:
        states[1] = replace(states[1], subject=states[0].subject)
    if st.kind == "at_most_one":
        _at_most_one_rule(states[0], world, cs)
        return
    fs = [state_formula(s, world) for s in states]
    who = subject_name(states[0], world)
    if st.kind == "never":
        cs.add(f"never_{who}", T.G(T.neg(fs[0])), "this never happens: " + state_words(states[0], world))
    elif st.kind == "until" and _achieved(states[0]):
        # "keep the sponge held until …": held is brought about first, so the rule starts when it first holds
        world.warnings.append(f'"{state_words(states[0], world)} until …" starts when it first holds '
                              "(it need not hold at the start)")
        cs.add(f"keep_{who}", T.F(T.conj(fs[0], T.until(fs[0], fs[1]))),
               f"once {state_words(states[0], world)}, it stays so until {state_words(states[1], world)}")
    elif st.kind == "until":
        cs.add(f"keep_{who}", T.until(fs[0], fs[1]),
               f"{state_words(states[0], world)} until {state_words(states[1], world)}")
    elif st.kind == "at_end":
        cs.add(f"final_{who}", T.F(T.G(fs[0])), f"at the end {state_words(states[0], world)}")
    elif st.kind == "always":
        cs.add(f"always_{who}", T.G(fs[0]), f"always {state_words(states[0], world)}")
    elif st.kind == "eventually":
        cs.add(f"eventually_{who}", T.F(fs[0]), f"at some point {state_words(states[0], world)}")


def _achieved(st: State) -> bool:
    """A state a task brings about by grasping (held, holding, lifted): "keep S until …" starts when S first holds."""
    return not st.negated and st.pred in ("held", "holds", "lifted")


def _at_most_one_rule(st: State, world: World, cs: _Constraints) -> None:
    """"at most one arm holds X at a time": no two grippers hold X at once."""
    x = world.np(st.obj) if isinstance(st.obj, NP) else None
    grippers = world.all_grippers()
    if x is None or len(grippers) < 2:
        raise NLError('"at most one arm" needs two arms and an object', text=world.text)
    pairs = [T.conj(T.atom("holding", a, x), T.atom("holding", b, x)) for a, b in itertools.combinations(grippers, 2)]
    cs.add(f"one_holder_{x}", T.G(T.neg(T.disj(*pairs))), f"never more than one arm holds {world.label(x)}")


def _statement(st: Statement, world: World, cs: _Constraints, no_drop: dict[str, _NoDrop]) -> None:
    grippers = world.all_grippers()
    if isinstance(st, Forbid):
        _forbid(st, grippers, world, cs, no_drop)
    else:
        _rule(st, world, cs)


# ------------------------------------------------------------------------------------------ assembly
def _assemble(parsed: Parsed, world: World) -> tuple[Constraint, ...]:
    """Every constraint of the description, in order: per plan (phases, safety, modifiers), the order
    chains, the statements, then one no-drop rule per carried object."""
    groups = plan_steps(parsed, world)
    flat = [p for g in groups for p in g]
    cs = _Constraints()
    no_drop: dict[str, _NoDrop] = {}
    for i, p in enumerate(flat):
        _plan_constraints(p, _held_to_end(p, flat[i + 1 :]), cs, no_drop)
        _step_mods(p, flat, world, cs, no_drop)
    _order_constraints(groups, cs)
    for st in parsed.statements:
        _statement(st, world, cs, no_drop)
    for o, nd in no_drop.items():
        held = [T.atom("holding", h, o) for h in nd.holders]
        desc = f"{world.label(o)} is never in the air unless held"
        if nd.rests:
            desc += " or resting where it was placed"
        cs.add(f"no_drop_{o}", T.G(T.implies(T.atom("lifted", o), T.disj(*held, *nd.rests))), desc, nd.weight)
    return tuple(cs.items)


def _is_bimanual(parsed: Parsed) -> bool:
    """Whether any arm is named (left, right, both, either, other): then the task has two grippers."""
    return any(isinstance(n, Arm) and n.which != "default" for n in walk(parsed))


def compile_ir(parsed: Parsed, text: str, warnings: Sequence[str] = ()) -> CompileResult:
    """A spec from a parsed description (its `text` is the task line and what errors quote); deterministic.
    `warnings` (the front end's: spelling, synonyms, ignored words) come first in the result's warnings."""
    from ..spec import format_spec, validate_spec

    world = World(_is_bimanual(parsed), text)
    world.warnings.extend(warnings)
    if len({s.thread for s in parsed.steps}) > 1:
        world.warnings.append("the left arm's steps and the right arm's steps are taken as simultaneous "
                              "(no order between the two arms)")
    constraints = _assemble(parsed, world)
    if not constraints:
        raise NLError("the description produced no constraints", text=text)
    used = _used_entities(constraints)
    entities = tuple(e for n, e in world.entities.items() if n in used)
    spec = TaskSpec(task=" ".join(text.split()), entities=entities, constraints=constraints)
    validate_spec(spec)
    return CompileResult(spec=spec, text=format_spec(spec), warnings=tuple(dict.fromkeys(world.warnings)))


def compile_rules(text: str) -> CompileResult:
    """Rules backend: parse the controlled English and build the spec from templates (deterministic)."""
    parsed, warnings = parse(text)
    return compile_ir(parsed, text, warnings)


def _used_entities(constraints: Sequence[Constraint]) -> set[str]:
    from ..spec import atoms_of
    from ..spec.ast import Atom

    out: set[str] = set()
    for c in constraints:
        for a in atoms_of(c.formula):
            if isinstance(a, Atom):
                out.update(a.call.identifiers)
    return out


__all__ = ["CompileResult", "compile_ir", "compile_rules"]
