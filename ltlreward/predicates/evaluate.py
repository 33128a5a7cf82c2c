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

Units (spec/units.py): an atom whose constants carry metres is judged in a metric space (3-D or 2.5-D),
one whose constants carry pixels in the image (`Context.space`); a constant is converted to what the
predicate reads — metres, or fractions of the image diagonal / width / height for the image. A metre
constant on an atom only the image can judge raises a SpecError located at the atom in the spec file
(`Evaluation.fail_metric`), or, with `PredicateOptions.allow_2d`, is read as a bare number with a warning
naming the atom. Each atom's space is recorded (`spaces`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import CapabilityError, GroundingError, SpecError
from ..grounding.observations import Observations
from ..spec.ast import Atom, Call, Compare, Num, Quoted, TaskSpec
from ..spec.units import Quantity
from ..spec.walk import atom_units
from .catalog import FRACTION_OPTIONS, PREDICATE_FUNCS, PREDICATES, PredicateInfo
from .context import SPACE_NAMES, Context, PredicateOptions
from .robustness import median_smooth, squash


@dataclass
class Evaluation:
    """What evaluating a video's atoms produced: signals, supporting entities, the space each atom was judged
    in ("3d", "2.5d", "image", or "signal" for quoted atoms and propositions) and warnings."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    support: dict[str, tuple[str, ...]] = field(default_factory=dict)
    spaces: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def compute_signals_impl(
    atoms: Sequence[Atom | Compare | Quoted], obs: Observations, grounder: str, options: PredicateOptions,
    spec: TaskSpec | None = None,
) -> Evaluation:
    """Robustness (T,) float32, supporting entities and space of every distinct atom, by canonical string;
    `spec` gives the entities' kinds and where each atom is written (for located errors)."""
    kinds = {e.name: e.kind for e in spec.entities} if spec is not None else {}
    ctx = Context(obs, options, grounder, kinds)
    if ctx.T < 1:
        raise GroundingError(f"observations from grounder {ctx.grounder!r} have no frames")
    ev = Evaluation()
    for node in atoms:
        key = node.canonical
        if key in ev.values:
            continue
        signal = _SIGNALS.get(type(node))
        if signal is None:
            raise TypeError(f"not an atom: {node!r}")
        ev.values[key], ev.support[key], sp = signal(ctx, node, _Units(ctx, node, spec, ev.warnings))
        ev.spaces[key] = SPACE_NAMES.get(sp, sp)
    return ev


class _Units:
    """The unit requirement of one atom and the conversion of its constants (see the module docstring)."""

    def __init__(self, ctx: Context, node, spec: TaskSpec | None, warnings: list[str]) -> None:
        self.ctx, self.node, self.spec, self.warnings = ctx, node, spec, warnings
        units = atom_units(node)
        self.metric = [q for q in units if q.metric]
        self.pixel = [q for q in units if not q.metric]
        if self.metric and self.pixel:
            raise self.located(f"{node.canonical} mixes metres ({self.metric[0]}) and pixels ({self.pixel[0]})")

    @property
    def want(self) -> str:
        return "metric" if self.metric else "image" if self.pixel else ""

    def located(self, message: str) -> SpecError:
        spec = self.spec
        line, col = spec.where(self.node.canonical) if spec is not None else (None, None)
        return SpecError(message, file=spec.path if spec is not None else None, line=line, column=col)

    def space(self, info: PredicateInfo, ents: Sequence[str], what: str) -> str:
        """The atom's space; a metre constant in the image fails (or, with allow_2d, warns)."""
        sp = self.ctx.space(info, ents, what, self.want)
        if sp == "2d" and self.metric:
            why = (f"{what} has a constant in metres ({self.metric[0]}) but grounder {self.ctx.grounder!r} can only "
                   "judge it in the image (no 3-D positions, and no camera with masks or boxes for 2.5-D)")
            if not self.ctx.opts.allow_2d:
                raise self.located(f"{why}; give the observations a camera (2.5-D) or positions (3-D), write the "
                                   "constant in px, or pass --allow-2d to judge it in the image")
            self.warnings.append(f"{why}: judged in the image with {self.metric[0]} read as "
                                 f"{self.metric[0].value:g} of the image (--allow-2d)")
        return sp

    def value(self, v, sp: str, image_unit: str = "diag") -> float:
        """A constant in what the predicate reads in space `sp`: metres (SI) in 3-D / 2.5-D; in the image a
        bare number as it is (a fraction), pixels over the image length `image_unit`, metres (--allow-2d) bare."""
        if not isinstance(v, Quantity):
            return float(v)
        if sp != "2d" or v.metric:
            return v.base if sp != "2d" else float(v.value)
        ctx = self.ctx
        return v.base / {"diag": ctx.diag, "W": ctx.W, "H": ctx.H, "WH": ctx.W * ctx.H}[image_unit or "diag"]


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
        if isinstance(v, Quantity) and k in FRACTION_OPTIONS:
            raise CapabilityError(f"option {k} of {info.name} is a fraction in [0, 1], got {v!r} in {what}")
        if (problem := info.option_problem(k, v.value if isinstance(v, Quantity) else v)) is not None:
            raise CapabilityError(f"{problem} in {what}")
    return info


