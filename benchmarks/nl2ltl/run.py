"""NL → LTL benchmark: compile each English description and check it is semantically equivalent to its
hand-written reference spec, with the equivalence decided by the ltlreward monitor (Boolean semantics).

Equivalence of two specs = equivalence of the conjunctions of their constraints over the union of their
atoms. Traces: every Boolean trace of length 1..6 (one evaluate call per length, all traces as the batch)
while atoms × length ≤ 20 bits; beyond that a random sample of 50 000 traces of that length; plus 1 000
random traces of length 7..24 in one ragged call. Per constraint we report which compiled constraints the
reference entails and which reference constraints the compiled spec entails. Bounds in seconds are read at
`--fps` (default 1, so `F[0s,5s]` spans 5 frames and the short traces tell bounds apart).

A case with `"expect": "error"` (and no reference) is a description the spec language cannot express: it
is correct when the backend rejects it. Every case ends in one outcome: equivalent; rejected (an error);
wrong with a warning (compiled, not equivalent, but the compiler warned); silently wrong (compiled, not
equivalent or not expected to compile, and no warning). The time of the compile call alone is recorded.

    .venv/bin/python benchmarks/nl2ltl/run.py [--backend rules|llm|auto] [--model smollm2] [--json out.json] [--fps 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from ltlreward.errors import LtlRewardError  # noqa: E402
from ltlreward.ltlf import evaluate, monitor  # noqa: E402
from ltlreward.nl import BACKENDS, compile_text  # noqa: E402
from ltlreward.spec import load_spec, spec_atoms  # noqa: E402
from ltlreward.spec.ast import Binary, Const, Formula, TaskSpec  # noqa: E402

MAX_LEN = 6
MAX_BITS = 20
FALLBACK_SAMPLES = 50_000
LONG_SAMPLES = 1_000
LONG_RANGE = (7, 24)


@dataclass
class Outcome:
    id: str
    task: str
    text: str
    equivalent: bool
    error: str = ""
    counterexample: dict | None = None
    traces: int = 0
    exhaustive_lengths: list[int] = field(default_factory=list)
    compiled_entailed: str = ""
    reference_entailed: str = ""
    expect_error: bool = False
    compiled: bool = False
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # compile time of the description
    backend: str = ""  # the backend that compiled it (auto: "rules" or "auto:llm")

    @property
    def outcome(self) -> str:
        """equivalent | rejected | wrong_warned | silently_wrong (an expected error that is raised: equivalent)."""
        if self.equivalent:
            return "equivalent"
        if not self.compiled:
            return "rejected"
        return "wrong_warned" if self.warnings else "silently_wrong"


def conjunction(spec: TaskSpec) -> Formula:
    """The conjunction of all constraints of a spec (true when it has none)."""
    fs = [c.formula for c in spec.constraints]
    if not fs:
        return Const(True)
    out = fs[0]
    for f in fs[1:]:
        out = Binary("&", out, f)
    return out


def trace_batches(atoms: list[str], rng: np.random.Generator):
    """(signals, lengths, exhaustive?) batches: all traces per length up to MAX_LEN, then random long ones."""
    k = len(atoms)
    for length in range(1, MAX_LEN + 1):
        bits = k * length
        if bits <= MAX_BITS:
            idx = np.arange(1 << bits, dtype=np.int64)  # (B,)
            shifts = np.arange(bits, dtype=np.int64).reshape(length, k)  # bit of (frame t, atom a)
            vals = ((idx[:, None, None] >> shifts[None]) & 1).astype(bool)  # (B, T, k)
            exhaustive = True
        else:
            vals = rng.random((FALLBACK_SAMPLES, length, k)) < 0.5  # (B, T, k)
            exhaustive = False
        yield {a: vals[:, :, i] for i, a in enumerate(atoms)}, None, exhaustive
    lo, hi = LONG_RANGE
    vals = rng.random((LONG_SAMPLES, hi, k)) < 0.5  # (B, T, k)
    lengths = rng.integers(lo, hi + 1, size=LONG_SAMPLES)  # (B,)
    yield {a: vals[:, :, i] for i, a in enumerate(atoms)}, lengths, False


def entailment(premise: Formula, spec: TaskSpec, sigs: dict, lengths, fps: float) -> np.ndarray:
    """For each constraint of `spec`: does `premise` entail it on every trace of the batch? (n_constraints,)"""
    p = evaluate(premise, sigs, fps=fps, lengths=lengths)  # (B,)
    res = monitor(spec, sigs, semantics="boolean", fps=fps, lengths=lengths, witnesses=False)
    return np.array([bool(np.all(~p | r.satisfied)) for r in res.constraints])


def compare(case: dict, backend: str, rng: np.random.Generator, opts: dict, fps: float = 1.0) -> Outcome:
    expect_error = case.get("expect") == "error"
    out = Outcome(case["id"], case["task"], case["text"], False, expect_error=expect_error)
    t0 = time.perf_counter()
    try:
        res = compile_text(case["text"], backend=backend, **opts)
    except LtlRewardError as exc:
        out.seconds = time.perf_counter() - t0
        out.error = str(exc).splitlines()[0]
        out.equivalent = expect_error  # an inexpressible description is handled right when it is rejected
        return out
    out.seconds, out.backend = time.perf_counter() - t0, res.backend
    out.compiled, out.warnings, got = True, list(res.warnings), res.spec
    if expect_error:
        out.error = "compiled, but the description is not expressible (an error was expected)"
        return out
    ref = load_spec(HERE / case["reference"])
    atoms = sorted({a.canonical for a in spec_atoms(ref)} | {a.canonical for a in spec_atoms(got)})
    f_got, f_ref = conjunction(got), conjunction(ref)
    equal = True
    ent_got = np.ones(len(got.constraints), bool)
    ent_ref = np.ones(len(ref.constraints), bool)
    for sigs, lengths, exhaustive in trace_batches(atoms, rng):
        a = evaluate(f_got, sigs, fps=fps, lengths=lengths)  # (B,)
        b = evaluate(f_ref, sigs, fps=fps, lengths=lengths)  # (B,)
        out.traces += int(a.shape[0])
        if exhaustive:
            out.exhaustive_lengths.append(next(iter(sigs.values())).shape[1])
        diff = np.flatnonzero(a != b)
        if diff.size and out.counterexample is None:
            i = int(diff[0])
            n = int(lengths[i]) if lengths is not None else next(iter(sigs.values())).shape[1]
            out.counterexample = {"compiled": bool(a[i]), "reference": bool(b[i]),
                                  "trace": {k: v[i, :n].astype(int).tolist() for k, v in sigs.items()}}
        equal &= diff.size == 0
        if next(iter(sigs.values())).shape[0] <= 70_000:  # per-constraint entailment on the smaller batches
            ent_got &= entailment(f_ref, got, sigs, lengths, fps)
            ent_ref &= entailment(f_got, ref, sigs, lengths, fps)
    out.equivalent = bool(equal)
    out.compiled_entailed = f"{int(ent_got.sum())}/{ent_got.size}"
    out.reference_entailed = f"{int(ent_ref.sum())}/{ent_ref.size}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="rules", choices=list(BACKENDS))
    ap.add_argument("--model", default=None, help="packaged model name or .gguf path for --backend llm / auto")
    ap.add_argument("--cases", default=str(HERE / "cases.jsonl"))
    ap.add_argument("--json", default=None, help="write per-case results here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=float, default=1.0, help="frames per second for bounds in seconds (default 1)")
    args = ap.parse_args(argv)
    opts = {"model": args.model} if BACKENDS.meta(args.backend).options and args.model else {}
    cases = [json.loads(line) for line in Path(args.cases).read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(args.seed)
    if args.backend != "rules":  # load the model once, outside the per-description timings
        from ltlreward.nl.llm import translator

        t_load = time.perf_counter()
        translator(args.model).decoder()
        print(f"model {args.model or 'default'} loaded in {time.perf_counter() - t_load:.1f} s")
    t0 = time.perf_counter()
    outcomes = [compare(c, args.backend, rng, opts, args.fps) for c in cases]
    dt = time.perf_counter() - t0
    summary(outcomes, args.backend, dt)
    if args.json:
        Path(args.json).write_text(json.dumps([{**o.__dict__, "outcome": o.outcome} for o in outcomes], indent=1))
    return 0


def summary(outcomes: list[Outcome], backend: str, dt: float) -> None:
    """Print the per-task table, the four outcome counts, compile times and every miss."""
    per_task: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        per_task[o.task].append(o)
    n_eq = sum(o.equivalent for o in outcomes)
    print("| task | equivalent | descriptions |\n|---|---|---|")
    for task, os_ in per_task.items():
        print(f"| {task} | {sum(o.equivalent for o in os_)} | {len(os_)} |")
    print(f"\n**{n_eq}/{len(outcomes)} equivalent ({100 * n_eq / len(outcomes):.1f}%)**, backend={backend}, "
          f"{sum(o.traces for o in outcomes):,} traces checked in {dt:.0f} s")
    exh = [max(o.exhaustive_lengths or [0]) for o in outcomes if not o.error]
    print(f"exhaustive up to length 6 for {sum(e == MAX_LEN for e in exh)}/{len(exh)} compiled cases "
          f"(others: exhaustive up to the longest length with atoms x length <= {MAX_BITS} bits, "
          f"{FALLBACK_SAMPLES:,} random traces per longer length)")
    counts = {k: sum(o.outcome == k for o in outcomes) for k in ("equivalent", "rejected", "wrong_warned",
                                                                  "silently_wrong")}
    n_err = sum(o.expect_error for o in outcomes)
    print(f"compiled {sum(o.compiled for o in outcomes)}/{len(outcomes)}; equivalent {counts['equivalent']} "
          f"(of which {sum(o.expect_error and o.equivalent for o in outcomes)}/{n_err} expected errors raised); "
          f"rejected {counts['rejected']}; wrong with a warning {counts['wrong_warned']}; "
          f"**silently wrong {counts['silently_wrong']}**")
    ts = np.array([o.seconds for o in outcomes])  # (N,)
    by_model = [o.seconds for o in outcomes if o.backend in ("llm", "auto:llm") or (o.error and backend != "rules")]
    print(f"compile time per description ({backend}, in process): median {1e3 * np.median(ts):.1f} ms, "
          f"max {1e3 * ts.max():.1f} ms, mean {1e3 * ts.mean():.1f} ms (first call includes grammar load)"
          + (f"; {len(by_model)} reached the model: mean {np.mean(by_model):.2f} s, max {np.max(by_model):.2f} s"
             if by_model and backend != "rules" else ""))
    misses = [o for o in outcomes if not o.equivalent]
    print(f"\nMisses ({len(misses)}):")
    for o in misses:
        why = o.error or (f"not equivalent (compiled constraints entailed by the reference: {o.compiled_entailed}, "
                          f"reference constraints entailed by compiled: {o.reference_entailed})")
        tag = {"rejected": "rejected", "wrong_warned": "wrong, warned", "silently_wrong": "SILENTLY WRONG"}
        warn = f"; warnings: {'; '.join(o.warnings)}" if o.warnings else ""
        print(f"- [{tag[o.outcome]}] `{o.id}` \"{o.text}\" — {why}{warn}")


if __name__ == "__main__":
    raise SystemExit(main())
