"""Compiled entity names → the names a sidecar or prompts file uses, so a compiled spec meets its grounder.

    bind_entities(compile_text("push the puck onto the goal").spec, load_entity_names("clip.sidecar.json"))
      puck → obj (the sidecar's only generic object; a warning), goal → goal, gripper → gripper

Each spec entity is matched, in this order, to a sidecar entity not taken yet:
    exact      the same name
    lemma      the same singular, or the spec name's head word ("red_puck" → "puck")
    gripper    a spec gripper to the sidecar's only gripper; "left" / "right" to the gripper named so
    synonym    a head noun and a name of one synonym set (SYNONYMS: goal / target / …)
    substring  one name inside the other ("goal_position" ↔ "goal")
    generic    a generic sidecar name (obj, object, item, target) for the one object left unmatched
Exact and lemma matches are silent; the others are guesses and come back as warnings. An entity that matches
nothing is a BindError listing the sidecar's entities. A file names its entities under "entities" (sidecar,
prompts file) and its grippers under "grippers" (sidecar).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..spec.ast import Call, Formula, TaskSpec
from .errors import NLError
from .lexicon import singular

SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset({"goal", "target", "destination", "marker", "spot", "zone", "region", "position", "location", "point"}),
    frozenset({"puck", "disc", "disk", "obj", "object"}),
    frozenset({"gripper", "hand", "arm", "robot", "effector", "end_effector", "claw"}),
    frozenset({"dustbin", "bin", "trash", "trashcan", "wastebasket"}),
    frozenset({"cup", "mug"}),
    frozenset({"block", "cube", "brick"}),
)
GENERIC = frozenset({"obj", "object", "item", "target_object", "thing"})


class BindError(NLError):
    """A compiled entity that no sidecar entity matches (the message lists the sidecar's entities)."""


@dataclass(frozen=True)
class EntityNames:
    """The entity names of a sidecar or prompts file, and which of them are grippers."""

    names: tuple[str, ...]
    grippers: frozenset[str] = frozenset()
    source: str = ""


@dataclass(frozen=True)
class Bound:
    """A spec with its entities renamed to a file's names, the renaming, and a warning per guessed match."""

    spec: TaskSpec
    mapping: Mapping[str, str]
    warnings: tuple[str, ...] = ()


def entity_names(data: Mapping[str, Any], source: str = "") -> EntityNames:
    """The names of a sidecar / prompts object: its "entities" keys plus its "grippers" keys."""
    ents = data.get("entities")
    if not isinstance(ents, Mapping) or not ents:
        raise BindError(f"{source or 'entities file'}: needs an \"entities\" object naming the entities")
    grippers = data.get("grippers") or {}
    names = tuple(dict.fromkeys([*ents, *grippers]))
    return EntityNames(names, frozenset(grippers), source)


def load_entity_names(path: str | Path) -> EntityNames:
    """The entity names of a sidecar (.sidecar.json) or prompts (.prompts.json) file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BindError(f"{p}: cannot read entity names: {exc}") from None
    return entity_names(data, str(p))


def _head(name: str) -> str:
    return singular(name.rsplit("_", 1)[-1])


def _synonyms(a: str, b: str) -> bool:
    return any({_head(a), a} & s and {_head(b), b} & s for s in SYNONYMS)


_Rule = Callable[[str, str, bool, EntityNames], bool]
_RULES: tuple[tuple[str, _Rule], ...] = (
    ("exact", lambda s, t, g, f: s == t),
    ("lemma", lambda s, t, g, f: singular(s) == singular(t) or _head(s) == singular(t)),
    ("gripper", lambda s, t, g, f: g and t in f.grippers and (len(f.grippers) == 1 or s in t or t in s)),
    ("synonym", lambda s, t, g, f: not g and t not in f.grippers and _synonyms(s, t)),
    ("substring", lambda s, t, g, f: not g and t not in f.grippers and len(min(s, t, key=len)) >= 3
     and (s in t or t in s)),
)


def _match(spec: TaskSpec, names: EntityNames) -> tuple[dict[str, str], list[str]]:
    """spec name → file name for every entity, rule by rule (a taken file name is not reused)."""
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    for rule, test in _RULES:
        for e in spec.entities:
            if e.name in mapping:
                continue
            free = [t for t in names.names if t not in mapping.values()]
            hits = [t for t in free if test(e.name, t, e.kind == "gripper", names)]
            if len(hits) == 1 or (hits and rule in ("exact", "lemma")):
                mapping[e.name] = hits[0]
                if rule not in ("exact", "lemma"):
                    warnings.append(f"entity '{e.name}' ({e.prompt!r}) bound to '{hits[0]}' by {rule} match; check it")
    left = [e for e in spec.entities if e.name not in mapping and e.kind not in ("gripper", "region")]
    generic = [t for t in names.names if t not in mapping.values() and t in GENERIC]
    if len(left) == 1 and len(generic) == 1:
        mapping[left[0].name] = generic[0]
        warnings.append(f"entity '{left[0].name}' ({left[0].prompt!r}) bound to the generic '{generic[0]}'; check it")
    return mapping, warnings


def _rename(f: Formula, mapping: Mapping[str, str]) -> Formula:
    def call(c: Call) -> Call:
        return Call(c.name, tuple(mapping.get(a, a) if isinstance(a, str) else a for a in c.args), c.kwargs)

    def go(g: Formula) -> Formula:
        return g.map_calls(call).map_children(go)

    return go(f)


def bind_entities(spec: TaskSpec, names: EntityNames) -> Bound:
    """`spec` with every entity renamed to its match among `names` (see the module docstring); BindError
    naming the unmatched entity and listing the options when one matches nothing."""
    mapping, warnings = _match(spec, names)
    missing = [e for e in spec.entities if e.name not in mapping]
    if missing:
        e = missing[0]
        raise BindError(f"no entity of {names.source or 'the entities file'} matches '{e.name}' ({e.prompt!r}); "
                        f"its entities: {', '.join(names.names)} (rename it in the description or the file)")
    entities = tuple(replace(e, name=mapping[e.name]) for e in spec.entities)
    constraints = tuple(replace(c, formula=_rename(c.formula, mapping)) for c in spec.constraints)
    return Bound(replace(spec, entities=entities, constraints=constraints), mapping, tuple(warnings))


__all__ = ["GENERIC", "SYNONYMS", "BindError", "Bound", "EntityNames", "bind_entities", "entity_names",
           "load_entity_names"]
