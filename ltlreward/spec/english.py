"""Render constraints in plain English for `ltlreward explain` (and the NL compiler's echo)."""

from __future__ import annotations

from ..predicates.catalog import PREDICATES
from .ast import (
    Atom,
    Binary,
    Call,
    Compare,
    Const,
    Constraint,
    Formula,
    Interval,
    Num,
    Quoted,
    TaskSpec,
    Unary,
)
from .printer import format_formula

_CMP_WORDS = {"<": "is below", "<=": "is at most", ">": "is above", ">=": "is at least"}


def _window(iv: Interval) -> str:
    from .printer import _bound

    unit = "s" if iv.unit == "s" else ""
    lo, hi = _bound(iv.lo, iv.unit), _bound(iv.hi, iv.unit)
    if iv.unit == "s":
        return f"between {lo} and {hi} from now"
    return f"between {lo}{unit} and {hi}{unit} frames from now"


class _English:
    def __init__(self, spec: TaskSpec | None) -> None:
        self.names = {}
        if spec is not None:
            for e in spec.entities:
                p = e.prompt.strip() or e.name
                self.names[e.name] = p if p.lower().startswith(("the ", "a ", "an ")) else f"the {p}"

    def ent(self, a) -> str:
        return self.names.get(a, str(a)) if isinstance(a, str) else str(a)

    def call(self, c: Call, negated: bool = False) -> str:
        info = PREDICATES.get(c.name)
        if info is not None and len(c.args) == len(info.params):
            tmpl = info.negated if negated and info.negated else info.english
            if tmpl:
                text = tmpl.format(*(self.ent(a) for a in c.args))
                if c.kwargs:
                    text += " (" + ", ".join(f"{k}={v}" for k, v in c.kwargs) + ")"
                return text if not negated or info.negated else f"not ({text})"
        args = ", ".join(self.ent(a) for a in c.args)
        base = f"{c.name.replace('_', ' ')}({args})" if c.args else c.name.replace("_", " ")
        return f"not {base}" if negated else base

    def term(self, t) -> str:
        if isinstance(t, Num):
            return f"{t.value:g}"
        return self.call(t)

    def go(self, f: Formula, nested: bool = False) -> str:
        if isinstance(f, Const):
            return "true" if f.value else "false"
        if isinstance(f, Atom):
            return self.call(f.call)
        if isinstance(f, Quoted):
            return f.text
        if isinstance(f, Compare):
            return f"{self.term(f.left)} {_CMP_WORDS[f.op]} {self.term(f.right)}"
        if isinstance(f, Unary):
            return self.unary(f, nested)
        if isinstance(f, Binary):
            return self.binary(f, nested)
        raise TypeError(f"not a formula: {f!r}")

    def unary(self, f: Unary, nested: bool) -> str:
        c = f.child
        if f.op == "!":
            if isinstance(c, Atom):
                return self.call(c.call, negated=True)
            if isinstance(c, Unary) and c.op == "F" and c.interval is None:
                return f"never {self.go(c.child, True)}"
            return f"it is not the case that {self.go(c, True)}"
        if f.interval is not None:
            w = _window(f.interval)
            words = {"F": f"at some moment {w}", "G": f"at every moment {w}",
                     "O": f"at some moment {w.replace('from now', 'ago')}",
                     "H": f"at every moment {w.replace('from now', 'ago')}"}
            return f"{words[f.op]}, {self.go(c, True)}"
        if f.op == "F" and isinstance(c, Unary) and c.op == "G" and c.interval is None:
            return f"eventually, and from then on always, {self.go(c.child, True)}"
        if f.op == "G" and isinstance(c, Unary) and c.op == "F" and c.interval is None:
            return f"again and again until the end, {self.go(c.child, True)}"
        if f.op == "G" and isinstance(c, Unary) and c.op == "!":
            return f"never {self.go(c.child, True)}"
        if f.op == "G" and isinstance(c, Binary) and c.op == "->":
            return f"whenever {self.go(c.left, True)}, {self.go(c.right, True)}"
        words = {"X": "at the next frame", "WX": "at the next frame (if there is one)", "F": "eventually",
                 "G": "always", "Y": "at the previous frame", "O": "at some moment so far",
                 "H": "at every moment so far"}
        return f"{words[f.op]}, {self.go(c, True)}"

    def binary(self, f: Binary, nested: bool) -> str:
        l, r = self.go(f.left, True), self.go(f.right, True)
        if f.op in ("&", "|"):
            word = "and" if f.op == "&" else "or"

            def part(g: Formula, s: str) -> str:
                mixed = isinstance(g, Binary) and g.op in ("&", "|", "->", "<->") and g.op != f.op
                temporal = isinstance(g, (Unary, Binary)) and not (isinstance(g, Unary) and g.op == "!"
                                                                    and isinstance(g.child, Atom))
                return f"({s})" if mixed or (temporal and isinstance(g, Binary) and g.op != f.op) else s

            return f"{part(f.left, l)} {word} {part(f.right, r)}"
        if f.op == "->":
            return f"if {l}, then {r}"
        if f.op == "<->":
            return f"{l} exactly when {r}"
        iv = f" (within {_window(f.interval).removeprefix('between ')})" if f.interval else ""
        if f.op == "U":
            return f"{l} until {r}{iv}, which must happen"
        if f.op == "W":
            return f"{l} until {r}, or forever"
        if f.op == "R":
            return f"{r}, until and including the moment {l}{iv}, or forever"
        if f.op == "M":
            return f"{r}, until and including the moment {l}, which must happen"
        if f.op == "S":
            return f"{l} ever since {r}"
        raise TypeError(f"unknown operator {f.op}")


def explain_formula(f: Formula, spec: TaskSpec | None = None) -> str:
    """Plain-English reading of a formula, naming entities by their prompts when `spec` is given."""
    return _English(spec).go(f)


def explain_constraint(c: Constraint, spec: TaskSpec | None = None) -> str:
    """One line per constraint: name, weight, description, and the formula read in English."""
    text = explain_formula(c.formula, spec)
    return text[0].upper() + text[1:] if text else text


__all__ = ["explain_constraint", "explain_formula", "format_formula"]