def _resolve_options(ctx: Context, info: PredicateInfo, call: Call, units: _Units, sp: str) -> dict[str, float]:
    """Catalogue defaults, overridden by PredicateOptions.defaults, overridden by the atom's keywords (their
    units converted to what the predicate reads in space `sp`)."""
    opts = {k: float(v) for k, v in info.options}
    opts.update({k: float(v) for k, v in ctx.opts.defaults.get(info.name, {}).items()})
    opts.update({k: units.value(v, sp) for k, v in call.kwargs})
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


Signal = tuple[np.ndarray, tuple[str, ...], str]  # (T,) robustness, supporting entities, space


def _quoted_signal(ctx: Context, node: Quoted, units: _Units) -> Signal:
    fix = (f'use a grounder that answers free text (--grounder vlm), or give the sidecar/observations '
           f'atoms["{node.text}"]')
    return _finish(ctx, _named_signal(ctx, node.text, node.canonical, fix), ()), (), "signal"


def _atom_signal(ctx: Context, node: Atom, units: _Units) -> Signal:
    """A predicate call, or a bare proposition the library does not define (read from the atoms)."""
    call = node.call
    what = call.canonical
    if not call.args and not call.kwargs and call.name not in PREDICATES:
        fix = (f"give the sidecar/observations an atoms.{call.name} probability track, "
               f'or use a vlm grounder with a quoted atom such as "{call.name}"')
        return _finish(ctx, _named_signal(ctx, call.name, what, fix), ()), (), "signal"
    info = _check_call(call, what, numeric=False)
    ents = call.identifiers
    sp = units.space(info, ents, what)
    raw = PREDICATE_FUNCS.get(info.name)(ctx, sp, ents, _resolve_options(ctx, info, call, units, sp))
    gates = [ctx.gate(e, sp) for e in ents] if info.gated else []
    return _finish(ctx, raw, gates), _unique(ents), sp


def _compare_signal(ctx: Context, node: Compare, units: _Units) -> Signal:
    """r = (rhs − lhs) / scale for < and <=, (lhs − rhs) / scale for > and >=, with the largest scale; the
    atom's one space is that of its functions (the first decides, so both sides share units)."""
    what = node.canonical
    vals, scales, gates, ents, sp = [], [], [], [], ""
    funcs = [t for t in (node.left, node.right) if not isinstance(t, Num)]
    unit_of = _check_call(funcs[0], what, numeric=True) if funcs else None
    for term in (node.left, node.right):
        if isinstance(term, Num):
            vals.append(None)
            continue
        info = _check_call(term, what, numeric=True)
        sp = sp or units.space(info, [e for f in funcs for e in f.identifiers], what)
        vals.append(PREDICATE_FUNCS.get(info.name)(ctx, sp, term.identifiers, {}))
        scales.append(ctx.opts.compare_scales.get(info.name, info.scale))
        gates += [ctx.gate(e, sp) for e in term.identifiers] if info.gated else []
        ents += term.identifiers
    for i, term in enumerate((node.left, node.right)):
        if isinstance(term, Num):
            vals[i] = np.full(ctx.T, units.value(term.quantity, sp, unit_of.image_unit if unit_of else ""))
    scale = max(scales) if scales else 1.0
    lhs, rhs = vals
    margin = rhs - lhs if node.op in ("<", "<=") else lhs - rhs
    if node.op not in ("<", "<=", ">", ">="):
        raise CapabilityError(f"unknown comparison operator {node.op!r} in {what}")
    return _finish(ctx, squash(margin, scale), gates), _unique(ents), sp


_SIGNALS = {Quoted: _quoted_signal, Atom: _atom_signal, Compare: _compare_signal}
