"""Online post-training of the toy flow model: NFT, credit-aware NFT, NFT + corrective reflow, and CreFlow.

Every arm starts from the same pretrained weights with the same seeds, prompts, noises and budget; they differ
only in the losses. One step: K rollouts for each of P prompts from the old policy with a deterministic Euler
solver (each rollout keeps its initial noise), score with the spec, group advantages, latent masks, losses,
AdamW with gradient clipping, then the old-policy EMA.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch

from ..advantages import Advantages, aggregate_group_masks, group_advantages
from ..losses import (
    CorrectiveTargets,
    corrective_reflow_loss,
    corrective_targets,
    credit_nft_loss,
    ema_update_,
    kl_anchor_loss,
    nft_loss,
    old_policy_decay,
    outside_anchor_loss,
    rf_interpolate,
)
from ..masks import pixel_to_latent_mask
from .judge import judge
from .model import PATCH, TinyVideoFlow, encode, full_video, sample
from .reward import ToyScore, score
from .world import WorldConfig, first_frames, sample_layouts

ARMS: dict[str, tuple[bool, bool]] = {  # name -> (credit-aware NFT, corrective reflow)
    "nft": (False, False),
    "credit-nft": (True, False),
    "reflow": (False, True),
    "creflow": (True, True),
}


@dataclass(frozen=True)
class RLConfig:
    """Budget and hyper-parameters shared by every arm."""

    steps: int = 40
    prompts: int = 4  # groups per step
    group: int = 8  # rollouts per prompt (K)
    sample_steps: int = 8
    lr: float = 1e-4  # full fine-tune of a tiny model; see the lr sweep in benchmarks/creflow_toy/README.md
    beta: float = 1.0
    adv_clip: float = 5.0
    kl_weight: float = 1e-4
    reflow_weight: float = 0.2  # reflow MSE is ~5x the adaptive NFT loss; this balances their scales
    reflow_close_diff: float | None = 0.5  # close M under |x̄0⁺ − x0⁻| > τ at blamed frames (None: off)
    reflow_max: int = 8  # at most this many negatives get a reflow row per step
    mask_floor: float = 0.0
    mask_norm: str = "mask"  # credit-aware NFT: normalise by ΣM ("mask") or by the element count ("numel")
    anchor_outside: float = 1.0  # credit-aware arms: weight of `outside_anchor_loss` (0 = the losses alone)
    decay_flat: int = 0
    decay_uprate: float = 0.001
    decay_cap: float = 0.5
    eval_every: int = 5
    eval_prompts: int = 64
    eval_noises: int = 2
    eval_seed: int = 12345


@dataclass
class EvalPoint:
    """Held-out evaluation at one training step."""

    step: int
    success: float  # strict judge
    reward_success: float  # every spec constraint holds (the training reward's view)
    valid: float  # frames are valid renders
    drift: float  # mean |Δpixel| outside every violation mask vs the pretrained sample from the same noise


@dataclass
class ArmResult:
    """Curves and timings of one arm for one seed."""

    arm: str
    seed: int
    evals: list[EvalPoint] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    mask_reflow_seconds: list[float] = field(default_factory=list)  # latent masks + reflow loss per step
    skipped_steps: int = 0


class EvalSet:
    """Fixed prompts and noises for evaluation, with the pretrained model's samples for drift."""

    def __init__(self, world: WorldConfig, cfg: RLConfig, pretrained: TinyVideoFlow) -> None:
        gen = torch.Generator().manual_seed(cfg.eval_seed)
        lay = sample_layouts(cfg.eval_prompts, world, gen)
        cond = encode(first_frames(lay, world, gen)[:, None])[:, :, 0]
        self.cond = cond.repeat_interleave(cfg.eval_noises, dim=0)
        h = world.size // PATCH
        self.noise = torch.randn(self.cond.shape[0], 3 * PATCH * PATCH, world.frames - 1, h, h, generator=gen)
        self.sample_steps = cfg.sample_steps
        self.base_video = full_video(self.cond, sample(pretrained, self.cond, self.noise, cfg.sample_steps))
        self.base_masks = score(self.base_video).masks

    def evaluate(self, model: TinyVideoFlow, step: int) -> EvalPoint:
        """Judge the model's samples on the fixed prompts/noises and measure off-target drift."""
        model.eval()
        video = full_video(self.cond, sample(model, self.cond, self.noise, self.sample_steps))
        verdict = judge(video)
        sc = score(video)
        blamed = torch.maximum(sc.masks, self.base_masks)[:, 1:]  # (B, T−1, H, W); frame 0 is the prompt
        outside = (1 - blamed)[:, :, None]
        diff = (video[:, 1:] - self.base_video[:, 1:]).abs()
        drift = ((diff * outside).sum() / (outside.expand_as(diff).sum()).clamp_min(1)).item()
        return EvalPoint(
            step, verdict.success.float().mean().item(), (~sc.violated).float().mean().item(),
            verdict.valid.float().mean().item(), drift,
        )


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
    loss: float | None  # None when skipped (no group had an advantage, or a non-finite loss)
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
    mask_seconds: float


