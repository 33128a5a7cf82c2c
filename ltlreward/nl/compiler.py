"""English task description → TaskSpec: resolve noun phrases to entities, apply templates, compose constraints.

Composition: each step contributes an ordered chain of phases (one named constraint per phase); consecutive
steps concatenate into `order` constraints F(m1 & F(m2 & …)); a step's last phase is an end state held to
the end (F G) unless a later step acts on the same object; carried objects get a no-drop invariant.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from ltlreward.spec.ast import Constraint, Entity, Formula, TaskSpec

from . import templates as T
from .errors import NLError
from .parser import NP, Arm, Mod, Parsed, Plural, State, Statement, Step, parse_text

SURFACES = frozenset({"table", "shelf", "plate", "tray", "counter", "mat", "coaster", "pad", "platform", "ground",
                      "floor", "board", "desk", "stand", "tabletop", "surface", "saucer", "cutting-board",
                      "dish", "placemat", "workbench"})
REGIONS = frozenset({"goal", "target", "position", "location", "spot", "area", "zone", "region", "side", "corner",
                     "hole", "slot", "socket", "mark", "marker", "line", "edge", "center", "centre", "point"})
CONTAINERS = frozenset({"drawer", "cabinet", "dustbin", "bin", "box", "bowl", "basket", "cup", "mug", "bucket",
                        "pot", "pan", "jar", "container", "sink", "tray", "crate", "bag", "microwave", "oven",
                        "fridge", "cupboard", "glass", "hole", "slot", "socket", "trashcan", "dishwasher"})
PEGS = frozenset({"peg", "plug", "pin", "rod", "stick", "key"})
BUTTONS = frozenset({"button", "switch", "key", "buzzer", "lever"})
HEAD_SYNONYMS = {"cube": "block", "brick": "block", "bin": "dustbin", "trashcan": "dustbin",
                 "wastebasket": "dustbin", "wastebin": "dustbin", "puck": "puck"}
COMPOUND_SYNONYMS = {("trash", "can"): "dustbin", ("garbage", "can"): "dustbin", ("trash", "bin"): "dustbin",
                     ("waste", "bin"): "dustbin", ("garbage", "bin"): "dustbin", ("rubbish", "bin"): "dustbin"}
_ORD_WORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


@dataclass(frozen=True)
class CompileResult:
    """A compiled description: the spec, its .ltl text, warnings (things noted but not expressible), backend."""

    spec: TaskSpec
    text: str
    warnings: tuple[str, ...] = ()
    backend: str = "rules"
    attempts: int = 1


# ------------------------------------------------------------------------------------------- entities
class _World:
    """Entities mentioned so far, pronoun context, who holds what, and the arm mode (single or bimanual)."""

    def __init__(self, bimanual: bool, text: str) -> None:
        self.bimanual = bimanual
        self.text = text
        self.entities: dict[str, Entity] = {}
        self.heads: dict[str, list[str]] = {}  # canonical head → entity names, most recent last
        self.recent: list[list[str]] = []  # object-role entity groups, most recent last
        self.warnings: list[str] = []
        self.last_arm: str | None = None

    # -- grippers
    def grip(self, arm: Arm | None, verb: str = "") -> T.Grip:
        which = arm.which if arm else "default"
        if which == "other":
            if self.last_arm not in ("left", "right"):
                raise NLError('"the other arm" needs an arm named before it', text=self.text)
            which = "right" if self.last_arm == "left" else "left"
        if which in ("left", "right"):
            self._gripper(which)
            self.last_arm = which
            return T.Grip((which,), label=f"the {which} arm")
        if not self.bimanual:
            self._gripper("gripper")
            return T.Grip(("gripper",), label="the gripper")
        self._gripper("left")
        self._gripper("right")
        if which == "both":
            return T.Grip(("left", "right"), together=True, label="both arms")
        return T.Grip(("left", "right"), label="either arm")

    def _gripper(self, name: str) -> None:
        if name not in self.entities:
            prompt = "robot gripper" if name == "gripper" else f"{name} gripper"
            self.entities[name] = Entity(name, prompt, "gripper")

    def all_grippers(self) -> list[str]:
        if self.bimanual:
            self._gripper("left")
            self._gripper("right")
            return ["left", "right"]
        self._gripper("gripper")
        return ["gripper"]

    # -- objects
    def label(self, name: str) -> str:
        e = self.entities[name]
        return f"the {e.prompt}" if e.kind != "gripper" else f"the {name} arm" if name != "gripper" else "the gripper"

    def add(self, name: str, prompt: str, head: str, colour: str | None) -> str:
        if name not in self.entities:
            kind = "surface" if head in SURFACES else "region" if head in REGIONS else "object"
            hints = (("color", colour),) if colour else ()
            self.entities[name] = Entity(name, prompt, kind, hints)
        self.heads.setdefault(head, [])
        if name in self.heads[head]:
            self.heads[head].remove(name)
        self.heads[head].append(name)
        return name

    def np(self, np: NP, *, exclude: tuple[str, ...] = ()) -> str:
        """Entity name for a singular noun phrase (pronouns resolve to the most recent other object)."""
        if np.pronoun:
            for group in reversed(self.recent):
                cands = [n for n in group if n not in exclude]
                if len(cands) == 1:
                    return cands[0]
                if cands:
                    return cands[-1]
            raise NLError('"it" does not refer to anything mentioned before', text=self.text)
        head = _canon_head(np.words, np.head)
        words = tuple(w for w in np.words if (w, np.head) not in COMPOUND_SYNONYMS)
        if ((*np.words[-1:], np.head)) in COMPOUND_SYNONYMS:
            words = np.words[:-1]
        bare = not (np.colour or np.size or np.ordinal or np.place or words)
        if bare and self.heads.get(head):
            return self.heads[head][-1]
        parts = [p for p in (np.place, np.size, np.colour) if p] + list(words) + [head]
        name = _ident("_".join(parts) + (str(np.ordinal) if np.ordinal else ""))
        prompt = np.text
        if np.ordinal and not any(w in prompt for w in _ORD_WORD.values()):
            prompt = f"{_ORD_WORD.get(np.ordinal, str(np.ordinal))} {prompt.rsplit(' ', 1)[0]}".strip()
        return self.add(name, prompt, head, np.colour)

    def plural(self, p: Plural) -> list[str]:
        """Entity names of a plural phrase, in the order the phrase lists them."""
        head = _canon_head(p.words, p.head)
        words = [w for w in p.words if w not in ("the",)]
        if p.colours:
            return [self.add(_ident("_".join([c, *words, head])), " ".join([c, *words, p.head]), head, c)
                    for c in p.colours]
        if p.sizes:
            return [self.add(_ident("_".join([s, *words, head])), " ".join([s, *words, p.head]), head, None)
                    for s in p.sizes]
        count = p.count
        if count is None:
            known = self.heads.get(head, [])
            if len(known) >= 2:
                return list(known)
            count = 2
            self.warnings.append(f'"{p.text}": number not given, assuming 2')
        return [self.add(_ident("_".join([*words, head]) + str(i)),
                         " ".join([_ORD_WORD.get(i, str(i)), *words, p.head]), head, None)
                for i in range(1, count + 1)]

    def objs(self, items: tuple, *, remember: bool = True) -> list[str]:
        out: list[str] = []
        for it in items:
            if isinstance(it, Plural):
                out.extend(self.plural(it))
            elif isinstance(it, NP) and it.pronoun and self.recent:
                out.extend(self.recent[-1] if len(self.recent[-1]) > 1 and it.text == "them" else
                           [self.np(it)])
            else:
                out.append(self.np(it))
        if remember and out:
            self.recent.append(out)
        return out


def _canon_head(words: tuple[str, ...], head: str) -> str:
    if ((*words[-1:], head)) in COMPOUND_SYNONYMS:
        return COMPOUND_SYNONYMS[(*words[-1:], head)]
    return HEAD_SYNONYMS.get(head, head)


def _ident(s: str) -> str:
    s = re.sub(r"[^a-z0-9_]", "_", s.lower()).strip("_")
    return s if s and not s[0].isdigit() else f"e_{s}"


# -------------------------------------------------------------------------------------------- compiler
@dataclass
class _Planned:
    plan: T.Plan
    step: Step
    group: int
    overridden: bool = False
    force_final: bool = False
    extra: list[tuple[str, Formula, str, float]] = field(default_factory=list)


def _rel_for(rel: str | None, dest: str, world: _World) -> str:
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


def _steps_to_plans(parsed: Parsed, world: _World) -> list[list[_Planned]]:
    groups: list[list[_Planned]] = []
    held: dict[str, T.Grip | None] = {}

    def emit(plans: list[T.Plan], step: Step, sequential: bool = False) -> None:
        if not plans:
            return
        if sequential:
            for p in plans:
                groups.append([_Planned(p, step, len(groups))])
        else:
            groups.append([_Planned(p, step, len(groups)) for p in plans])
        for p in plans:
            held.update(p.held_after)

    for step in parsed.steps:
        v = step.verb
        if v in ("place", "hold", "pick", "lift") and isinstance(step.dest, Arm):
            v = "handover"
        if v == "handover":
            emit(_handover(step, world, held), step)
            continue
        if v == "rank":
            emit([_rank(step, world)], step)
            continue
        if v == "stack":
            names = world.objs(step.objs)
            if len(names) < 2:
                raise NLError("stacking needs at least two objects", text=world.text)
            order = step.extra.get("order", ("bottom_up",))
            if order[0] == "top_down":
                names = names[::-1]
            elif order[0] in ("bottom_is", "top_is"):
                pivot = world.np(order[1])
                names = [pivot] + [n for n in names if n != pivot] if order[0] == "bottom_is" else \
                        [n for n in names if n != pivot] + [pivot]
            g = world.grip(step.arm)
            plans = [T.place(g, top, world.label(top), "on", bottom, world.label(bottom),
                             skip_approach=held.get(top) == g)
                     for bottom, top in itertools.pairwise(names)]
            emit(plans, step, sequential=True)
            continue
        if v in ("open_gripper", "close_gripper"):
            arm = step.extra.get("arm_arg") or step.arm
            emit([T.gripper_state(world.grip(arm), v == "open_gripper")], step)
            continue
        if v == "reach" and isinstance(step.extra.get("arm_arg"), Arm):
            step.arm = step.extra["arm_arg"]
        dest = None
        if step.dest is not None and isinstance(step.dest, (NP, Plural)):
            dest = world.np(step.dest) if isinstance(step.dest, NP) and not step.dest.pronoun else None
        objs = world.objs(step.objs, remember=False)
        if isinstance(step.dest, NP) and step.dest.pronoun:
            dest = world.np(step.dest, exclude=tuple(objs))
        if objs:
            world.recent.append(objs)
        if step.src is not None and isinstance(step.src, NP):
            src = world.np(step.src)
            world.warnings.append(f'source "{world.entities[src].prompt}" noted as an entity only '
                                  "(the task does not constrain where objects start)")
        plans: list[T.Plan] = []
        for o in objs:
            on = world.label(o)
            g = world.grip(step.arm) if step.arm is not None or held.get(o) is None else held[o]
            head = next((h for h, ns in world.heads.items() if o in ns), "")
            if v in ("pick", "hold", "lift"):
                if held.get(o) == g:
                    continue  # already held up by this gripper ("pick up the cup and hold it")
                if g.together:
                    plans.append(T.two_arm_lift(g, o, on))
                else:
                    plans.append(T.pick(g, o, on))
            elif v in ("place", "insert"):
                if dest is None:
                    raise NLError(f'where should {on} go? add a destination, e.g. "put {on} on the table"',
                                  text=world.text, suggestion="put the cup on the plate")
                rel = _rel_for(step.rel, dest, world)
                skip = held.get(o) is not None and held.get(o) == g
                if v == "insert" or (head in PEGS and rel == "in"):
                    plans.append(T.insert(g, o, on, dest, world.label(dest), skip_approach=skip))
                else:
                    plans.append(T.place(g, o, on, rel, dest, world.label(dest), skip_approach=skip))
            elif v == "push":
                if dest is None and head in BUTTONS:
                    plans.append(T.press(g, o, on))
                else:
                    rel = None if dest is None else ("at" if step.rel in (None, "to") else step.rel)
                    plans.append(T.push(g, o, on, rel, dest, world.label(dest) if dest else None))
            elif v == "reach":
                plans.append(T.reach(g, o, on))
            elif v == "touch":
                plans.append(T.touch(g, o, on))
            elif v in ("open", "close", "turn_on", "turn_off"):
                plans.append(T.articulate(g, o, on, v))
            elif v == "press":
                plans.append(T.press(g, o, on))
            elif v == "pour":
                if step.extra.get("contents") is not None:
                    world.warnings.append(f'contents "{step.extra["contents"].text}" are not tracked; '
                                          f"pouring is judged by {on}")
                plans.append(T.pour(g, o, on, dest, world.label(dest), skip_approach=held.get(o) == g))
            elif v == "release":
                plans.append(T.release(g, o, on))
            else:  # pragma: no cover - every grammar verb is handled above
                raise NLError(f"no template for verb {v!r}", text=world.text)
        emit(plans, step)
    return groups


def _handover(step: Step, world: _World, held: dict) -> list[T.Plan]:
    taker_arm = step.dest if isinstance(step.dest, Arm) else None
    giver_arm = step.src if isinstance(step.src, Arm) else step.arm
    objs = world.objs(step.objs)
    plans = []
    for o in objs:
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
    return plans


def _rank(step: Step, world: _World) -> T.Plan:
    specs = dict((s[0], s[1:]) for s in step.extra.get("specs", ()))
    items = step.objs
    colours = specs.get("colours", ((),))[0]
    head_np = next((x for x in items if isinstance(x, (Plural, NP))), None)
    if colours and isinstance(head_np, Plural) and not head_np.colours:
        items = (Plural(head=head_np.head, words=head_np.words, colours=tuple(colours), text=head_np.text),)
    elif (("by" in specs and specs["by"][0] == "size") or "size_order" in specs) and isinstance(head_np, Plural) \
            and not head_np.sizes:
        items = (Plural(head=head_np.head, words=head_np.words, sizes=("large", "medium", "small")[
            : head_np.count or 3], text=head_np.text),)
        if "size_order" not in specs:
            world.warnings.append("size order not given: assuming largest first")
    elif isinstance(head_np, Plural) and not (head_np.colours or head_np.sizes):
        raise NLError("say the order of the row, e.g. 'by colour: red, green, blue' or 'from largest to smallest'",
                      text=world.text, suggestion="arrange the blocks by colour from left to right: red, green, blue")
    names = world.objs(items)
    if "size_order" in specs and specs["size_order"][0] == "asc":
        names = names[::-1]
    if "dir" in specs and specs["dir"][0] == "rtl":
        names = names[::-1]
    if len(names) < 2:
        raise NLError("a row needs at least two objects", text=world.text)
    return T.rank(world.grip(step.arm), names, [world.entities[n].prompt for n in names])


# -------------------------------------------------------------------------------------- states → formulas
def _subject_grip(subj, world: _World) -> T.Grip | None:
    return world.grip(subj) if isinstance(subj, Arm) else None


def _state(st: State, world: _World) -> Formula:
    g = _subject_grip(st.subject, world)
    s = None if g else world.np(st.subject) if isinstance(st.subject, NP) else None
    obj = None
    if isinstance(st.obj, NP):
        obj = world.np(st.obj, exclude=(s,) if s else ())
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


def _subject_name(st: State, world: _World) -> str:
    if isinstance(st.subject, Arm):
        return world.grip(st.subject).names[0] if st.subject.which in ("left", "right") else "gripper"
    return world.np(st.subject) if isinstance(st.subject, NP) else "state"


# ------------------------------------------------------------------------------------------- assembly
class _Constraints:
    def __init__(self) -> None:
        self.items: list[Constraint] = []
        self.names: set[str] = set()

    def add(self, name: str, formula: Formula, description: str, weight: float = 1.0) -> None:
        if any(c.formula == formula for c in self.items):
            return  # the same requirement said twice counts once
        base = _ident(name)
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        self.items.append(Constraint(name, formula, description, float(weight)))


def _assemble(parsed: Parsed, world: _World) -> tuple[Constraint, ...]:
    groups = _steps_to_plans(parsed, world)
    flat = [p for g in groups for p in g]
    for i, p in enumerate(flat):
        later = flat[i + 1 :]
        p.overridden = any(set(p.plan.subject) & set(q.plan.subject) for q in later if q.group > p.group)
        if any(m.kind in ("at_end", "keep_there") for m in p.step.mods):
            p.force_final = True
    cs = _Constraints()
    no_drop: dict[str, list] = {}  # obj → [holders, rests, weight]
    for p in flat:
        plan = p.plan
        for ph in plan.phases[:-1]:
            cs.add(f"{ph.name}_{plan.obj}", T.F(ph.formula), ph.english)
        last = plan.phases[-1]
        if plan.final and (not p.overridden or p.force_final):
            cs.add(f"{last.name}_{plan.obj}", T.F(T.G(last.formula)), f"at the end {last.english}")
        else:
            cs.add(f"{last.name}_{plan.obj}", T.F(last.formula), last.english)
        for ph in plan.safety:
            cs.add(f"{ph.name}_{plan.obj}", ph.formula, ph.english)
        for o, (holders, rests) in plan.carried.items():
            entry = no_drop.setdefault(o, [[], [], 1.0])
            entry[0] += [h for h in holders if h not in entry[0]]
            entry[1] += [r for r in rests if r not in entry[1]]
        _step_mods(p, world, cs, no_drop)
    paths = list(itertools.product(*[[p for p in g] for g in groups])) if groups else []
    for k, path in enumerate(paths):
        phases = [ph for p in path for ph in p.plan.phases]
        if len(phases) < 2:
            continue
        name = "order" if len(paths) == 1 else f"order_{path[-1].plan.obj if len(paths) <= 4 else k + 1}"
        if len(paths) > 1 and len({p.plan.obj for p in path}) > 1:
            name = "order_" + "_".join(dict.fromkeys(p.plan.obj for p in path if len(groups[p.group]) > 1))
        cs.add(name, T.in_order([ph.formula for ph in phases]),
               "in this order: " + ", ".join(f"{ph.name} ({_short(ph.english)})" for ph in phases))
    for st in parsed.statements:
        _statement(st, world, cs, no_drop)
    for o, (holders, rests, weight) in no_drop.items():
        held = [T.atom("holding", h, o) for h in holders]
        desc = f"{world.label(o)} is never in the air unless held"
        if rests:
            desc += " or resting where it was placed"
        cs.add(f"no_drop_{o}", T.G(T.implies(T.atom("lifted", o), T.disj(*held, *rests))), desc, weight)
    return tuple(cs.items)


def _step_mods(p: _Planned, world: _World, cs: _Constraints, no_drop: dict) -> None:
    plan, step = p.plan, p.step
    g = world.grip(step.arm) if step.arm else None
    grippers = list(g.names) if g else world.all_grippers()
    for m in step.mods:
        if m.kind == "arm":
            continue
        if m.kind == "no_drop":
            objs = world.objs((m.value,), remember=False) if isinstance(m.value, (NP, Plural)) \
                and not getattr(m.value, "pronoun", None) else [plan.obj] if plan.obj != "row" else list(plan.subject)
            for o in objs:
                entry = no_drop.setdefault(o, [list(grippers), [], 2.0])
                entry[2] = 2.0
        elif m.kind == "no_touch":
            x = world.np(m.value)
            cs.add(f"avoid_{x}", T.G(T.neg(T.disj(*[T.atom("touching", h, x) for h in grippers]))),
                   f"{world.label(x)} is never touched")
        elif m.kind == "no_lift":
            cs.add(f"no_lift_{plan.obj}", T.G(T.neg(T.atom("lifted", plan.obj))),
                   f"{world.label(plan.obj)} is never lifted")
        elif m.kind == "no_grasp":
            cs.add(f"no_grasp_{plan.obj}",
                   T.G(T.neg(T.disj(*[T.atom("holding", h, plan.obj) for h in grippers]))),
                   f"{world.label(plan.obj)} is never grasped")
        elif m.kind == "no_move":
            x = world.np(m.value)
            cs.add(f"still_{x}", T.G(T.neg(T.atom("moving", x))), f"{world.label(x)} never moves")
        elif m.kind == "while":
            f = _state(m.value, world)
            last = plan.phases[-1]
            cs.add(f"while_{plan.obj}", T.until(f, last.formula), f"the condition holds until {last.english}")
        elif m.kind == "keep_it":
            st = State(NP(pronoun="it", text="it"), m.value[1], m.value[2])
            cs.add(f"keep_{plan.obj}", T.F(T.G(_state(st, world))), f"at the end {world.label(plan.obj)} stays so")
        elif m.kind == "manner":
            world.warnings.append(f'"{m.value}" is not expressible with the predicate library; ignored')


def _short(english: str) -> str:
    return english.replace("the gripper ", "").replace("either arm ", "")


def _statement(st: Statement, world: _World, cs: _Constraints, no_drop: dict) -> None:
    grippers = world.all_grippers()
    if st.kind == "never" and st.action:
        if st.action == "drop":
            objs = world.objs(st.nps, remember=False) if st.nps else [n for g in world.recent[-1:] for n in g]
            if not objs:
                raise NLError('"never drop" needs an object mentioned before', text=world.text)
            for o in objs:
                entry = no_drop.setdefault(o, [list(grippers), [], 2.0])
                entry[2] = 2.0
            return
        names = [world.np(n) for n in st.nps]
        if st.action == "touch":
            x = names[0]
            cs.add(f"avoid_{x}", T.G(T.neg(T.disj(*[T.atom("touching", h, x) for h in grippers]))),
                   f"{world.label(x)} is never touched")
        elif st.action == "contact":
            a, b = names
            cs.add(f"apart_{a}_{b}", T.G(T.neg(T.atom("touching", a, b))),
                   f"{world.label(a)} never touches {world.label(b)}")
        elif st.action == "lift":
            cs.add(f"no_lift_{names[0]}", T.G(T.neg(T.atom("lifted", names[0]))),
                   f"{world.label(names[0])} is never lifted")
        elif st.action == "move":
            cs.add(f"still_{names[0]}", T.G(T.neg(T.atom("moving", names[0]))),
                   f"{world.label(names[0])} never moves")
        return
    states = list(st.states)
    if st.kind == "until" and isinstance(states[1].subject, NP) and states[1].subject.pronoun:
        states[1] = State(states[0].subject, states[1].pred, states[1].obj, states[1].negated)
        st = Statement(st.kind, tuple(states), st.action, st.nps)
    fs = [_state(s, world) for s in states]
    who = _subject_name(st.states[0], world)
    if st.kind == "never":
        cs.add(f"never_{who}", T.G(T.neg(fs[0])), "this never happens: " + _state_words(st.states[0], world))
    elif st.kind == "until":
        cs.add(f"keep_{who}", T.until(fs[0], fs[1]),
               f"{_state_words(st.states[0], world)} until {_state_words(st.states[1], world)}")
    elif st.kind == "at_end":
        cs.add(f"final_{who}", T.F(T.G(fs[0])), f"at the end {_state_words(st.states[0], world)}")
    elif st.kind == "always":
        cs.add(f"always_{who}", T.G(fs[0]), f"always {_state_words(st.states[0], world)}")
    elif st.kind == "eventually":
        cs.add(f"eventually_{who}", T.F(fs[0]), f"at some point {_state_words(st.states[0], world)}")


def _state_words(st: State, world: _World) -> str:
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


def _is_bimanual(parsed: Parsed) -> bool:
    def arms(x):
        if isinstance(x, Arm):
            yield x
        elif isinstance(x, Mod):
            yield from arms(x.value)
        elif isinstance(x, State):
            yield from arms(x.subject)
            yield from arms(x.obj)
        elif isinstance(x, (tuple, list)):
            for y in x:
                yield from arms(y)

    found = []
    for s in parsed.steps:
        found += list(arms([s.arm, s.dest, s.src, s.mods, s.extra.get("arm_arg")]))
    for st in parsed.statements:
        found += list(arms(list(st.states)))
    return any(a.which in ("left", "right", "both", "either", "other") for a in found)


def compile_rules(text: str) -> CompileResult:
    """Rules backend: parse the controlled English and build the spec from templates (deterministic)."""
    from ltlreward.spec import format_spec, validate_spec

    parsed = parse_text(text)
    world = _World(_is_bimanual(parsed), text)
    constraints = _assemble(parsed, world)
    if not constraints:
        raise NLError("the description produced no constraints", text=text)
    used = _used_entities(constraints)
    entities = tuple(e for n, e in world.entities.items() if n in used)
    spec = TaskSpec(task=" ".join(text.split()), entities=entities, constraints=constraints)
    validate_spec(spec)
    return CompileResult(spec=spec, text=format_spec(spec), warnings=tuple(dict.fromkeys(world.warnings)))


def _used_entities(constraints) -> set[str]:
    from ltlreward.spec import atoms_of
    from ltlreward.spec.ast import Atom

    out: set[str] = set()
    for c in constraints:
        for a in atoms_of(c.formula):
            if isinstance(a, Atom):
                out.update(a.call.identifiers)
    return out

