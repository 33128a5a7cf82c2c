"""Generic traversals over formulas, built on `children()` / `map_children()`: subformulas, atoms, macro
substitution, and validation of a spec built in code."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .ast import Atom, Call, Compare, Formula, Num, Quoted, Scalar, TaskSpec
from .units import Quantity

AtomNode = Atom | Compare | Quoted


def subformulas(f: Formula) -> Iterator[Formula]:
    """Every node of `f`, parents before children, left to right (iterative: no recursion limit)."""
    stack = [f]
    while stack:
        g = stack.pop()
        yield g
        stack.extend(reversed(g.children()))


def atoms_of(f: Formula) -> list[AtomNode]:
    """Atom-like leaves of `f` (Atom, Compare, Quoted), each once, in first-seen order."""
    seen: dict[str, AtomNode] = {}
    for g in subformulas(f):
        if g.is_atom:
            seen.setdefault(g.canonical, g)
    return list(seen.values())


def spec_atoms(spec: TaskSpec) -> list[AtomNode]:
    """Every distinct atom over all constraints of `spec`."""
    out: dict[str, AtomNode] = {}
    for c in spec.constraints:
        for a in atoms_of(c.formula):
            out.setdefault(a.canonical, a)
    return list(out.values())


def atom_units(a: AtomNode) -> list[Quantity]:
    """The unit-carrying constants of an atom: its calls' keyword values and a comparison's numbers."""
    out = [v for c in a.calls() for _, v in c.kwargs if isinstance(v, Quantity)]
    if isinstance(a, Compare):
        out += [t.quantity for t in (a.left, a.right) if isinstance(t, Num) and t.unit]
    return out


def requested_space(a: AtomNode) -> str:
    """What an atom's units ask for: "metric" (metres: 3-D or 2.5-D), "image" (pixels), "auto" (bare: 3-D, else
    2.5-D, else the image, as the observations allow) or "signal" (quoted atoms and propositions)."""
    if isinstance(a, Quoted) or (isinstance(a, Atom) and not a.call.args):
        return "signal"
    units = atom_units(a)
    return "metric" if any(q.metric for q in units) else "image" if units else "auto"


def is_temporal(f: Formula) -> bool:
    """Whether any operator in `f` is temporal (per the operator table)."""
    return any(g.info is not None and g.info.temporal for g in subformulas(f))


def substitute(f: Formula, mapping: Mapping[str, Scalar]) -> Formula:
    """Replace identifier arguments by `mapping` throughout `f` (macro expansion)."""
    if not mapping:
        return f

    def call(c: Call) -> Call:
        return Call(c.name, tuple(mapping.get(a, a) if isinstance(a, str) else a for a in c.args), c.kwargs)

    def go(g: Formula) -> Formula:
        return g.map_calls(call).map_children(go)

    return go(f)
