"""Render constraints in plain English for `ltlreward explain` (and the NL compiler's echo).

Each operator's words are its row's `english` / `english_bounded` templates in the operator table
(spec/ops.py); predicates read through their catalog templates. What lives here: the dispatch over node
types, the bracketing of mixed & / | chains, and the idioms (operator pairs with words of their own, such
as F G "eventually, and from then on always").
"""

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
from .ops import Op
from .printer import format_formula


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
            return f"{t.value:g}" + (f" {t.unit}" if t.unit else "")
        return self.call(t)

    def go(self, f: Formula, nested: bool = False) -> str:
        render = _RENDER.get(type(f))
        if render is None:
            raise TypeError(f"not a formula: {f!r}")
        return render(self, f)

    def compare(self, f: Compare) -> str:
        return f"{self.term(f.left)} {f.op.info.english} {self.term(f.right)}"

    def unary(self, f: Unary) -> str:
        info, c = f.info, f.child
        negated = _NEGATED.get(type(c)) if info.op == Op.NOT else None
        if negated is not None:
            return negated(self, c)
        if f.interval is not None:
            w = _window(f.interval)
            w = w.replace("from now", "ago") if info.past else w
            return info.english_bounded.format(w=w, c=self.go(c, True))
        idiom = self.idiom(f)
        return idiom if idiom is not None else info.english.format(c=self.go(c, True))

    def idiom(self, f: Unary) -> str | None:
        """The reading of an operator pair with words of its own (F G, G F, G !, G ->, ! F), or None."""
        inner = f.child
        template = _IDIOMS.get((f.op, inner.info.op)) if inner.info is not None else None
        if template is None or inner.interval is not None:
            return None
        parts = [self.go(g, True) for g in inner.children()]
        return template.format(*parts)

    def binary(self, f: Binary) -> str:
        info = f.info
        l, r = self.go(f.left, True), self.go(f.right, True)
        if info.junction:  # brackets around a different binary inside a chain of & or of |
            l = f"({l})" if _other_binary(f.left, f.op) else l
            r = f"({r})" if _other_binary(f.right, f.op) else r
        iv = f" (within {_window(f.interval).removeprefix('between ')})" if f.interval else ""
        return info.english.format(l=l, r=r, iv=iv)


def _other_binary(g: Formula, op: Op) -> bool:
    return g.info is not None and g.info.arity == 2 and g.op != op


# negations with words of their own: node type -> reading of `!node`
_NEGATED = {Atom: lambda e, f: e.call(f.call, negated=True)}
# operator pairs read as one phrase: (outer, inner) -> template over the inner node's operands
_IDIOMS = {
    (Op.NOT, Op.EVENTUALLY): "never {0}",
    (Op.EVENTUALLY, Op.ALWAYS): "eventually, and from then on always, {0}",
    (Op.ALWAYS, Op.EVENTUALLY): "again and again until the end, {0}",
    (Op.ALWAYS, Op.NOT): "never {0}",
    (Op.ALWAYS, Op.IMPLIES): "whenever {0}, {1}",
}
_RENDER = {
    Const: lambda e, f: "true" if f.value else "false",
    Atom: lambda e, f: e.call(f.call),
    Quoted: lambda e, f: f.text,
    Compare: _English.compare,
    Unary: _English.unary,
    Binary: _English.binary,
}


def explain_formula(f: Formula, spec: TaskSpec | None = None) -> str:
    """Plain-English reading of a formula, naming entities by their prompts when `spec` is given."""
    return _English(spec).go(f)


def explain_constraint(c: Constraint, spec: TaskSpec | None = None) -> str:
    """One line per constraint: name, weight, description, and the formula read in English."""
    text = explain_formula(c.formula, spec)
    return text[0].upper() + text[1:] if text else text


__all__ = ["explain_constraint", "explain_formula", "format_formula"]
