"""Markdown tables (and success/drift plots) of a benchmarks/creflow_toy/ablation.py output directory.

    .venv/bin/python benchmarks/creflow_toy/report.py benchmarks/creflow_toy/ablation

Target = NFT's (DiffusionNFT as configured) mean final success at its best lr over the headline seeds; NFT's
steps = the first evaluation step at which NFT's mean curve reaches that final value. For every arm: mean ± std
over seeds and the per-seed values of final success, drift_kept (the headline off-target drift: mean |Δpixel|
on the evaluation pairs the pretrained model already solves), distractor_shift (held out, judge's grounder)
and drift_outside (outside the masks: what the outside anchor holds), and the first step at which the arm's
mean success reaches the target. The same against the best NFT variant (nft, nft-anchor, nft-kl).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

METRICS = ("success", "drift_kept", "distractor_shift", "drift_outside", "valid")


def load(out: Path) -> tuple[dict, dict]:
    meta = json.loads((out / "ablation.json").read_text())
    runs = {p.stem: json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))}
    return meta, runs


def curves(runs: dict, arm: str, lr: float, seeds: list[int], key: str) -> np.ndarray:
    """(S, E) values of `key` at every evaluation of every seed."""
    return np.array([[e[key] for e in runs[f"{arm}_lr{lr:g}_s{s}"]["evals"]] for s in seeds], dtype=np.float64)


def first_reach(steps: list[int], mean: np.ndarray, target: float) -> int | None:
    return next((s for s, m in zip(steps, mean, strict=True) if s > 0 and m >= target - 1e-9), None)


def fmt(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.1f}" if pct else f"{x:.4f}"


def sweep_table(meta: dict, runs: dict) -> list[str]:
    seeds, lrs = meta["sweep_seeds"], meta["lrs"]
    out = [f"Sweep ({len(seeds)} seeds, final success % / drift_kept; **bold** = the arm's best lr):", "",
           "| arm | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |", "|---|" + "---|" * len(lrs)]
    for arm in meta["arms"]:
        cells = []
        for lr in lrs:
            s = curves(runs, arm, lr, seeds, "success")[:, -1].mean()
            d = np.nanmean(curves(runs, arm, lr, seeds, "drift_kept")[:, -1])
            cell = f"{100 * s:.1f} / {d:.4f}"
            cells.append(f"**{cell}**" if lr == meta["best_lr"][arm] else cell)
        out.append(f"| {arm} | " + " | ".join(cells) + " |")
    return out


def headline(meta: dict, runs: dict) -> tuple[list[str], dict]:
    seeds, best = meta["headline_seeds"], meta["best_lr"]
    steps = [e["step"] for e in runs[f"nft_lr{best['nft']:g}_s{seeds[0]}"]["evals"]]
    stats = {}
    for arm in meta["arms"]:
        c = {m: curves(runs, arm, best[arm], seeds, m) for m in METRICS}
        stats[arm] = {"mean": {m: np.nanmean(v, 0) for m, v in c.items()}, "final": {m: v[:, -1] for m, v in c.items()}}
    target = float(stats["nft"]["mean"]["success"][-1])
    nft_steps = first_reach(steps, stats["nft"]["mean"]["success"], target)
    nft_drift = float(np.nanmean(stats["nft"]["final"]["drift_kept"]))
    out = [f"Headline ({len(seeds)} seeds at each arm's best lr). Target: NFT's final success **{100 * target:.1f} %**, "
           f"which NFT's mean curve reaches at step {nft_steps}; NFT's final drift_kept {nft_drift:.4f}.", "",
           "| arm | lr | final success % (mean ± std) | per seed | drift_kept (mean ± std) | per seed | "
           "drift / NFT's | distractor shift px | drift_outside | valid % | steps to target |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in meta["arms"]:
        f = stats[arm]["final"]
        hit = first_reach(steps, stats[arm]["mean"]["success"], target)
        out.append(
            f"| {arm} | {best[arm]:g} | {100 * f['success'].mean():.1f} ± {100 * f['success'].std():.1f} | "
            + " ".join(f"{100 * v:.1f}" for v in f["success"]) + " | "
            f"{np.nanmean(f['drift_kept']):.4f} ± {np.nanstd(f['drift_kept']):.4f} | "
            + " ".join(f"{v:.4f}" for v in f["drift_kept"]) + " | "
            f"{np.nanmean(f['drift_kept']) / nft_drift:.2f} | {np.nanmean(f['distractor_shift']):.3f} | "
            f"{np.nanmean(f['drift_outside']):.4f} | {100 * f['valid'].mean():.1f} | "
            f"{hit if hit is not None else 'not reached'} |")
    out += ["", "Mean success (%) against training steps (headline seeds):", "",
            "| arm | " + " | ".join(str(s) for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for arm in meta["arms"]:
        out.append(f"| {arm} | " + " | ".join(f"{100 * m:.1f}" for m in stats[arm]["mean"]["success"]) + " |")
    return out, {"steps": steps, "stats": stats, "target": target, "nft_steps": nft_steps, "nft_drift": nft_drift}


def verdict(meta: dict, h: dict) -> list[str]:
    """The issue's targets, against NFT and against the best NFT variant."""
    steps, stats = h["steps"], h["stats"]
    lines = []
    nfts = [a for a in meta["arms"] if a.startswith("nft")]
    strongest = max(nfts, key=lambda a: stats[a]["mean"]["success"][-1])
    for ref in dict.fromkeys(("nft", strongest)):
        target = float(stats[ref]["mean"]["success"][-1])
        ref_steps = first_reach(steps, stats[ref]["mean"]["success"], target)
        ref_drift = float(np.nanmean(stats[ref]["final"]["drift_kept"]))
        hit = first_reach(steps, stats["creflow"]["mean"]["success"], target)
        drift = float(np.nanmean(stats["creflow"]["final"]["drift_kept"]))
        speed_ok = hit is not None and ref_steps is not None and hit <= ref_steps / 2
        lines.append(f"- against `{ref}` (final {100 * target:.1f} %, reached at step {ref_steps}): CreFlow reaches it at "
                     f"step {hit if hit is not None else 'never'} ({'met' if speed_ok else 'not met'}: ≤ {ref_steps / 2:g}"
                     f" needed); drift_kept {drift:.4f} vs {ref_drift:.4f} = {drift / ref_drift:.2f}× "
                     f"({'met' if drift <= ref_drift / 2 else 'not met'}: ≤ 0.5× needed).")
    return lines


