"""Parse controlled English (grammar.lark) into the typed IR of ltlreward.nl.ir: ordered steps and statements.

The IR names what was said (verbs, noun phrases, arms, modifiers) without choosing entity names or formulas;
ltlreward.nl.compiler does that. The transformer below has one method per rule (or `-> alias`) of the grammar;
the values it passes between rules that are not IR nodes (`_Where`, `_From`, `_ToArm`, `_Pred`, `_Words`) stay
in this module. Anything the grammar cannot cover raises NLError with the unparsed span and the nearest
supported phrasing.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .errors import NLError
from .ir import (
    MODIFIERS,
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
    RowOrder,
    Rule,
    StackOrder,
    Start,
    State,
    Statement,
    Step,
    While,
)
from .lexicon import COUNTS, ORDINALS, SIZE_CANON, SIZE_RANK, classify, singular, tokenize

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")


# ------------------------------------------------------------------------------------------ the parser
@lru_cache(maxsize=1)
def _lark() -> Lark:
    from .lexicon import WordLexer

    return Lark(GRAMMAR_PATH.read_text(), parser="earley", lexer=WordLexer, ambiguity="resolve")


def keywords() -> frozenset[str]:
    """Every reserved word of the grammar (these never name objects)."""
    return frozenset(t.pattern.value for t in _lark().terminals if t.pattern.type == "str")


_REL_ALIASES = {"rel_on": "on", "rel_in": "in", "rel_at": "at", "rel_near": "near", "rel_above": "above",
                "rel_left": "left", "rel_right": "right", "rel_touch": "touch"}


@dataclass(frozen=True)
class _Where:
    """A destination phrase: relation and noun phrase ("on the plate", "to the goal")."""

    rel: str
    np: NP


@dataclass(frozen=True)
class _From:
    """A source phrase: "from the table" (an NP) or a handover's "from the left arm" (an Arm)."""

    what: NP | Arm


@dataclass(frozen=True)
class _ToArm:
    """A handover's receiver: "to the right arm"."""

    arm: Arm


@dataclass(frozen=True)
class _Pred:
    """The predicate part of a state clause: its name and object ("on the plate" → on, plate)."""

    name: str
    obj: NP | Arm | None = None


def _thing(c: list) -> NP | Plural | None:
    """The single noun phrase a modifier names (None when it names none, or a list of several)."""
    return c[0] if c and isinstance(c[0], (NP, Plural)) else None


