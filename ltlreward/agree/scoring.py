"""Scoring for agreement: each video with its own spec through ltlreward.batch, as one `Scored` per video.

Videos are grouped by spec (a path, or one TaskSpec object) so each spec is loaded once; a video the batch
did not return is `Scored(error="not scored")`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scored:
    """One video's verdict under one method: reward (NaN on failure), verdict, violated constraints, and the
    backend that grounded it with the reason (what `auto` chose and why)."""

    video: str
    reward: float
    satisfied: bool
    error: str | None = None
    violated: list[dict[str, Any]] = field(default_factory=list)
    grounder: str | None = None
    grounder_reason: str | None = None


def _from_record(rec: dict[str, Any]) -> Scored:
    """A batch record → Scored, keeping each violated constraint's name, robustness, first 12 frames, entities."""
    reward = rec.get("reward")
    violated = []
    for c in rec.get("constraints", []):
        if not c.get("satisfied"):
            w = c.get("witness") or {}
            violated.append({"name": c["name"], "robustness": c.get("robustness"),
                             "frames": (w.get("frames") or [])[:12], "entities": w.get("entities") or []})
    return Scored(str(rec.get("video")), float("nan") if reward is None else float(reward),
                  bool(rec.get("satisfied")), rec.get("error"), violated, rec.get("grounder"),
                  rec.get("grounder_reason"))


def score_with_specs(videos: Sequence[str], specs: Sequence[Any], grounder: str, *, workers: int = 1,
                     model_options: Mapping[str, Any] | None = None) -> list[Scored]:
    """Score each video with its spec (path or TaskSpec) through ltlreward.batch; grouped per spec."""
    from ..batch import record_key, score_videos

    groups: dict[Any, list[int]] = defaultdict(list)
    keys: dict[Any, Any] = {}
    for i, sp in enumerate(specs):
        k = sp if isinstance(sp, str) else ("spec object", id(sp))
        keys[k] = sp
        groups[k].append(i)
    out: list[Scored | None] = [None] * len(videos)
    for k, idx in groups.items():
        kwargs = {"spec": keys[k], "grounder": grounder, "masks": False, **dict(model_options or {})}
        summary = score_videos([videos[i] for i in idx], kwargs, workers=workers)
        by_video = {record_key(str(r["video"])): r for r in summary.scored}  # the batch's own join key
        for i in idx:
            rec = by_video.get(record_key(str(videos[i])))
            out[i] = _from_record(rec) if rec else Scored(videos[i], float("nan"), False, "not scored")
    return [s for s in out if s is not None]


__all__ = ["Scored", "score_with_specs"]
