"""Entities of an English description: noun phrases of the IR → entity names, kinds and prompts; grippers.

`World` is the compiler's memory while it walks the steps in order: the entities mentioned so far (in the order
they appear, which is the spec's order), the head nouns that name them (so "the cup" later means the same
cup), the object groups pronouns refer to, which arm was named last ("the other arm"), and warnings.
"""

from __future__ import annotations

import re

from ..spec.ast import Entity
from . import templates as T
from .errors import NLError
from .ir import NP, Arm, Plural

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
FIXTURES = frozenset({"drawer", "door", "cabinet", "cupboard", "window", "fridge", "microwave", "oven", "dishwasher",
                      "faucet", "tap", "handle", "knob", "lever", "switch", "button"})  # grasped, never lifted
HEAD_SYNONYMS = {"cube": "block", "brick": "block", "bin": "dustbin", "trashcan": "dustbin",
                 "wastebasket": "dustbin", "wastebin": "dustbin", "puck": "puck"}
COMPOUND_SYNONYMS = {("trash", "can"): "dustbin", ("garbage", "can"): "dustbin", ("trash", "bin"): "dustbin",
                     ("waste", "bin"): "dustbin", ("garbage", "bin"): "dustbin", ("rubbish", "bin"): "dustbin"}
_ORD_WORD = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}



class World:
    """Entities mentioned so far, pronoun context, who holds what, and the arm mode (single or bimanual)."""

    def __init__(self, bimanual: bool, text: str) -> None:
        self.bimanual = bimanual
        self.text = text
        self.entities: dict[str, Entity] = {}
        self.heads: dict[str, list[str]] = {}  # canonical head → entity names, most recent last
        self.recent: list[list[str]] = []  # object-role entity groups, most recent last
        self.warnings: list[str] = []
        self.last_arm: str | None = None
        self.mentions: list[str] = []  # object entities in the order they were said (repeats included)
        self.said_before: int | None = None  # while a step's arguments resolve: mentions before the step

    # -- grippers
    def grip(self, arm: Arm | None) -> T.Grip:
        """The grip an arm phrase names (None = the default arm); registers the gripper entities it uses."""
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
        """Every gripper of the task (registering them)."""
        if self.bimanual:
            self._gripper("left")
            self._gripper("right")
            return ["left", "right"]
        self._gripper("gripper")
        return ["gripper"]

    # -- objects
    def label(self, name: str) -> str:
        """How the English descriptions name an entity: "the red block", "the left arm", "the gripper"."""
        e = self.entities[name]
        return f"the {e.prompt}" if e.kind != "gripper" else f"the {name} arm" if name != "gripper" else "the gripper"

    def add(self, name: str, prompt: str, head: str, colour: str | None) -> str:
        """Register (or re-mention) entity `name`; its kind follows from the head noun."""
        if name not in self.entities:
            kind = "surface" if head in SURFACES else "region" if head in REGIONS else "object"
            hints = (("color", colour),) if colour else ()
            self.entities[name] = Entity(name, prompt, kind, hints)
        self.heads.setdefault(head, [])
        if name in self.heads[head]:
            self.heads[head].remove(name)
        self.heads[head].append(name)
        self.mentions.append(name)
        return name

    def head_of(self, name: str) -> str:
        """The canonical head noun of an entity ("" for a gripper)."""
        return next((h for h, ns in self.heads.items() if name in ns), "")

    def container(self, exclude: tuple[str, ...] = ()) -> str:
        """The implied container of a bare "put X inside": the container said last (a warning says which)."""
        for name in reversed(self.mentions):
            if name not in exclude and self.head_of(name) in CONTAINERS:
                self.warnings.append(f'bare "inside": read as inside {self.label(name)} (the container said last)')
                return name
        raise NLError('"inside" needs a container: say inside what (e.g. "put the sponge in the sink")',
                      text=self.text, suggestion="put the cup in the drawer")

    def start_of(self, obj: str) -> str:
        """A region entity for where `obj` was at the start ("put it back where it was"), with a warning."""
        name = ident(f"{obj}_start")
        if name not in self.entities:
            prompt = f"starting position of the {self.entities[obj].prompt}"
            self.entities[name] = Entity(name, prompt, "region")
            self.warnings.append(f'"where it was": the region entity {name} ("{prompt}"); its grounding must '
                                 f"give where {self.label(obj)} started")
        return name

    def _one(self, np: NP, exclude: tuple[str, ...]) -> NP:
        """"the blue one" → "the blue block": the head of the object said last (a warning says so)."""
        before = self.mentions if self.said_before is None else self.mentions[: self.said_before]
        prev = next(iter(reversed(before)), None)
        if prev is None:
            raise NLError(f'"{np.text}": "one" does not refer to anything mentioned before', text=self.text)
        head = self.head_of(prev)
        text = np.text.rsplit(" ", 1)[0] + f" {head}"
        self.warnings.append(f'read "the {np.text}" as "the {text}"')
        return NP(head=head, words=np.words, colour=np.colour, size=np.size, ordinal=np.ordinal, place=np.place,
                  text=text)

    def np(self, np: NP, *, exclude: tuple[str, ...] = ()) -> str:
        """Entity name for a singular noun phrase (pronouns resolve to the most recent other object)."""
        if np.pronoun == "container":
            return self.container(exclude)
        if np.one:
            np = self._one(np, exclude)
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
        name = ident("_".join(parts) + (str(np.ordinal) if np.ordinal else ""))
        prompt = np.text
        if np.ordinal and not any(w in prompt for w in _ORD_WORD.values()):
            prompt = f"{_ORD_WORD.get(np.ordinal, str(np.ordinal))} {prompt.rsplit(' ', 1)[0]}".strip()
        return self.add(name, prompt, head, np.colour)

    def plural(self, p: Plural) -> list[str]:
        """Entity names of a plural phrase, in the order the phrase lists them."""
        head = _canon_head(p.words, p.head)
        words = [w for w in p.words if w not in ("the",)]
        if p.colours:
            return [self.add(ident("_".join([c, *words, head])), " ".join([c, *words, p.head]), head, c)
                    for c in p.colours]
        if p.sizes:
            return [self.add(ident("_".join([s, *words, head])), " ".join([s, *words, p.head]), head, None)
                    for s in p.sizes]
        count = p.count
        if count is None:
            known = self.heads.get(head, [])
            if len(known) >= 2:
                return list(known)
            count = 2
            self.warnings.append(f'"{p.text}": number not given, assuming 2')
        return [self.add(ident("_".join([*words, head]) + str(i)),
                         " ".join([_ORD_WORD.get(i, str(i)), *words, p.head]), head, None)
                for i in range(1, count + 1)]

    def objs(self, items: tuple[NP | Plural, ...], *, remember: bool = True) -> list[str]:
        """Entity names of a step's objects in order ("them" = the last group); `remember` makes them the
        last-mentioned group for later pronouns."""
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
    """The head noun entities are keyed by: compounds and synonyms resolved ("trash can" → dustbin)."""
    if ((*words[-1:], head)) in COMPOUND_SYNONYMS:
        return COMPOUND_SYNONYMS[(*words[-1:], head)]
    return HEAD_SYNONYMS.get(head, head)


def ident(s: str) -> str:
    """A spec identifier from words: lower case, non-alphanumerics to "_", never starting with a digit."""
    s = re.sub(r"[^a-z0-9_]", "_", s.lower()).strip("_")
    return s if s and not s[0].isdigit() else f"e_{s}"


__all__ = ["BUTTONS", "CONTAINERS", "FIXTURES", "PEGS", "REGIONS", "SURFACES", "World", "ident"]
