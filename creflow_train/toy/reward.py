"""The toy world's training reward: specs/toy_carry.ltl monitored by `ltlreward` over colour-grounded signals.

One thin entry point, `score(videos)`: rewards are the spec's weighted fraction of satisfied constraints and
the violation mask of a video is the union of its witnessed entities' pixel regions at the witnessed frames,
dilated in space and time (a missing object's region is taken from its neighbouring frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .grounder import ENTITIES, Thresholds, ground, signals

if TYPE_CHECKING:
    import torch

SPEC_PATH = Path(__file__).resolve().parents[2] / "specs" / "toy_carry.ltl"
REGION_TOL = 0.45  # looser colour tolerance for mask regions, so smeared objects are still covered
FULL_AREA = 3  # an object region with fewer pixels is (partly) missing: borrow its neighbouring frames' region


def entity_regions(videos: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pixel regions (B, T, H, W) bool of every entity, for violation masks.

    Where an object is (partly) missing at a frame, its region there is the union of its regions at the
    neighbouring frames: a block that vanished is blamed where it was and where it reappears, not nowhere.
    """
    import torch
    import torch.nn.functional as F

    regions = ground(videos, tol=REGION_TOL).masks
    out = {}
    for name, m in regions.items():
        missing = m.flatten(2).sum(dim=2) < FULL_AREA  # (B, T)
        if name == "goal" or not missing.any():
            out[name] = m
            continue
        b, t, h, w = m.shape
        near = F.max_pool1d(m.permute(0, 2, 3, 1).reshape(-1, 1, t).float(), 3, stride=1, padding=1)
        near = near.reshape(b, h, w, t).permute(0, 3, 1, 2) > 0
        out[name] = torch.where(missing[:, :, None, None], near, m)
    return out


@dataclass
class ToyScore:
    """Rewards (B,), per-constraint verdicts (B, C), violation masks (B, T, H, W) in [0, 1] (or None) and the
    frames (B, T) the violated constraints' witnesses name."""

    rewards: torch.Tensor
    satisfied: torch.Tensor
    masks: torch.Tensor | None
    constraint_names: tuple[str, ...]
    witness_frames: torch.Tensor | None = None

    @property
    def violated(self) -> torch.Tensor:
        """(B,) bool: some constraint fails."""
        return ~self.satisfied.all(dim=1)


@lru_cache(maxsize=4)
def _spec(path: str):
    from ltlreward import load_spec

    return load_spec(path)


def score(
    videos: torch.Tensor,
    *,
    with_masks: bool = True,
    dilate: int = 1,
    dilate_time: int = 1,
    thresholds: Thresholds = Thresholds(),
    spec_path: str | Path = SPEC_PATH,
) -> ToyScore:
    """Score videos (B, T, 3, H, W) in [0, 1] against the toy spec; masks only when `with_masks`."""
    import numpy as np
    import torch

    from ltlreward import monitor

    spec = _spec(str(spec_path))
    obs = ground(videos)
    sig = {k: v.numpy().astype(np.float32) for k, v in signals(obs, thresholds).items()}
    res = monitor(spec, sig)
    weights = torch.tensor([c.weight for c in res.constraints], dtype=torch.float32)
    sat = torch.from_numpy(np.asarray(res.satisfied)).to(torch.bool)  # (B, C)
    rewards = (sat.float() * weights).sum(dim=1) / weights.sum()
    masks = witness = None
    if with_masks:
        masks, witness = _masks(videos, res, sat, dilate, dilate_time)
    return ToyScore(rewards, sat, masks, tuple(c.name for c in res.constraints), witness)


def _masks(videos: torch.Tensor, res, sat: torch.Tensor, dilate: int, dilate_time: int):
    """Violation masks (B, T, H, W) and witness frames (B, T) of a monitor result (see `score`)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    b, t, _, h, w = videos.shape
    frames = {e: torch.zeros(b, t, dtype=torch.bool) for e in ENTITIES}
    witness = torch.zeros(b, t, dtype=torch.bool)
    for j, c in enumerate(res.constraints):
        for key, m in c.atom_masks.items():
            mt = torch.from_numpy(np.asarray(m))
            witness |= mt & ~sat[:, j : j + 1]
            for e in c.atom_entities.get(key, ()):
                frames[e] |= mt
    regions = entity_regions(videos)
    masks = torch.zeros(b, t, h, w)
    for e, fr in frames.items():
        if fr.any():
            if dilate_time > 0:
                k = 2 * dilate_time + 1
                fr = F.max_pool1d(fr.float()[:, None], k, stride=1, padding=dilate_time)[:, 0] > 0
            masks = torch.maximum(masks, (regions[e] & fr[:, :, None, None]).float())
    if dilate > 0:
        masks = F.max_pool2d(masks, 2 * dilate + 1, stride=1, padding=dilate)
    return masks, witness
