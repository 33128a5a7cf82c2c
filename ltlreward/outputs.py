"""The files a batch run writes for each scored video beside its JSON record: masks and overlays.

`Outputs(masks_dir, overlay_dir).record(analysis)` is the one place a record gets its files: `<stem>.npz`
violation masks (ltlreward.masks) → "masks_file"; `<stem>.mp4` overlay video and `<stem>.png` robustness
timeline (ltlreward.viz) → "overlay", "timeline". A failure to write them is recorded as "output_error" (the
score stands). The stem is the video file's name as it was given. Every engine (local process pool, Ray)
writes through it, so their records and files are the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pipeline import Analysis, error_text


@dataclass(frozen=True)
class Outputs:
    """Where per-video files go (None: not written)."""

    masks_dir: str | None = None
    overlay_dir: str | None = None

    @classmethod
    def of(cls, masks_dir: str | os.PathLike[str] | None, overlay_dir: str | os.PathLike[str] | None) -> Outputs:
        """Outputs from path-like directories."""
        return cls(None if masks_dir is None else os.fspath(masks_dir),
                   None if overlay_dir is None else os.fspath(overlay_dir))

    def model_kwargs(self, model_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """RewardModel kwargs that build masks when a masks directory is set (unless `masks` is given) and
        decode the pixels when overlays are drawn."""
        kwargs = dict(model_kwargs)
        kwargs.setdefault("masks", self.masks_dir is not None)
        if self.overlay_dir is not None:
            kwargs["pixels"] = "always"
        return kwargs

    def record(self, analysis: Analysis, *, title: str = "") -> dict[str, Any]:
        """The video's JSON record plus the files written for it (see the module docstring)."""
        result = analysis.result
        record = result.to_json()
        if not result.ok:
            return record
        stem = Path(getattr(analysis.video, "path", None) or result.video).stem
        try:
            if self.masks_dir is not None and result.masks is not None:
                from .masks import save_masks

                path = save_masks(self.masks_dir, stem, result.masks, frame_indices=result.frame_indices)
                record["masks_file"] = str(path)
            if self.overlay_dir is not None:
                mp4, png = write_overlay(analysis, self.overlay_dir, stem, title=title)
                record["overlay"], record["timeline"] = str(mp4), str(png)
        except Exception as e:  # the score stands; say what could not be written
            record["output_error"] = error_text(e)
        return record


def overlay_traces(analysis: Analysis) -> list:
    """The overlay's `ConstraintTrace`s of a scored video: values, witness frames, and per entity the frames its
    witness names it at — the very evidence the masks were built from (`Analysis.evidence`)."""
    import numpy as np

    from .viz import ConstraintTrace

    evidence = {ev.name: ev.entity_frames for ev in analysis.evidence or ()}
    return [
        ConstraintTrace(
            c.name, c.trace, c.satisfied, c.weight,
            witness_frames=np.asarray(c.witness.frames if c.witness else (), np.int64),
            entity_frames=evidence.get(c.name, {}),
        )
        for c in analysis.result.constraints
    ]


def write_overlay(
    analysis: Analysis, directory: str | os.PathLike[str], stem: str, *, title: str = ""
) -> tuple[Path, Path]:
    """`<dir>/<stem>.mp4` overlay (entity masks, atom states, constraint timeline) and `<dir>/<stem>.png`."""
    from .viz import render_overlay

    res, obs, video = analysis.result, analysis.observations, analysis.video
    if obs is None or video is None or analysis.signals is None or not hasattr(video, "frames"):
        raise ValueError(f"{res.video}: an overlay needs the frames, observations and signals of the video")
    masks = boxes = None
    if obs.masks is not None:
        masks = {e: obs.masks[i] for i, e in enumerate(obs.entities)}
    else:
        boxes = {e: obs.boxes[i] for i, e in enumerate(obs.entities)}
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    mp4, png = d / f"{stem}.mp4", d / f"{stem}.png"
    head = f"{stem}: {title}" if title else stem
    render_overlay(video.frames, traces=overlay_traces(analysis), reward=res.reward, out_video=mp4, out_png=png,
                   entity_masks=masks, entity_boxes=boxes, atom_signals=analysis.signals.values,
                   title=head, fps=video.fps)
    return mp4, png


__all__ = ["Outputs", "overlay_traces", "write_overlay"]