class _ToIR(Transformer):
    """Lark tree → intermediate form. One method per rule (or alias) of grammar.lark."""

    # -------------------------------------------------------------------------------- noun phrases
    def noun_words(self, c):
        return _Words("noun", tuple(str(t) for t in c))

    def adjs(self, c):
        return _Words("adj", tuple(str(t) for t in c))

    def mods(self, c):
        return c[0]

    def np(self, c):
        adjs = next((x.words for x in c if isinstance(x, _Words) and x.kind == "adj"), ())
        words = next((x.words for x in c if isinstance(x, _Words) and x.kind == "noun"), ())
        number = next((int(x) for x in c if isinstance(x, Token) and x.type == "NUMBER"), None)
        return _make_np(adjs, words, number)

    def pronoun(self, c):
        return NP(pronoun="it", text="it")

    def np_one(self, c):  # "the blue one": the head is filled in from the object said before
        adjs = next((x.words for x in c if isinstance(x, _Words)), ())
        return replace(_make_np(adjs, ("one",), None), one=True)

    def _plural(self, c, colours=(), sizes=()):
        count = None
        adjs: tuple[str, ...] = ()
        words: tuple[str, ...] = ()
        head = ""
        for x in c:
            if isinstance(x, Token) and x.type in ("COUNT", "NUMBER"):
                count = COUNTS.get(str(x)) or int(str(x))
            elif isinstance(x, Token) and x.type == "PLURAL_HEAD":
                head = singular(str(x))
            elif isinstance(x, _Words) and x.kind == "adj":
                adjs = x.words
            elif isinstance(x, _Words):
                words = x.words
        colour_adj = tuple(a for a in adjs if a in _COLOURS)
        size_adj = tuple(a for a in adjs if a in SIZE_RANK)
        text = " ".join([*colours, *sizes, *adjs, *words, head])
        if len(colour_adj) == 1 and not colours:
            words = (colour_adj[0], *words)
        elif colour_adj:
            colours = colours or colour_adj
        if size_adj and not sizes:
            sizes = size_adj if len(size_adj) > 1 else ()
            if len(size_adj) == 1:
                words = (SIZE_CANON[SIZE_RANK[size_adj[0]]], *words)
        return Plural(head=head, words=words, count=count, colours=tuple(colours), sizes=tuple(sizes), text=text)

    def plural(self, c):
        return self._plural(c)

    def plural_both(self, c):
        p = self._plural(c)
        return Plural(p.head, p.words, 2, p.colours, p.sizes, p.text)

    def plural_colours(self, c):
        colours = next(x for x in c if isinstance(x, list))
        return self._plural([x for x in c if not isinstance(x, list)], colours=colours)

    def plural_sizes(self, c):
        sizes = next(x for x in c if isinstance(x, list))
        return self._plural([x for x in c if not isinstance(x, list)],
                            sizes=[SIZE_CANON[SIZE_RANK[s]] for s in sizes])

    def colour_list(self, c):
        return [str(t) for t in c if isinstance(t, Token) and t.type == "COLOUR"]

    def size_list(self, c):
        return [str(t) for t in c if isinstance(t, Token) and t.type == "SIZE"]

    def np_list(self, c):
        return tuple(c)

    # ------------------------------------------------------------------------------------------ arms
    def side_left(self, c):
        return "left"

    def side_right(self, c):
        return "right"

    def arm_side(self, c):
        return Arm(next(x for x in c if isinstance(x, str) and x in ("left", "right")))

    def arm_other(self, c):
        return Arm("other")

    def arm_both(self, c):
        return Arm("both")

    def arm_either(self, c):
        return Arm("either")

    def arm_each(self, c):
        return Arm("each")

    def arm_default(self, c):
        return Arm("default")

    def subject(self, c):
        return ArmMod(c[0])

    # ------------------------------------------------------------------------------------- relations
    def where(self, c):
        rel, np_ = c
        return _Where(rel, np_)

    def where_to(self, c):
        return _Where("to", c[0])

    def where_start(self, c):
        return _Where("at", Start())

    def where_implicit(self, c):
        return _Where("in", NP(pronoun="container", text="inside"))

    def src(self, c):
        return _From(c[0])

    def dest_at(self, c):
        return _Where("at", c[0])

    def dest_in(self, c):
        return _Where("in", c[0])

    def dest_on(self, c):
        return _Where("on", c[0])

    def hand_src(self, c):
        return _From(c[0])

    def hand_dst(self, c):
        return _ToArm(c[0])

    # -------------------------------------------------------------------------------------- modifiers
    def arm_mod(self, c):
        return ArmMod(c[-1])

    def together(self, c):
        return ArmMod(Arm("both"))

    def no_drop(self, c):
        return NoDrop(_thing(c))

    def no_touch(self, c):
        return NoTouch(c[0])

    def no_lift(self, c):
        return NoLift(_thing(c))

    def no_grasp(self, c):
        return NoGrasp(_thing(c))

    def no_move(self, c):
        return NoMove(c[0])

    def while_keep(self, c):
        return While(c[0])

    def while_state(self, c):
        return While(c[0])

    def keep_there(self, c):
        return KeepThere()

    def keep_it(self, c):  # "and keep it closed": the state of the step's object, named by the pronoun
        return KeepState(_attach(NP(pronoun="it", text="it"), c[0]))

    def manner(self, c):
        return Manner(str(c[0]))

    def at_end_mod(self, c):
        return AtEnd()

    def by_end(self, c):
        return ByEnd()

    def deadline(self, c):
        return Deadline(*_amount(c))

    def duration(self, c):
        return Duration(*_amount(c))

    def no_spill(self, c):
        return NoSpill(_thing(c))

    def at_most_one(self, c):
        return AtMostOne()

    def except_(self, c):
        return Except(c[-1])

    def only_after(self, c):
        return OnlyAfter(c[-1])

    def no_contact(self, c):
        nps = [x for x in c if isinstance(x, NP)]
        subject = nps[0] if len(nps) == 2 else NP(pronoun="it", text="it")
        return NoContact(subject, nps[-1])

    def strict_link(self, c):
        return _STRICT

    def cover(self, c):  # "cover the pot with the lid" = put the lid on the pot
        return self._step("place", [c[1], _Where("on", c[0])])

    # ------------------------------------------------------------------------------------- verb frames
    def _step(self, verb, c, **fields):
        """A Step of `verb` from a verb frame's children: objects (an np_list adds each), the last destination
        and source said, the first arm named as an argument, and verb-specific `fields`."""
        objs: list = []
        dest = rel = src = arm_arg = None
        for x in c:
            if isinstance(x, (NP, Plural)):
                objs.append(x)
            elif isinstance(x, tuple) and x and isinstance(x[0], (NP, Plural)):
                objs.extend(x)
            elif isinstance(x, _Where):
                rel, dest = x.rel, x.np
            elif isinstance(x, _From):
                src = x.what
            elif isinstance(x, _ToArm):
                dest, rel = x.arm, None
            elif isinstance(x, Arm) and arm_arg is None:
                arm_arg = x
        return Step(verb, tuple(objs), dest, rel, src, arm_arg=arm_arg, **fields)

    def pick(self, c):
        return self._step("pick", c)

    def place(self, c):
        return self._step("place", c)

    def stack_on(self, c):
        return self._step("place", c)

    def stack_list(self, c):
        order = next((x for x in c if isinstance(x, StackOrder)), StackOrder())
        return self._step("stack", [x for x in c if x is not order], stack=order)

    def bottom_up(self, c):
        return StackOrder("bottom_up")

    def top_down(self, c):
        return StackOrder("top_down")

    def bottom_is(self, c):
        return StackOrder("bottom_is", c[0])

    def top_is(self, c):
        return StackOrder("top_is", c[0])

    def push(self, c):
        return self._step("push", c)

    def reach(self, c):
        return self._step("reach", c)

    def touch(self, c):
        return self._step("touch", c)

    def open_(self, c):
        return self._step("open", c)

    def close_(self, c):
        return self._step("close", c)

    def open_gripper(self, c):
        return self._step("open_gripper", c)

    def close_gripper(self, c):
        return self._step("close_gripper", c)

    def press(self, c):
        return self._step("press", c)

    def turn_on(self, c):
        return self._step("turn_on", c)

    def turn_off(self, c):
        return self._step("turn_off", c)

    def lift(self, c):
        return self._step("lift", c)

    def handover(self, c):
        return self._step("handover", c)

    def insert(self, c):
        return self._step("insert", c)

    def assemble_on(self, c):
        return self._step("place", [c[0], _Where("on", c[-1])])

    def assemble_in(self, c):
        return self._step("place", [c[0], _Where("in", c[-1])])

    def gap_place(self, c):
        return self._step("place", c)

    def pour_from(self, c):
        nps = [x for x in c if isinstance(x, NP)]
        contents = nps[0] if len(nps) == 3 else None
        container, target = nps[-2], nps[-1]
        return Step("pour", (container,), dest=target, rel="in", contents=contents)

    def pour_into(self, c):
        container, target = [x for x in c if isinstance(x, NP)]
        return Step("pour", (container,), dest=target, rel="in")

    def rank(self, c):
        parts = [x for x in c if isinstance(x, RowOrder)]  # a later phrase wins
        rest = [x for x in c if not isinstance(x, RowOrder)]
        return self._step("rank", rest, row=functools.reduce(RowOrder.merge, parts, RowOrder()))

    def by_colour(self, c):
        return RowOrder(by="colour")

    def by_size(self, c):
        return RowOrder(by="size")

    def left_to_right(self, c):
        return RowOrder(direction="ltr")

    def right_to_left(self, c):
        return RowOrder(direction="rtl")

    def in_row(self, c):
        return RowOrder()

    def size_range(self, c):
        a, b = (SIZE_RANK[str(t)] for t in c)
        return RowOrder(size_order="desc" if a < b else "asc")

    def size_first(self, c):
        size, ordinal = (str(t) for t in c)
        if ordinal != "first":
            raise _SemanticError(f"'{size} {ordinal}' is not an ordering; say '{size} first'")
        return RowOrder(size_order="desc" if SIZE_RANK[size] == 0 else "asc")

    def size_side(self, c):
        size = next(str(t) for t in c if isinstance(t, Token) and t.type == "SIZE")
        side = next(x for x in c if x in ("left", "right"))
        big_left = (SIZE_RANK[size] == 0) == (side == "left")
        return RowOrder(size_order="desc" if big_left else "asc")

    def ascending(self, c):
        return RowOrder(size_order="asc")

    def descending(self, c):
        return RowOrder(size_order="desc")

    def colour_order(self, c):
        return RowOrder(colours=tuple(c[0]))

    def hold(self, c):
        return self._step("hold", c)

    def release(self, c):
        return self._step("release", c)

    # ----------------------------------------------------------------------------------------- steps
    def step(self, c):
        mods = tuple(x for x in c if isinstance(x, MODIFIERS))
        actions = [x for x in c if isinstance(x, Step)]
        if len(actions) != 1:
            raise _SemanticError("expected exactly one action in a step")
        s = actions[0]
        arm = s.arm
        for m in mods:  # the last arm said is the one doing the step
            if isinstance(m, ArmMod):
                arm = m.arm
        if arm is None and s.arm_arg is not None and s.verb == "reach":
            arm = s.arm_arg
        return replace(s, mods=mods + s.mods, arm=arm)

    def and_link(self, c):
        return _AND

    def chain(self, c):
        out: list[Step] = []
        strict = joined = False
        for x in c:
            if x is _STRICT:
                strict = True
            elif x is _AND:
                joined = True
            elif isinstance(x, Step):
                if strict and out:
                    x = replace(x, mods=(*x.mods, OnlyAfter()))
                out.append(_Role(x.arm) if joined and _alongside(out[-1], x) else None)
                out.append(x)
                strict = joined = False
        return [x for x in out if x is not None]

    def role(self, c):  # "Left arm: …": the sentence's steps are done by that arm unless they name another
        arm, steps = c[0], next(x for x in c if isinstance(x, list))
        rest = [x for x in c[1:] if not isinstance(x, list)]
        out = [replace(s, arm=s.arm or arm, mods=(ArmMod(arm), *s.mods) if s.arm is None else s.mods)
               if isinstance(s, Step) else s for s in steps if not isinstance(s, _Role)]
        return [_Role(arm), *out, *rest]

    def after_pre(self, c):  # after A, B  → A then B
        a, b = c
        return a + b

    def before_pre(self, c):  # before A, B → B then A
        a, b = c
        return b + a

    def after_post(self, c):  # B after A  → A then B
        b, a = c
        return a + b

    def before_post(self, c):  # A before B → A then B
        a, b = c
        return a + b

    def instruction(self, c):
        steps = next(x for x in c if isinstance(x, list))
        return [*steps, *(x for x in c if isinstance(x, (Forbid, Rule)))]

    # -------------------------------------------------------------------------------------- statements
    def statement(self, c):
        return c[-1]

    def stmt_state(self, c):
        return c[-1]

    def never_act(self, c):
        return c[-1]

    def neg_drop(self, c):  # a list of objects is not kept: "never drop" then means the ones mentioned last
        return Forbid("drop", tuple(x for x in c if isinstance(x, (NP, Plural))))

    def neg_touch(self, c):
        return Forbid("touch", tuple(c))

    def neg_contact(self, c):
        return Forbid("contact", tuple(c))

    def neg_drop_np(self, c):
        return Forbid("drop", tuple(c))

    def neg_lift(self, c):
        return Forbid("lift", tuple(c))

    def neg_move(self, c):
        return Forbid("move", tuple(c))

    def never_state(self, c):
        subj, pred = c[0], c[-1]
        return Rule("never", (_attach(subj, pred),))

    def state_vp(self, c):
        return c[-1]

    def keep_until(self, c):
        return Rule("until", (c[0], c[1]))

    def hold_until(self, c):  # "don't let go of the sponge until …" = keep the sponge held until …
        np_, state = next(x for x in c if isinstance(x, NP)), c[-1]
        return Rule("until", (State(np_, "held"), state))

    def at_most_one_holds(self, c):
        return Rule("at_most_one", (State(Arm("either"), "holds", c[-1]),))

    def neg_spill(self, c):
        return Forbid("spill", tuple(x for x in c if isinstance(x, (NP, Plural))))

    def at_end(self, c):
        return Rule("at_end", (c[-1],))

    def end_up(self, c):
        return Rule("at_end", (_attach(c[0], c[-1]),))

    def always(self, c):
        return Rule("always", (c[-1],))

    def always_pred(self, c):
        return Rule("always", (_attach(c[0], c[-1]),))

    def eventually(self, c):
        return Rule("eventually", (c[-1],))

    # ------------------------------------------------------------------------------------------ states
    def state(self, c):
        subj, pred = c[0], c[-1]
        negated = any(isinstance(t, Token) and str(t) in ("not", "never") for t in c)
        return _attach(subj, pred, negated)

    def state_obj(self, c):
        return _attach(c[0], c[1])

    def state_verb(self, c):
        return _attach(c[0], c[-1])

    def state_verb_not(self, c):
        return _attach(c[0], c[-1], True)

    def rel_pred(self, c):
        rel, obj = c
        return _Pred(rel, obj)

    def vp_hold(self, c):
        return _Pred("holds", c[-1])

    def vp_touch(self, c):
        return _Pred("touch", c[-1])

    def vp_near(self, c):
        return _Pred("near", c[-1])

    def vp_be(self, c):
        return c[-1]

    def lifted_pred(self, c):
        return _Pred("lifted")

    def held_pred(self, c):
        return _Pred("held", c[0] if c else None)

    def open_pred(self, c):
        return _Pred("open")

    def closed_pred(self, c):
        return _Pred("closed")

    def moving_pred(self, c):
        return _Pred("moving")

    def still_pred(self, c):
        return _Pred("still")

    def visible_pred(self, c):
        return _Pred("visible")

    def on_pred(self, c):
        return _Pred("switched_on")

    def off_pred(self, c):
        return _Pred("switched_off")

    def pressed_pred(self, c):
        return _Pred("pressed")

    def start(self, c):
        steps: list[Step] = []
        statements: list[Statement] = []
        roles: list[tuple[Arm, int]] = []  # each role sentence's arm and its first step
        for x in c:
            for y in x if isinstance(x, list) else [x]:
                if isinstance(y, _Role):
                    roles.append((y.arm, len(steps)))
                elif isinstance(y, Step):
                    steps.append(y)
                elif isinstance(y, Statement):
                    statements.append(y)
        return Parsed(_threads(steps, roles), tuple(statements))


