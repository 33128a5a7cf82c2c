"""The CPU ablation: pretrain once, post-train the four arms over seeds, summarise, write CSV / JSON / PNG."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .model import TinyVideoFlow
from .pretrain import PretrainConfig, pretrain
from .train import ARMS, DEFAULT_ARMS, ArmResult, EvalSet, RLConfig, deterministic, measure_overhead, train_arm
from .world import WorldConfig


@dataclass(frozen=True)
class AblationConfig:
    """Everything one ablation run depends on."""

    world: WorldConfig = field(default_factory=WorldConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = DEFAULT_ARMS
    timing_reps: int = 6  # interleaved steps per arm for the overhead figure (0 = skip)


def quick_config() -> AblationConfig:
    """`creflow toy --quick`: one seed, a short budget (reuses a cached pretrained model when present)."""
    rl = RLConfig(steps=12, eval_every=4, eval_prompts=16)
    return AblationConfig(rl=rl, seeds=(0,), timing_reps=2)


METRICS = ("success", "reward_success", "valid", "drift_kept", "distractor_shift", "drift_outside")


@dataclass
class ArmSummary:
    """Seed-aggregated figures of one arm: per metric, the mean and std curves and the per-seed final values."""

    arm: str
    steps: list[int]
    seeds: list[int]
    mean: dict[str, list[float]]  # metric -> mean over seeds at every evaluation step
    std: dict[str, list[float]]  # metric -> population std over seeds
    final: dict[str, list[float]]  # metric -> each seed's value at the last evaluation
    step_seconds: float
    mask_reflow_seconds: float
    steps_to_target: int | None = None
    skipped_steps: int = 0
    mask_fallbacks: int = 0

    @property
    def final_success(self) -> float:
        return self.mean["success"][-1]

    @property
    def final_drift(self) -> float:
        """The headline off-target drift (`drift_kept`) at the last evaluation, mean over seeds."""
        return self.mean["drift_kept"][-1]

    @property
    def success_mean(self) -> list[float]:
        return self.mean["success"]


@dataclass
class AblationSummary:
    """All arms, the target success rate (NFT's final) and the wall-clock of the run."""

    arms: dict[str, ArmSummary]
    target: float
    pretrained_success: float
    seconds: float
    config: dict = field(default_factory=dict)
    interleaved_step_seconds: dict[str, float] = field(default_factory=dict)  # median, arms interleaved

    @property
    def overhead(self) -> float | None:
        """Relative per-step time of CreFlow over NFT (masks + reflow) from the interleaved timing, else None."""
        t = self.interleaved_step_seconds
        if "nft" not in t or "creflow" not in t:
            return None
        return t["creflow"] / t["nft"] - 1.0


def _cache_key(world: WorldConfig, cfg: PretrainConfig) -> str:
    return hashlib.sha1(json.dumps([asdict(world), asdict(cfg)], sort_keys=True).encode()).hexdigest()[:10]


def pretrained_model(
    world: WorldConfig, cfg: PretrainConfig, cache_dir: Path | None, log=None, shipped: Path | None = None
) -> TinyVideoFlow:
    """Load the pretrained model of this exact config from `shipped` (read only) or `cache_dir`, else train it
    and save it in `cache_dir` (never in `shipped`: that is the checkout's tracked checkpoint directory)."""
    name = f"pretrained_{_cache_key(world, cfg)}.pt"
    for d in (shipped, cache_dir):
        if d is not None and (d / name).exists():
            model = TinyVideoFlow(world.frames, world.size, ch=cfg.ch)
            model.load_state_dict(torch.load(d / name, map_location="cpu", weights_only=True))
            return model.eval()
    t0 = time.perf_counter()
    model = pretrain(world, cfg, log_every=250 if log else 0)
    if log:
        log(f"pretrained in {time.perf_counter() - t0:.0f} s")
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = (cache_dir / name).with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(cache_dir / name)
    return model


def summarise(results: list[ArmResult], pretrained_success: float, seconds: float, config: dict) -> AblationSummary:
    """Aggregate curves over seeds; target = NFT's final mean success; steps for each arm to reach it."""
    arms: dict[str, ArmSummary] = {}
    for arm in dict.fromkeys(r.arm for r in results):
        rs = [r for r in results if r.arm == arm]
        curves = {m: np.array([[getattr(e, m) for e in r.evals] for r in rs], dtype=np.float64) for m in METRICS}
        arms[arm] = ArmSummary(
            arm=arm, steps=[e.step for e in rs[0].evals], seeds=[r.seed for r in rs],
            mean={m: np.nanmean(c, 0).tolist() for m, c in curves.items()},
            std={m: np.nanstd(c, 0).tolist() for m, c in curves.items()},
            final={m: c[:, -1].tolist() for m, c in curves.items()},
            step_seconds=float(np.mean([np.mean(r.step_seconds) for r in rs])),
            mask_reflow_seconds=float(np.mean([np.mean(r.mask_reflow_seconds) for r in rs])),
            skipped_steps=int(sum(r.skipped_steps for r in rs)),
            mask_fallbacks=int(sum(r.mask_fallbacks for r in rs)),
        )
    target = arms["nft"].final_success if "nft" in arms else float("nan")
    for a in arms.values():
        hit = [s for s, m in zip(a.steps, a.success_mean, strict=True) if s > 0 and m >= target - 1e-9]
        a.steps_to_target = hit[0] if hit else None
    return AblationSummary(arms, target, pretrained_success, seconds, config)


def _train_job(job: tuple) -> ArmResult:
    """One (arm, seed) run in a worker process (train_arm fixes its own thread count)."""
    arm, seed, base, world, rl, evalset = job
    return train_arm(arm, base, world, rl, seed, evalset)


def _train_all(cfg: AblationConfig, base: TinyVideoFlow, evalset: EvalSet, jobs: int, log=None) -> list[ArmResult]:
    """Every (seed, arm) run, in order; `jobs` > 1 spreads them over that many spawned processes."""
    pairs = [(arm, seed) for seed in cfg.seeds for arm in cfg.arms]
    if jobs <= 1 or len(pairs) <= 1:
        return [train_arm(arm, base, cfg.world, cfg.rl, seed, evalset, log) for arm, seed in pairs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    work = [(arm, seed, base, cfg.world, cfg.rl, evalset) for arm, seed in pairs]
    with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=mp.get_context("spawn")) as ex:
        results = []
        for r in ex.map(_train_job, work):
            if log:
                e = r.evals[-1]
                log(f"[{r.arm} s{r.seed}] done: success {e.success:.3f} valid {e.valid:.3f} drift {e.drift:.4f}")
            results.append(r)
    return results


def run_ablation(
    cfg: AblationConfig, out_dir: Path | None = None, log=None, jobs: int = 1, cache_dir: Path | None = None,
    shipped_cache: Path | None = None,
) -> AblationSummary:
    """Pretrain (or load from `shipped_cache` or `cache_dir`, default out_dir/_work), post-train every arm for
    every seed (`jobs` processes), summarise and write the outputs under `out_dir`."""
    t0 = time.perf_counter()
    cache = cache_dir or (out_dir / "_work" if out_dir else None)
    base = pretrained_model(cfg.world, cfg.pretrain, cache, log, shipped=shipped_cache)
    with deterministic(cfg.rl.threads):
        evalset = EvalSet(cfg.world, cfg.rl, base)
    results = _train_all(cfg, base, evalset, jobs, log)
    pre_success = results[0].evals[0].success if results else None
    timing = measure_overhead(base, cfg.world, cfg.rl, reps=cfg.timing_reps) if cfg.timing_reps else {}
    summary = summarise(results, pre_success or 0.0, time.perf_counter() - t0, asdict(cfg) | {"math": math_env()})
    summary.interleaved_step_seconds = timing
    if out_dir is not None:
        write_outputs(summary, results, out_dir)
    return summary


def math_env() -> dict[str, str | None]:
    """What decides the float results besides the code: torch version, the CPU kernels in use, thread settings."""
    import os

    keys = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **{k: os.environ.get(k) for k in keys}}


