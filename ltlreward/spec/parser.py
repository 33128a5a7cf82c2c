"""Parse spec files and formulas into the immutable AST, with located, helpful `SpecError`s.

One Lark LALR grammar (grammar.lark) serves both. Parsing happens in two steps: Lark builds a tree, then
`_Builder` turns it into AST nodes (one `_Rule` per grammar rule, looked up in `_FORMULA_RULES`) while
checking names (entities, predicates, macros) and intervals (which operators take one: the operator
table, spec/ops.py) with positions.

A spec file reports every error it has, in source order (`SpecErrors` when there are several): a syntax
error skips the declaration it is in and parsing goes on with the next; a bad atom, option or interval is
recorded and the rest of its formula is still checked. Limits that keep a spec from hanging the monitor:
interval bounds up to `MAX_BOUND` (longer windows are clamped to the trace anyway), and at most
`MAX_NODES` formula nodes after macro expansion (a chain of macros that each use the last one twice
doubles at every step; the size is counted before anything is expanded). With `grounder=NAME`, entity
hints and quoted atoms are also checked against what that grounder reads and answers (the grounder
registry's metadata; "auto": the hint values any registered grounder reads).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import SpecError, SpecErrors
from ..predicates.catalog import OPTION_DIMS, PREDICATES, suggest
from .ast import (
    ENTITY_KINDS,
    REWARD_MODES,
    Atom,
    Binary,
    Call,
    Compare,
    Const,
    Constraint,
    Entity,
    Formula,
    Interval,
    Macro,
    Num,
    Quoted,
    TaskSpec,
    Unary,
)
from .ops import Op, ops_where, takes_no_interval
from .printer import format_spec
from .units import UNITS, Quantity
from .walk import atoms_of, substitute

_GRAMMAR = Path(__file__).with_name("grammar.lark")
MAX_BOUND = 10**9  # largest interval bound, in frames or seconds (windows are clamped to the trace length)
MAX_NODES = 50_000  # formula nodes a spec may hold after macro expansion

_TOKEN_NAMES = {
    "TBIN": f"a binary temporal operator ({' '.join(ops_where(lambda o: o.arity == 2 and o.is_word))})",
    "UOP": f"a unary temporal operator ({' '.join(ops_where(lambda o: o.arity == 1 and o.is_word))})",
    "CMP": "a comparison (< <= > >=)",
    "NAME": "a name",
    "STRING": 'a quoted string ("…")',
    "SIGNED": "a number",
    "DURATION": "a duration like 2.5s",
    "QUANTITY": "a number with a unit like 0.07m",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "BANG": "'!'",
    "AMPERSAND": "'&'",
    "VBAR": "'|'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "$END": "the end of the input",
}


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(),
        parser="lalr",
        start=["start", "formula_only"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _describe_expected(expected: Iterable[str]) -> str:
    names = []
    for e in sorted(set(expected)):
        if e.startswith("__ANON") or e.startswith("_"):
            continue
        names.append(_TOKEN_NAMES.get(e, repr(e.lower()) if e.isupper() else e))
    formula_starts = {"NAME", "STRING", "BANG", "UOP", "LPAR", "TRUE", "FALSE"}
    if formula_starts <= set(expected):
        return "a formula"
    if not names:
        return "something else"
    if len(names) > 6:
        names = [*names[:6], "…"]
    return ", ".join(names)


def _syntax_error(exc: UnexpectedInput, text: str, file: str | None) -> SpecError:
    line = getattr(exc, "line", None)
    col = getattr(exc, "column", None)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        msg = f"unexpected end of input; expected {_describe_expected(exc.expected)}"
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        msg = f"unexpected {tok.value!r}; expected {_describe_expected(exc.expected)}"
        if tok.type == "UOP" or tok.type == "TBIN":
            msg += f" ('{tok.value}' is an operator and cannot be used as a name)"
    elif isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        msg = f"unexpected character {ch!r}"
        if ch == "=":
            msg += " (use '<->' for iff, ':=' in let)"
        elif ch in "'`":
            msg += ' (strings use double quotes: "…")'
    else:  # pragma: no cover - other UnexpectedInput subclasses
        msg = str(exc).splitlines()[0]
    if line is not None and line < 1:
        line, col = None, None
    return SpecError(msg, file=file, line=line, column=col, source=text)


def _parse_tree(text: str, start: str, file: str | None) -> Tree:
    try:
        return _lark().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except LarkError as exc:  # pragma: no cover - defensive: every Lark failure becomes a SpecError
        raise SpecError(str(exc).splitlines()[0], file=file, source=text) from None
    except RecursionError:
        raise SpecError("input nested too deeply", file=file, line=1, column=1, source=text) from None


_DECL_START = re.compile(r"\s*(task|entity|let|constraint|reward)\b")
_DECL_NAME = re.compile(r"\s*(?:entity|let|constraint)\s+([A-Za-z_][A-Za-z0-9_]*)")


def _first_syntax_error(text: str, file: str | None) -> SpecError | None:
    """The syntax error Lark stops at in `text`, or None when it parses."""
    try:
        _lark().parse(text, start="start")
    except UnexpectedInput as exc:
        return _syntax_error(exc, text, file)
    except LarkError as exc:  # pragma: no cover - defensive: every Lark failure becomes a SpecError
        return SpecError(str(exc).splitlines()[0], file=file, source=text)
    except RecursionError:
        return SpecError("input nested too deeply", file=file, line=1, column=1, source=text)
    return None


def _declarations(lines: list[str]) -> list[tuple[int, int]]:
    """Line spans [a, b) of the declarations (each starts with its keyword on a new line), and of anything
    before the first."""
    starts = [i for i, line in enumerate(lines) if _DECL_START.match(line)]
    bounds = [0, *starts] if not starts or starts[0] > 0 else starts
    return list(zip(bounds, [*bounds[1:], len(lines)], strict=True))


def _parse_spec_tree(text: str, file: str | None) -> tuple[Tree | None, list[SpecError], set[str]]:
    """The spec's Lark tree, with each declaration that has a syntax error blanked out; those errors (each
    found by parsing its declaration alone, so it points into that declaration); and the names those
    declarations declared (so their uses are not reported again). The tree is None when nothing parses."""
    whole = _first_syntax_error(text, file)
    if whole is None:
        return _lark().parse(text, start="start"), [], set()
    lines = text.splitlines(keepends=True)
    kept, errors, broken = list(lines), [], set()
    for a, b in _declarations(lines):
        if not any(line.strip() for line in lines[a:b]):
            continue
        err = _first_syntax_error("\n" * a + "".join(lines[a:b]), file)
        if err is not None:
            errors.append(SpecError(err.message, file=file, line=err.line, column=err.column, source=text))
            kept[a:b] = ["\n"] * (b - a)
            if m := _DECL_NAME.match(lines[a]):
                broken.add(m.group(1))
    rest = "".join(kept)
    if not errors or _first_syntax_error(rest, file) is not None:  # declarations not on lines of their own
        return None, [whole], set()
    return _lark().parse(rest, start="start"), errors, broken


# ------------------------------------------------------------------------------------- tree → AST
def _unquote(s: str) -> str:
    body = s[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _number(tok: Token) -> float | int:
    text = str(tok)
    try:
        if all(ch.isdigit() or ch in "+-" for ch in text):
            return int(text)
        val = float(text)
    except ValueError:  # pragma: no cover - the lexer only yields valid numbers
        raise SpecError(f"bad number {text!r}") from None
    if not math.isfinite(val):
        raise _Located(f"number {text!r} is out of range", tok)
    return val


def _quantity(tok: Token) -> Quantity:
    """A number with a unit suffix (the lexer guarantees one of spec/units.py's)."""
    text = str(tok)
    unit = next(u for u in sorted(UNITS, key=len, reverse=True) if text.endswith(u))
    value = _number(Token("SIGNED", text[: -len(unit)], line=tok.line, column=tok.column))
    return Quantity(value, unit)


def _dim_problem(q: Quantity, dim: str, what: str) -> str | None:
    """Why unit-carrying `q` cannot be a value of dimension `dim` (None when it can)."""
    if dim in ("length", "speed"):
        if q.dim == dim:
            return None
        return f"{what} is a {dim}, but {q.canonical} is a {q.dim}"
    kind = {"fraction": "a fraction in [0, 1]", "count": "a frame count"}.get(dim, "unit-less")
    return f"{what} is {kind}; write it without a unit (got {q.canonical})"


class _Located(Exception):
    """Internal: an error message with the token/tree it points at (becomes a SpecError)."""

    def __init__(self, message: str, where) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class _Suppressed(Exception):
    """Internal: a use of something already reported (a macro or declaration with an error): no new error."""


def _pos(where) -> tuple[int | None, int | None]:
    if isinstance(where, Token):
        return where.line, where.column
    if isinstance(where, Tree):
        meta = where.meta
        if not getattr(meta, "empty", True):
            return meta.line, meta.column
        for child in where.children:
            if isinstance(child, (Token, Tree)):
                line, col = _pos(child)
                if line is not None:
                    return line, col
    return None, None


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    hits = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean {hits[0]!r}?" if hits else ""


class _Builder:
    """Turns one Lark tree into AST nodes. `entities` is None for bare formulas (no name checks).

    Errors in atoms, options and intervals are recorded in `errors` (the atom stands in as `true`) so the
    rest of the formula is still checked; `broken` names declarations that failed (their uses say nothing).
    """

    def __init__(self, entities: set[str] | None, macro_trees: dict[str, Tree] | None = None, *,
                 broken: set[str] = frozenset(), grounder: str | None = None) -> None:
        self.entities = entities
        self.macro_trees = macro_trees or {}
        self.macros: dict[str, Macro] = {}
        self.sizes: dict[str, int] = {}  # macro -> formula nodes of its expanded body
        self.failed: set[str] = set()  # macros whose body has an error that stops it
        self.broken = set(broken)
        self.grounder = grounder
        self.errors: list[_Located] = []
        self.suppressed = 0  # uses of failed declarations seen so far (a macro with one fails silently too)
        self._building: list[str] = []
        self.locations: dict[str, tuple[int, int]] = {}  # canonical atom -> (line, col) of its first use

    def locate(self, f: Formula, where) -> Formula:
        """Remember where the atoms of `f` are written (macro bodies: at the call), first use wins."""
        if self._building:  # inside a macro body: its atoms are located where the macro is used
            return f
        line, col = _pos(where)
        if line is not None:
            for a in atoms_of(f):
                self.locations.setdefault(a.canonical, (line, col or 1))
        return f

    # ---- macros
    def macro(self, name: str, where) -> Macro:
        if name in self.macros:
            return self.macros[name]
        if name in self.failed:
            raise _Suppressed
        if name in self._building:
            cycle = " -> ".join([*self._building[self._building.index(name):], name])
            raise _Located(f"macro recursion: {cycle}", where)
        tree = self.macro_trees[name]
        _, params_tree, body_tree = tree.children
        self._building.append(name)
        seen = self.suppressed
        try:
            params = self._params(name, params_tree)
            body, size = self.sized(body_tree, set(params))
        except _Located as exc:
            self.failed.add(name)
            self.errors.append(exc)
            raise _Suppressed from None
        finally:
            self._building.pop()
        if self.suppressed > seen:  # it uses a failed macro or declaration: its uses say nothing either
            self.failed.add(name)
            raise _Suppressed
        m = Macro(name, tuple(params), body)
        self.macros[name], self.sizes[name] = m, size
        return m

    @staticmethod
    def _params(name: str, params_tree: Tree | None) -> list[str]:
        params: list[str] = []
        for tok in params_tree.children if params_tree is not None else ():
            if tok is None:
                continue
            if str(tok) in params:
                raise _Located(f"parameter {str(tok)!r} repeated in macro {name!r}", tok)
            params.append(str(tok))
        return params

    # ---- formulas: one rule per grammar rule, looked up in _FORMULA_RULES
    def formula(self, t, params: set[str] = frozenset()) -> Formula:
        """The formula of tree `t` (see `sized`)."""
        return self.sized(t, params)[0]

    def sized(self, t, params: set[str] = frozenset()) -> tuple[Formula, int]:
        """The formula of tree `t` and its node count after macro expansion: its rule's interval first (errors
        in source order), then its operands. A formula over `MAX_NODES` nodes is an error here."""
        rule = _rule(t)
        if not rule.operands:
            return self._leaf(rule, t, params)
        interval = self._recorded(lambda: rule.interval(self, t), None) if rule.interval is not None else None
        operands: list[Formula] = []
        size = 1
        for i in rule.operands:  # a plain loop: one Python frame per nesting level, as deep as before
            f, n = self.sized(t.children[i], params)
            operands.append(f)
            size += n
        if size > MAX_NODES:
            raise _Located(f"this formula expands to more than {MAX_NODES} formula nodes after macro expansion "
                           f"(each use of a macro copies its body: a macro used twice in the macro it is "
                           f"used by doubles at every step)", t)
        return rule.build(self, t, operands, interval, params), size

    def _leaf(self, rule: _Rule, t: Tree, params: set[str]) -> tuple[Formula, int]:
        """An atom-like leaf (a macro use counts as its expanded body); an error in it is recorded and the leaf
        stands in as `true`, so the rest of the formula is still checked."""
        try:
            node = rule.build(self, t, [], None, params)
        except _Suppressed:
            self.suppressed += 1
            return Const(True), 1
        except _Located as exc:
            self.errors.append(exc)
            return Const(True), 1
        name = str(t.children[0]) if t.data == "call" else ""
        return node, self.sizes.get(name, 1) if name in self.macro_trees else 1

    def _recorded(self, fn: Callable[[], Interval | None], fallback: Interval | None) -> Interval | None:
        """fn(), or `fallback` with its error recorded."""
        try:
            return fn()
        except _Located as exc:
            self.errors.append(exc)
            return fallback

    def _unary_interval(self, t: Tree) -> Interval | None:
        op_tok, iv, _ = t.children
        return self.interval(iv, str(op_tok)) if iv is not None else None

    def _tbinary_interval(self, t: Tree) -> Interval | None:
        _, op_tok, iv, _ = t.children
        return self.interval(iv, str(op_tok)) if iv is not None else None

    def _compare(self, t: Tree, params: set[str]) -> Formula:
        left = self.term(t.children[0], params)
        right = self.term(t.children[2], params)
        if isinstance(left, Num) and isinstance(right, Num):
            raise _Located("a comparison needs at least one numeric function, e.g. dist(a, b) < 0.05", t)
        for num, other, tree in ((left, right, t.children[0]), (right, left, t.children[2])):
            info = PREDICATES.get(other.name) if isinstance(num, Num) and num.unit else None
            if info is not None and info.numeric:
                problem = _dim_problem(num.quantity, info.dim, f"{info.name}(…)")
                if problem is not None:
                    raise _Located(problem, tree)
        return self.locate(Compare(left, str(t.children[1]), right), t)

    def interval(self, t: Tree, op: str) -> Interval:
        if not Op(op).info.boundable:
            raise _Located(takes_no_interval(op), t)
        toks = [b.children[0] for b in t.children]
        units = {"s" if tok.type == "DURATION" else "f" for tok in toks}
        if len(units) > 1:
            raise _Located("bad interval: both bounds must be in frames or both in seconds", t)
        unit = units.pop()
        vals = []
        for tok in toks:
            text = str(tok)[:-1] if unit == "s" else str(tok)
            v = float(text)
            if not math.isfinite(v):
                raise _Located(f"bad interval: bound {str(tok)!r} is out of range", tok)
            if v < 0:
                raise _Located(f"bad interval: bound {tok!s} is negative", tok)
            if v > MAX_BOUND:
                raise _Located(f"bad interval: bound {tok!s} is too large (at most {MAX_BOUND} frames or seconds; "
                               "a window longer than the video is cut at its end anyway)", tok)
            if unit == "f":
                if not v.is_integer():
                    raise _Located(
                        f"bad interval: frame bound {tok!s} is not a whole number (write {tok!s}s for seconds)",
                        tok,
                    )
                v = int(v)
            vals.append(v)
        lo, hi = vals
        if lo > hi:
            raise _Located(f"bad interval: lower bound {lo} is greater than upper bound {hi}", t)
        return Interval(lo, hi, unit)

    def args(self, arglist: Tree | None, params: set[str], fname: str) -> tuple[tuple, tuple]:
        args: list = []
        kwargs: dict[str, object] = {}
        if arglist is None:
            return (), ()
        for a in arglist.children:
            if a.data == "kwarg":
                key_tok, val = a.children
                key = str(key_tok)
                if key in kwargs:
                    raise _Located(f"keyword {key!r} given twice in {fname}(…)", key_tok)
                kwargs[key] = self.scalar(val, params, allow_any_name=True)
            else:
                if kwargs:
                    raise _Located(f"positional argument after keyword arguments in {fname}(…)", a)
                args.append(self.scalar(a, params))
        return tuple(args), tuple(sorted(kwargs.items()))

    def scalar(self, t: Tree, params: set[str], allow_any_name: bool = False):
        if t.data == "signed_number":
            return _number(t.children[0])
        if t.data == "quantity":
            return _quantity(t.children[0])
        tok = t.children[0]  # arg_name
        name = str(tok)
        if not allow_any_name and self.entities is not None and name not in self.entities and name not in params:
            if name in self.broken:
                raise _Suppressed
            known = sorted(self.entities | set(params))
            hint = _did_you_mean(name, known)
            listing = f" (entities: {', '.join(known)})" if known and not hint else ""
            raise _Located(f"unknown entity {name!r}{hint}{listing}", tok)
        return name

    def term(self, t: Tree, params: set[str]):
        if t.data == "signed_number":
            return Num(_number(t.children[0]))
        if t.data == "quantity":
            q = _quantity(t.children[0])
            return Num(q.value, q.unit)
        name_tok, arglist = t.children
        name = str(name_tok)
        args, kwargs = self.args(arglist, params, name)
        if self.entities is not None:
            info = PREDICATES.get(name)
            if info is None or not info.numeric:
                if info is not None:
                    raise _Located(f"{name} is a predicate, not a numeric function; use it as a formula", name_tok)
                hint = suggest(name, numeric=True)
                numeric = ", ".join(n for n, p in PREDICATES.items() if p.numeric)
                msg = f"unknown numeric function {name!r}"
                msg += f"; did you mean {hint!r}?" if hint else f" (available: {numeric})"
                raise _Located(msg, name_tok)
            self.check_signature(info, args, kwargs, name_tok, arglist)
        return Call(name, args, kwargs)

    def check_signature(self, info, args, kwargs, where, arglist: Tree | None = None) -> None:
        """Arity, option names and option values (the ranges the predicate catalogue gives) of a call."""
        if len(args) != len(info.params):
            raise _Located(
                f"{info.name} takes {len(info.params)} argument(s) ({info.signature()}), got {len(args)}", where
            )
        key_toks = {str(a.children[0]): a.children[0] for a in (arglist.children if arglist else ()) if
                    a.data == "kwarg"}
        for key, _ in kwargs:
            if key not in info.option_names:
                allowed = ", ".join(info.option_names) or "none"
                raise _Located(f"unknown option {key!r} for {info.name} (options: {allowed})", where)
        for key, val in kwargs:
            if isinstance(val, str):
                raise _Located(f"option {key} of {info.name} must be a number, got {val!r}", where)
            if isinstance(val, Quantity):
                problem = _dim_problem(val, OPTION_DIMS.get(key, ""), f"option {key} of {info.name}")
                if problem is not None:
                    raise _Located(problem, key_toks.get(key, where))
            if (problem := info.option_problem(key, val.value if isinstance(val, Quantity) else val)) is not None:
                raise _Located(problem, key_toks.get(key, where))

    def atom(self, t: Tree, params: set[str]) -> Formula:
        name_tok, arglist = t.children
        name = str(name_tok)
        has_parens = arglist is not None or self._has_parens(t)
        if self.entities is None:
            args, kwargs = self.args(arglist, params, name)
            return Atom(Call(name, args, kwargs))
        if name in self.macro_trees:
            macro = self.macro(name, name_tok)
            args, kwargs = self.args(arglist, params, name)
            if kwargs:
                raise _Located(f"macro {name} takes no keyword arguments", name_tok)
            if len(args) != len(macro.params):
                raise _Located(f"macro {name} takes {len(macro.params)} argument(s), got {len(args)}", name_tok)
            return self.locate(substitute(macro.body, dict(zip(macro.params, args, strict=False))), name_tok)
        info = PREDICATES.get(name)
        if info is None:
            if name in self.broken:
                raise _Suppressed
            if not has_parens:
                if name in self.entities or name in params:
                    raise _Located(
                        f"entity {name!r} used as a formula; did you mean visible({name})?", name_tok
                    )
                self.check_answerable("atoms", f"proposition {name!r}", name_tok)
                return self.locate(Atom(Call(name)), name_tok)  # a user proposition (signals or a named atom)
            hint = suggest(name, numeric=False)
            msg = f"unknown predicate {name!r}"
            msg += f"; did you mean {hint!r}?" if hint else " (see `ltlreward predicates` for the library)"
            raise _Located(msg, name_tok)
        if info.numeric:
            raise _Located(f"{name} is a numeric function; compare it, e.g. {name}(…) < 0.1", name_tok)
        args, kwargs = self.args(arglist, params, name)
        self.check_signature(info, args, kwargs, name_tok, arglist)
        return self.locate(Atom(Call(name, args, kwargs)), name_tok)

    def quoted(self, t: Tree) -> Formula:
        """A quoted atom, when the chosen grounder (if any) answers free text."""
        self.check_answerable("quoted", "quoted atoms", t)
        return self.locate(Quoted(_unquote(str(t.children[0]))), t)

    def check_answerable(self, what: str, phrase: str, where) -> None:
        """With a grounder named, an error when it cannot answer `what` ("quoted" atoms, named "atoms")."""
        if self.grounder is None or self.grounder == "auto":
            return
        from ..grounding.registry import answers

        problem = answers(self.grounder, what)
        if problem is not None:
            raise _Located(f"grounder {self.grounder!r} cannot answer {phrase}{problem}", where)

    @staticmethod
    def _has_parens(t: Tree) -> bool:
        end = getattr(t.meta, "end_pos", None)
        start = getattr(t.meta, "start_pos", None)
        name_tok = t.children[0]
        return start is not None and end is not None and end - start > len(str(name_tok))


@dataclass(frozen=True)
class _Rule:
    """How one formula rule of the grammar builds its node: which children are operand formulas, the
    interval (parsed before the operands, so errors come in source order), and the node from the operands."""

    operands: tuple[int, ...]
    build: Callable[[_Builder, Tree, list[Formula], Interval | None, set[str]], Formula]
    interval: Callable[[_Builder, Tree], Interval | None] | None = None


_BOOL_RULES = {"and_": Op.AND, "or_": Op.OR, "implies": Op.IMPLIES, "iff": Op.IFF}  # grammar rule -> operator
_FORMULA_RULES = {
    "true": _Rule((), lambda b, t, xs, iv, params: Const(True)),
    "false": _Rule((), lambda b, t, xs, iv, params: Const(False)),
    "quoted": _Rule((), lambda b, t, xs, iv, params: b.quoted(t)),
    "not_": _Rule((0,), lambda b, t, xs, iv, params: Unary(Op.NOT, xs[0])),
    "unary_op": _Rule((2,), lambda b, t, xs, iv, params: Unary(str(t.children[0]), xs[0], iv),
                      _Builder._unary_interval),
    **dict.fromkeys(_BOOL_RULES, _Rule((0, 1), lambda b, t, xs, iv, params: Binary(_BOOL_RULES[t.data], *xs))),
    "tbinary": _Rule((0, 3), lambda b, t, xs, iv, params: Binary(str(t.children[1]), *xs, iv),
                     _Builder._tbinary_interval),
    "compare": _Rule((), lambda b, t, xs, iv, params: b._compare(t, params)),
    "call": _Rule((), lambda b, t, xs, iv, params: b.atom(t, params)),
}


def _rule(t) -> _Rule:
    if isinstance(t, Token):  # pragma: no cover - the grammar wraps every leaf
        raise _Located(f"unexpected {t!s}", t)
    rule = _FORMULA_RULES.get(t.data)
    if rule is None:  # pragma: no cover - every formula rule of the grammar is in the table
        raise _Located(f"unexpected construct {t.data}", t)
    return rule


def _locate(exc: _Located, text: str, file: str | None) -> SpecError:
    line, col = _pos(exc.where)
    return SpecError(exc.message, file=file, line=line, column=col, source=text)


# ---------------------------------------------------------------------------------------- public
def parse_formula(text: str, *, file: str | None = None) -> Formula:
    """Parse a bare formula (no spec context: any predicate or proposition name is accepted)."""
    if not isinstance(text, str):
        raise TypeError("parse_formula expects a str")
    tree = _parse_tree(text, "formula_only", file)
    builder = _Builder(None)
    try:
        formula = builder.formula(tree.children[0])
    except _Located as exc:
        raise _locate(exc, text, file) from None
    except RecursionError:
        raise SpecError("formula nested too deeply", file=file, line=1, column=1, source=text) from None
    if builder.errors:
        raise _combined([_locate(exc, text, file) for exc in builder.errors])
    return formula


def parse_spec(text: str, *, path: str | Path | None = None, grounder: str | None = None) -> TaskSpec:
    """Parse and validate a spec file's text. Errors name `path`:line:col; several are one `SpecErrors`.

    `grounder`: also check entity hints and quoted atoms against that grounder ("auto": the hint values
    any registered grounder reads; None: no grounder checks)."""
    if not isinstance(text, str):
        raise TypeError("parse_spec expects a str")
    file = str(path) if path is not None else None
    tree, errors, broken = _parse_spec_tree(text, file)
    spec = None
    if tree is not None:
        try:
            spec, located = _build_spec(tree, file, broken, grounder)
        except RecursionError:
            located = []
            errors.append(SpecError("spec nested too deeply", file=file, line=1, column=1, source=text))
        errors += [_locate(exc, text, file) for exc in located]
    if errors:
        raise _combined(errors)
    assert spec is not None
    return spec


def _combined(errors: list[SpecError]) -> SpecError:
    """One SpecError, or a SpecErrors of several in source order (each place and message once)."""
    unique = {(e.line or 0, e.column or 0, e.message): e for e in errors}
    ordered = [unique[k] for k in sorted(unique, key=lambda k: (k[0], k[1]))]
    return ordered[0] if len(ordered) == 1 else SpecErrors(ordered)


def load_spec(path: str | Path, *, grounder: str | None = None) -> TaskSpec:
    """Read and parse a .ltl file (`grounder`: see `parse_spec`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such spec file", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file: {exc}", file=str(p)) from None
    return parse_spec(text, path=p, grounder=grounder)


@dataclass
class _Declarations:
    """Pass 1 of a spec: everything but the constraints, so the order of declarations does not matter.
    Errors are collected in `errors`; a declaration that has one puts its name in `broken`."""

    grounder: str | None = None
    entities: dict[str, Entity] = field(default_factory=dict)
    macro_trees: dict[str, Tree] = field(default_factory=dict)
    task: str | None = None
    reward: str | None = None
    errors: list[_Located] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)

    def add(self, it: Tree) -> None:
        """Record one declaration (its error, if any, in `errors`)."""
        try:
            self._add(it)
        except _Located as exc:
            self.errors.append(exc)
            if it.data in ("entity_decl", "region_decl", "let_decl"):
                self.broken.add(str(it.children[0]))

    def _add(self, it: Tree) -> None:
        if it.data in ("entity_decl", "region_decl"):
            entity = _entity(it, self.grounder, self.errors)
            if entity.name in self.entities:
                raise _Located(f"duplicate entity {entity.name!r}", it.children[0])
            self.entities[entity.name] = entity
        elif it.data == "let_decl":
            name_tok = it.children[0]
            if str(name_tok) in self.macro_trees:
                raise _Located(f"duplicate macro {str(name_tok)!r}", name_tok)
            if str(name_tok) in PREDICATES:
                raise _Located(f"macro {str(name_tok)!r} would shadow the library predicate of that name", name_tok)
            self.macro_trees[str(name_tok)] = it
        elif it.data == "task_decl":
            if self.task is not None:
                raise _Located("task declared twice", it)
            self.task = _unquote(str(it.children[0]))
        elif it.data == "reward_decl":
            self.set_reward(it)

    def set_reward(self, it: Tree) -> None:
        if self.reward is not None:
            raise _Located("reward declared twice", it)
        self.reward = str(it.children[0])
        if self.reward not in REWARD_MODES:
            raise _Located(
                f"unknown reward mode {self.reward!r}{_did_you_mean(self.reward, REWARD_MODES)} "
                f"(modes: {', '.join(REWARD_MODES)})",
                it.children[0],
            )


def _build_spec(tree: Tree, file: str | None, broken: set[str] = frozenset(),
                grounder: str | None = None) -> tuple[TaskSpec | None, list[_Located]]:
    """The TaskSpec of a parsed tree and every error found building it (the spec is None when there are any)."""
    items = tree.children
    decls = _Declarations(grounder)
    for it in items:
        decls.add(it)
    for name, it in decls.macro_trees.items():
        if name in decls.entities:
            decls.errors.append(_Located(f"macro {name!r} has the same name as an entity", it.children[0]))
    builder = _Builder(set(decls.entities) | decls.broken, decls.macro_trees, broken=set(broken) | decls.broken,
                       grounder=grounder)
    for name, it in decls.macro_trees.items():
        try:
            builder.macro(name, it.children[0])
        except _Suppressed:
            pass
        except _Located as exc:
            builder.errors.append(exc)
    constraints = _constraints(items, builder)
    errors = [*decls.errors, *builder.errors]
    if errors:
        return None, errors
    spec = TaskSpec(
        task=decls.task or "",
        entities=tuple(decls.entities.values()),
        macros=tuple(builder.macros[n] for n in decls.macro_trees if n in builder.macros),  # others: errors
        constraints=tuple(constraints.values()),
        reward=decls.reward or "weighted_mean",
        path=file,
        locations=dict(builder.locations),
    )
    return spec, []


def _constraints(items: list[Tree], builder: _Builder) -> dict[str, Constraint]:
    """Pass 2: every constraint (errors in `builder.errors`), within `MAX_NODES` formula nodes in all."""
    constraints: dict[str, Constraint] = {}
    total = 0
    for it in items:
        if it.data != "constraint_decl":
            continue
        name_tok = it.children[0]
        try:
            if str(name_tok) in constraints:
                raise _Located(f"duplicate constraint {str(name_tok)!r}", name_tok)
            constraint, size = _constraint(it, builder)
            total += size
            if total > MAX_NODES:
                raise _Located(f"the spec expands to more than {MAX_NODES} formula nodes after macro expansion "
                               f"(constraints up to this one)", name_tok)
            constraints[str(name_tok)] = constraint
        except _Located as exc:
            builder.errors.append(exc)
        except _Suppressed:
            pass
    return constraints


def _constraint(it: Tree, builder: _Builder) -> tuple[Constraint, int]:
    name_tok, options, desc_tok, body = it.children
    weight = 1.0
    if options is not None:
        for opt in options.children:
            key_tok, num = opt.children
            if str(key_tok) != "weight":
                raise _Located(f"unknown constraint option {str(key_tok)!r} (options: weight)", key_tok)
            weight = float(_number(num.children[0]))
            if not weight > 0:
                raise _Located(f"weight must be > 0, got {num.children[0]!s}", num.children[0])
    description = _unquote(str(desc_tok)) if desc_tok is not None else ""
    formula, size = builder.sized(body)
    return Constraint(str(name_tok), formula, description, weight), size


def _hint_number(t: Tree):
    return _quantity(t.children[0]) if t.data == "quantity" else _number(t.children[0])


def _entity(t: Tree, grounder: str | None = None, errors: list[_Located] | None = None) -> Entity:
    """The entity of a declaration; with `grounder`, what that grounder cannot use in its hints goes to
    `errors` (located at the hint, or at the name when the entity lacks one the grounder needs)."""
    if t.data == "region_decl":  # entity NAME = region box=(…) | center=(…) size=(…)
        name_tok, *hint_trees = t.children
        prompt, kind, kind_tok = "", "region", name_tok
    else:
        name_tok, prompt_tok, kind_tok, *hint_trees = t.children
        prompt, kind = _unquote(str(prompt_tok)), str(kind_tok) if kind_tok is not None else "object"
    if kind not in ENTITY_KINDS:
        raise _Located(
            f"unknown entity kind {kind!r}{_did_you_mean(kind, ENTITY_KINDS)} (kinds: {', '.join(ENTITY_KINDS)})",
            kind_tok,
        )
    hints: dict[str, object] = {}
    key_toks: dict[str, Token] = {}
    for h in hint_trees:
        key_tok, val = h.children
        if str(key_tok) in hints:
            raise _Located(f"hint {str(key_tok)!r} given twice", key_tok)
        hints[str(key_tok)], key_toks[str(key_tok)] = _hint_value(val), key_tok
    _check_geometry(hints, kind, t, hint_trees)
    entity = Entity(str(name_tok), prompt, kind, tuple(hints.items()))
    if grounder is not None and errors is not None:
        from ..grounding.registry import entity_problems

        errors += [_Located(msg, key_toks.get(key, name_tok) if key else name_tok)
                   for key, msg in entity_problems(entity, grounder)]
    return entity


def _hint_value(val: Tree) -> object:
    if val.data == "hint_name":
        return str(val.children[0])
    if val.data == "hint_string":
        return _unquote(str(val.children[0]))
    if val.data == "hint_tuple":
        return tuple(_hint_number(n) for n in val.children)
    return _hint_number(val)


_GEOMETRY = {"box": (4, ("px",)), "center": (3, ("m", "cm", "mm")), "size": (3, ("m", "cm", "mm"))}


def _check_geometry(hints: dict[str, object], kind: str, t: Tree, hint_trees: list) -> None:
    """A static region's hints: box=(x0, y0, x1, y1) in pixels, or center=(x, y, z) [size=(sx, sy, sz)] in
    metres; box and center only on region entities (size is a free hint elsewhere); a bare
    `entity NAME = region` needs one of them."""
    where = {str(h.children[0]): h for h in hint_trees}
    if kind != "region":
        for key in ("box", "center"):
            if key in hints:
                raise _Located(f"{key}= gives a static region's geometry; declare the entity ': region'", where[key])
        return
    for key, (n, units) in _GEOMETRY.items():
        if key not in hints:
            continue
        v = hints[key]
        if not (isinstance(v, tuple) and len(v) == n):
            raise _Located(f"{key}= takes {n} numbers in brackets, e.g. {key}=({', '.join(['0'] * n)})", where[key])
        bad = [x for x in v if isinstance(x, Quantity) and x.unit not in units]
        if bad:
            raise _Located(f"{key}= is in {' or '.join(units)} (or bare), got {bad[0].canonical}", where[key])
    if "box" in hints and ("center" in hints or "size" in hints):
        raise _Located("a region is either box=(…) in pixels or center=(…) size=(…) in metres, not both", t)
    if "size" in hints and "center" not in hints:
        raise _Located("size=(…) needs center=(…)", where["size"])
    box = hints.get("box")
    if box is not None:
        x0, y0, x1, y1 = (float(getattr(x, "value", x)) for x in box)
        if x1 <= x0 or y1 <= y0:
            raise _Located(f"box=(x0, y0, x1, y1) needs x0 < x1 and y0 < y1, got {box}", where["box"])
    if any(float(getattr(x, "value", x)) < 0 for x in hints.get("size", ())):
        raise _Located("size=(…) must be non-negative", where["size"])
    if t.data == "region_decl" and "box" not in hints and "center" not in hints:
        raise _Located("'entity NAME = region' needs its geometry: box=(x0, y0, x1, y1) or center=(x, y, z)", t)


def validate_spec(spec: TaskSpec) -> TaskSpec:
    """Check a spec built in code (e.g. by the NL compiler) by printing and re-parsing it.

    Returns the re-parsed spec; raises SpecError (located in the printed text) when it is invalid.
    """
    return parse_spec(format_spec(spec), path=spec.path or "<generated>")