for _alias, _rel in _REL_ALIASES.items():
    setattr(_ToIR, _alias, (lambda r: lambda self, c: r)(_rel))


@dataclass(frozen=True)
class _Role:
    """Marks where a role sentence ("Left arm: …") starts in the step list."""

    arm: Arm


_STRICT = object()  # the "and only after that" link between two steps
_AND = object()  # a plain "and" between two steps


def _alongside(a: Step, b: Step) -> bool:
    """"A with the left arm and B with the right arm": two steps of two different named arms joined by "and",
    on objects of their own (no pronoun back to A), run at the same time."""
    arms = {getattr(s.arm, "which", None) for s in (a, b)}
    if arms != {"left", "right"} or any(isinstance(o, NP) and o.pronoun for o in b.objs):
        return False
    acted_on = {o.head for o in a.objs if isinstance(o, (NP, Plural))}
    return not (isinstance(b.dest, NP) and (b.dest.pronoun or b.dest.head in acted_on))  # "… puts it into it"


def _threads(steps: list[Step], roles: list[tuple[Arm, int]]) -> tuple[Step, ...]:
    """Role sentences of two different arms ("Left arm: … Right arm: …") are threads with no order between
    them (thread 1 = the left arm's sentences, 2 = the right arm's), when every step is in such a sentence."""
    if roles and roles[0][1] != 0 and steps[0].arm is not None:  # "A with the left arm and B with the right"
        roles = [(steps[0].arm, 0), *roles]
    arms = {a.which for a, _ in roles}
    if not (arms == {"left", "right"} and roles and roles[0][1] == 0):
        return tuple(steps)
    out = list(steps)
    bounds = [i for _, i in roles] + [len(steps)]
    for (arm, lo), hi in zip(roles, bounds[1:], strict=True):
        for i in range(lo, hi):
            out[i] = replace(out[i], thread=1 if arm.which == "left" else 2)
    return tuple(out)


