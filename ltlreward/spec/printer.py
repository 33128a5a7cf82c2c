"""Print formulas and specs back to the spec language; output parses back to an equal AST."""

from __future__ import annotations

import re

import numpy as np

from .ast import (
    Atom,
    Binary,
    Call,
    Compare,
    Const,
    Entity,
    Formula,
    Interval,
    Macro,
    Quoted,
    TaskSpec,
    Unary,
    fmt_scalar,
)

# binding strength, loosest first; temporal binaries are right-associative, so are implications
_PREC = {"<->": 1, "->": 2, "|": 3, "&": 4, "U": 5, "R": 5, "W": 5, "M": 5, "S": 5}
_UNARY_PREC = 6
_ATOM_PREC = 7
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"WX", "X", "F", "G", "Y", "O", "H", "U", "R", "W", "M", "S", "true", "false",
             "task", "entity", "let", "constraint", "reward"}


def quote(text: str) -> str:
    """A double-quoted string literal for `text`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def _bound(v: float, unit: str) -> str:
    if unit == "s":
        return np.format_float_positional(float(v), trim="-") + "s"
    return fmt_scalar(v)


def format_interval(iv: Interval | None) -> str:
    if iv is None:
        return ""
    return f"[{_bound(iv.lo, iv.unit)},{_bound(iv.hi, iv.unit)}]"


def _call(c: Call) -> str:
    if not c.args and not c.kwargs:
        return c.name
    parts = [fmt_scalar(a) for a in c.args] + [f"{k}={fmt_scalar(v)}" for k, v in c.kwargs]
    return f"{c.name}({', '.join(parts)})"


def _term(t) -> str:
    return _call(t) if isinstance(t, Call) else fmt_scalar(t.value)


def _prec(f: Formula) -> int:
    if isinstance(f, Binary):
        return _PREC[f.op]
    if isinstance(f, Unary):
        return _UNARY_PREC
    return _ATOM_PREC


def format_formula(f: Formula) -> str:
    """The formula in the spec language with as few parentheses as precedence allows."""

    def wrap(g: Formula, needs: bool) -> str:
        s = go(g)
        return f"({s})" if needs else s

    def go(g: Formula) -> str:
        if isinstance(g, Const):
            return "true" if g.value else "false"
        if isinstance(g, Atom):
            return _call(g.call)
        if isinstance(g, Quoted):
            return quote(g.text)
        if isinstance(g, Compare):
            return f"{_term(g.left)} {g.op} {_term(g.right)}"
        if isinstance(g, Unary):
            sep = "" if g.op == "!" else " "
            return f"{g.op}{format_interval(g.interval)}{sep}{wrap(g.child, _prec(g.child) < _UNARY_PREC)}"
        if isinstance(g, Binary):
            p = _PREC[g.op]
            if p == 5:  # temporal: left operand is unary-level, right-assoc
                left = wrap(g.left, _prec(g.left) < _UNARY_PREC)
                right = wrap(g.right, _prec(g.right) < p)
            elif g.op == "->":  # right-assoc
                left = wrap(g.left, _prec(g.left) <= p)
                right = wrap(g.right, _prec(g.right) < p)
            else:  # left-assoc
                left = wrap(g.left, _prec(g.left) < p)
                right = wrap(g.right, _prec(g.right) <= p)
            return f"{left} {g.op}{format_interval(g.interval)} {right}"
        raise TypeError(f"not a formula node: {g!r}")

    return go(f)


def _hint_value(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(fmt_scalar(x) for x in v) + ")"
    if isinstance(v, str):
        return v if _NAME_RE.match(v) and v not in _RESERVED else quote(v)
    return fmt_scalar(v)


def format_entity(e: Entity) -> str:
    s = f"entity {e.name} = {quote(e.prompt)}"
    if e.kind != "object":
        s += f" : {e.kind}"
    for k, v in e.hints:
        s += f" {k}={_hint_value(v)}"
    return s


def format_macro(m: Macro) -> str:
    params = f"({', '.join(m.params)})" if m.params else ""
    return f"let {m.name}{params} := {format_formula(m.body)}"


def format_spec(spec: TaskSpec) -> str:
    """The whole spec as a .ltl file (macros kept, constraints printed with macros expanded)."""
    out: list[str] = []
    if spec.task:
        out += [f"task {quote(spec.task)}", ""]
    out += [format_entity(e) for e in spec.entities]
    if spec.macros:
        out += ["", *(format_macro(m) for m in spec.macros)]
    for c in spec.constraints:
        head = f"constraint {c.name}"
        if c.weight != 1:
            head += f" [weight={fmt_scalar(c.weight)}]"
        if c.description:
            head += f" {quote(c.description)}"
        out += ["", f"{head}:", f"    {format_formula(c.formula)}"]
    out += ["", f"reward {spec.reward}"]
    return "\n".join(out).lstrip("\n") + "\n"
