"""Small traversals over formulas: collect atoms, validate a spec built in code."""

from __future__ import annotations

from .ast import Atom, Binary, Compare, Formula, Quoted, TaskSpec, Unary

AtomNode = Atom | Compare | Quoted


def atoms_of(f: Formula) -> list[AtomNode]:
    """Atom-like leaves of `f` (Atom, Compare, Quoted), each once, in first-seen order."""
    seen: dict[str, AtomNode] = {}
    stack = [f]
    while stack:
        g = stack.pop()
        if isinstance(g, (Atom, Compare, Quoted)):
            seen.setdefault(g.canonical, g)
        elif isinstance(g, Unary):
            stack.append(g.child)
        elif isinstance(g, Binary):
            stack.extend((g.right, g.left))
    return list(seen.values())


def spec_atoms(spec: TaskSpec) -> list[AtomNode]:
    """Every distinct atom over all constraints of `spec`."""
    out: dict[str, AtomNode] = {}
    for c in spec.constraints:
        for a in atoms_of(c.formula):
            out.setdefault(a.canonical, a)
    return list(out.values())


def validate_spec(spec: TaskSpec) -> TaskSpec:
    """Check a spec built in code (e.g. by the NL compiler) by printing and re-parsing it.

    Returns the re-parsed spec; raises SpecError (located in the printed text) when it is invalid.
    """
    from .parser import parse_spec
    from .printer import format_spec

    return parse_spec(format_spec(spec), path=spec.path or "<generated>")