def _amount(c: list) -> tuple[float, str]:
    """(bound, unit) of "5 seconds", "a second", "20 frames" (the tokens of an _amount)."""
    toks = [str(t) for t in c if isinstance(t, Token)]
    num = next((t for t in toks if re.fullmatch(r"\d+(\.\d+)?", t) or t in COUNTS or t in ("a", "one")), "1")
    value = float(num) if num[0].isdigit() else float(COUNTS.get(num, 1))
    unit = toks[-1]
    if unit in ORDINALS and unit != "second":
        raise _SemanticError(f'"{num} {unit}" is not a duration; say "{num} seconds" or "{num} frames"')
    if unit in ("frames", "frame", "steps", "step", "timesteps"):
        return int(value) if value == int(value) else value, "frames"
    return value, "s"


@dataclass(frozen=True)
class _Words:
    """Words of an adjective run or a compound noun inside a noun phrase."""

    kind: str
    words: tuple[str, ...]


class _SemanticError(Exception):
    """A parse that is grammatical but meaningless (raised inside the transformer)."""


_COLOURS = frozenset(__import__("ltlreward.nl.lexicon", fromlist=["COLOURS"]).COLOURS)
_PLACES = ("left", "right", "top", "bottom", "middle")


def _make_np(adjs: tuple[str, ...], words: tuple[str, ...], number: int | None) -> NP:
    colour = next((a for a in adjs if a in _COLOURS), None)
    size = next((SIZE_CANON[SIZE_RANK[a]] for a in adjs if a in SIZE_RANK), None)
    ordinal = next((ORDINALS[a] for a in adjs if a in ORDINALS), number)
    place = next((a for a in adjs if a in _PLACES), None)
    head = words[-1] if words else ""
    text = " ".join([*adjs, *words] + ([str(number)] if number else []))
    return NP(head=head, words=tuple(words[:-1]), colour=colour, size=size, ordinal=ordinal, place=place,
              text=text)