def sample_rollouts(arm: str, pol: Policies, world: WorldConfig, cfg: RLConfig, gen: torch.Generator) -> ToyRollouts:
    """K rollouts per prompt from θ_old with the Euler solver, scored, with advantages and latent masks."""
    credit, reflow = ARMS[arm]
    h = world.size // PATCH
    n = cfg.prompts * cfg.group
    groups = torch.arange(cfg.prompts).repeat_interleave(cfg.group)
    lay = sample_layouts(cfg.prompts, world, gen)
    cond = encode(first_frames(lay, world, gen)[:, None])[:, :, 0].repeat_interleave(cfg.group, dim=0)
    noise = torch.randn(n, 3 * PATCH * PATCH, world.frames - 1, h, h, generator=gen)
    z0 = sample(pol.old, cond, noise, cfg.sample_steps)
    need_masks = credit or reflow
    sc = score(full_video(cond, z0), with_masks=need_masks)
    adv = group_advantages(sc.rewards, groups)
    t_mask = time.perf_counter()
    lmask = None
    if need_masks:
        lmask = pixel_to_latent_mask(sc.masks[:, 1:], temporal=1, spatial=PATCH)  # (B, T−1, h, w)
        lmask = aggregate_group_masks(lmask, groups, sc.violated)
    return ToyRollouts(groups, cond, noise, z0, sc, adv, lmask, time.perf_counter() - t_mask)


def rl_step(arm: str, pol: Policies, world: WorldConfig, cfg: RLConfig, step: int, gen: torch.Generator) -> StepInfo:
    """One step: sample K rollouts per prompt with θ_old, score, advantages, masks, losses, AdamW, EMA."""
    t_start = time.perf_counter()
    ro = sample_rollouts(arm, pol, world, cfg, gen)
    reward = ro.score.rewards.mean().item()
    if ro.adv.n_valid == 0:
        return StepInfo(reward, None, time.perf_counter() - t_start, ro.mask_seconds, {})
    loss, terms, mask_seconds = _step_loss(arm, pol, cfg, ro, gen)
    pol.opt.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):  # NaN/Inf guard: skip the update, report the step
        return StepInfo(reward, None, time.perf_counter() - t_start, mask_seconds, terms)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(pol.model.parameters(), 1.0)
    pol.opt.step()
    d = old_policy_decay(step, flat=cfg.decay_flat, uprate=cfg.decay_uprate, cap=cfg.decay_cap)
    ema_update_(list(pol.old.parameters()), list(pol.model.parameters()), d)
    return StepInfo(reward, loss.item(), time.perf_counter() - t_start, mask_seconds, terms)


