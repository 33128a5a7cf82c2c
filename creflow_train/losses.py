"""CreFlow losses for rectified-flow video models: DiffusionNFT, credit-aware NFT, corrective reflow, KL.

Conventions (rectified flow, as in DiffusionNFT): x_t = (1 − t)·x0 + t·ε and velocity target v = ε − x0, with
t ∈ [0, 1] per sample. Every tensor argument is batched on dim 0 (B, …); `t`, advantages and group ids are
(B,). Every loss is a pure function returning `(loss, terms)`, where `terms` holds detached scalar
diagnostics for logging. Per-sample reductions are means over all non-batch elements (masked losses: weighted
means normalised by the sample's mask sum), then a mean over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

X0_WEIGHT_MIN = 1e-5  # lower clip of the adaptive x0-space weight (DiffusionNFT)
MASK_SUM_MIN = 1e-8  # guard against empty masks in normalisations


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


def optimality_probability(advantages: torch.Tensor, clip: float = 5.0) -> torch.Tensor:
    """DiffusionNFT's r = ½ + ½·clip(A, −C, C)/C ∈ [0, 1] from group-normalised advantages A."""
    if clip <= 0:
        raise ValueError(f"clip must be > 0, got {clip}")
    return 0.5 + 0.5 * advantages.clamp(-clip, clip) / clip


def element_weights(mask: torch.Tensor | None, like: torch.Tensor, mask_floor: float = 0.0) -> torch.Tensor:
    """Per-element credit weights W = floor + (1 − floor)·M broadcast to `like` (all ones without a mask).

    M ∈ [0, 1] may omit channel dims (e.g. (B, T, H, W) against (B, C, T, H, W)): a missing dim 1 is added.
    """
    if not 0.0 <= mask_floor <= 1.0:
        raise ValueError(f"mask_floor must be in [0, 1], got {mask_floor}")
    import torch

    if mask is None:
        return torch.ones_like(like)
    m = mask.to(like.dtype)
    if m.dim() == like.dim() - 1:
        m = m.unsqueeze(1)
    m = m.expand_as(like)
    return mask_floor + (1.0 - mask_floor) * m


MASK_NORMS = ("mask", "numel")


def _weighted_mean(err2: torch.Tensor, w: torch.Tensor, norm: str = "mask") -> torch.Tensor:
    """Per-sample Σ W·err / Σ W ("mask") or Σ W·err / #elements ("numel"): (B, …) -> (B,)."""
    if norm == "numel":
        return _flat_sum(w * err2) / (err2[0].numel() if err2.shape[0] else 1)
    if norm != "mask":
        raise ValueError(f"unknown mask normalisation {norm!r}; expected one of: {', '.join(MASK_NORMS)}")
    return _flat_sum(w * err2) / _flat_sum(w).clamp_min(MASK_SUM_MIN)


