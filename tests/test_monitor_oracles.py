"""Differential tests against independent monitors: rtamt (robustness) and flloat (Boolean LTLf)."""

from __future__ import annotations

import numpy as np
import pytest
from formulas import ATOMS, random_formula, random_signals

from ltlreward import evaluate
from ltlreward.spec.ast import Atom, Const, Formula, Unary

rtamt = pytest.importorskip("rtamt")


def to_rtamt(f: Formula) -> str:
    """Our syntax → rtamt's discrete-time STL (its `next` is weak, `sX` strong; prev is weak)."""
    if isinstance(f, Atom):
        return f.canonical
    if isinstance(f, Unary):
        c = to_rtamt(f.child)
        iv = f"[{int(f.interval.lo)}:{int(f.interval.hi)}]" if f.interval else ""
        return {
            "!": f"(not {c})", "X": f"(sX {c})", "WX": f"(next {c})", "Y": f"(not (prev (not {c})))",
            "F": f"(eventually{iv} {c})", "G": f"(always{iv} {c})", "O": f"(once{iv} {c})",
            "H": f"(historically{iv} {c})",
        }[f.op]
    l, r = to_rtamt(f.left), to_rtamt(f.right)
    iv = f"[{int(f.interval.lo)}:{int(f.interval.hi)}]" if f.interval else ""
    return {
        "&": f"({l} and {r})", "|": f"({l} or {r})", "->": f"({l} implies {r})",
        "<->": f"(((not {l}) or {r}) and ({l} or (not {r})))",  # rtamt's iff is -|l - r|, not min/max
        "U": f"({l} until{iv} {r})", "R": f"(not ((not {l}) until{iv} (not {r})))",
        "W": f"(({l} until {r}) or (always {l}))", "M": f"(not (((not {l}) until (not {r})) or (always (not {l}))))",
        "S": f"({l} since {r})",
    }[f.op]


def rtamt_value(f: Formula, sig: dict[str, np.ndarray]) -> float:
    spec = rtamt.StlDiscreteTimeSpecification()
    for k in ATOMS:
        spec.declare_var(k, "float")
    spec.spec = to_rtamt(f)
    spec.parse()
    T = len(sig["a"])
    data = {"time": list(range(T)), **{k: [float(x) for x in sig[k]] for k in ATOMS}}
    v = spec.evaluate(data)[0][1]
    return float(np.clip(v, -1.0, 1.0))  # ±inf past the end ↔ ±1


# rtamt's offline interpreter mis-sizes traces when past and bounded-future operators mix, so the
# comparison runs on future-only and past-only formulas (our own mixed cases are checked by the reference).
FRAGMENTS = {
    "future": dict(past=False),
    "past": dict(ops_unary=("!", "Y", "O", "H"), ops_binary=("&", "|", "->", "<->", "S")),
}


@pytest.mark.parametrize("fragment", sorted(FRAGMENTS))
@pytest.mark.parametrize("seed", range(3))
def test_robustness_matches_rtamt(seed, fragment):
    rng = np.random.default_rng(1000 + seed)
    compared = tried = 0
    while compared < 200:
        tried += 1
        f = random_formula(rng, 3, consts=False, **FRAGMENTS[fragment])
        T = int(rng.integers(2, 9))  # rtamt's offline interpreter fails on one-sample traces
        sig = random_signals(rng, 1, T)
        sig1 = {k: v[0] for k, v in sig.items()}
        try:
            expected = rtamt_value(f, sig1)
        except IndexError:  # rtamt truncates some bounded-operator outputs and then indexes past them
            continue
        ours = float(evaluate(f, sig1, "robustness"))
        assert ours == pytest.approx(expected, abs=1e-6), (str(f), sig1)
        compared += 1
    assert tried < 2 * compared  # the oracle really answered for most formulas


flloat_ltlf = pytest.importorskip("flloat.parser.ltlf")


def to_flloat(f: Formula) -> str:
    if isinstance(f, Const):
        return "true" if f.value else "false"
    if isinstance(f, Atom):
        return f.canonical
    if isinstance(f, Unary):
        return f"({f.op}({to_flloat(f.child)}))" if f.op != "!" else f"(!({to_flloat(f.child)}))"
    return f"(({to_flloat(f.left)}) {f.op} ({to_flloat(f.right)}))"


@pytest.mark.parametrize("seed", range(4))
def test_boolean_matches_flloat(seed):
    parser = flloat_ltlf.LTLfParser()
    rng = np.random.default_rng(2000 + seed)
    for _ in range(250):
        f = random_formula(rng, 3, past=False, bounded=False,
                           ops_unary=("!", "X", "WX", "F", "G"), ops_binary=("&", "|", "->", "<->", "U", "R"))
        T = int(rng.integers(1, 9))
        sig = random_signals(rng, 1, T, boolean=True)
        trace = [{k: bool(sig[k][0, t]) for k in ATOMS} for t in range(T)]
        expected = parser(to_flloat(f)).truth(trace, 0)
        assert bool(evaluate(f, {k: v[0] for k, v in sig.items()}, "boolean")) == expected, str(f)
