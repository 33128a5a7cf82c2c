"""Online post-training of the toy flow model with the one CreFlow objective (`creflow_train.losses`).

Every arm starts from the same pretrained weights with the same seeds, prompts, noises and budget; they differ
only in their `LossConfig` (see ARMS). One step: K rollouts for each of P prompts from θ_old with a
deterministic Euler solver (each rollout keeps its initial noise), score with the spec, group advantages,
latent masks (an empty mask of a violating rollout falls back to its witness frames), fresh forward-process
noise for the NFT rows and the rollouts' own noise for the reflow rows, `creflow_objective`, AdamW with
gradient clipping, then the old-policy EMA. Runs are deterministic: a fixed thread count and
`torch.use_deterministic_algorithms` inside `train_arm`, every draw from one seeded generator.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch

from ..advantages import Advantages, aggregate_group_masks, group_advantages
from ..losses import (
    LossConfig,
    PolicyBatch,
    ReflowBatch,
    corrective_targets,
    creflow_objective,
    ema_update_,
    old_policy_decay,
    policy_rows,
    reflow_negatives,
    rf_interpolate,
)
from ..masks import fill_empty_masks, pixel_to_latent_mask
from .evaluate import EvalPoint, EvalSet
from .model import PATCH, TinyVideoFlow, encode, full_video, sample
from .reward import ToyScore, score
from .world import WorldConfig, first_frames, sample_layouts

__all__ = ["ARMS", "EvalPoint", "EvalSet", "RLConfig", "arm_loss", "measure_overhead", "rl_step", "train_arm"]

# arm -> (what it is, its LossConfig from the run's base LossConfig); the first four are `creflow toy`'s default
ARMS: dict[str, tuple[str, Callable[[LossConfig], LossConfig]]] = {
    "nft": ("DiffusionNFT as configured: NFT + KL, no masks",
            lambda b: replace(b, mode="nft", anchor_outside=0.0)),
    "credit-nft": ("credit-aware NFT + KL + outside anchor", lambda b: replace(b, mode="credit-nft")),
    "reflow": ("NFT + corrective reflow + KL + outside anchor", lambda b: replace(b, mode="reflow")),
    "creflow": ("credit-aware NFT + corrective reflow + KL + outside anchor", lambda b: replace(b, mode="creflow")),
    "nft-anchor": ("NFT + KL + the same outside anchor", lambda b: replace(b, mode="nft")),
    "nft-kl": ("NFT + whole-video KL at the outside anchor's weight (matched KL)",
               lambda b: replace(b, mode="nft", anchor_outside=0.0,
                                 kl_weight=b.anchor_outside if b.anchor_outside > 0 else b.kl_weight)),
}
DEFAULT_ARMS = ("nft", "credit-nft", "reflow", "creflow")


def arm_loss(arm: str, base: LossConfig) -> LossConfig:
    """The LossConfig arm `arm` trains with, derived from the run's base config."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of: {', '.join(ARMS)}")
    return ARMS[arm][1](base)


@dataclass(frozen=True)
class RLConfig:
    """Budget and hyper-parameters shared by every arm; the loss composition is `loss` (one LossConfig)."""

    steps: int = 40
    prompts: int = 4  # groups per step
    group: int = 8  # rollouts per prompt (K)
    sample_steps: int = 8
    lr: float = 1e-4  # full fine-tune of a tiny model; see the lr sweep in benchmarks/creflow_toy/README.md
    loss: LossConfig = field(default_factory=LossConfig)
    grad_clip: float = 1.0  # DiffusionNFT's max_grad_norm
    decay_flat: int = 0
    decay_uprate: float = 0.001
    decay_cap: float = 0.5
    eval_every: int = 5
    eval_prompts: int = 32  # × eval_noises = 64 fixed (prompt, noise) pairs; one pair is 1.6 pp
    eval_noises: int = 2
    eval_seed: int = 12345
    threads: int = 1  # torch CPU threads inside a run (fixed, so float sums do not depend on the machine's count)


@dataclass
class ArmResult:
    """Curves and timings of one arm for one seed."""

    arm: str
    seed: int
    evals: list[EvalPoint] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    mask_reflow_seconds: list[float] = field(default_factory=list)  # latent masks + reflow targets per step
    losses: list[float | None] = field(default_factory=list)  # objective value per step (None: skipped)
    skipped_steps: int = 0
    mask_fallbacks: int = 0  # violating rollouts whose empty mask became their witness frames