def plots(meta: dict, h: dict, out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from creflow_train.toy.plot import line_plot

    x = np.array(h["steps"])
    seeds, best = meta["headline_seeds"], meta["best_lr"]
    runs = load(out)[1]
    succ = {a: curves(runs, a, best[a], seeds, "success") for a in meta["arms"]}
    line_plot(out / "success.png", {f"{a} {best[a]:g}": (x, v.mean(0), v.std(0)) for a, v in succ.items()},
              title=f"toy carry: held-out judge success (mean ± std, {len(seeds)} seeds, best lr per arm)",
              xlabel="training step", ylabel="success")
    drift = {a: np.nanmean(curves(runs, a, best[a], seeds, "drift_kept"), 0) for a in meta["arms"]}
    top = max(float(np.nanmax(v)) for v in drift.values()) * 1.1 + 1e-6
    line_plot(out / "drift.png", {f"{a} {best[a]:g}": (x, v, None) for a, v in drift.items()},
              title="off-target drift: mean |dpixel| on pairs the pretrained model already solves",
              xlabel="training step", ylabel="drift_kept", ylim=(0.0, top))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    meta, runs = load(args.out)
    lines = [*sweep_table(meta, runs), ""]
    head, h = headline(meta, runs)
    lines += [*head, "", "Against the issue's targets:", "", *verdict(meta, h)]
    print("\n".join(lines))
    plots(meta, h, args.out)


if __name__ == "__main__":
    main()