def _attach(subject: NP | Arm, pred: _Pred, negated: bool = False) -> State:
    return State(subject, pred.name, pred.obj, negated)


# ------------------------------------------------------------------------------------------ suggestions
SUPPORTED_PHRASES: tuple[str, ...] = (
    "pick up the red block",
    "put the cup on the plate",
    "place the apple in the bowl",
    "pick up the cup and put it in the drawer",
    "push the puck to the goal",
    "slide the block into the bin",
    "reach the target",
    "touch the button",
    "open the drawer",
    "close the drawer",
    "press the button",
    "turn on the lamp",
    "lift the box with both arms",
    "hand the bottle from the left arm to the right arm",
    "insert the peg into the hole",
    "assemble the nut onto the peg",
    "pour the cup into the bowl",
    "stack the red block on the blue block",
    "stack the three bowls",
    "arrange the blocks by colour from left to right: red, green, blue",
    "arrange the blocks by size from largest to smallest, left to right",
    "put both bottles in the dustbin",
    "open the cabinet, then put the mouse in the cabinet",
    "first open the drawer, then put the cup in it, finally close the drawer",
    "after opening the door, press the button",
    "pick up the cup without dropping it",
    "never touch the vase",
    "keep the gripper open until it reaches the cup",
    "at the end the cup is on the plate",
    "the cup must never touch the table",
    "release the cup",
    "hold the cup",
)