@dataclass
class Policies:
    """The trainable policy θ, the old policy θ_old (samples; EMA of θ) and the frozen reference θ_ref."""

    model: TinyVideoFlow
    old: TinyVideoFlow
    ref: TinyVideoFlow
    opt: torch.optim.Optimizer

    @classmethod
    def from_pretrained(cls, pretrained: TinyVideoFlow, lr: float) -> Policies:
        model = copy.deepcopy(pretrained).train()
        old = copy.deepcopy(pretrained).eval().requires_grad_(False)
        ref = copy.deepcopy(pretrained).eval().requires_grad_(False)
        return cls(model, old, ref, torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0))


@dataclass
class StepInfo:
    """What one post-training step did and cost."""

    reward_mean: float
    loss: float | None  # None when skipped (no row to train on, or a non-finite loss)
    seconds: float
    mask_reflow_seconds: float  # latent masks + group aggregation + reflow targets (the rest is in `seconds`)
    terms: dict[str, float]


@dataclass
class ToyRollouts:
    """One step's groups: prompts, noises, clean latents, scores, advantages and the group-aggregated masks."""

    groups: torch.Tensor  # (B,) prompt index
    cond: torch.Tensor  # (B, 12, h, w) latent prompt frames
    noise: torch.Tensor  # (B, 12, T−1, h, w) each rollout's initial noise
    z0: torch.Tensor  # (B, 12, T−1, h, w) clean latents sampled with θ_old
    score: ToyScore
    adv: Advantages
    lmask: torch.Tensor | None  # (B, T−1, h, w) latent masks (None when the arm needs none)
    n_fallback: int  # violating rollouts whose empty mask was filled from their witness frames
    mask_seconds: float


@contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Fixed torch thread count and deterministic algorithms for the block; the caller's settings come back."""
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def sample_rollouts(
    lc: LossConfig, pol: Policies, world: WorldConfig, cfg: RLConfig, gen: torch.Generator
) -> ToyRollouts:
    """K rollouts per prompt from θ_old with the Euler solver, scored, with advantages and latent masks."""
    h = world.size // PATCH
    n = cfg.prompts * cfg.group
    groups = torch.arange(cfg.prompts).repeat_interleave(cfg.group)
    lay = sample_layouts(cfg.prompts, world, gen)
    cond = encode(first_frames(lay, world, gen)[:, None])[:, :, 0].repeat_interleave(cfg.group, dim=0)
    noise = torch.randn(n, 3 * PATCH * PATCH, world.frames - 1, h, h, generator=gen)
    z0 = sample(pol.old, cond, noise, cfg.sample_steps)
    sc = score(full_video(cond, z0), with_masks=lc.needs_masks)
    adv = group_advantages(sc.rewards, groups, std=lc.adv_std)
    t_mask = time.perf_counter()
    lmask, n_fallback = None, 0
    if lc.needs_masks:
        pix, filled = fill_empty_masks(sc.masks[:, 1:], sc.violated, sc.witness_frames[:, 1:])
        lmask = pixel_to_latent_mask(pix, temporal=1, spatial=PATCH)  # (B, T−1, h, w)
        lmask = aggregate_group_masks(lmask, groups, sc.violated)
        n_fallback = int(filled.sum())
    return ToyRollouts(groups, cond, noise, z0, sc, adv, lmask, n_fallback, time.perf_counter() - t_mask)


def rl_step(arm: str, pol: Policies, world: WorldConfig, cfg: RLConfig, step: int, gen: torch.Generator) -> StepInfo:
    """One step: sample K rollouts per prompt with θ_old, score, advantages, masks, the objective, AdamW, EMA."""
    lc = arm_loss(arm, cfg.loss)
    t_start = time.perf_counter()
    ro = sample_rollouts(lc, pol, world, cfg, gen)
    reward = ro.score.rewards.mean().item()
    rows = policy_rows(ro.adv.valid, lc)
    if len(rows) == 0:
        return StepInfo(reward, None, time.perf_counter() - t_start, ro.mask_seconds, {})
    loss, terms, mask_seconds = _step_loss(lc, pol, ro, rows, gen)
    terms["mask_fallback_n"] = float(ro.n_fallback)
    pol.opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):  # NaN/Inf guard: skip the update, report the step
        return StepInfo(reward, None, time.perf_counter() - t_start, mask_seconds, terms)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(pol.model.parameters(), cfg.grad_clip)
    pol.opt.step()
    d = old_policy_decay(step, flat=cfg.decay_flat, uprate=cfg.decay_uprate, cap=cfg.decay_cap)
    ema_update_(list(pol.old.parameters()), list(pol.model.parameters()), d)
    return StepInfo(reward, loss.item(), time.perf_counter() - t_start, mask_seconds, terms)


