"""`creflow sample`: each prompt's K rollouts as mp4 files plus their rewards and verdicts, for people to look at
a model before and after training.

`sample_to_dir(cfg, out)` builds the run's model, policy and reward model exactly as `creflow train` does
(`Trainer`), optionally loads a checkpoint's LoRA, samples `group_size` rollouts per prompt with θ (the
"default" adapter: the base model without a checkpoint) on the run's grid, guidance and image conditioning, and
writes `OUT/p<prompt index>_k<rollout index>.mp4` and `OUT/rewards.jsonl` (one line per rollout). Noise comes
from a generator seeded with `seed` (the config's seed by default), one prompt after the other, so a rerun with
the same seed and checkpoint writes the same videos. mp4s are H.264 yuv420p at `crf` (0 = lossless: identical
frames decode identically, so with Wan2.2-TI2V, whose causal VAE decodes frame 0 from the image latent alone,
a prompt's first frames are equal in the files too).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig

REWARDS_FILE = "rewards.jsonl"


@dataclass
class SampleRecord:
    """One rollout of `creflow sample` (one rewards.jsonl line)."""

    prompt_index: int
    rollout: int
    prompt: str
    video: str  # file name inside the output folder
    reward: float
    satisfied: bool  # every constraint satisfied
    constraints: list[dict[str, Any]] = field(default_factory=list)  # name, satisfied, robustness
    error: str | None = None  # why the reward model could not score it


def _record(i: int, k: int, prompt: str, video: str, reward: float, result: Any, satisfied: bool) -> SampleRecord:
    """The record of rollout k of prompt i from its RewardResult (None when the reward model gave none)."""
    cons = [{"name": c.name, "satisfied": bool(c.satisfied), "robustness": float(c.robustness)}
            for c in getattr(result, "constraints", ())]
    return SampleRecord(i, k, prompt, video, float(reward), bool(satisfied), cons, getattr(result, "error", None))


def sample_to_dir(
    cfg: TrainConfig, out: str | os.PathLike[str], *, checkpoint: str | os.PathLike[str] | None = None,
    seed: int | None = None, crf: int = 0, reward_model: Any = None, log: Any = None,
) -> list[SampleRecord]:
    """Write every prompt's `cfg.group_size` rollouts and rewards.jsonl into `out`; return the records."""
    import numpy as np
    import torch

    from ltlreward.video import write_video

    from .rollout import sample_groups
    from .trainer import Trainer

    trainer = Trainer(cfg, reward_model=reward_model)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        trainer.policy.load_lora_state_dict(state["lora"])
    gen = torch.Generator().manual_seed(cfg.seed if seed is None else seed)
    s, folder = trainer.sampling, Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, prompt in enumerate(cfg.prompts):
        ro = sample_groups(trainer.policy, [prompt], trainer.prompt_cond[[i]], group_size=cfg.group_size,
                           shape=trainer.shape, steps=cfg.num_inference_steps, generator=gen, which="default",
                           micro_batch=cfg.micro_batch, grid=s.grid, guidance_scale=s.guidance_scale,
                           uncond=s.uncond)
        rewards, info = trainer.reward_model(ro.videos)
        results = info.get("results") or [None] * len(ro.videos)
        satisfied = np.asarray(info.get("all_satisfied", np.zeros(len(ro.videos), bool)), bool)
        for k in range(len(ro.videos)):
            name = f"p{i}_k{k}.mp4"
            write_video(folder / name, ro.videos[k], cfg.fps, crf=crf)  # (T, C, H, W) float in [0, 1]
            records.append(_record(i, k, prompt, name, rewards[k], results[k], satisfied[k]))
        if log:
            log(f"prompt {i}: rewards {', '.join(f'{float(r):.3f}' for r in rewards)}")
    tmp = folder / (REWARDS_FILE + ".tmp")
    tmp.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, folder / REWARDS_FILE)
    return records