def suggest(sentence: str) -> str:
    """The supported phrasing closest to `sentence` (difflib over SUPPORTED_PHRASES)."""
    hits = difflib.get_close_matches(sentence.lower().strip(" .!?;"), SUPPORTED_PHRASES, n=1, cutoff=0.0)
    return hits[0]


def _sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    seps = ".!?;\n"
    lo = max(text.rfind(s, 0, pos) for s in seps) + 1
    his = [i for i in (text.find(s, pos) for s in seps) if i >= 0]
    hi = min(his) if his else len(text)
    while lo < hi and text[lo].isspace():
        lo += 1
    return lo, hi


def _syntax_error(text: str, exc: UnexpectedInput, norm: Any = None) -> NLError:
    """The located error for a sentence the grammar rejects (`norm`: the normalised words it parsed, whose
    offsets are mapped back to `text`)."""
    words = tokenize(text)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        pos = words[-1][1] if words else 0
        lo, hi = _sentence_bounds(text, pos)
        sentence = text[lo:hi].strip()
        return NLError(f'incomplete sentence: "{sentence}" ends before the action is complete',
                       text=text, span=(lo, hi), suggestion=suggest(sentence))
    pos = getattr(exc, "pos_in_stream", None)
    if pos is None and isinstance(exc, UnexpectedToken):
        pos = exc.token.start_pos
    pos = pos or 0
    if norm is not None:
        pos = norm.original_pos(pos)
    lo, hi = _sentence_bounds(text, pos)
    # the unparsed span runs from the offending word to the end of its sentence
    span_text = text[pos:hi].strip()
    sentence = text[lo:hi].strip()
    first = next(((w, p) for w, p in words if p >= lo), None)
    if first is not None and first[0] not in keywords() and first[1] < pos:
        # a sentence must open with a verb or a known opening: blame its first word
        pos = first[1]
        span_text = text[pos:hi].strip()
    if not span_text:
        # failed only at the sentence end: blame what follows the last link word (",", "and", "then")
        links = [p + len(w) for w, p in words if lo <= p < pos and w in (",", "and", "then")]
        pos = links[-1] if links else lo
        while pos < hi and text[pos].isspace():
            pos += 1
        span_text = text[pos:hi].strip()
    bad = next((w for w, p in words if p == pos), span_text.split()[0] if span_text else "")
    hint = ""
    suggestion = suggest(sentence)
    if bad and bad not in keywords():
        hint = f" ('{bad}' is not a supported verb or sentence opening)" if pos == lo else \
            f" ('{bad}' does not fit here)"
        close = difflib.get_close_matches(bad.lower(), sorted(keywords()), n=1, cutoff=0.8)
        # an unknown word close to a keyword is most likely a typo: suggest the sentence with it fixed
        if close and classify(bad.lower(), {}) in ("NOUN", "PLURAL_HEAD"):
            hint = f" ('{bad}' is not a known word here; did you mean '{close[0]}'?)"
            at = pos - lo
            fixed = sentence[:at] + close[0] + sentence[at + len(bad) :]
            suggestion = fixed[0].lower() + fixed[1:]
    return NLError(f'cannot understand "{span_text}" in "{sentence}"{hint}', text=text,
                   span=(pos, pos + len(span_text)), suggestion=suggestion)


