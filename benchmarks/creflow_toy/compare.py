"""Compare `creflow toy` runs (one directory each, holding results.json) against the issue's targets.

The target is the best final success of plain NFT over the runs (NFT at its best learning rate, default KL);
NFT's steps are the steps that run took to reach its own final rate. For every run and arm it prints final
success (mean ± std over seeds), valid renders, off-target drift and its ratio to that NFT run's drift, and the
first evaluation step whose mean success reaches the target, as Markdown tables.

    .venv/bin/python benchmarks/creflow_toy/compare.py benchmarks/creflow_toy/lr3e-5 benchmarks/creflow_toy/lr1e-4 …
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_KL = 1e-4


def load(run: Path) -> dict:
    """results.json of one run directory, with its directory name as label."""
    data = json.loads((run / "results.json").read_text())
    data["label"] = run.name
    return data


def first_reach(steps: list[int], mean: list[float], target: float) -> int | None:
    """First evaluation step (> 0) whose mean success is at least `target`."""
    return next((s for s, m in zip(steps, mean, strict=True) if s > 0 and m >= target - 1e-9), None)


def compare(runs: list[dict]) -> str:
    """Markdown: the reference NFT run, then one row per (run, arm) and the success curves."""
    nft = [(r, r["arms"]["nft"]) for r in runs
           if "nft" in r["arms"] and abs(r["config"]["rl"]["kl_weight"] - DEFAULT_KL) < 1e-12]
    if not nft:
        raise SystemExit("no plain NFT run (default kl_weight) among the inputs")
    ref_run, ref = max(nft, key=lambda p: p[1]["final_success"])
    target, ref_drift = ref["final_success"], ref["final_drift"]
    ref_steps = first_reach(ref["steps"], ref["success_mean"], target)
    out = [
        f"Target: NFT's best final success **{100 * target:.1f} %** (run `{ref_run['label']}`), reached at step "
        f"{ref_steps}; half of NFT's steps = {ref_steps / 2:g}. NFT's final drift there: {ref_drift:.4f}.",
        "",
        "| run | lr | anchor | arm | final success | ± std | valid | drift | drift / NFT's | steps to target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        rl = r["config"]["rl"]
        for name, a in r["arms"].items():
            credit = name in ("credit-nft", "creflow")
            anchor = f"{rl.get('anchor_outside', 0.0):g}" if credit else "–"
            if rl["kl_weight"] != DEFAULT_KL:
                anchor += f" (KL {rl['kl_weight']:g})"
            hit = first_reach(a["steps"], a["success_mean"], target)
            out.append(
                f"| {r['label']} | {rl['lr']:g} | {anchor} | {name} | {100 * a['final_success']:.1f} % | "
                f"{100 * a['success_std'][-1]:.1f} | {100 * a['valid_mean'][-1]:.1f} % | {a['final_drift']:.4f} | "
                f"{a['final_drift'] / ref_drift:.2f} | {hit if hit is not None else 'not reached'} |"
            )
    steps = runs[0]["arms"][next(iter(runs[0]["arms"]))]["steps"]
    out += ["", "Mean success (%) against training steps:", "",
            "| run | arm | " + " | ".join(str(s) for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for r in runs:
        for name, a in r["arms"].items():
            out.append(f"| {r['label']} | {name} | " + " | ".join(f"{100 * m:.1f}" for m in a["success_mean"]) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (each with results.json)")
    args = ap.parse_args()
    print(compare([load(p) for p in args.runs]))


if __name__ == "__main__":
    main()
