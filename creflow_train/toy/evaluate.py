"""Held-out evaluation of a toy policy: judge success on fixed (prompt, noise) pairs and three drift measures.

Drift compares the policy's sample with the pretrained model's sample from the same prompt and noise:
- `drift_kept` (the headline off-target drift): mean |Δpixel| over frames 1…T−1 on the pairs whose pretrained
  sample the judge already passes — what worked should not change; no loss term targets this quantity;
- `distractor_shift`: the distractors' largest displacement from frame 0 under the judge's strict grounder
  (held out: neither the reward's grounder nor any mask);
- `drift_outside`: mean |Δpixel| outside both samples' violation masks — the region the outside anchor holds,
  so it favours the anchored arms by construction (kept for continuity with earlier tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .judge import distractor_shift, judge
from .model import PATCH, TinyVideoFlow, encode, full_video, sample
from .reward import score
from .world import WorldConfig, first_frames, sample_layouts


class EvalSettings(Protocol):
    """What EvalSet reads from the run's config (train.RLConfig has these fields)."""

    eval_seed: int
    eval_prompts: int
    eval_noises: int
    sample_steps: int


@dataclass
class EvalPoint:
    """Held-out evaluation at one training step."""

    step: int
    success: float  # strict judge
    reward_success: float  # every spec constraint holds (the training reward's view)
    valid: float  # frames are valid renders
    drift_kept: float  # mean |Δpixel| on pairs the pretrained model already solves (headline drift)
    distractor_shift: float  # mean largest distractor displacement (px, judge's grounder)
    drift_outside: float  # mean |Δpixel| outside both samples' violation masks


class EvalSet:
    """Fixed prompts and noises for evaluation, with the pretrained model's samples for drift."""

    def __init__(self, world: WorldConfig, cfg: EvalSettings, pretrained: TinyVideoFlow) -> None:
        gen = torch.Generator().manual_seed(cfg.eval_seed)
        lay = sample_layouts(cfg.eval_prompts, world, gen)
        cond = encode(first_frames(lay, world, gen)[:, None])[:, :, 0]
        self.cond = cond.repeat_interleave(cfg.eval_noises, dim=0)
        h = world.size // PATCH
        self.noise = torch.randn(self.cond.shape[0], 3 * PATCH * PATCH, world.frames - 1, h, h, generator=gen)
        self.sample_steps = cfg.sample_steps
        self.base_video = full_video(self.cond, sample(pretrained, self.cond, self.noise, cfg.sample_steps))
        self.base_masks = score(self.base_video).masks
        self.base_success = judge(self.base_video).success  # (B,) bool

    def evaluate(self, model: TinyVideoFlow, step: int) -> EvalPoint:
        """Judge the model's samples on the fixed prompts/noises and measure the three drifts."""
        model.eval()
        video = full_video(self.cond, sample(model, self.cond, self.noise, self.sample_steps))
        verdict = judge(video)
        sc = score(video)
        diff = (video[:, 1:] - self.base_video[:, 1:]).abs()  # (B, T−1, 3, H, W); frame 0 is the prompt
        blamed = torch.maximum(sc.masks, self.base_masks)[:, 1:]
        outside = (1 - blamed)[:, :, None].expand_as(diff)
        drift_outside = ((diff * outside).sum() / outside.sum().clamp_min(1)).item()
        kept = self.base_success
        drift_kept = diff[kept].mean().item() if kept.any() else float("nan")
        return EvalPoint(
            step, verdict.success.float().mean().item(), (~sc.violated).float().mean().item(),
            verdict.valid.float().mean().item(), drift_kept, distractor_shift(video).nanmean().item(), drift_outside,
        )