_FILLERS = re.compile(r"(^|[.!?;]\s*)((?:your|the|our|my) (?:task|goal|job|objective|mission) is to|"
                      r"the robot(?:'s)? (?:task|goal|job) is to|task:|goal:|instruction:)", re.I)


def _blank_fillers(text: str) -> str:
    """Blank task-framing openings ("your goal is to …") with spaces so offsets stay aligned."""
    return _FILLERS.sub(lambda m: m.group(1) + " " * len(m.group(2)), text)


def parse_text(text: str) -> Parsed:
    """Parse an English task description into steps and statements; raise NLError on anything not covered."""
    return parse(text)[0]


def parse(text: str) -> tuple[Parsed, tuple[str, ...]]:
    """The description's IR and the normaliser's warnings (spelling, synonyms, ignored words; see normalise.py).

    The grammar parses the normalised words one sentence at a time (Earley's cost grows faster than the
    length); a sentence it rejects is tried once more made active (passive → active), and when that fails
    too the first error is raised, located in the original text."""
    from .normalise import normalise, sentences

    if not text.strip() or not tokenize(text):
        raise NLError("empty task description", text=text, suggestion=SUPPORTED_PHRASES[3])
    kw = keywords()
    norm = replace(normalise(_blank_fillers(text), kw), original=text)
    children: list = []
    for sent in sentences(norm):
        children += _parse_sentence(sent, kw, text).children
    try:
        return _ToIR().transform(Tree("start", children)), norm.warnings
    except VisitError as exc:
        if isinstance(exc.orig_exc, _SemanticError):
            raise NLError(str(exc.orig_exc), text=text, suggestion=suggest(text)) from None
        if isinstance(exc.orig_exc, NLError):
            raise exc.orig_exc from None
        raise


def _parse_sentence(sent: Any, kw: frozenset[str], text: str) -> Tree:
    """One normalised sentence's tree (the passive retry on failure); NLError located in `text`."""
    from .normalise import passive_to_active

    try:
        return _lark().parse(sent.text)
    except UnexpectedInput as exc:
        active = passive_to_active(sent, kw)
        tree = _try_parse(active.text) if active is not None else None
        if tree is None:
            raise _syntax_error(text, exc, sent) from None
        return tree


def _try_parse(text: str) -> Tree | None:
    """The tree of `text`, or None when the grammar rejects it."""
    try:
        return _lark().parse(text)
    except UnexpectedInput:
        return None
