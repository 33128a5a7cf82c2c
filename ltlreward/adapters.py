"""ltlreward as the reward of other RL trainers: Flow-GRPO's and DiffusionNFT's `multi_score` call shape.

Both trainers build `reward_fn = multi_score(device, config.reward_fn)` and call it from a thread pool as
`reward_fn(images, prompts, prompt_metadata, only_strict=True)`; the call returns `(scores, metadata)` where
`scores` maps names to (B,) values (their code runs `torch.as_tensor(v).float()` over `scores.items()`, gathers
every key across ranks and trains on `scores["avg"]`). `TrainerReward` has exactly that shape:

    reward_fn = TrainerReward("specs/handover.ltl", grounder="color", fps=16)   # instead of multi_score(...)
    scores, meta = reward_fn(videos, prompts, prompt_metadata, only_strict=True)
    scores["avg"], scores["ltl"], scores["ltl_satisfied"]          # (B,) float32 each
    attach_masks(sample, meta)    # sample["violation_masks"] = (B, T, H, W) float32 tensor, for their dicts

`reward_fn.score_fn` is the per-reward shape their `multi_score` tables hold (`fn(images, prompts, metadata) ->
(scores, rewards)`), to weight the LTL reward against other rewards inside their own `multi_score`.
Images and videos are told apart explicitly: the batch is 5-D with the frames on `frames_axis` (1: (B, F, C, H, W),
their video convention, or (B, F, H, W, 3); 2: (B, C, F, H, W)); a 4-D batch is an error unless
`frames_axis=None` says it is a batch of images (each scored as a one-frame video).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from .reward import RewardModel

MASKS_KEY = "violation_masks"  # the sample-dict key `attach_masks` writes


def as_video_batch(images: Any, frames_axis: int | None = 1) -> Any:
    """A trainer's image/video batch as what RewardModel takes: (B, F, C, H, W) / (B, F, H, W, 3) arrays.

    Tensors (any device, bf16 …) become float32 numpy. 5-D with `frames_axis` 1 is kept, 2 has its frames moved
    to axis 1; 4-D is an error naming `frames_axis` unless `frames_axis` is None (images: (B, C, H, W) or
    (B, H, W, 3) become one-frame videos). Lists (paths, per-video arrays) pass through unchanged.
    """
    _check_frames_axis(frames_axis)
    if isinstance(images, str | os.PathLike) or not hasattr(images, "ndim"):
        return images
    arr = _numpy(images)  # (B, …)
    shape = tuple(arr.shape)
    if frames_axis is None:
        if arr.ndim != 4:
            raise ValueError(f"frames_axis=None means a batch of images (B, C, H, W) or (B, H, W, 3); got a "
                             f"{arr.ndim}-D batch of shape {shape} (pass frames_axis=1 or 2 for videos)")
        return arr[:, None]  # (B, 1, …): each image a one-frame video
    if arr.ndim == 4:
        raise ValueError(f"got a 4-D batch of shape {shape}: images or one video? A video batch is 5-D with its "
                         f"frames on frames_axis={frames_axis} (e.g. (B, F, C, H, W)); pass frames_axis=None to "
                         f"score each image as a one-frame video")
    if arr.ndim != 5:
        raise ValueError(f"expected a 5-D video batch with frames on axis {frames_axis}, got shape {shape}")
    return arr if frames_axis == 1 else np.moveaxis(arr, 2, 1)  # (B, F, C, H, W)


def _check_frames_axis(frames_axis: Any) -> None:
    """ValueError unless frames_axis is 1, 2 or None."""
    if frames_axis not in (None, 1, 2) or isinstance(frames_axis, bool):
        raise ValueError(f"frames_axis must be 1 (B, F, …), 2 (B, C, F, H, W) or None (images), got {frames_axis!r}")


def _numpy(x: Any) -> np.ndarray:
    """A numpy view of an array or a (detached, CPU, float32 unless uint8) torch tensor."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.split(".")[0] == "torch":
        import torch

        t = x.detach().cpu()
        return (t if t.dtype == torch.uint8 else t.to(torch.float32)).numpy()
    return np.asarray(x)