def _step_loss(
    arm: str, pol: Policies, cfg: RLConfig, ro: ToyRollouts, gen: torch.Generator
) -> tuple[torch.Tensor, dict[str, float], float]:
    """The arm's loss on the valid rollouts (NFT rows and reflow rows in one forward), its terms, mask seconds."""
    credit, reflow = ARMS[arm]
    model, old, ref, lmask, mask_seconds = pol.model.train(), pol.old, pol.ref, ro.lmask, ro.mask_seconds
    keep = ro.adv.valid
    x0, c, a = ro.z0[keep], ro.cond[keep], ro.adv.advantages[keep]
    nb = x0.shape[0]
    t = torch.rand(nb, generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    x_t = rf_interpolate(x0, eps, t)
    ct = None
    if reflow:  # the reflow rows ride in the same forward pass as the NFT rows
        t_r = time.perf_counter()
        ct = corrective_targets(ro.z0, lmask, ro.groups, ~ro.score.violated & ro.adv.valid,
                                close_diff=cfg.reflow_close_diff)
        if len(ct) > cfg.reflow_max:
            pick = torch.randperm(len(ct), generator=gen)[: cfg.reflow_max].sort().values
            ct = CorrectiveTargets(ct.index[pick], ct.x0_star[pick], ct.mask[pick])
        tr = torch.rand(len(ct), generator=gen)
        x_r = rf_interpolate(ct.x0_star, ro.noise[ct.index], tr)
        mask_seconds += time.perf_counter() - t_r
        v_all = model(torch.cat([x_t, x_r]), torch.cat([t, tr]), torch.cat([c, ro.cond[ct.index]]))
        v_theta, v_r = v_all[:nb], v_all[nb:]
    else:
        v_theta = model(x_t, t, c)
    with torch.no_grad():
        v_old, v_ref = old(x_t, t, c), ref(x_t, t, c)
    kw = {"beta": cfg.beta, "clip": cfg.adv_clip}
    if credit:
        loss, terms = credit_nft_loss(v_theta, v_old, x0, eps, t, a, lmask[keep], mask_floor=cfg.mask_floor,
                                      mask_norm=cfg.mask_norm, **kw)
    else:
        loss, terms = nft_loss(v_theta, v_old, x0, eps, t, a, **kw)
    kl, kl_terms = kl_anchor_loss(v_theta, v_ref, cfg.kl_weight)
    loss = loss + kl
    terms.update(kl_terms)
    if credit and cfg.anchor_outside > 0:
        anchor, a_terms = outside_anchor_loss(v_theta, v_ref, lmask[keep], cfg.anchor_outside)
        loss = loss + anchor
        terms.update(a_terms)
    if ct is not None and len(ct):
        l_r, r_terms = corrective_reflow_loss(v_r, ct.x0_star, ro.noise[ct.index], ct.mask,
                                              mask_floor=cfg.mask_floor)
        loss = loss + cfg.reflow_weight * l_r
        terms.update(r_terms)
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
    """Post-train a copy of `pretrained` with one arm's losses; evaluate every `eval_every` steps."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of: {', '.join(ARMS)}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    pol = Policies.from_pretrained(pretrained, cfg.lr)
    result = ArmResult(arm, seed)
    result.evals.append(evalset.evaluate(pol.model, 0))
    for step in range(1, cfg.steps + 1):
        info = rl_step(arm, pol, world, cfg, step, gen)
        if info.loss is None:
            result.skipped_steps += 1
        if log:
            log(f"[{arm} s{seed}] step {step} reward {info.reward_mean:.3f} loss {info.loss}")
        result.step_seconds.append(info.seconds)
        result.mask_reflow_seconds.append(info.mask_reflow_seconds)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            result.evals.append(evalset.evaluate(pol.model, step))
            if log:
                e = result.evals[-1]
                log(f"[{arm} s{seed}] eval step {step}: success {e.success:.3f} valid {e.valid:.3f} "
                    f"drift {e.drift:.4f}")
    return result


def measure_overhead(
    pretrained: TinyVideoFlow, world: WorldConfig, cfg: RLConfig, reps: int = 6, seed: int = 0
) -> dict[str, float]:
    """Median seconds of one step per arm, arms interleaved on identical seeds so machine load cancels out."""
    import statistics

    pols = {arm: Policies.from_pretrained(pretrained, cfg.lr) for arm in ARMS}
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(reps):
        for arm in ARMS:
            gen = torch.Generator().manual_seed(seed + r)
            times[arm].append(rl_step(arm, pols[arm], world, cfg, r + 1, gen).seconds)
    return {arm: statistics.median(v) for arm, v in times.items()}