def _branch_losses(
    v_pos: torch.Tensor, v_neg: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
    w: torch.Tensor, adaptive: bool, mask_norm: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample L⁺, L⁻ (B,) and their x0-space weights (ones unless `adaptive`); see `nft_loss`."""
    import torch

    if not adaptive:
        v = rf_velocity(x0, eps)
        ones = torch.ones(x0.shape[0], dtype=x0.dtype, device=x0.device)
        return _weighted_mean((v_pos - v).square(), w, mask_norm), _weighted_mean((v_neg - v).square(), w, mask_norm), \
            ones, ones
    tb = _bcast(t, x0)
    x_t = rf_interpolate(x0, eps, t)
    out = []
    for v_pm in (v_pos, v_neg):
        e = (x_t - tb * v_pm) - x0  # x̂0± − x0 = t·(v − v±)
        weight = _weighted_mean(e.abs(), w).detach().clamp_min(X0_WEIGHT_MIN)
        out.append((_weighted_mean(e.square(), w, mask_norm) / weight, weight))
    (l_pos, w_pos), (l_neg, w_neg) = out
    return l_pos, l_neg, w_pos, w_neg


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
) -> tuple[torch.Tensor, dict[str, float]]:
    """DiffusionNFT loss (Zheng et al. 2025), optionally credit-aware through a violation mask M.

    v = ε − x0, r = ½ + ½·clip(A, −C, C)/C, v⁺ = (1 − β)·v_old + β·v_θ, v⁻ = (1 + β)·v_old − β·v_θ,
    W = floor + (1 − floor)·M (W ≡ 1 without a mask), and per sample
        L± = Σ W·‖v± − v‖² / Σ W                                     (adaptive = False)
        L± = Σ W·‖x̂0± − x0‖² / Σ W / sg(max(Σ W·|x̂0± − x0| / Σ W, 1e-5)),  x̂0± = x_t − t·v±  (adaptive)
    loss = mean_b [ r·L⁺ + (1 − r)·L⁻ ].
    mask_norm = "numel" divides the two sums by the element count instead of Σ W (the x0 weight stays a
    mean inside the mask), so a small mask gets a proportionally small update instead of a concentrated one.
    v_old must carry no gradient (the old policy is frozen for the step); with mask_floor = 0 the gradient is
    exactly zero wherever M = 0. DiffusionNFT further scales by C/β, a constant absorbed by the learning rate.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    v_old = v_old.detach()
    r = optimality_probability(advantages, clip)
    v_pos = (1 - beta) * v_old + beta * v_theta
    v_neg = (1 + beta) * v_old - beta * v_theta
    w = element_weights(mask, v_theta, mask_floor)
    l_pos, l_neg, w_pos, w_neg = _branch_losses(v_pos, v_neg, x0, eps, t, w, adaptive, mask_norm)
    per_sample = r * l_pos + (1 - r) * l_neg
    loss = per_sample.mean()
    terms = {
        "nft_loss": loss.item(),
        "nft_pos": l_pos.mean().item(),
        "nft_neg": l_neg.mean().item(),
        "nft_r_mean": r.mean().item(),
        "nft_x0_weight_pos": w_pos.mean().item(),
        "nft_x0_weight_neg": w_neg.mean().item(),
        "nft_mask_frac": (w.reshape(w.shape[0], -1).mean(dim=1)).mean().item(),
        "nft_v_theta_old_mse": (v_theta.detach() - v_old).square().mean().item(),
    }
    return loss, terms


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
) -> tuple[torch.Tensor, dict[str, float]]:
    """Credit-aware NFT: `nft_loss` with every element weighted by the rollout's latent violation mask M.

    Per sample L± = Σ W·e±² / Σ W with W = floor + (1 − floor)·M, so regions no constraint blames get no
    update when mask_floor = 0 (∂loss/∂v_θ = 0 wherever M = 0). With M ≡ 1 it equals `nft_loss` exactly.
    """
    loss, terms = nft_loss(
        v_theta, v_old, x0, eps, t, advantages, beta=beta, clip=clip, adaptive=adaptive, mask=mask,
        mask_floor=mask_floor, mask_norm=mask_norm,
    )
    return loss, {k.replace("nft_", "credit_nft_", 1): v for k, v in terms.items()}


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
) -> CorrectiveTargets:
    """x0* = M ⊙ mean(x0⁺ of the group) + (1 − M) ⊙ x0⁻ for every negative in a group with ≥ 1 positive.

    `groups` (B,) int ids, `positive` (B,) bool (e.g. reward above the group mean or the spec satisfied);
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
    index = torch.nonzero((~positive) & (counts[inv] > 0), as_tuple=False).flatten()
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


def corrective_reflow_loss(
    v_theta: torch.Tensor,
    x0_star: torch.Tensor,
    eps: torch.Tensor,
    mask: torch.Tensor,
    *,
    mask_floor: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Corrective reflow: regress the negative's own noise ε⁻ onto the corrected target x0*.

    v_θ must be the prediction at x_t = (1 − t)·x0* + t·ε⁻ (see `rf_interpolate`); per sample
    L = Σ W·‖v_θ − (ε⁻ − x0*)‖² / Σ W with W = floor + (1 − floor)·M; loss = mean_b L (0 for an empty batch).
    """
    if v_theta.shape[0] == 0:
        zero = v_theta.sum() * 0.0
        return zero, {"reflow_loss": 0.0, "reflow_n": 0.0, "reflow_mask_frac": 0.0}
    target = rf_velocity(x0_star.detach(), eps)
    w = element_weights(mask, v_theta, mask_floor)
    per_sample = _weighted_mean((v_theta - target).square(), w)
    loss = per_sample.mean()
    terms = {
        "reflow_loss": loss.item(),
        "reflow_n": float(v_theta.shape[0]),
        "reflow_mask_frac": w.reshape(w.shape[0], -1).mean(dim=1).mean().item(),
    }
    return loss, terms


def kl_anchor_loss(
    v_theta: torch.Tensor, v_ref: torch.Tensor, weight: float = 1e-4
) -> tuple[torch.Tensor, dict[str, float]]:
    """KL anchor to the frozen reference policy: λ·mean‖v_θ − v_ref‖² (Gaussian-path KL up to a factor)."""
    mse = (v_theta - v_ref.detach()).square().mean()
    loss = weight * mse
    return loss, {"kl_loss": loss.item(), "kl_mse": mse.item()}


def outside_anchor_loss(
    v_theta: torch.Tensor, v_ref: torch.Tensor, mask: torch.Tensor, weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """Credit-aware anchor: λ·mean_b [Σ (1 − M)·‖v_θ − v_ref‖² / Σ (1 − M)] — keep what no constraint blames.

    The complement of the credit-aware NFT loss: with masks, NFT's gradient is zero outside M, but the shared
    network still changes its output there; this term holds the unblamed region to the reference policy.
    A sample whose mask covers everything contributes 0. M may omit the channel dim (see `element_weights`).
    """
    keep = 1.0 - element_weights(mask, v_theta)
    diff2 = (v_theta - v_ref.detach()).square()
    per_sample = _flat_sum(keep * diff2) / _flat_sum(keep).clamp_min(MASK_SUM_MIN)
    loss = weight * per_sample.mean()
    return loss, {"anchor_loss": loss.item(), "anchor_keep_frac": keep.mean().item()}


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