def _step_loss(
    lc: LossConfig, pol: Policies, ro: ToyRollouts, rows: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, dict[str, float], float]:
    """`creflow_objective` on the NFT rows (fresh noise) and reflow rows (own noise) in one forward pass."""
    model, mask_seconds = pol.model.train(), ro.mask_seconds
    x0, c, a = ro.z0[rows], ro.cond[rows], ro.adv.advantages[rows]
    nb = x0.shape[0]
    t = torch.rand(nb, generator=gen)
    eps = torch.randn(x0.shape, generator=gen)  # fresh forward-process noise (DiffusionNFT), not the rollout's
    x_t = rf_interpolate(x0, eps, t)
    ct = None
    if lc.reflow:  # the reflow rows ride in the same forward pass as the NFT rows
        t_r = time.perf_counter()
        positive = ~ro.score.violated
        chosen = reflow_negatives(ro.groups, positive, lc.reflow_max, gen)
        ct = corrective_targets(ro.z0, ro.lmask, ro.groups, positive, close_diff=lc.reflow_close_diff, select=chosen)
        tr = torch.rand(len(ct), generator=gen)
        x_r = rf_interpolate(ct.x0_star, ro.noise[ct.index], tr)
        mask_seconds += time.perf_counter() - t_r
        v_all = model(torch.cat([x_t, x_r]), torch.cat([t, tr]), torch.cat([c, ro.cond[ct.index]]))
        v_theta, v_r = v_all[:nb], v_all[nb:]
    else:
        v_theta = model(x_t, t, c)
    with torch.no_grad():
        v_old = pol.old(x_t, t, c)
        v_ref = pol.ref(x_t, t, c) if lc.needs_ref else None
    mask = ro.lmask[rows] if ro.lmask is not None else None
    pb = PolicyBatch(v_theta, v_old, x0, eps, t, a, v_ref, mask, ro.score.violated[rows])
    rb = ReflowBatch(v_r, ct.x0_star, ro.noise[ct.index], ct.mask) if ct is not None and len(ct) else None
    loss, terms = creflow_objective(lc, pb, rb)
    terms["reflow_n"] = float(len(ct)) if ct is not None else 0.0
    return loss, terms, mask_seconds


def train_arm(
    arm: str,
    pretrained: TinyVideoFlow,
    world: WorldConfig,
    cfg: RLConfig,
    seed: int,
    evalset: EvalSet,
    log=None,
) -> ArmResult:
    """Post-train a copy of `pretrained` with one arm's objective; evaluate every `eval_every` steps.

    Deterministic: cfg.threads torch threads and deterministic algorithms for the run, every draw from a
    generator seeded with `seed`, so two runs of the same (arm, seed, config) give identical curves.
    """
    arm_loss(arm, cfg.loss)  # validate the name before any work
    with deterministic(cfg.threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        pol = Policies.from_pretrained(pretrained, cfg.lr)
        result = ArmResult(arm, seed)
        result.evals.append(evalset.evaluate(pol.model, 0))
        for step in range(1, cfg.steps + 1):
            info = rl_step(arm, pol, world, cfg, step, gen)
            _record(result, info, step, cfg, evalset, pol, log)
    return result


def _record(result: ArmResult, info: StepInfo, step: int, cfg: RLConfig, evalset: EvalSet, pol: Policies,
            log) -> None:
    """Append one step's figures to `result`, evaluating when the step is an evaluation step."""
    result.skipped_steps += info.loss is None
    result.losses.append(info.loss)
    result.mask_fallbacks += int(info.terms.get("mask_fallback_n", 0))
    result.step_seconds.append(info.seconds)
    result.mask_reflow_seconds.append(info.mask_reflow_seconds)
    if log:
        log(f"[{result.arm} s{result.seed}] step {step} reward {info.reward_mean:.3f} loss {info.loss}")
    if step % cfg.eval_every == 0 or step == cfg.steps:
        result.evals.append(evalset.evaluate(pol.model, step))
        if log:
            e = result.evals[-1]
            log(f"[{result.arm} s{result.seed}] eval step {step}: success {e.success:.3f} valid {e.valid:.3f} "
                f"drift {e.drift_kept:.4f}")


def measure_overhead(
    pretrained: TinyVideoFlow, world: WorldConfig, cfg: RLConfig, reps: int = 6, seed: int = 0,
    arms: tuple[str, ...] = DEFAULT_ARMS,
) -> dict[str, float]:
    """Median seconds of one step per arm, arms interleaved on identical seeds so machine load cancels out."""
    import statistics

    pols = {arm: Policies.from_pretrained(pretrained, cfg.lr) for arm in arms}
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    with deterministic(cfg.threads):
        for r in range(reps):
            for arm in arms:
                gen = torch.Generator().manual_seed(seed + r)
                times[arm].append(rl_step(arm, pols[arm], world, cfg, r + 1, gen).seconds)
    return {arm: statistics.median(v) for arm, v in times.items()}