def _stack_masks(masks: list[Any]) -> np.ndarray | None:
    """(B, T, H, W) float32 masks from per-video (T, H, W) masks; zeros where a video has none (failed)."""
    shaped = [np.asarray(m, np.float32) for m in masks if m is not None]
    if not shaped:
        return None
    like = shaped[0].shape
    if any(m.shape != like for m in shaped):
        raise ValueError(f"videos of one batch have masks of different shapes: {sorted({m.shape for m in shaped})}")
    out = np.zeros((len(masks), *like), np.float32)
    for i, m in enumerate(masks):
        if m is not None:
            out[i] = m
    return out


class TrainerReward:
    """A RewardModel behind Flow-GRPO's / DiffusionNFT's `multi_score` call shape (see the module docstring).

    `spec` and `**model_kwargs` build the RewardModel (or pass a built one as `model`); `name` is the score
    key (default "ltl") and `weight` its factor in "avg". Calls are serialised with a lock: both trainers call
    the reward from a thread pool with several calls in flight, and one RewardModel (its grounder) is not
    thread-safe.
    """

    def __init__(self, spec: Any = None, *, model: RewardModel | None = None, name: str = "ltl",
                 weight: float = 1.0, frames_axis: int | None = 1, **model_kwargs: Any) -> None:
        if (spec is None) == (model is None):
            raise ValueError("pass exactly one of spec (with RewardModel options) or model")
        if model is not None and model_kwargs:
            raise ValueError(f"RewardModel options {sorted(model_kwargs)} need spec, not a built model")
        if not isinstance(name, str) or not name or name == "avg":
            raise ValueError(f"name must be a non-empty string other than 'avg', got {name!r}")
        if not np.isfinite(weight):
            raise ValueError(f"weight must be finite, got {weight!r}")
        _check_frames_axis(frames_axis)
        self.model = model if model is not None else RewardModel(spec, **model_kwargs)
        self.name, self.weight, self.frames_axis = name, float(weight), frames_axis
        self._lock = threading.Lock()

    def __call__(self, images: Any, prompts: Any = None, metadata: Any = None, only_strict: bool = True
                 ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(scores, metadata) as `multi_score`'s `_fn` returns them. `only_strict` is accepted and ignored: an
        LTL reward has no non-strict variant (every constraint is always checked).

        scores: "avg" = weight·reward, `name` = the reward, `name`_satisfied = 1.0 where every constraint holds
        (each (B,) float32). metadata: "violation_masks" (B, T, H, W) float32 (zeros for a satisfied or failed
        video; None with masks off), "all_satisfied" (B,) bool, "satisfied" / "robustness" per constraint,
        "errors", "constraint_names" (RewardModel's info, minus the full results).
        """
        del only_strict
        batch = as_video_batch(images, self.frames_axis)
        meta = metadata if isinstance(metadata, list | tuple) else None  # theirs: one dict per prompt
        with self._lock:
            rewards, info = self.model(batch, prompts, meta)
        rewards = np.asarray(rewards, np.float32)
        scores = {"avg": (self.weight * rewards).astype(np.float32), self.name: rewards,
                  f"{self.name}_satisfied": np.asarray(info["all_satisfied"], np.float32)}
        out = {k: v for k, v in info.items() if k not in ("masks", "results")}
        out[MASKS_KEY] = _stack_masks(info["masks"])
        return scores, out

    def score_fn(self, images: Any, prompts: Any = None, metadata: Any = None) -> tuple[list[float], list[float]]:
        """The per-reward shape of their `multi_score` tables: (scores, rewards) as lists of B floats."""
        scores, _ = self(images, prompts, metadata)
        values = [float(v) for v in scores[self.name]]
        return values, list(values)


def attach_masks(sample: dict[str, Any], metadata: Mapping[str, Any], *, key: str = MASKS_KEY,
                 device: Any = None) -> dict[str, Any]:
    """Put the violation masks of one reward call into a trainer's sample dict as a (B, T, H, W) float32 tensor.

    Their trainers collate sample dicts with `torch.cat(…, dim=0)` and shuffle, filter and slice every key on
    dim 0, so the masks stay row-aligned with the latents through to the loss. KeyError when the call made no
    masks (RewardModel(masks=False)).
    """
    import torch

    masks = metadata.get(key)
    if masks is None:
        raise KeyError(f"{key}: the reward call made no masks (build the RewardModel with masks=True)")
    sample[key] = torch.as_tensor(np.asarray(masks, np.float32), device=device)
    return sample


__all__ = ["MASKS_KEY", "TrainerReward", "as_video_batch", "attach_masks"]
