"""IR text: a compact line form of the typed IR (ltlreward.nl.ir) that a small model can write under a grammar.

    Grab the puck and place it at the goal.      pick puck
    Never touch the vase.                   →    place it at goal
                                                 never touch vase
                                                 end

One line per `Step`, `Forbid` or `Rule`; the closing `end` lets a constrained decoder stop. Noun phrases are
plain words (colours, sizes, ordinals, counts and place words are read back into the `NP` / `Plural` fields
with the rules lexicon), arms are "left arm" … "both arms", keywords name every other IR field:

    VERB OBJ[ and OBJ]* [REL TARGET] [from TARGET] [of NP] [by ARM] [arg ARM] [stack KIND [NP]]
         [row [by colour|size] [colours C C …] [asc|desc] [ltr|rtl]] [MOD]*
    MOD   = without dropping [OBJ] | without touching NP | without lifting [OBJ] | without grasping [OBJ]
          | without moving NP | while STATE | keep there | keep STATE | manner WORD | at end | with ARM
    never drop|touch|contact|lift|move [OBJ[ and OBJ]*]       (a Forbid)
    never|always|eventually|finally STATE  or  keep STATE until STATE     (a Rule; finally = at the end)
    STATE = (NP|ARM) is [not] PRED [NP|ARM]

`grammar(words)` is the Lark grammar of this form with noun words restricted to `words` (the words of the
description being translated, so a decoder cannot invent an object); the same text is the decoding grammar
(llguidance) and, through lark's Earley parser, the reader `parse_ir_text`. `render_ir_text` writes an IR in
this form (few-shot examples are the rules backend's IR rendered so).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from typing import get_args

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, VisitError

from .errors import NLError
from .ir import (
    NP,
    Arm,
    ArmMod,
    AtEnd,
    BannedAction,
    Forbid,
    IRError,
    KeepState,
    KeepThere,
    Manner,
    Modifier,
    NoDrop,
    NoGrasp,
    NoLift,
    NoMove,
    NoTouch,
    Parsed,
    Plural,
    Predicate,
    RowOrder,
    Rule,
    StackKind,
    StackOrder,
    State,
    Step,
    Verb,
    While,
)
from .lexicon import COLOURS, COUNTS, MANNERS, ORDINALS, SIZE_CANON, SIZE_RANK, is_plural, singular, tokenize

REL_WORDS = {"on": "on", "in": "in", "at": "at", "near": "near", "above": "above", "left": "left-of",
             "right": "right-of", "touch": "touching", "to": "to"}
REL_OF = {v: k for k, v in REL_WORDS.items()}
ARM_WORDS = {"left": "left arm", "right": "right arm", "both": "both arms", "either": "either arm",
             "other": "other arm", "default": "default arm"}
ARM_OF = {v: k for k, v in ARM_WORDS.items()}
PLACES = ("left", "right", "top", "bottom", "middle")
ORDINAL_WORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}
RULE_WORDS = {"never": "never", "always": "always", "eventually": "eventually", "at_end": "finally"}
PRONOUNS = ("it",)  # "them" is left out: no development example needs it and a small model overuses it
DETERMINERS = ("the", "a", "an", "its", "this", "that", "these", "those", "each", "every", "all", "of", "some")
KEYWORDS = frozenset({
    *get_args(Verb), *REL_WORDS.values(), "from", "of", "by", "arg", "with", "stack", "row", "colours", "colour",
    "size", "asc", "desc", "ltr", "rtl", "without", "dropping", "touching", "lifting", "grasping", "moving",
    "while", "keep", "there", "manner", "at", "end", "never", "always", "eventually", "finally", "until", "is",
    "not", "and", "arm", "arms", *PRONOUNS, *get_args(BannedAction), *get_args(Predicate), *get_args(StackKind),
    *DETERMINERS, *ARM_WORDS})
_FUNCTION_WORDS = frozenset({"into", "onto", "inside", "up", "down", "over", "under", "then", "after", "before",
                             "please", "should", "could", "would", "you", "be", "so", "for", "as", "once", "first",
                             "finally", "robot", "also", "both", "just", "must", "will", "are", "was"})
_ARM_VERBS = ("open_gripper", "close_gripper", "reach")  # the verbs that may take an arm argument ("arg ARM")
MAX_LINES = 6  # a description of more steps and rules than this is beyond the small model anyway
_ALWAYS_WORDS = ("left", "right", "top", "bottom", "middle", "1", "2", "3", "4", "5", "both", "first", "second",
                 "third", "fourth", "fifth")


def _is_modifier(word: str) -> bool:
    """A word that modifies a noun but cannot be one: a count, ordinal, place, size or colour word."""
    return (word.isdigit() or word in COUNTS or word == "both" or word in ORDINALS or word in PLACES
            or word in SIZE_RANK or word in COLOURS)


def _alts(words: Iterable[str]) -> str:
    """A Lark alternation of string literals, longest first (so no literal is a prefix of a later one)."""
    return " | ".join(f'"{w}"' for w in sorted(set(words), key=lambda w: (-len(w), w)))


def noun_words(text: str) -> tuple[str, ...]:
    """The words a noun phrase may use for `text`: its words (and their singulars and plurals) that are not
    keywords of the IR text, plus place words and counts."""
    out: list[str] = []
    for w, _ in tokenize(text):
        if not w[0].isalnum() or w in KEYWORDS or w in _FUNCTION_WORDS:
            continue
        out += [w, singular(w) if is_plural(w) else plural(w)]
    out += _ALWAYS_WORDS
    return tuple(sorted({w for w in out if w not in KEYWORDS or w in PLACES}))


def plural(word: str) -> str:
    """A regular English plural (the inverse of lexicon.singular for the nouns of the lexicon)."""
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


_CONNECTORS = frozenset({"and", "then", ",", ".", ";", "before", "after", "while", "until", "without", "never",
                         "always", "finally", "first", "once", "but", "keep", "keeping", "so"})


def max_lines(text: str) -> int:
    """How many lines an IR of `text` may have: one per clause connector ("and", "then", ",", …) plus one
    (final punctuation not counted), at most MAX_LINES; a decoder cannot add steps nobody asked for."""
    words = [w for w, _ in tokenize(text.strip().rstrip(".!?"))]
    return max(1, min(MAX_LINES, 1 + sum(w in _CONNECTORS for w in words)))


@functools.lru_cache(maxsize=64)
def grammar(words: tuple[str, ...], lines: int = MAX_LINES) -> str:
    """The Lark grammar of IR text with noun words `words` and at most `lines` lines (module docstring)."""
    verbs = [v for v in get_args(Verb) if v not in _ARM_VERBS]
    return "\n".join([
        "start: first" + " line?" * (lines - 1) + ' "end"',
        'first: (step_first | forbid | rule) "\\n"',
        'line: (step | forbid | rule) "\\n"',
        "step_first: VERB objs_first dest? src? contents? by? stackspec? rowspec? mod* | armstep",
        "step: VERB objs dest? src? contents? by? stackspec? rowspec? mod* | armstep",
        "armstep: ARMVERB objs? dest? by? armarg? mod*",
        'objs_first: " " named (" and " named)*',
        'objs: " " np (" and " np)*',
        'dest: " " REL " " target',
        'src: " from " target',
        'contents: " of " np',
        'by: " by " arm',
        'armarg: " arg " arm',
        'stackspec: " stack " STACKKIND (" " np)?',
        'rowspec: " row" (" by " ROWBY)? (" colours" (" " COLOUR)+)? (" " SIZEORDER)? (" " DIRECTION)?',
        'mod: " " (nodrop | notouch | nolift | nograsp | nomove | whilem | keepthere | keepstate | manner '
        "| atend | armmod)",
        'nodrop: "without dropping" (" " np)?',
        'notouch: "without touching " np',
        'nolift: "without lifting" (" " np)?',
        'nograsp: "without grasping" (" " np)?',
        'nomove: "without moving " np',
        'whilem: "while " state',
        'keepthere: "keep there"',
        'keepstate: "keep " state',
        'manner: "manner " MANNER',
        'atend: "at end"',
        'armmod: "with " arm',
        'forbid: "never " BANNED (" " np (" and " np)*)?',
        'rule: RULEKIND " " state | "keep " state " until " state',
        'state: target " is " NOT? PRED (" " target)?',
        "target: np | arm",
        "arm: ARM",
        'np: PRONOUN | named',
        'named: _mods? _nouns (" " DIGIT)?',
        '_mods: MODW " " | MODW " " MODW " " | MODW " " MODW " " MODW " "',
        '_nouns: NOUNW | NOUNW " " NOUNW | NOUNW " " NOUNW " " NOUNW',
        f"VERB: {_alts(verbs)}",
        f"ARMVERB: {_alts(_ARM_VERBS)}",
        f"REL: {_alts(REL_WORDS.values())}",
        f"STACKKIND: {_alts(get_args(StackKind))}",
        'ROWBY: "colour" | "size"',
        f"COLOUR: {_alts(COLOURS)}",
        'SIZEORDER: "asc" | "desc"',
        'DIRECTION: "ltr" | "rtl"',
        f"MANNER: {_alts(MANNERS)}",
        f"BANNED: {_alts(get_args(BannedAction))}",
        f"RULEKIND: {_alts(RULE_WORDS.values())}",
        'NOT: "not "',
        f"PRED: {_alts(get_args(Predicate))}",
        f"ARM: {_alts(ARM_WORDS.values())}",
        f"PRONOUN: {_alts(PRONOUNS)}",
        f"MODW: {_alts(w for w in words if _is_modifier(w))}",
        f"NOUNW: {_alts([w for w in words if not _is_modifier(w)] or ['object'])}",
        'DIGIT: "1" | "2" | "3" | "4" | "5"',
    ]) + "\n"


# ------------------------------------------------------------------------------------------ render
def _np_words(n: NP) -> list[str]:
    if n.pronoun:
        return [n.pronoun]
    size = [n.size] if n.size else []
    return [*([ORDINAL_WORD.get(n.ordinal, str(n.ordinal))] if n.ordinal else []), *([n.place] if n.place else []),
            *size, *([n.colour] if n.colour else []), *n.words, n.head]


def render_np(n: NP | Plural) -> str:
    """A noun phrase as words ("second red bowl", "2 bottles", "red green blue blocks")."""
    _check_expressible(n, _NP_FIELDS if isinstance(n, NP) else _PLURAL_FIELDS)
    if isinstance(n, NP):
        return " ".join(_np_words(n))
    lead = [str(n.count)] if n.count and not (n.colours or n.sizes) else []
    return " ".join([*lead, *n.sizes, *n.colours, *n.words, plural(n.head)])


def _target(t: NP | Plural | Arm) -> str:
    return ARM_WORDS[t.which] if isinstance(t, Arm) else render_np(t)


def render_state(s: State) -> str:
    """STATE: "drawer is open", "left arm is not holds cup"."""
    _check_expressible(s, frozenset({"subject", "pred", "obj", "negated"}))
    obj = f" {_target(s.obj)}" if s.obj is not None else ""
    return f"{_target(s.subject)} is {'not ' if s.negated else ''}{s.pred}{obj}"


def _render_mod(m: Modifier) -> str:
    opt = getattr(m, "target", None)
    tail = f" {render_np(opt)}" if opt is not None else ""
    simple = {NoDrop: "without dropping", NoLift: "without lifting", NoGrasp: "without grasping",
              NoTouch: "without touching", NoMove: "without moving"}
    if type(m) in simple:
        return simple[type(m)] + tail
    if isinstance(m, (While, KeepState)):
        return ("while " if isinstance(m, While) else "keep ") + render_state(m.state)
    if isinstance(m, Manner):
        return f"manner {m.word}"
    if isinstance(m, ArmMod):
        return f"with {ARM_WORDS[m.arm.which]}"
    if isinstance(m, (KeepThere, AtEnd)):
        return "keep there" if isinstance(m, KeepThere) else "at end"
    raise NLError(f"IR text cannot express the modifier {type(m).__name__} yet")


_NP_FIELDS = frozenset({"head", "words", "colour", "size", "ordinal", "place", "pronoun", "text"})
_PLURAL_FIELDS = frozenset({"head", "words", "count", "colours", "sizes", "text"})
_STEP_FIELDS = frozenset({"verb", "objs", "dest", "rel", "src", "arm", "mods", "arm_arg", "contents", "stack",
                          "row"})


def _check_expressible(node: object, known: frozenset[str]) -> None:
    """NLError when `node` sets a field IR text has no syntax for (an IR grown since this module was written):
    rendering it would drop the field silently."""
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        if f.name not in known and getattr(node, f.name) != f.default:
            raise NLError(f"IR text cannot express {type(node).__name__}.{f.name} yet")


def _render_row(r: RowOrder) -> str:
    parts = ["row"]
    if r.by:
        parts.append(f"by {r.by}")
    if r.colours:
        parts.append("colours " + " ".join(r.colours))
    parts += [x for x in (r.size_order, r.direction) if x]
    return " ".join(parts)


def render_step(s: Step) -> str:
    """One step line (NLError for a field IR text has no syntax for)."""
    _check_expressible(s, _STEP_FIELDS)
    parts = [s.verb]
    if s.objs:
        parts.append(" and ".join(render_np(o) for o in s.objs))
    if s.dest is not None:  # a destination said without a relation (a handover's receiver) reads as "to"
        parts.append(f"{REL_WORDS[s.rel or 'to']} {_target(s.dest)}")
    if s.src is not None:
        parts.append(f"from {_target(s.src)}")
    if s.contents is not None:
        parts.append(f"of {render_np(s.contents)}")
    if s.arm is not None and ArmMod(s.arm) not in s.mods:
        parts.append(f"by {ARM_WORDS[s.arm.which]}")
    if s.arm_arg is not None:
        parts.append(f"arg {ARM_WORDS[s.arm_arg.which]}")
    if s.stack is not None:
        parts.append(f"stack {s.stack.kind}" + (f" {render_np(s.stack.pivot)}" if s.stack.pivot else ""))
    if s.row is not None:
        parts.append(_render_row(s.row))
    parts += [_render_mod(m) for m in s.mods]
    return " ".join(parts)


def render_statement(st: Forbid | Rule) -> str:
    """One Forbid or Rule line."""
    _check_expressible(st, frozenset({"action", "targets", "kind", "states"}))
    if isinstance(st, Forbid):
        return " ".join([f"never {st.action}", *([" and ".join(render_np(t) for t in st.targets)]
                                                  if st.targets else [])])
    if st.kind == "until":
        return f"keep {render_state(st.states[0])} until {render_state(st.states[1])}"
    return f"{RULE_WORDS[st.kind]} {render_state(st.states[0])}"


def render_ir_text(parsed: Parsed) -> str:
    """A whole description in IR text, one line per step then per statement, closed by `end`."""
    lines = [render_step(s) for s in parsed.steps] + [render_statement(st) for st in parsed.statements]
    return "\n".join(lines) + "\nend"



# ------------------------------------------------------------------------------------------ read
def words_np(words: list[str]) -> NP | Plural:
    """The noun phrase of a word list: pronoun, or count / ordinal / place / size / colour words, then the
    compound words and the head (a plural head, a count or several colours make a `Plural`)."""
    text = " ".join(words)
    if len(words) == 1 and words[0] in PRONOUNS:
        return NP(pronoun=words[0], text=text)
    count, ordinal, place, sizes, colours, rest = None, None, None, [], [], []
    if len(words) > 1 and words[-1].isdigit():  # "bowl 2" = the second bowl
        ordinal, words = int(words[-1]), words[:-1]
    for w in words[:-1]:
        if w.isdigit() or w in COUNTS or w == "both":
            count = int(w) if w.isdigit() else COUNTS.get(w, 2)
        elif w in ORDINALS:
            ordinal = ORDINALS[w]
        elif w in PLACES and not rest and place is None:
            place = w
        elif w in SIZE_RANK:
            sizes.append(SIZE_CANON[SIZE_RANK[w]])
        elif w in COLOURS:
            colours.append(w)
        else:
            rest.append(w)
    head = words[-1]
    if is_plural(head) or count is not None or len(colours) > 1 or len(sizes) > 1:
        return Plural(head=singular(head), words=tuple(rest), count=count, colours=tuple(colours),
                      sizes=tuple(sizes), text=text)
    return NP(head=head, words=tuple(rest), colour=colours[0] if colours else None,
              size=sizes[0] if sizes else None, ordinal=ordinal, place=place, text=text)


class _ToIR(Transformer):
    """IR text parse tree → IR nodes (one method per rule of `grammar`)."""

    def np(self, items):
        return items[0] if isinstance(items[0], (NP, Plural)) else words_np([str(items[0])])

    def named(self, items):
        return words_np([str(t) for t in items])

    def arm(self, items):
        return Arm(ARM_OF[str(items[0])])

    def target(self, items):
        return items[0]

    def state(self, items):
        neg = any(isinstance(t, Token) and t.type == "NOT" for t in items)
        rest = [t for t in items if not (isinstance(t, Token) and t.type == "NOT")]
        return State(subject=rest[0], pred=str(rest[1]), obj=rest[2] if len(rest) > 2 else None, negated=neg)

    def objs(self, items):
        return ("objs", tuple(items))

    objs_first = objs

    def dest(self, items):
        return ("dest", (REL_OF[str(items[0])], items[1]))

    def src(self, items):
        return ("src", items[0])

    def contents(self, items):
        return ("contents", items[0])

    def by(self, items):
        return ("by", items[0])

    def armarg(self, items):
        return ("arm_arg", items[0])

    def stackspec(self, items):
        return ("stack", StackOrder(kind=str(items[0]), pivot=items[1] if len(items) > 1 else None))

    def rowspec(self, items):
        kw: dict = {"colours": tuple(str(t) for t in items if t.type == "COLOUR")}
        for t in items:
            key = {"ROWBY": "by", "SIZEORDER": "size_order", "DIRECTION": "direction"}.get(t.type)
            if key:
                kw[key] = str(t)
        return ("row", RowOrder(**kw))

    def mod(self, items):
        return ("mod", items[0])

    def nodrop(self, items):
        return NoDrop(items[0] if items else None)

    def notouch(self, items):
        return NoTouch(items[0])

    def nolift(self, items):
        return NoLift(items[0] if items else None)

    def nograsp(self, items):
        return NoGrasp(items[0] if items else None)

    def nomove(self, items):
        return NoMove(items[0])

    def whilem(self, items):
        return While(items[0])

    def keepthere(self, items):
        return KeepThere()

    def keepstate(self, items):
        return KeepState(items[0])

    def manner(self, items):
        return Manner(str(items[0]))

    def atend(self, items):
        return AtEnd()

    def armmod(self, items):
        return ArmMod(items[0])

    def step(self, items):
        if isinstance(items[0], Step):  # an armstep
            return items[0]
        kw: dict = {"verb": str(items[0]), "mods": []}
        for key, value in items[1:]:
            if key == "dest":
                kw["rel"], kw["dest"] = value
            elif key == "mod":
                kw["mods"].append(value)
            elif key == "by":
                kw["arm"] = value
            else:
                kw[key] = value
        arm_mods = [m.arm for m in kw["mods"] if isinstance(m, ArmMod)]
        if arm_mods and "arm" not in kw:
            kw["arm"] = arm_mods[-1]
        kw["mods"] = tuple(kw["mods"])
        return Step(**kw)

    def forbid(self, items):
        return Forbid(action=str(items[0]), targets=tuple(items[1:]))

    def rule(self, items):
        if isinstance(items[0], Token):
            kind = {v: k for k, v in RULE_WORDS.items()}[str(items[0])]
            return Rule(kind=kind, states=(items[1],))
        return Rule(kind="until", states=(items[0], items[1]))

    def line(self, items):
        return items[0]

    first = line
    step_first = step

    def armstep(self, items):
        return self.step(items)

    def start(self, items):
        return Parsed(steps=tuple(i for i in items if isinstance(i, Step)),
                      statements=tuple(i for i in items if not isinstance(i, Step)))


@functools.lru_cache(maxsize=64)
def _reader(words: tuple[str, ...]) -> Lark:
    return Lark(grammar(words), parser="earley", ambiguity="resolve")


def parse_ir_text(text: str, words: tuple[str, ...]) -> Parsed:
    """The IR of an IR text whose noun words are `words`; an IRError quoting what does not fit."""
    try:
        tree = _reader(words).parse(text.strip() if text.strip().endswith("end") else text)
    except LarkError as exc:
        raise IRError(f"not valid IR text: {str(exc).splitlines()[0]}\n{text}") from None
    try:
        return _ToIR().transform(tree)
    except VisitError as exc:
        cause = exc.orig_exc
        raise IRError(f"IR text does not hold a valid description: {cause}\n{text}") from None


__all__ = ["KEYWORDS", "grammar", "noun_words", "parse_ir_text", "plural", "render_ir_text", "render_np",
           "render_state", "render_statement", "render_step", "words_np"]
