"""Print formulas and specs back to the spec language; output parses back to an equal AST.

Brackets follow the operator table's precedence and associativity (spec/ops.py): an operand is bracketed
when it binds looser than its operator, or as loosely on the side the operator does not associate to.
"""

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
from .ops import ATOM_PREC, OPS

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = ("true", "false", "task", "entity", "let", "constraint", "reward")
_RESERVED = {*(op.symbol for op in OPS.values() if op.is_word), *_KEYWORDS}


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
    return _call(t) if isinstance(t, Call) else t.canonical


def _prec(f: Formula) -> int:
    info = f.info
    return ATOM_PREC if info is None else info.prec


def _bracket(s: str, g: Formula, p: int, same_ok: bool) -> str:
    """`s` (the text of `g`) as an operand of a binding-strength-`p` operator: bracketed when `g` binds
    looser, or exactly as tight on a side the operator does not associate to (`same_ok` False)."""
    q = _prec(g)
    return f"({s})" if q < p or (q == p and not same_ok) else s


def _unary(g: Unary) -> str:
    sep = " " if g.info.is_word else ""
    child = _bracket(format_formula(g.child), g.child, g.info.prec, True)
    return f"{g.op}{format_interval(g.interval)}{sep}{child}"


def _binary(g: Binary) -> str:
    info = g.info
    left = _bracket(format_formula(g.left), g.left, info.prec, info.assoc == "left")
    right = _bracket(format_formula(g.right), g.right, info.prec, info.assoc == "right")
    return f"{left} {g.op}{format_interval(g.interval)} {right}"


_FORMAT = {
    Const: lambda g: "true" if g.value else "false",
    Atom: lambda g: _call(g.call),
    Quoted: lambda g: quote(g.text),
    Compare: lambda g: f"{_term(g.left)} {g.op} {_term(g.right)}",
    Unary: _unary,
    Binary: _binary,
}


def format_formula(f: Formula) -> str:
    """The formula in the spec language with as few parentheses as precedence allows."""
    fmt = _FORMAT.get(type(f))
    if fmt is None:
        raise TypeError(f"not a formula node: {f!r}")
    return fmt(f)


def _hint_value(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(fmt_scalar(x) for x in v) + ")"
    if isinstance(v, str):
        return v if _NAME_RE.match(v) and v not in _RESERVED else quote(v)
    return fmt_scalar(v)


def format_entity(e: Entity) -> str:
    if e.kind == "region" and not e.prompt and (e.hint("box") is not None or e.hint("center") is not None):
        s = f"entity {e.name} = region"  # a static region (grounding/regions.py)
    else:
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
