"""Colour-threshold grounder for the toy world and the atom signals of specs/toy_carry.ltl (torch, vectorised).

Each entity is the set of pixels within `tol` (L∞ in RGB) of its palette colour; its centre is the mean pixel
coordinate (row, col), NaN when absent. The goal is a static region taken from the first frame. Signals are
robustness values in [−1, 1] per frame, keyed by canonical atom strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .world import PALETTE

if TYPE_CHECKING:
    import torch

ENTITIES = ("gripper", "block", "goal", "blue", "yellow")


@dataclass
class ToyObservations:
    """Per-entity pixel masks (B, T, H, W), centres (B, T, 2) (row, col; NaN if absent) and areas (B, T)."""

    masks: dict[str, torch.Tensor]
    centres: dict[str, torch.Tensor]
    areas: dict[str, torch.Tensor]
    goal_box: torch.Tensor  # (B, 4) row0, col0, row1, col1 (inclusive pixel indices; NaN if no goal)


def ground(videos: torch.Tensor, tol: float = 0.25) -> ToyObservations:
    """Segment every entity by colour in videos (B, T, 3, H, W) in [0, 1]."""
    import torch

    b, t, _, h, w = videos.shape
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    masks, centres, areas = {}, {}, {}
    for name in ENTITIES:
        colour = torch.tensor(PALETTE[name]).view(1, 1, 3, 1, 1)
        m = (videos - colour).abs().amax(dim=2) < tol  # (B, T, H, W)
        if name == "goal":  # a static region: what frame 0 shows, at every frame
            m = m[:, :1].expand(b, t, h, w)
        mf = m.float()
        area = mf.sum(dim=(2, 3))
        cen = torch.stack([(mf * rows).sum(dim=(2, 3)), (mf * cols).sum(dim=(2, 3))], dim=-1) / area[..., None]
        masks[name], centres[name], areas[name] = m, cen, area  # centre NaN where area == 0
    g0 = masks["goal"][:, 0]
    big = torch.tensor(float(max(h, w)))
    any_r, any_c = g0.any(dim=2), g0.any(dim=1)  # (B, H), (B, W)
    idx_h, idx_w = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    r0 = torch.where(any_r, idx_h, big).amin(dim=1)
    r1 = torch.where(any_r, idx_h, -big).amax(dim=1)
    c0 = torch.where(any_c, idx_w, big).amin(dim=1)
    c1 = torch.where(any_c, idx_w, -big).amax(dim=1)
    box = torch.stack([r0, c0, r1, c1], dim=1)
    box = torch.where(g0.flatten(1).any(dim=1)[:, None], box, torch.full_like(box, float("nan")))
    return ToyObservations(masks, centres, areas, box)


def _rho(x: torch.Tensor) -> torch.Tensor:
    """Clip to [−1, 1]; NaN (an entity not seen) becomes −1 (the atom is not established)."""
    import torch

    return torch.nan_to_num(x, nan=-1.0).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class Thresholds:
    """Geometry thresholds in pixels (the training reward and the stricter held-out judge use different ones)."""

    touch: float = 2.5  # centre distance for touching
    hold: float = 0.75  # tolerance of the gripper-above-block pose
    at_margin: float = 0.0  # block centre this far inside the goal box
    move: float = 0.5  # speed (px/frame) above which an entity is moving
    visible: float = 0.625  # fraction of an object's 4 pixels that must show its colour (area ≥ 3)


def speed(centres: torch.Tensor) -> torch.Tensor:
    """Per-frame displacement (B, T) of (B, T, 2) centres; frame 0 uses frame 1's; NaN stays NaN."""
    import torch

    d = (centres[:, 1:] - centres[:, :-1]).norm(dim=-1)
    return torch.cat([d[:, :1], d], dim=1)


def signals(obs: ToyObservations, th: Thresholds = Thresholds()) -> dict[str, torch.Tensor]:
    """Robustness signals (B, T) for every atom of specs/toy_carry.ltl."""
    import torch

    g, blk = obs.centres["gripper"], obs.centres["block"]
    dist = (g - blk).norm(dim=-1)
    off = g - blk  # held pose: one object size above → (−2, 0)
    pose_err = torch.maximum((off[..., 0] + 2).abs(), off[..., 1].abs())
    box = obs.goal_box[:, None]  # (B, 1, 4)
    margin = torch.minimum(
        torch.minimum(blk[..., 0] - box[..., 0], box[..., 2] - blk[..., 0]),
        torch.minimum(blk[..., 1] - box[..., 1], box[..., 3] - blk[..., 1]),
    )
    out = {
        "touching(gripper,block)": _rho((th.touch - dist) / th.touch),
        "holding(gripper,block)": _rho((th.hold - pose_err) / th.hold),
        "at(block,goal)": _rho((margin - th.at_margin) / 1.5),
    }
    for name in ("gripper", "block", "blue", "yellow"):  # a solid, full-size square: area ≥ 3 of 4 pixels
        out[f"visible({name})"] = ((obs.areas[name] / 4.0).clamp(max=1.0) - th.visible) / (1.0 - th.visible)
    for name in ("block", "blue", "yellow"):
        v = speed(obs.centres[name])
        out[f"moving({name})"] = torch.nan_to_num((v - th.move) / 1.0, nan=1.0).clamp(-1.0, 1.0)
    return out
