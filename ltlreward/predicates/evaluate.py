"""Evaluation of atoms on one video: each `Atom`, `Compare` or `Quoted` node of a formula → its robustness
signal (T,) float32 in [-1, 1] and the entities that support it.

An atom's call is checked against the catalogue (name, kind, arity, options), its options resolved (the
catalogue default, then `PredicateOptions.defaults`, then the atom's own keywords), its semantics picked
(`Context.space`) and its registered function run; `_finish` turns unknown frames (NaN) into -1, caps a gated
atom by the visibility margin of each entity it names — so an atom about an unseen entity is negative and its
negation positive ("not near" holds while an entity is out of sight) — and median-filters the signal over
`smooth` frames (default 3, edges repeated; 0 or 1 disables). A comparison `f(…) < c` squashes the margin by
the largest comparison scale of the functions in it; a quoted atom or bare proposition reads a probability
track p from the observations' atoms as 2p − 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import CapabilityError, GroundingError
from ..grounding.observations import Observations
from ..spec.ast import Atom, Call, Compare, Num, Quoted
from .catalog import PREDICATE_FUNCS, PREDICATES, PredicateInfo
from .context import Context, PredicateOptions
from .robustness import median_smooth, squash


def compute_signals_impl(
    atoms: Sequence[Atom | Compare | Quoted], obs: Observations, grounder: str, options: PredicateOptions
) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    """Robustness (T,) float32 and supporting entities of every distinct atom, keyed by canonical string."""
    ctx = Context(obs, options, grounder)
    if ctx.T < 1:
        raise GroundingError(f"observations from grounder {ctx.grounder!r} have no frames")
    values: dict[str, np.ndarray] = {}
    support: dict[str, tuple[str, ...]] = {}
    for node in atoms:
        key = node.canonical
        if key in values:
            continue
        signal = _SIGNALS.get(type(node))
        if signal is None:
            raise TypeError(f"not an atom: {node!r}")
        values[key], support[key] = signal(ctx, node)
    return values, support


def _check_call(call: Call, what: str, numeric: bool) -> PredicateInfo:
    """The catalogue entry of `call`, after checking its kind, arity, arguments and options."""
    info = PREDICATES.get(call.name)
    if info is None:
        kind = "numeric function" if numeric else "predicate"
        known = ", ".join(n for n, p in PREDICATES.items() if p.numeric == numeric)
        raise CapabilityError(f"unknown {kind} {call.name!r} in {what} (known: {known})")
    if info.numeric != numeric:
        if numeric:
            raise CapabilityError(f"{call.name} is a predicate, not a numeric function, in {what}")
        raise CapabilityError(
            f"{call.name} is a numeric function; compare it, e.g. {call.name}(…) < 0.1 ({what})"
        )
    if len(call.args) != len(info.params):
        raise CapabilityError(
            f"{info.name} takes {len(info.params)} argument(s) ({info.signature()}), "
            f"got {len(call.args)} in {what}"
        )
    for a in call.args:
        if not isinstance(a, str):
            raise CapabilityError(f"{what}: arguments of {info.name} must be entity names, got {a!r}")
    for k, v in call.kwargs:
        if k not in info.option_names:
            allowed = ", ".join(info.option_names) or "none"
            raise CapabilityError(f"unknown option {k!r} for {info.name} in {what} (options: {allowed})")
        if (problem := info.option_problem(k, v)) is not None:
            raise CapabilityError(f"{problem} in {what}")
    return info


def _resolve_options(ctx: Context, info: PredicateInfo, call: Call) -> dict[str, float]:
    """Catalogue defaults, overridden by PredicateOptions.defaults, overridden by the atom's keywords."""
    opts = {k: float(v) for k, v in info.options}
    opts.update({k: float(v) for k, v in ctx.opts.defaults.get(info.name, {}).items()})
    opts.update({k: float(v) for k, v in call.kwargs})
    return opts


def _finish(ctx: Context, r: np.ndarray, gates: Sequence[np.ndarray]) -> np.ndarray:
    """Unknown → -1, cap by visibility margins, median-smooth, clip, float32 (T,)."""
    r = np.where(np.isnan(r), -1.0, r)
    for g in gates:
        r = np.minimum(r, g)
    r = median_smooth(r, ctx.opts.smooth)
    return np.clip(r, -1.0, 1.0).astype(np.float32)


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _named_signal(ctx: Context, key: str, what: str, fix: str) -> np.ndarray:
    """2p − 1 of the observations' probability track `key` (T,)."""
    p = ctx.obs.atoms.get(key)
    if p is None:
        have = ", ".join(repr(k) for k in ctx.obs.atoms) or "none"
        raise ctx.fail(what, f"its observations have no signal {key!r} (it answers: {have})", fix)
    p = ctx.frames(p, f"atoms[{key!r}]").astype(np.float64)
    return np.clip(2.0 * p - 1.0, -1.0, 1.0)


def _quoted_signal(ctx: Context, node: Quoted) -> tuple[np.ndarray, tuple[str, ...]]:
    fix = (f'use a grounder that answers free text (--grounder vlm), or give the sidecar/observations '
           f'atoms["{node.text}"]')
    return _finish(ctx, _named_signal(ctx, node.text, node.canonical, fix), ()), ()


def _atom_signal(ctx: Context, node: Atom) -> tuple[np.ndarray, tuple[str, ...]]:
    """A predicate call, or a bare proposition the library does not define (read from the atoms)."""
    call = node.call
    what = call.canonical
    if not call.args and not call.kwargs and call.name not in PREDICATES:
        fix = (f"give the sidecar/observations an atoms.{call.name} probability track, "
               f'or use a vlm grounder with a quoted atom such as "{call.name}"')
        return _finish(ctx, _named_signal(ctx, call.name, what, fix), ()), ()
    info = _check_call(call, what, numeric=False)
    ents = call.identifiers
    sp = ctx.space(info, ents, what)
    raw = PREDICATE_FUNCS.get(info.name)(ctx, sp, ents, _resolve_options(ctx, info, call))
    gates = [ctx.gate(e, sp) for e in ents] if info.gated else []
    return _finish(ctx, raw, gates), _unique(ents)


def _compare_signal(ctx: Context, node: Compare) -> tuple[np.ndarray, tuple[str, ...]]:
    """r = (rhs − lhs) / scale for < and <=, (lhs − rhs) / scale for > and >=, with the largest scale."""
    what = node.canonical
    vals, scales, gates, ents = [], [], [], []
    for term in (node.left, node.right):
        if isinstance(term, Num):
            vals.append(np.full(ctx.T, float(term.value)))
            continue
        info = _check_call(term, what, numeric=True)
        sp = ctx.space(info, term.identifiers, what)
        vals.append(PREDICATE_FUNCS.get(info.name)(ctx, sp, term.identifiers, {}))
        scales.append(ctx.opts.compare_scales.get(info.name, info.scale))
        gates += [ctx.gate(e, sp) for e in term.identifiers] if info.gated else []
        ents += term.identifiers
    scale = max(scales) if scales else 1.0
    lhs, rhs = vals
    margin = rhs - lhs if node.op in ("<", "<=") else lhs - rhs
    if node.op not in ("<", "<=", ">", ">="):
        raise CapabilityError(f"unknown comparison operator {node.op!r} in {what}")
    return _finish(ctx, squash(margin, scale), gates), _unique(ents)


_SIGNALS = {Quoted: _quoted_signal, Atom: _atom_signal, Compare: _compare_signal}