def write_outputs(summary: AblationSummary, results: list[ArmResult], out_dir: Path) -> None:
    """results.json (summary, per-seed finals), curves.csv (every eval of every seed), success.png, drift.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "target_success": None if math.isnan(summary.target) else summary.target,
        "pretrained_success": summary.pretrained_success,
        "creflow_overhead_vs_nft": summary.overhead,
        "interleaved_step_seconds": summary.interleaved_step_seconds,
        "seconds": summary.seconds,
        "arms": {k: asdict(v) for k, v in summary.arms.items()},
        "config": summary.config,
    }
    (out_dir / "results.json").write_text(json.dumps(data, indent=1))
    with open(out_dir / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arm", "seed", "step", *METRICS])
        for r in results:
            for e in r.evals:
                w.writerow([r.arm, r.seed, e.step, *(f"{getattr(e, m):.5f}" for m in METRICS)])
    _plots(summary, out_dir)


def _plots(summary: AblationSummary, out_dir: Path) -> None:
    """success.png (mean ± std over seeds) and drift.png (the headline drift) of every arm."""
    try:
        from .plot import line_plot
    except ImportError:  # pragma: no cover - OpenCV is a core dependency
        return
    arms = summary.arms.values()
    line_plot(
        out_dir / "success.png",
        {a.arm: (np.array(a.steps), np.array(a.mean["success"]), np.array(a.std["success"])) for a in arms},
        title="toy carry: held-out judge success vs training steps (mean ± std over seeds)",
        xlabel="training step", ylabel="success",
    )
    top = max(np.nanmax(a.mean["drift_kept"]) for a in arms) * 1.1 + 1e-6
    line_plot(
        out_dir / "drift.png",
        {a.arm: (np.array(a.steps), np.array(a.mean["drift_kept"]), None) for a in arms},
        title="off-target drift: mean |dpixel| on pairs the pretrained model already solves",
        xlabel="training step", ylabel="drift", ylim=(0.0, float(top)),
    )


def final_lines(summary: AblationSummary) -> list[str]:
    """The closing lines of `creflow toy`, one per arm: `<arm>: success NN.N%`."""
    return [f"{a}: success {100 * summary.arms[a].final_success:.1f}%" for a in ARMS if a in summary.arms]
