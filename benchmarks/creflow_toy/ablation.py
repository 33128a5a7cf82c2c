"""The fair CreFlow-vs-NFT ablation on the toy world: an lr sweep with the same budget for every arm, then the
headline at each arm's best lr over 5 seeds. Resumable: every (arm, lr, seed) run is saved as it finishes.

    nice -n 10 env PYTHONPATH=. .venv/bin/python benchmarks/creflow_toy/ablation.py --jobs 2 \\
        --out benchmarks/creflow_toy/ablation
    .venv/bin/python benchmarks/creflow_toy/report.py benchmarks/creflow_toy/ablation   # the README tables

Arms (creflow_train.toy.train.ARMS), all with KL 1e-4, the default LossConfig otherwise:
  nft          DiffusionNFT as configured (no masks, no outside anchor)
  nft-anchor   NFT + the same outside anchor CreFlow has (weight anchor_outside)
  nft-kl       NFT + whole-video KL at the outside anchor's weight (the matched-KL control)
  creflow      credit-aware NFT + corrective reflow + the outside anchor
Sweep: every arm at every lr in --lrs with the sweep seeds; an arm's best lr is the highest mean final success
(ties: lower drift_kept). If NFT's success at an end of the grid beats every other lr's, the grid is extended
one step beyond it for every arm (same budget), at most --max-extend times. Headline: every arm at its best lr with --seeds seeds
(the sweep's seeds are reused; runs are deterministic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from creflow_train.toy.mathenv import pin_math

pin_math()

import torch  # noqa: E402

from creflow_train.toy.bench import AblationConfig, math_env, pretrained_model  # noqa: E402
from creflow_train.toy.train import EvalSet, deterministic, train_arm  # noqa: E402

ARMS = ("nft", "nft-anchor", "nft-kl", "creflow")
SHIPPED = Path(__file__).resolve().parent / "_work"


def run_name(arm: str, lr: float, seed: int) -> str:
    return f"{arm}_lr{lr:g}_s{seed}"


def _job(job: tuple) -> tuple[str, dict]:
    """One (arm, lr, seed) run in a worker process; its curves as a JSON-able dict."""
    arm, lr, seed, base, cfg, evalset = job
    t0 = time.perf_counter()
    res = train_arm(arm, base, cfg.world, replace(cfg.rl, lr=lr), seed, evalset)
    return run_name(arm, lr, seed), {"arm": arm, "lr": lr, "seed": seed, "evals": [asdict(e) for e in res.evals],
                                     "losses": res.losses, "skipped_steps": res.skipped_steps,
                                     "mask_fallbacks": res.mask_fallbacks, "step_seconds": res.step_seconds,
                                     "wall_seconds": time.perf_counter() - t0}


def run_all(jobs: list[tuple[str, float, int]], ctx: tuple, out: Path, workers: int) -> None:
    """Run the (arm, lr, seed) jobs not already saved under out/runs, `workers` at a time."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    todo = [j for j in jobs if not (out / "runs" / f"{run_name(*j)}.json").exists()]
    if not todo:
        return
    (out / "runs").mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        futs = [ex.submit(_job, (*j, *ctx)) for j in todo]
        for f in as_completed(futs):
            name, data = f.result()
            (out / "runs" / f"{name}.json").write_text(json.dumps(data))
            last = data["evals"][-1]
            print(f"{name}: success {last['success']:.3f} drift_kept {last['drift_kept']:.4f} "
                  f"({data['wall_seconds']:.0f} s)", flush=True)


def load_runs(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))}


def final(runs: dict, arm: str, lr: float, seeds: tuple[int, ...], key: str) -> float:
    """Mean over seeds of `key` at the last evaluation."""
    vals = [runs[run_name(arm, lr, s)]["evals"][-1][key] for s in seeds]
    return sum(vals) / len(vals)


def best_lr(runs: dict, arm: str, lrs: list[float], seeds: tuple[int, ...]) -> float:
    return max(lrs, key=lambda lr: (final(runs, arm, lr, seeds, "success"), -final(runs, arm, lr, seeds,
                                                                                     "drift_kept")))


def at_edge(runs: dict, lrs: list[float], seeds: tuple[int, ...]) -> int:
    """−1 / +1 when NFT's final success at the lowest / highest lr beats every other lr's (the optimum may lie
    beyond the grid), else 0 (an inner lr is at least as good: the sweep brackets NFT's optimum)."""
    succ = [final(runs, "nft", lr, seeds, "success") for lr in lrs]
    if succ[0] > max(succ[1:]) + 1e-9:
        return -1
    if succ[-1] > max(succ[:-1]) + 1e-9:
        return 1
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/creflow_toy/ablation"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--lrs", default="1e-5,3e-5,1e-4,3e-4,1e-3")
    ap.add_argument("--sweep-seeds", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5, help="seeds of the headline runs")
    ap.add_argument("--max-extend", type=int, default=2, help="grid extensions allowed to bracket NFT's optimum")
    args = ap.parse_args()
    cfg = AblationConfig()
    base = pretrained_model(cfg.world, cfg.pretrain, args.out / "_work", shipped=SHIPPED)
    with deterministic(cfg.rl.threads):
        evalset = EvalSet(cfg.world, cfg.rl, base)
    ctx = (base, cfg, evalset)
    lrs = sorted(float(x) for x in args.lrs.split(","))
    sweep = tuple(range(args.sweep_seeds))
    for _ in range(args.max_extend + 1):
        run_all([(a, lr, s) for lr in lrs for a in ARMS for s in sweep], ctx, args.out, args.jobs)
        runs = load_runs(args.out)
        edge = at_edge(runs, lrs, sweep)
        if edge == 0:
            break
        lrs = [lrs[0] / (lrs[1] / lrs[0]), *lrs] if edge < 0 else [*lrs, lrs[-1] * (lrs[-1] / lrs[-2])]
        print(f"NFT's best lr is at the grid's end: extending to {', '.join(f'{x:g}' for x in lrs)}", flush=True)
    best = {a: best_lr(runs, a, lrs, sweep) for a in ARMS}
    run_all([(a, best[a], s) for a in ARMS for s in range(args.seeds)], ctx, args.out, args.jobs)
    meta = {"lrs": lrs, "sweep_seeds": list(sweep), "headline_seeds": list(range(args.seeds)), "best_lr": best,
            "arms": list(ARMS), "config": asdict(cfg), "math": math_env(),
            "pretrained_success": evalset.base_success.float().mean().item(),
            "pretrained_solved_pairs": int(evalset.base_success.sum())}
    (args.out / "ablation.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({"best_lr": best}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
