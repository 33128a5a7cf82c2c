"""Monitor speed, side by side in one run: ltlreward vs rtamt (robustness) vs flloat (Boolean LTLf), and how
witness extraction scales with the trace length (issue #14).

Same formulas, same traces. Usage:
    .venv/bin/python benchmarks/monitor_speed/run.py [--quick] [--out results.json] [--witness-only]
Prints markdown tables (benchmarks/monitor_speed/README.md holds the published ones); writes JSON only with --out.
Witness figures are relative (slopes, ratios) and timed as thread CPU time, interleaved, best of N, so they hold
on a loaded machine; absolute milliseconds want an idle one.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ltlreward import monitor, parse_spec
from ltlreward.spec import atoms_of

SPEC = parse_spec('''
entity bottle = "red bottle"
entity left = "left gripper" : gripper
entity right = "right gripper" : gripper
constraint grasp_first: !touching(right, bottle) U holding(left, bottle)
constraint exchange: F (holding(left, bottle) & holding(right, bottle))
constraint finish: F G (holding(right, bottle) & !holding(left, bottle))
constraint no_drop: G (lifted(bottle) -> holding(left, bottle) | holding(right, bottle))
constraint prompt: G (touching(right, bottle) -> F[0,10] holding(right, bottle))
''')
KEYS = sorted({a.canonical for c in SPEC.constraints for a in atoms_of(c.formula)})
SHORT = {k: f"p{i}" for i, k in enumerate(KEYS)}  # rtamt/flloat variable names


def signals(B: int, T: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Smooth random robustness signals in [-1, 1] (random walks through tanh), float32 (B, T)."""
    rng = np.random.default_rng(seed)
    return {k: np.tanh(np.cumsum(rng.normal(0, 0.3, size=(B, T)), axis=1)).astype(np.float32) for k in KEYS}


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved(fns, repeat: int) -> list[float]:
    """Best thread CPU time of each function, the functions run in turn `repeat` times (robust to load)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.thread_time()
            fn()
            best[i] = min(best[i], time.thread_time() - t0)
    return best


RESPONSE = parse_spec("constraint response: G (a -> X (!a U b))\n")
# the 5-constraint spec with `prompt` as the response pattern (issue #14's quadratic case on main)
SPEC_RESPONSE = parse_spec('''
entity bottle = "red bottle"
entity left = "left gripper" : gripper
entity right = "right gripper" : gripper
constraint grasp_first: !touching(right, bottle) U holding(left, bottle)
constraint exchange: F (holding(left, bottle) & holding(right, bottle))
constraint finish: F G (holding(right, bottle) & !holding(left, bottle))
constraint no_drop: G (lifted(bottle) -> holding(left, bottle) | holding(right, bottle))
constraint respond: G (touching(right, bottle) -> X (!touching(right, bottle) U holding(right, bottle)))
''')
WITNESS_T = (300, 600, 1000, 2000, 3000)


def witness_scaling(spec, B: int, repeat: int) -> dict:
    """Robustness-only and robustness + witness times over T, and the log-log slope of each (T = 300 … 3 000)."""
    keys = sorted({a.canonical for c in spec.constraints for a in atoms_of(c.formula)})
    rows = {}
    for T in WITNESS_T:
        rng = np.random.default_rng(T)
        sig = {k: np.tanh(np.cumsum(rng.normal(0, 0.3, size=(B, T)), axis=1)).astype(np.float32) for k in keys}
        rob, wit = interleaved([lambda sig=sig: monitor(spec, sig, witnesses=False),
                                lambda sig=sig: monitor(spec, sig)], repeat)
        rows[T] = {"robustness_only_ms": rob * 1e3, "with_witnesses_ms": wit * 1e3}
    logT = np.log10(WITNESS_T)
    slope = {k: float(np.polyfit(logT, np.log10([rows[T][k] for T in WITNESS_T]), 1)[0])
             for k in ("robustness_only_ms", "with_witnesses_ms")}
    return {"B": B, "rows": rows, "loglog_slope": slope}


def witness_overhead(repeat: int) -> dict:
    """The 5-constraint spec at 256 × 300: witnesses vs robustness only, per constraint, for the spec, and for
    the spec with the response pattern in place of `prompt` ("spec_response")."""
    from ltlreward.spec.ast import TaskSpec

    sig = signals(256, 300)
    out = {}
    for c in [*SPEC.constraints, None, "response"]:
        if c == "response":
            spec = SPEC_RESPONSE
        else:
            spec = SPEC if c is None else TaskSpec(entities=SPEC.entities, constraints=(c,))
        rob, wit = interleaved([lambda spec=spec: monitor(spec, sig, witnesses=False),
                                lambda spec=spec: monitor(spec, sig)], repeat)
        violated = int((~monitor(spec, sig).satisfied).sum())
        out["spec" if c is None else "spec_response" if c == "response" else c.name] = {"robustness_only_ms": rob * 1e3, "with_witnesses_ms": wit * 1e3,
                                                "ratio": wit / rob, "violated_traces": violated}
    return out


def print_witness(results: dict) -> None:
    """Markdown tables of the witness figures."""
    ov = results["witness_overhead_256x300"]
    print("## witnesses vs robustness only, 5-constraint spec, 256 × 300 (thread CPU time, best of N)")
    print("| constraint | violated traces | robustness only | + witnesses | ratio |")
    print("|---|---|---|---|---|")
    for name, e in ov.items():
        print(f"| {name} | {e['violated_traces']} | {e['robustness_only_ms']:.2f} ms | "
              f"{e['with_witnesses_ms']:.2f} ms | {e['ratio']:.2f}× |")
    for key, title in (("witness_scaling_response", "`G (a -> X (!a U b))`"),
                       ("witness_scaling_spec", "the 5-constraint spec")):
        sc = results[key]
        print(f"\n## {title}, B = {sc['B']}, growing T")
        print("| T | robustness only | + witnesses |")
        print("|---|---|---|")
        for T, e in sc["rows"].items():
            print(f"| {T:,} | {e['robustness_only_ms']:.2f} ms | {e['with_witnesses_ms']:.2f} ms |")
        sl = sc["loglog_slope"]
        print(f"\nlog-log slope over T = 300 … 3 000: robustness only {sl['robustness_only_ms']:.2f}, "
              f"with witnesses {sl['with_witnesses_ms']:.2f}")


# ------------------------------------------------------------------------------------- peers
def _rtamt_text(f) -> str:
    from ltlreward.spec.ast import Atom, Unary

    if isinstance(f, Atom):
        return SHORT[f.canonical]
    if isinstance(f, Unary):
        c = _rtamt_text(f.child)
        iv = f"[{int(f.interval.lo)}:{int(f.interval.hi)}]" if f.interval else ""
        return {"!": f"(not {c})", "F": f"(eventually{iv} {c})", "G": f"(always{iv} {c})", "X": f"(sX {c})"}[f.op]
    l, r = _rtamt_text(f.left), _rtamt_text(f.right)
    return {"&": f"({l} and {r})", "|": f"({l} or {r})", "->": f"({l} implies {r})", "U": f"({l} until {r})"}[f.op]


def _flloat_text(f) -> str:
    from ltlreward.spec.ast import Atom, Unary

    if isinstance(f, Atom):
        return SHORT[f.canonical]
    if isinstance(f, Unary):
        if f.interval is not None:  # F[0,k] φ = φ | X(φ | X(…)) with strong nexts
            c = _flloat_text(f.child)
            out = c
            for _ in range(int(f.interval.hi)):
                out = f"({c} | X({out}))"
            return out
        return f"({f.op}({_flloat_text(f.child)}))" if f.op != "!" else f"(!({_flloat_text(f.child)}))"
    return f"(({_flloat_text(f.left)}) {f.op} ({_flloat_text(f.right)}))"


def rtamt_specs():
    import rtamt

    out = []
    for c in SPEC.constraints:
        s = rtamt.StlDiscreteTimeSpecification()
        for k in SHORT.values():
            s.declare_var(k, "float")
        s.spec = _rtamt_text(c.formula)
        s.parse()
        out.append(s)
    return out


def run_rtamt(specs, sig: dict[str, np.ndarray], b_limit: int | None = None) -> np.ndarray:
    B, T = next(iter(sig.values())).shape
    B = B if b_limit is None else min(B, b_limit)
    out = np.zeros((B, len(specs)))
    time_axis = list(range(T))
    for b in range(B):
        data = {"time": time_axis, **{SHORT[k]: sig[k][b].tolist() for k in KEYS}}
        for j, s in enumerate(specs):
            out[b, j] = s.evaluate(data)[0][1]
    return np.clip(out, -1, 1)


def run_flloat(sig: dict[str, np.ndarray], b_limit: int | None = None) -> np.ndarray:
    from flloat.parser.ltlf import LTLfParser

    parser = LTLfParser()
    forms = [parser(_flloat_text(c.formula)) for c in SPEC.constraints]
    B, T = next(iter(sig.values())).shape
    B = B if b_limit is None else min(B, b_limit)
    out = np.zeros((B, len(forms)), dtype=bool)
    for b in range(B):
        trace = [{SHORT[k]: bool(sig[k][b, t] > 0) for k in KEYS} for t in range(T)]
        for j, f in enumerate(forms):
            out[b, j] = f.truth(trace, 0)
    return out


# ------------------------------------------------------------------------------------- runs
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats and smaller peer samples")
    ap.add_argument("--out", help="write the figures as JSON to this file (nothing is written without it)")
    ap.add_argument("--witness-only", action="store_true", help="only the witness figures (no peers)")
    args = ap.parse_args()
    rep = 3 if args.quick else 7
    results: dict = {"machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    wrep = 10 if args.quick else 30
    results["witness_overhead_256x300"] = witness_overhead(wrep)
    results["witness_scaling_response"] = witness_scaling(RESPONSE, 32, max(3, wrep // 3))
    results["witness_scaling_spec"] = witness_scaling(SPEC, 32, max(3, wrep // 3))
    print_witness(results)
    if not args.witness_only:
        results["batch_256x300"] = batch_vs_peers(rep, 32 if args.quick else 256)
        results["scaling_B1"], results["loglog_slope_1e3_1e5"] = scaling_in_t(rep)
        print_peers(results)
    _write(args.out, results)


def batch_vs_peers(rep: int, peer_rows: int) -> dict:
    """The headline: 256 × 300, robustness + witnesses for the whole 5-constraint spec, against rtamt and flloat
    (the peers timed on `peer_rows` rows and scaled to 256)."""
    sig = signals(256, 300)
    boolean = {k: v > 0 for k, v in sig.items()}
    ours_full = best_of(lambda: monitor(SPEC, sig), rep * 3)
    ours_nowit = best_of(lambda: monitor(SPEC, sig, witnesses=False), rep * 3)
    res = monitor(SPEC, sig)
    ours_materialise = best_of(lambda: [c.witness(b) for c in res.constraints for b in range(256)], rep)
    ours_bool = best_of(lambda: monitor(SPEC, boolean, semantics="boolean"), rep * 3)
    t0 = time.perf_counter()
    rt = run_rtamt(rtamt_specs(), sig, peer_rows)
    rtamt_time = (time.perf_counter() - t0) * 256 / peer_rows
    t0 = time.perf_counter()
    fl = run_flloat(sig, peer_rows)
    flloat_time = (time.perf_counter() - t0) * 256 / peer_rows
    ours_boolean = monitor(SPEC, boolean, semantics="boolean").satisfied[:peer_rows]
    return dict(
        ours_robustness_witness_ms=ours_full * 1e3, ours_robustness_only_ms=ours_nowit * 1e3,
        ours_boolean_witness_ms=ours_bool * 1e3, ours_materialise_all_witnesses_ms=ours_materialise * 1e3,
        violated_pairs=int((~res.satisfied).sum()), rtamt_s=rtamt_time, rtamt_rows_timed=peer_rows,
        flloat_s=flloat_time, flloat_rows_timed=peer_rows,
        max_abs_diff_vs_rtamt=float(np.max(np.abs(rt - res.robustness[:peer_rows]))),
        boolean_equal_flloat=bool(np.array_equal(fl, ours_boolean)),
        speedup_vs_rtamt=rtamt_time / ours_full, speedup_vs_flloat=flloat_time / ours_bool,
    )


def scaling_in_t(rep: int) -> tuple[dict, float]:
    """One trace (B = 1) of growing T, ours vs rtamt (T ≤ 10⁴) and flloat (T ≤ 10³); our log-log slope."""
    specs = rtamt_specs()
    scaling = {}
    for T in (100, 1000, 10_000, 100_000):
        s1 = signals(1, T, seed=T)
        entry = {"ours_s": best_of(lambda s1=s1: monitor(SPEC, s1), rep)}
        if T <= 10_000:
            t0 = time.perf_counter()
            r = run_rtamt(specs, s1)
            entry["rtamt_s"] = time.perf_counter() - t0
            entry["max_abs_diff_vs_rtamt"] = float(np.max(np.abs(r - monitor(SPEC, s1).robustness)))
        if T <= 1000:
            t0 = time.perf_counter()
            run_flloat(s1)
            entry["flloat_s"] = time.perf_counter() - t0
        scaling[T] = entry
    slope = float(np.polyfit(np.log10([1000, 10_000, 100_000]),
                             np.log10([scaling[T]["ours_s"] for T in (1000, 10_000, 100_000)]), 1)[0])
    return scaling, slope


def print_peers(results: dict) -> None:
    """The README's two peer tables."""
    b = results["batch_256x300"]
    print("## 256 × 300 batch, 5-constraint spec")
    print("| monitor | work | time | vs ours |")
    print("|---|---|---|---|")
    print(f"| ltlreward | robustness + witness masks | {b['ours_robustness_witness_ms']:.2f} ms | 1× |")
    print(f"| ltlreward | robustness only | {b['ours_robustness_only_ms']:.2f} ms | |")
    print(f"| ltlreward | Boolean + witness masks | {b['ours_boolean_witness_ms']:.2f} ms | |")
    print(f"| ltlreward | + materialise {b['violated_pairs']} Witness objects | {b['ours_materialise_all_witnesses_ms']:.2f} ms | |")
    print(f"| rtamt 0.4 (offline, discrete) | robustness, no witnesses | {b['rtamt_s']:.2f} s | {b['speedup_vs_rtamt']:.0f}× slower |")
    print(f"| flloat 0.3 | Boolean only | {b['flloat_s']:.2f} s | {b['speedup_vs_flloat']:.0f}× slower than our Boolean |")
    print(f"\nagreement: max |ours − rtamt| = {b['max_abs_diff_vs_rtamt']:.2g}; Boolean equal to flloat: {b['boolean_equal_flloat']}")
    print("\n## one trace, growing T (whole spec, robustness + witnesses)")
    print("| T | ltlreward | rtamt | flloat |")
    print("|---|---|---|---|")
    for T, e in results["scaling_B1"].items():
        rt = f"{e['rtamt_s'] * 1e3:.1f} ms" if "rtamt_s" in e else "—"
        fl = f"{e['flloat_s'] * 1e3:.1f} ms" if "flloat_s" in e else "—"
        print(f"| {T:,} | {e['ours_s'] * 1e3:.2f} ms | {rt} | {fl} |")
    print(f"\nlog-log slope of our time from T = 10³ to 10⁵: {results['loglog_slope_1e3_1e5']:.3f}")


def _write(out: str | None, results: dict) -> None:
    """The figures as JSON to `out`, when asked."""
    if out:
        Path(out).write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
