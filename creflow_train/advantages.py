"""Group-normalised advantages and group aggregation of violation masks (DiffusionNFT / GRPO style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

STD_MODES = ("global", "group")


@dataclass
class Advantages:
    """Per-rollout advantages; `valid` is False in groups whose rewards are all equal (skipped)."""

    advantages: torch.Tensor  # (B,) float, 0 where not valid
    valid: torch.Tensor  # (B,) bool
    group_mean: torch.Tensor  # (B,) the rollout's group mean reward
    std: torch.Tensor  # (B,) the std each rollout was divided by

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum().item())


def _group_index(groups: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Dense group index 0..G−1 per rollout and G."""
    import torch

    _, inv = torch.unique(groups.to(torch.long), return_inverse=True)
    return inv, (int(inv.max().item()) + 1 if inv.numel() else 0)


def group_advantages(
    rewards: torch.Tensor, groups: torch.Tensor, *, std: str = "global", eps: float = 1e-4, tol: float = 0.0
) -> Advantages:
    """A = (R − mean of the rollout's group) / (σ + eps), the per-prompt normalisation of DiffusionNFT.

    σ is the batch std of R ("global", DiffusionNFT's default) or the group's std ("group"); groups whose
    rewards all lie within `tol` of each other carry no advantage: A = 0 and valid = False.
    """
    import torch

    if std not in STD_MODES:
        raise ValueError(f"unknown std mode {std!r}; expected one of: {', '.join(STD_MODES)}")
    r = rewards.to(torch.float64).flatten()
    inv, n = _group_index(groups.flatten())
    count = torch.zeros(n, dtype=r.dtype).index_add_(0, inv, torch.ones_like(r))
    mean = torch.zeros(n, dtype=r.dtype).index_add_(0, inv, r) / count
    gmax = torch.full((n,), -torch.inf, dtype=r.dtype).scatter_reduce(0, inv, r, reduce="amax")
    gmin = torch.full((n,), torch.inf, dtype=r.dtype).scatter_reduce(0, inv, r, reduce="amin")
    valid_g = (gmax - gmin) > tol
    centred = r - mean[inv]
    if std == "global":
        sigma = r.std(unbiased=False).expand_as(r) if r.numel() > 1 else torch.zeros_like(r)
    else:
        var = torch.zeros(n, dtype=r.dtype).index_add_(0, inv, centred.square()) / count
        sigma = var.sqrt()[inv]
    valid = valid_g[inv]
    adv = torch.where(valid, centred / (sigma + eps), torch.zeros_like(r))
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    return Advantages(adv.to(out_dtype), valid, mean[inv].to(out_dtype), sigma.to(out_dtype))


def aggregate_group_masks(
    masks: torch.Tensor, groups: torch.Tensor, violated: torch.Tensor, *, reduce: str = "max"
) -> torch.Tensor:
    """Give every rollout without violations its group's aggregate of the violating rollouts' masks.

    masks (B, …) in [0, 1]; violated (B,) bool. The aggregate is the union ("max") or the mean ("mean") over
    the group's violating rollouts; violating rollouts keep their own mask, and in a group without any
    violating rollout every mask comes back all zero (such a group carries no advantage anyway).
    """
    import torch

    if reduce not in ("max", "mean"):
        raise ValueError(f"unknown reduce {reduce!r}; expected one of: max, mean")
    inv, n = _group_index(groups.flatten())
    flat = masks.reshape(masks.shape[0], -1).to(torch.float32)
    v = violated.to(torch.bool).flatten()
    if reduce == "max":
        src = torch.where(v[:, None], flat, torch.zeros_like(flat))
        idx = inv[:, None].expand_as(flat)
        agg = torch.zeros(n, flat.shape[1]).scatter_reduce(0, idx, src, reduce="amax")
    else:
        cnt = torch.zeros(n).index_add_(0, inv, v.to(torch.float32)).clamp_min(1)
        agg = torch.zeros(n, flat.shape[1]).index_add_(0, inv, flat * v[:, None]) / cnt[:, None]
    out = torch.where(v[:, None], flat, agg[inv])
    return out.reshape(masks.shape).to(masks.dtype)
