"""The CreFlow objective for rectified-flow video models: DiffusionNFT, credit-aware NFT, corrective reflow,
KL and outside anchors, composed once in `creflow_objective` under one `LossConfig`.

Conventions (rectified flow, as in DiffusionNFT): x_t = (1 − t)·x0 + t·ε and velocity target v = ε − x0, with
t ∈ [0, 1] per sample. Every tensor argument is batched on dim 0 (B, …); `t`, advantages and group ids are
(B,). Every loss is a pure function returning `(loss, terms)`, where `terms` holds detached scalar
diagnostics for logging. Per-sample reductions are means over all non-batch elements (masked losses: weighted
means normalised by the sample's mask sum), then a mean over the batch. `creflow_train.trainer` (`creflow
train`) and `creflow_train.toy.train` (`creflow toy`) both call `creflow_objective`; neither composes terms.

Scale: the NFT terms are DiffusionNFT's (`scripts/train_nft_sd3.py`): C/β × [r·L⁺ + (1 − r)·L⁻], so
`kl_weight`, `anchor_outside`, `reflow_weight` and `grad_clip` mean what they mean in their configs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

X0_WEIGHT_MIN = 1e-5  # lower clip of the adaptive x0-space weight (DiffusionNFT)
MASK_SUM_MIN = 1e-8  # guard against empty masks in normalisations
LOSS_MODES = ("nft", "credit-nft", "reflow", "creflow")
ADV_MODES = ("all", "positive_only", "negative_only", "one_only", "binary")  # DiffusionNFT's train.adv_mode
MASK_NORMS = ("mask", "numel")
STD_MODES = ("global", "group")


@dataclass(frozen=True)
class LossConfig:
    """Every choice the CreFlow objective makes; `creflow toy` and `creflow train` embed this one dataclass.

    The defaults are the toy ablation's validated settings (benchmarks/creflow_toy/README.md).
    - mode: nft (DiffusionNFT) | credit-nft (NFT weighted by the violation masks) | reflow (NFT + corrective
      reflow) | creflow (credit-nft + reflow).
    - beta, adv_clip (C), adv_mode, adaptive: DiffusionNFT's β, advantage clip, `train.adv_mode` (all |
      positive_only | negative_only | one_only | binary) and x0-space adaptive weighting.
    - keep_zero_advantage: rows of groups whose rewards are all equal stay in the NFT batch with A = 0 (r = ½,
      which pulls θ towards θ_old), as DiffusionNFT keeps them; False drops them (the precursor's skip).
    - own_mask_r_max: credit modes: inside its own violation mask a violating rollout's r is at most this
      (½: never a positive where the spec blames it; 0: always a negative there); outside it r is unchanged.
    - mask_floor, mask_norm: credit weight outside the mask and the normalisation (ΣW or the element count).
    - kl_weight: λ_KL·mean‖v_θ − v_ref‖² (DiffusionNFT's train.beta, 1e-4), not scaled by C/β (as theirs).
    - anchor_outside: λ·Σ(1 − M)‖v_θ − v_ref‖²/Σ(1 − M) in any mode whose rows carry masks (0 = off).
    - reflow_weight, reflow_close_diff, reflow_max: corrective reflow's weight, the closing threshold of its
      masks (latent units; see `corrective_targets`), and the most negatives that get a reflow row per step.
    - adv_std: the std of the group advantages, batch-global (DiffusionNFT's default) or per group.
    """

    mode: str = "creflow"
    beta: float = 1.0
    adv_clip: float = 5.0
    adv_mode: str = "all"
    adaptive: bool = True
    keep_zero_advantage: bool = True
    own_mask_r_max: float = 0.5
    mask_floor: float = 0.0
    mask_norm: str = "mask"
    kl_weight: float = 1e-4
    anchor_outside: float = 5.0
    reflow_weight: float = 1.0
    reflow_close_diff: float | None = 0.5
    reflow_max: int = 8
    adv_std: str = "global"

    def __post_init__(self) -> None:
        choices = {"mode": LOSS_MODES, "adv_mode": ADV_MODES, "mask_norm": MASK_NORMS, "adv_std": STD_MODES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not one of: {', '.join(allowed)}")
        for key in ("beta", "adv_clip"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: must be > 0, got {getattr(self, key)}")
        for key in ("mask_floor", "own_mask_r_max"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key}: must be in [0, 1], got {getattr(self, key)}")
        for key in ("kl_weight", "anchor_outside", "reflow_weight", "reflow_max"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if self.reflow_close_diff is not None and self.reflow_close_diff < 0:
            raise ValueError(f"reflow_close_diff: must be >= 0 or null, got {self.reflow_close_diff}")

    @property
    def credit(self) -> bool:
        """NFT weighted by the violation masks (credit-nft, creflow)."""
        return self.mode in ("credit-nft", "creflow")

    @property
    def reflow(self) -> bool:
        """Corrective reflow rows are part of the objective (reflow, creflow with a positive weight)."""
        return self.mode in ("reflow", "creflow") and self.reflow_weight > 0

    @property
    def needs_masks(self) -> bool:
        """Whether the objective reads violation masks (credit weights, reflow targets or the outside anchor)."""
        return self.credit or self.reflow or self.anchor_outside > 0

    @property
    def needs_ref(self) -> bool:
        """Whether the reference policy's velocity is needed (KL or outside anchor)."""
        return self.kl_weight > 0 or self.anchor_outside > 0

    @property
    def nft_scale(self) -> float:
        """DiffusionNFT's C/β factor on the NFT terms."""
        return self.adv_clip / self.beta


LOSS_KEYS = tuple(f.name for f in fields(LossConfig))


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a (B,) tensor as (B, 1, …, 1) so it broadcasts against `like`."""
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))


def _flat_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over every non-batch dimension: (B, …) -> (B,)."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def rf_interpolate(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rectified-flow point x_t = (1 − t)·x0 + t·ε (t is (B,))."""
    tb = _bcast(t, x0)
    return (1 - tb) * x0 + tb * eps


def rf_velocity(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Rectified-flow velocity target v = ε − x0."""
    return eps - x0


def optimality_probability(advantages: torch.Tensor, clip: float = 5.0, mode: str = "all") -> torch.Tensor:
    """DiffusionNFT's r = clamp(½ + ½·Â/C, 0, 1), Â = clip(A, −C, C) reshaped by `mode` (their train.adv_mode):

    all: Â; positive_only: max(Â, 0); negative_only: min(Â, 0); one_only: [Â > 0]; binary: sign(Â).
    """
    import torch

    if clip <= 0:
        raise ValueError(f"clip must be > 0, got {clip}")
    a = advantages.clamp(-clip, clip)
    if mode == "positive_only":
        a = a.clamp_min(0)
    elif mode == "negative_only":
        a = a.clamp_max(0)
    elif mode == "one_only":
        a = (a > 0).to(a.dtype)
    elif mode == "binary":
        a = torch.sign(a)
    elif mode != "all":
        raise ValueError(f"unknown adv_mode {mode!r}; expected one of: {', '.join(ADV_MODES)}")
    return (0.5 + 0.5 * a / clip).clamp(0, 1)


def element_weights(mask: torch.Tensor | None, like: torch.Tensor, mask_floor: float = 0.0) -> torch.Tensor:
    """Per-element credit weights W = floor + (1 − floor)·M broadcast to `like` (all ones without a mask).

    M ∈ [0, 1] may omit channel dims (e.g. (B, T, H, W) against (B, C, T, H, W)): a missing dim 1 is added.
    """
    if not 0.0 <= mask_floor <= 1.0:
        raise ValueError(f"mask_floor must be in [0, 1], got {mask_floor}")
    import torch

    if mask is None:
        return torch.ones_like(like)
    return mask_floor + (1.0 - mask_floor) * _expand_mask(mask, like)


def _expand_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B, T, …) or (B, C, T, …) mask as `like`'s dtype and shape (a missing channel dim 1 is inserted)."""
    m = mask.to(like.dtype)
    if m.dim() == like.dim() - 1:
        m = m.unsqueeze(1)
    return m.expand_as(like)


def _weighted_mean(err2: torch.Tensor, w: torch.Tensor, norm: str = "mask") -> torch.Tensor:
    """Per-sample Σ W·err / Σ W ("mask") or Σ W·err / #elements ("numel"): (B, …) -> (B,)."""
    if norm == "numel":
        return _flat_sum(w * err2) / (err2[0].numel() if err2.shape[0] else 1)
    if norm != "mask":
        raise ValueError(f"unknown mask normalisation {norm!r}; expected one of: {', '.join(MASK_NORMS)}")
    return _flat_sum(w * err2) / _flat_sum(w).clamp_min(MASK_SUM_MIN)


def _nft_per_sample(
    v_theta: torch.Tensor, v_old: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
    r: torch.Tensor, w: torch.Tensor, *, beta: float, scale: float, adaptive: bool, mask_norm: str,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """scale·[r·e⁺²/w⁺ + (1 − r)·e⁻²/w⁻] reduced per sample (B,) with weights W, and (B,) diagnostics.

    r is (B,) or element-wise like v_θ; e± = v± − v (w± = 1) or, adaptive, x̂0± − x0 = t·(v − v±) with
    w± = sg(max(Σ W·|e±| / Σ W, 1e-5)) (a mean inside the mask whatever `mask_norm`).
    """
    import torch

    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    v_old = v_old.detach()
    v_pos = (1 - beta) * v_old + beta * v_theta
    v_neg = (1 + beta) * v_old - beta * v_theta
    if adaptive:
        x_t, tb = rf_interpolate(x0, eps, t), _bcast(t, x0)
        e_pos, e_neg = (x_t - tb * v_pos) - x0, (x_t - tb * v_neg) - x0
        w_pos, w_neg = (_weighted_mean(e.abs(), w).detach().clamp_min(X0_WEIGHT_MIN) for e in (e_pos, e_neg))
    else:
        v = rf_velocity(x0, eps)
        e_pos, e_neg = v_pos - v, v_neg - v
        w_pos = w_neg = torch.ones(x0.shape[0], dtype=x0.dtype, device=x0.device)
    rb = r if r.dim() == v_theta.dim() else _bcast(r, v_theta)
    mix = rb * e_pos.square() / _bcast(w_pos, x0) + (1 - rb) * e_neg.square() / _bcast(w_neg, x0)
    per_sample = scale * _weighted_mean(mix, w, mask_norm)
    diag = {
        "loss": per_sample.detach(),
        "pos": (_weighted_mean(e_pos.square(), w, mask_norm) / w_pos).detach(),
        "neg": (_weighted_mean(e_neg.square(), w, mask_norm) / w_neg).detach(),
        "r_mean": r.detach().reshape(r.shape[0], -1).mean(dim=1),
        "x0_weight_pos": w_pos,
        "x0_weight_neg": w_neg,
        "mask_frac": w.detach().reshape(w.shape[0], -1).mean(dim=1),
        "v_theta_old_mse": (v_theta.detach() - v_old).square().reshape(v_theta.shape[0], -1).mean(dim=1),
    }
    return per_sample, diag


def _means(diag: dict[str, torch.Tensor], prefix: str = "") -> dict[str, float]:
    """Batch means of per-sample diagnostics as floats, keys prefixed."""
    return {prefix + k: float(v.mean()) for k, v in diag.items()}


def nft_loss(
    v_theta: torch.Tensor,
    v_old: torch.Tensor,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: torch.Tensor,
    advantages: torch.Tensor,
    *,
    beta: float = 1.0,
    clip: float = 5.0,
    adaptive: bool = True,
    mask: torch.Tensor | None = None,
    mask_floor: float = 0.0,
    mask_norm: str = "mask",
    adv_mode: str = "all",
) -> tuple[torch.Tensor, dict[str, float]]:
    """DiffusionNFT loss (Zheng et al. 2025) at DiffusionNFT's scale, optionally credit-aware through a mask M.

    v = ε − x0, r = `optimality_probability(A, C, adv_mode)`, v⁺ = (1 − β)·v_old + β·v_θ,
    v⁻ = (1 + β)·v_old − β·v_θ, W = floor + (1 − floor)·M (W ≡ 1 without a mask), and per sample
        L± = Σ W·‖v± − v‖² / Σ W                                     (adaptive = False)
        L± = Σ W·‖x̂0± − x0‖² / Σ W / sg(max(Σ W·|x̂0± − x0| / Σ W, 1e-5)),  x̂0± = x_t − t·v±  (adaptive)
    loss = C/β · mean_b [ r·L⁺ + (1 − r)·L⁻ ] — exactly `scripts/train_nft_sd3.py`'s policy loss
    mean((r·L⁺/β + (1 − r)·L⁻/β)·C) (their adaptive form; the plain form is the paper's velocity loss).
    mask_norm = "numel" divides the two sums by the element count instead of Σ W (the x0 weight stays a
    mean inside the mask), so a small mask gets a proportionally small update instead of a concentrated one.
    v_old must carry no gradient (the old policy is frozen for the step); with mask_floor = 0 the gradient is
    exactly zero wherever M = 0.
    """
    r = optimality_probability(advantages, clip, adv_mode)
    w = element_weights(mask, v_theta, mask_floor)
    per_sample, diag = _nft_per_sample(v_theta, v_old, x0, eps, t, r, w, beta=beta, scale=clip / beta,
                                       adaptive=adaptive, mask_norm=mask_norm)
    return per_sample.mean(), _means(diag, "nft_")


def credit_nft_loss(
    v_theta: torch.Tensor,
    v_old: torch.Tensor,
    x0: torch.Tensor,
    eps: torch.Tensor,
    t: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float = 1.0,
    clip: float = 5.0,
    adaptive: bool = True,
    mask_floor: float = 0.0,
    mask_norm: str = "mask",
    adv_mode: str = "all",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Credit-aware NFT: `nft_loss` with every element weighted by the rollout's latent violation mask M.

    Per sample L± = Σ W·e±² / Σ W with W = floor + (1 − floor)·M, so regions no constraint blames get no
    update when mask_floor = 0 (∂loss/∂v_θ = 0 wherever M = 0). With M ≡ 1 it equals `nft_loss` exactly.
    """
    loss, terms = nft_loss(
        v_theta, v_old, x0, eps, t, advantages, beta=beta, clip=clip, adaptive=adaptive, mask=mask,
        mask_floor=mask_floor, mask_norm=mask_norm, adv_mode=adv_mode,
    )
    return loss, {k.replace("nft_", "credit_nft_", 1): v for k, v in terms.items()}


def own_mask_probability(
    r: torch.Tensor, mask: torch.Tensor, violated: torch.Tensor, like: torch.Tensor, r_max: float = 0.5
) -> torch.Tensor:
    """Element-wise r: inside a violating rollout's own mask M, r ← (1 − M)·r + M·min(r, r_max); else r.

    r (B,), mask (B, …) (the rollout's own mask for a violating row), violated (B,) bool → shaped like `like`.
    With r_max = ½ a rollout the spec blames is never a positive where it is blamed (a graded reward above
    the group mean would otherwise pull towards exactly that content); its negative r < ½ is kept.
    """
    m = _expand_mask(mask, like) * _bcast(violated.to(like.dtype), like)
    rb = _bcast(r.to(like.dtype), like)
    return (1 - m) * rb + m * rb.clamp_max(r_max)


@dataclass
class CorrectiveTargets:
    """Corrected clean targets for the negatives of groups that have positives (the reflow batch)."""

    index: torch.Tensor  # (N,) long: rows of the original batch (the negatives)
    x0_star: torch.Tensor  # (N, …) M ⊙ mean(x0⁺) + (1 − M) ⊙ x0⁻
    mask: torch.Tensor  # (N, …) the negatives' masks M, as given

    def __len__(self) -> int:
        return int(self.index.numel())


def corrective_targets(
    x0: torch.Tensor,
    mask: torch.Tensor,
    groups: torch.Tensor,
    positive: torch.Tensor,
    *,
    close_diff: float | None = None,
    select: torch.Tensor | None = None,
) -> CorrectiveTargets:
    """x0* = M ⊙ mean(x0⁺ of the group) + (1 − M) ⊙ x0⁻ for every negative in a group with ≥ 1 positive.

    `groups` (B,) int ids, `positive` (B,) bool (the spec satisfied: see `reflow_negatives`); `select` (B,)
    bool, when given, keeps only those negatives (e.g. `reflow_negatives`' capped subset);
    `mask` (B, …) in [0, 1], broadcastable against x0 after inserting a channel dim if it has one dim fewer
    (x0 (B, C, T, …) with mask (B, T, …)). With `close_diff` = τ and such a channel-less mask, M is first
    closed under the difference to the positives at the blamed frames: M ← max(M, [max_c |x̄0⁺ − x0⁻| > τ]
    at every frame where M is non-zero), so an object the mask blames is not pasted in twice (once where the
    positives have it, once where the negative left it) — the composite stays a coherent scene.
    """
    import torch

    groups = groups.to(torch.long)
    positive = positive.to(torch.bool)
    _, inv = torch.unique(groups, return_inverse=True)
    n_groups = int(inv.max().item()) + 1 if inv.numel() else 0
    flat = x0.reshape(x0.shape[0], -1)
    pos_f = positive.to(x0.dtype)
    sums = torch.zeros(n_groups, flat.shape[1], dtype=x0.dtype, device=x0.device)
    sums.index_add_(0, inv, flat * pos_f[:, None])
    counts = torch.zeros(n_groups, dtype=x0.dtype, device=x0.device).index_add_(0, inv, pos_f)
    pos_mean = (sums / counts.clamp_min(1)[:, None]).reshape(n_groups, *x0.shape[1:])
    negative = (~positive) & (counts[inv] > 0)
    if select is not None:
        negative &= select.to(device=negative.device, dtype=torch.bool)
    index = torch.nonzero(negative, as_tuple=False).flatten()
    m = mask[index].to(x0.dtype)
    target = pos_mean[inv[index]]
    if close_diff is not None:
        if m.dim() != x0.dim() - 1 or m.dim() < 3:
            raise ValueError("close_diff needs x0 (B, C, T, …) and a channel-less mask (B, T, …)")
        differs = (target - x0[index]).abs().amax(dim=1) > close_diff  # (N, T, …)
        blamed_frames = m.flatten(2).amax(dim=2) > 0  # (N, T)
        shape = blamed_frames.shape + (1,) * (m.dim() - 2)
        m = torch.maximum(m, (differs & blamed_frames.reshape(shape)).to(m.dtype))
    mb = m.unsqueeze(1) if m.dim() == x0.dim() - 1 else m
    x0_star = mb * target + (1 - mb) * x0[index]
    return CorrectiveTargets(index=index, x0_star=x0_star.detach(), mask=m.to(mask.dtype))


def _reflow_per_sample(
    v_theta: torch.Tensor, x0_star: torch.Tensor, eps: torch.Tensor, mask: torch.Tensor, mask_floor: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ W·‖v_θ − (ε⁻ − x0*)‖² / Σ W per sample (B,) and the (B,) mask fraction."""
    target = rf_velocity(x0_star.detach(), eps)
    w = element_weights(mask, v_theta, mask_floor)
    per_sample = _weighted_mean((v_theta - target).square(), w)
    return per_sample, {"reflow_loss": per_sample.detach(), "reflow_mask_frac": w.reshape(w.shape[0], -1).mean(1)}


def corrective_reflow_loss(
    v_theta: torch.Tensor,
    x0_star: torch.Tensor,
    eps: torch.Tensor,
    mask: torch.Tensor,
    *,
    mask_floor: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Corrective reflow: regress the negative's own noise ε⁻ onto the corrected target x0*.

    v_θ must be the prediction at x_t = (1 − t)·x0* + t·ε⁻ (see `rf_interpolate`): the rollout's own noise,
    because the sampler's coupling (ε⁻ ↦ its video) is what reflow corrects; per sample
    L = Σ W·‖v_θ − (ε⁻ − x0*)‖² / Σ W with W = floor + (1 − floor)·M; loss = mean_b L (0 for an empty batch).
    """
    if v_theta.shape[0] == 0:
        zero = v_theta.sum() * 0.0
        return zero, {"reflow_loss": 0.0, "reflow_n": 0.0, "reflow_mask_frac": 0.0}
    per_sample, diag = _reflow_per_sample(v_theta, x0_star, eps, mask, mask_floor)
    return per_sample.mean(), {**_means(diag), "reflow_n": float(v_theta.shape[0])}


def _kl_per_sample(v_theta: torch.Tensor, v_ref: torch.Tensor) -> torch.Tensor:
    """mean‖v_θ − v_ref‖² over each sample's elements (B,)."""
    return (v_theta - v_ref.detach()).square().reshape(v_theta.shape[0], -1).mean(dim=1)


def kl_anchor_loss(
    v_theta: torch.Tensor, v_ref: torch.Tensor, weight: float = 1e-4
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL anchor to the frozen reference policy: λ·mean‖v_θ − v_ref‖² (Gaussian-path KL up to a factor)."""
    mse = _kl_per_sample(v_theta, v_ref).mean()
    loss = weight * mse
    return loss, {"kl_loss": loss.item(), "kl_mse": mse.item()}


def _anchor_per_sample(v_theta: torch.Tensor, v_ref: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Σ (1 − M)·‖v_θ − v_ref‖² / Σ (1 − M) per sample (B,) and the kept fraction (B,)."""
    keep = 1.0 - element_weights(mask, v_theta)
    per_sample = _flat_sum(keep * (v_theta - v_ref.detach()).square()) / _flat_sum(keep).clamp_min(MASK_SUM_MIN)
    return per_sample, keep.reshape(keep.shape[0], -1).mean(dim=1)


def outside_anchor_loss(
    v_theta: torch.Tensor, v_ref: torch.Tensor, mask: torch.Tensor, weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Credit-aware anchor: λ·mean_b [Σ (1 − M)·‖v_θ − v_ref‖² / Σ (1 − M)] — keep what no constraint blames.

    The complement of the credit-aware NFT loss: with masks, NFT's gradient is zero outside M, but the shared
    network still changes its output there; this term holds the unblamed region to the reference policy.
    A sample whose mask covers everything contributes 0. M may omit the channel dim (see `element_weights`).
    """
    per_sample, keep = _anchor_per_sample(v_theta, v_ref, mask)
    loss = weight * per_sample.mean()
    return loss, {"anchor_loss": loss.item(), "anchor_keep_frac": keep.mean().item()}


@dataclass
class PolicyBatch:
    """NFT rows of the objective: predictions at x_t = (1 − t)·x0 + t·ε with fresh forward-process noise ε."""

    v_theta: torch.Tensor  # (B, C, T, …) θ's velocity (with gradient)
    v_old: torch.Tensor  # (B, C, T, …) θ_old's velocity (no gradient)
    x0: torch.Tensor  # (B, C, T, …) the rollouts' clean latents
    eps: torch.Tensor  # (B, C, T, …) the forward-process noise x_t was built from
    t: torch.Tensor  # (B,) training times
    advantages: torch.Tensor  # (B,) group-normalised advantages (0 in zero-advantage groups)
    v_ref: torch.Tensor | None = None  # (B, C, T, …) reference velocity (needed for KL / outside anchor)
    mask: torch.Tensor | None = None  # (B, T, …) latent masks (group-aggregated; own mask on violating rows)
    violated: torch.Tensor | None = None  # (B,) bool: the rollout violates some constraint

    def __len__(self) -> int:
        return int(self.x0.shape[0])


@dataclass
class ReflowBatch:
    """Corrective-reflow rows: v_θ at x_t = (1 − t)·x0* + t·ε⁻ with the negatives' own rollout noise ε⁻."""

    v_theta: torch.Tensor  # (N, C, T, …)
    x0_star: torch.Tensor  # (N, C, T, …) corrected targets
    eps: torch.Tensor  # (N, C, T, …) each negative's initial rollout noise
    mask: torch.Tensor  # (N, T, …) the (closed) masks of the targets

    def __len__(self) -> int:
        return int(self.x0_star.shape[0])


def _policy_per_sample(cfg: LossConfig, b: PolicyBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """C/β·NFT (credit-weighted in credit modes) + λ_KL·KL + λ·outside anchor per sample (B,), and diagnostics."""
    if (cfg.credit or cfg.anchor_outside > 0) and b.mask is None:
        raise ValueError(f"loss mode {cfg.mode!r} with anchor_outside {cfg.anchor_outside:g} needs masks")
    if cfg.needs_ref and b.v_ref is None:
        raise ValueError("kl_weight > 0 or anchor_outside > 0 needs the reference velocity v_ref")
    r = optimality_probability(b.advantages.to(b.x0.dtype), cfg.adv_clip, cfg.adv_mode)
    w = element_weights(b.mask if cfg.credit else None, b.v_theta, cfg.mask_floor)
    if cfg.credit and b.violated is not None:
        r = own_mask_probability(r, b.mask, b.violated, b.v_theta, cfg.own_mask_r_max)
    per_sample, nft = _nft_per_sample(b.v_theta, b.v_old, b.x0, b.eps, b.t, r, w, beta=cfg.beta,
                                      scale=cfg.nft_scale, adaptive=cfg.adaptive, mask_norm=cfg.mask_norm)
    prefix = "credit_nft_" if cfg.credit else "nft_"
    diag = {prefix + k: v for k, v in nft.items()}
    if cfg.kl_weight > 0:
        kl = _kl_per_sample(b.v_theta, b.v_ref)
        per_sample = per_sample + cfg.kl_weight * kl
        diag |= {"kl_loss": cfg.kl_weight * kl.detach(), "kl_mse": kl.detach()}
    if cfg.anchor_outside > 0:
        anchor, keep = _anchor_per_sample(b.v_theta, b.v_ref, b.mask)
        per_sample = per_sample + cfg.anchor_outside * anchor
        diag |= {"anchor_loss": cfg.anchor_outside * anchor.detach(), "anchor_keep_frac": keep}
    return per_sample, diag


def creflow_objective(
    cfg: LossConfig,
    policy: PolicyBatch | None = None,
    reflow: ReflowBatch | None = None,
    *,
    n_policy: int | None = None,
    n_reflow: int | None = None,
    tensor_terms: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The one CreFlow objective: Σ_policy rows [C/β·NFT + λ_KL·KL + λ·anchor] / n_policy
    + reflow_weight · Σ_reflow rows L_reflow / n_reflow.

    n_policy / n_reflow default to the rows given; a caller that splits a batch into chunks (micro-batches,
    ranks) passes the whole batch's counts, so the chunks' losses — and every returned term, each a chunk's
    contribution to a whole-batch mean — add up to the whole batch's. Which rows enter is the caller's
    (`policy_rows`, `reflow_negatives`); which terms, their weights and scale are `cfg`'s alone.
    `tensor_terms` returns the terms as detached 0-d tensors instead of floats: no device→host sync per call
    (the trainer converts them once per step).
    """
    n_p = n_policy or (len(policy) if policy is not None else 0)
    n_r = n_reflow or (len(reflow) if reflow is not None else 0)

    def share(v: torch.Tensor, n: int) -> torch.Tensor | float:
        return v.sum() / n if tensor_terms else float(v.sum()) / n

    loss, terms = None, {}
    if policy is not None and len(policy):
        per_sample, diag = _policy_per_sample(cfg, policy)
        loss = per_sample.sum() / n_p
        terms |= {k: share(v, n_p) for k, v in diag.items()}
    if cfg.reflow and reflow is not None and len(reflow):
        per_r, diag_r = _reflow_per_sample(reflow.v_theta, reflow.x0_star, reflow.eps, reflow.mask, cfg.mask_floor)
        l_r = cfg.reflow_weight * per_r.sum() / n_r
        loss = l_r if loss is None else loss + l_r
        diag_r["reflow_loss"] = cfg.reflow_weight * diag_r["reflow_loss"]  # like kl_loss: its share of the loss
        terms |= {k: share(v, n_r) for k, v in diag_r.items()}
    if loss is None:
        raise ValueError("creflow_objective needs policy or reflow rows")
    return loss, terms


def policy_rows(valid: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """Indices (N,) of the rows the NFT terms train on: every row (DiffusionNFT keeps zero-advantage groups,
    A = 0) or, with keep_zero_advantage False, only rows of groups whose rewards differ."""
    import torch

    keep = torch.ones_like(valid, dtype=torch.bool) if cfg.keep_zero_advantage else valid.to(torch.bool)
    return torch.nonzero(keep, as_tuple=False).flatten()


def reflow_negatives(
    groups: torch.Tensor, satisfied: torch.Tensor, max_rows: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B,) bool: the rollouts that get a corrective-reflow row — negatives (some constraint violated) in groups
    with at least one positive (every constraint satisfied: `all_satisfied`, not "above the group mean").

    With max_rows > 0 and more candidates, a uniform subset of max_rows drawn from `generator` (one randperm
    over the whole batch's candidates, so every data-parallel rank draws the same subset).
    """
    import torch

    sat = satisfied.to(torch.bool)
    _, inv = torch.unique(groups.to(torch.long), return_inverse=True)
    has_pos = torch.zeros(int(inv.max()) + 1 if inv.numel() else 0, dtype=torch.bool)
    has_pos[inv[sat]] = True
    chosen = ~sat & has_pos[inv]
    cand = torch.nonzero(chosen, as_tuple=False).flatten()
    if 0 < max_rows < len(cand):
        pick = cand[torch.randperm(len(cand), generator=generator)[:max_rows]]
        chosen = torch.zeros_like(chosen)
        chosen[pick] = True
    return chosen


def old_policy_decay(step: int, *, flat: int = 0, uprate: float = 0.001, cap: float = 0.5) -> float:
    """EMA decay d of θ_old ← d·θ_old + (1 − d)·θ: 0 for step < flat, then min(uprate·(step − flat), cap).

    d = 0 copies the current policy into the old one (DiffusionNFT's schedule: flat 0, uprate 1e-3, cap 0.5).
    """
    if step < 0 or flat < 0 or uprate < 0 or not 0.0 <= cap < 1.0:
        raise ValueError(f"invalid decay schedule: step={step} flat={flat} uprate={uprate} cap={cap}")
    if step < flat:
        return 0.0
    return min(uprate * (step - flat), cap)


def ema_update_(old: list[torch.Tensor], new: list[torch.Tensor], decay: float) -> None:
    """In place θ_old ← d·θ_old + (1 − d)·θ over paired parameter lists (the one impure helper here)."""
    import torch

    if len(old) != len(new):
        raise ValueError(f"parameter lists differ in length: {len(old)} vs {len(new)}")
    with torch.no_grad():
        for o, n in zip(old, new, strict=True):
            o.mul_(decay).add_(n.detach(), alpha=1.0 - decay)
