"""Pixel-space violation masks (T, H, W) → latent masks (T′, H′, W′) through a video VAE's compression.

Causal video VAEs (Wan: temporal 4, spatial 8; LTX-Video: temporal 8, spatial 32) encode frame 0 alone and
every following `temporal` frames into one latent frame, so T′ = 1 + (T − 1) // temporal; spatially each
latent cell covers a `spatial`×`spatial` pixel block. A latent cell is blamed if any pixel it covers is
(max-pool), then optionally dilated by a few latent cells. The trainer passes its model family's factors.
`fill_empty_masks` gives a violating rollout with an empty mask its witness frames' whole extent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch


def latent_frames(n_frames: int, temporal: int = 4, causal: bool = True) -> int:
    """Number of latent frames: 1 + (T − 1) // temporal (causal) or ceil(T / temporal)."""
    if n_frames < 1 or temporal < 1:
        raise ValueError(f"need n_frames >= 1 and temporal >= 1, got {n_frames}, {temporal}")
    return 1 + (n_frames - 1) // temporal if causal else -(-n_frames // temporal)


def pixel_to_latent_mask(
    mask: torch.Tensor | np.ndarray,
    *,
    temporal: int = 4,
    spatial: int = 8,
    causal: bool = True,
    dilate: int = 0,
    dilate_time: int = 0,
) -> torch.Tensor:
    """Max-pool a (T, H, W) or (B, T, H, W) pixel mask to (…, T′, H′, W′) latent cells, then dilate.

    Causal: latent frame 0 ← pixel frame 0, latent frame k ≥ 1 ← frames 1 + temporal·(k − 1) … temporal·k;
    frames left over past 1 + temporal·(T′ − 1) fold into the last latent frame so no violation is dropped.
    Spatial sizes use ceil (partial border blocks count). `dilate` / `dilate_time` grow the mask by that many
    latent cells / frames (a (2d+1) max filter). Returns float32 in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    m = torch.as_tensor(mask).to(torch.float32)
    squeeze = m.dim() == 3
    if squeeze:
        m = m[None]
    if m.dim() != 4:
        raise ValueError(f"mask must be (T,H,W) or (B,T,H,W), got shape {tuple(m.shape)}")
    b, t, h, w = m.shape
    tl = latent_frames(t, temporal, causal)
    if causal:
        first, rest = m[:, :1], m[:, 1:]
        need = temporal * (tl - 1)
        if rest.shape[1] > need:  # fold leftovers into the last latent frame
            extra = rest[:, need:].amax(dim=1, keepdim=True)
            rest = rest[:, :need].clone()
            rest[:, need - 1 :] = torch.maximum(rest[:, need - 1 :], extra)
        pooled_t = [first]
        if tl > 1:
            pooled_t.append(rest.reshape(b, tl - 1, temporal, h, w).amax(dim=2))
        m = torch.cat(pooled_t, dim=1)
    else:
        pad = tl * temporal - t
        m = F.pad(m, (0, 0, 0, 0, 0, pad)).reshape(b, tl, temporal, h, w).amax(dim=2)
    if spatial > 1:
        m = F.max_pool2d(m, kernel_size=spatial, stride=spatial, ceil_mode=True)
    if dilate > 0 or dilate_time > 0:
        k = (2 * dilate_time + 1, 2 * dilate + 1, 2 * dilate + 1)
        m = F.max_pool3d(m[:, None], kernel_size=k, stride=1, padding=(dilate_time, dilate, dilate))[:, 0]
    return m[0] if squeeze else m


def fill_empty_masks(
    masks: torch.Tensor, violated: torch.Tensor, frames: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Give every violating rollout whose mask is empty the whole extent of its witness frames.

    masks (B, T, H, W) in [0, 1], violated (B,) bool, frames (B, T) bool (the frames the monitor's witnesses
    name; a row without any means every frame). An empty mask is what a vanished object or a failed grounding
    leaves; with mask_floor 0 such a negative would get no gradient while still counting in the batch mean.
    Returns the masks and the (B,) bool rows that were filled (for the log).
    """
    import torch

    frames = frames.to(torch.bool)
    frames = torch.where(frames.any(dim=1, keepdim=True), frames, torch.ones_like(frames))
    empty = violated.to(torch.bool) & ~(masks.reshape(masks.shape[0], -1) > 0).any(dim=1)
    fill = frames[:, :, None, None].to(masks.dtype).expand_as(masks)
    return torch.where(empty[:, None, None, None], fill, masks), empty


def witness_frames(results: Sequence[Any], n_frames: int) -> np.ndarray:
    """(B, T) bool: the frames named by the witnesses of each result's violated constraints.

    `results` are ltlreward `RewardResult`s (`RewardModel(...)(videos)[1]["results"]`); frame indices are the
    scored frames' (those of `RewardResult.masks`). A failed result (no constraints) names no frame.
    """
    import numpy as np

    out = np.zeros((len(results), n_frames), bool)
    for i, res in enumerate(results):
        for c in getattr(res, "constraints", ()):
            if not c.satisfied and c.witness is not None:
                idx = [f for f in c.witness.frames if 0 <= f < n_frames]
                out[i, idx] = True
    return out
