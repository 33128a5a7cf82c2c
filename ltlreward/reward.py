"""`RewardModel`: video → grounding → predicate signals → LTLf monitor → reward, witnesses and masks.

    model = RewardModel("specs/handover.ltl")               # grounder "auto": sidecar → state, else colour
    result = model.score("examples/handover_drop.mp4")      # RewardResult (reward, constraints, witnesses)
    rewards, info = model(videos)                           # trainer API: (B,) float32 + per-constraint info

Reward modes (the spec's `reward` line), for constraint weights w_c, verdicts s_c and robustness ρ_c:
  weighted_mean    Σ w_c·[s_c] / Σ w_c                      (weighted fraction of satisfied constraints)
  all              1 if every constraint holds else 0
  mean_robustness  Σ w_c·(ρ_c + 1)/2 / Σ w_c                (robustness mapped from [-1, 1] to [0, 1])
  min_robustness   (min_c ρ_c + 1) / 2
A spec without constraints scores 1. A video that cannot be scored gets reward NaN in its RewardResult (the
error is recorded, the rest of the batch goes on); `__call__` returns `failure_reward` (default 0) for it.

Batching: `score_batch` / `__call__` decode, ground and compute predicates per video, then monitor all
videos of equal fps in one call, padding shorter traces and passing their `lengths` (ragged batch). The
monitor stage's time is shared among those videos in proportion to their frame counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LtlRewardError, SpecError
from .result import ConstraintOutcome, RewardResult
from .spec.ast import REWARD_MODES, Quoted, TaskSpec

STAGES = ("decode", "ground", "predicates", "monitor", "masks")


# ------------------------------------------------------------------------------------------ aggregation
def aggregate(mode: str, satisfied: np.ndarray, robustness: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rewards (B,) float64 from verdicts (B, C) bool, robustness (B, C) in [-1, 1] and weights (C,)."""
    sat = np.asarray(satisfied, dtype=bool)
    rho = np.clip(np.asarray(robustness, dtype=np.float64), -1.0, 1.0)
    w = np.asarray(weights, dtype=np.float64)
    if sat.ndim != 2 or rho.shape != sat.shape or w.shape != (sat.shape[1],):
        raise ValueError(f"shapes must be (B,C), (B,C), (C,); got {sat.shape}, {rho.shape}, {w.shape}")
    B, C = sat.shape
    if C == 0:
        return np.ones(B, np.float64)
    if mode == "weighted_mean":
        return (sat * w).sum(axis=1) / w.sum()
    if mode == "all":
        return sat.all(axis=1).astype(np.float64)
    if mode == "mean_robustness":
        return ((rho + 1.0) / 2.0 * w).sum(axis=1) / w.sum()
    if mode == "min_robustness":
        return (rho.min(axis=1) + 1.0) / 2.0
    raise ValueError(f"unknown reward mode {mode!r}; choose one of: {', '.join(REWARD_MODES)}")


def load_task_spec(spec: TaskSpec | str | os.PathLike[str]) -> TaskSpec:
    """A TaskSpec from itself, a path to a .ltl file, or spec text (a str with a newline or no such file)."""
    from .spec import load_spec, parse_spec

    if isinstance(spec, TaskSpec):
        return spec
    if isinstance(spec, os.PathLike):
        return load_spec(spec)
    if isinstance(spec, str):
        if "\n" not in spec and (spec.endswith(".ltl") or Path(spec).is_file()):
            return load_spec(spec)
        return parse_spec(spec)
    raise TypeError(f"spec must be a TaskSpec, a path or spec text, got {type(spec).__name__}")


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------------------------------ per video
@dataclass
class Analysis:
    """Everything scoring one video produced: the result plus the decoded video, observations and signals
    (None after a failure), for overlays and debugging."""

    result: RewardResult
    video: Any = None  # ltlreward.video.Video
    observations: Any = None  # ltlreward.grounding.Observations
    signals: Any = None  # ltlreward.predicates.Signals


@dataclass
class Work:
    """A video on its way through the stages (decode → ground → predicates → monitor); engines pass it along."""

    vid: str
    sidecar: str | Path | None
    timings: dict[str, float]
    video: Any = None
    obs: Any = None
    signals: Any = None
    grounder: str = ""
    error: str | None = None
    result: RewardResult | None = None


class RewardModel:
    """Scores videos against one task spec; see the module docstring for modes, batching and failures.

    Options: `grounder` backend name ("auto", "state", "color", …) built once with `grounder_options`, or
    a ready backend object (anything with the Grounder protocol's `.ground`);
    `sidecar` a simulator sidecar used for every video (default: `<stem>.sidecar.json` beside each video);
    `stride` / `target_fps` / `max_frames` / `size` frame sampling and resizing (files and in-memory frames);
    `fps` the frame rate assumed for in-memory frames; `masks` build (T,H,W) violation masks with
    `mask_dilation` frames of temporal dilation; `predicate_options` a PredicateOptions or its kwargs.
    """

    def __init__(
        self,
        spec: TaskSpec | str | os.PathLike[str],
        grounder: Any = "auto",
        *,
        sidecar: str | os.PathLike[str] | None = None,
        stride: int = 1,
        target_fps: float | None = None,
        max_frames: int | None = None,
        size: int | tuple[int, int] | None = None,
        masks: bool = True,
        mask_dilation: int = 2,
        predicate_options: Any = None,
        grounder_options: Mapping[str, Any] | None = None,
        fps: float | None = None,
        failure_reward: float = 0.0,
    ) -> None:
        from .grounding import get_grounder
        from .predicates import PredicateOptions
        from .spec import spec_atoms
        from .video import DEFAULT_FPS, sample_indices

        self.spec = load_task_spec(spec)
        if self.spec.reward not in REWARD_MODES:
            modes = ", ".join(REWARD_MODES)
            msg = f"unknown reward mode {self.spec.reward!r}; choose one of: {modes}"
            raise SpecError(msg, file=self.spec.path)
        sample_indices(1, 1.0, stride=stride, target_fps=target_fps, max_frames=max_frames)  # validate early
        self.atoms = spec_atoms(self.spec)
        self.quoted = tuple(a.text for a in self.atoms if isinstance(a, Quoted))
        if isinstance(grounder, str):
            self.grounder = get_grounder(grounder, **dict(grounder_options or {}))
        elif callable(getattr(grounder, "ground", None)):
            self.grounder = grounder  # an instance of a custom backend (the Grounder protocol)
        else:
            raise TypeError(f"grounder must be a backend name or an object with .ground(), got {grounder!r}")
        self.grounder_name = grounder if isinstance(grounder, str) else getattr(grounder, "name", "custom")
        self.sidecar = sidecar
        self.stride, self.target_fps, self.max_frames, self.size = stride, target_fps, max_frames, size
        self.masks = masks
        self.mask_dilation = int(mask_dilation)
        if isinstance(predicate_options, Mapping):
            predicate_options = PredicateOptions(**predicate_options)
        self.predicate_options = predicate_options or PredicateOptions()
        self.fps = float(fps) if fps is not None else DEFAULT_FPS
        self.failure_reward = float(failure_reward)
        self.names = tuple(c.name for c in self.spec.constraints)
        self.weights = np.array([c.weight for c in self.spec.constraints], dtype=np.float64)
        self.max_weight = float(self.weights.max()) if self.weights.size else 1.0

    def __repr__(self) -> str:
        return (f"RewardModel(spec={self.spec.path or self.spec.task!r}, grounder={self.grounder_name!r}, "
                f"constraints={list(self.names)}, reward={self.spec.reward!r})")

    # -- public API ---------------------------------------------------------------------------------------
    def score(self, video: Any, *, sidecar: str | os.PathLike[str] | None = None) -> RewardResult:
        """Score one video (path, Video, uint8 (T,H,W,3) or [0,1] float frames); failures are recorded."""
        return self.analyze(video, sidecar=sidecar).result

    def analyze(self, video: Any, *, sidecar: str | os.PathLike[str] | None = None) -> Analysis:
        """Score one video and keep the decoded frames, observations and signals (for overlays)."""
        w = self._run([video], [sidecar], ids=None)[0]
        return Analysis(w.result, w.video, w.obs, w.signals)

    def score_batch(
        self, videos: Any, *, sidecars: Sequence[str | os.PathLike[str] | None] | None = None
    ) -> list[RewardResult]:
        """Score many videos with one monitor call per frame rate; failed videos are results with `error`."""
        items, ids = self._items(videos)
        sc = list(sidecars) if sidecars is not None else [None] * len(items)
        if len(sc) != len(items):
            raise ValueError(f"got {len(sc)} sidecars for {len(items)} videos")
        return [w.result for w in self._run(items, sc, ids)]

    def __call__(
        self, videos: Any, prompts: Sequence[str] | None = None, metadata: Any = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Trainer entry point: rewards (B,) float32 and an info dict.

        `videos`: a list of paths / arrays / Videos, a uint8 (B,T,H,W,3) array, or a float (B,T,C,H,W)
        array or torch tensor in [0,1]. `prompts` are ignored (the spec fixes the task). `metadata`: optional
        list of per-video dicts; a "sidecar" key there gives that video's simulator sidecar.
        info: "satisfied" / "robustness" {constraint: (B,) bool / float32}, "all_satisfied" (B,) bool,
        "masks" list of (T,H,W) float32 (None for failed videos or masks=False), "errors" list of str|None,
        "results" list of RewardResult, "constraint_names".
        """
        items, ids = self._items(videos)
        sidecars: list[Any] = [None] * len(items)
        if isinstance(metadata, Sequence) and not isinstance(metadata, str):
            if len(metadata) != len(items):
                raise ValueError(f"got {len(metadata)} metadata entries for {len(items)} videos")
            sidecars = [m.get("sidecar") if isinstance(m, Mapping) else None for m in metadata]
        results = [w.result for w in self._run(items, sidecars, ids)]
        B, C = len(results), len(self.names)
        rewards = np.array([r.reward if r.ok else self.failure_reward for r in results], dtype=np.float32)
        sat = np.zeros((B, C), bool)
        rob = np.full((B, C), np.nan, np.float32)
        for i, r in enumerate(results):
            if r.ok:
                sat[i] = [c.satisfied for c in r.constraints]
                rob[i] = [c.robustness for c in r.constraints]
        info: dict[str, Any] = {
            "constraint_names": list(self.names),
            "satisfied": {n: sat[:, j] for j, n in enumerate(self.names)},
            "robustness": {n: rob[:, j] for j, n in enumerate(self.names)},
            "all_satisfied": np.array([r.ok and r.satisfied for r in results], bool),
            "masks": [r.masks for r in results],
            "errors": [r.error for r in results],
            "results": results,
        }
        return rewards, info

    # -- pipeline ----------------------------------------------------------------------------------------
    def _items(self, videos: Any) -> tuple[list[Any], list[str] | None]:
        """Split a batch into per-video items; a 5-D array/tensor is converted in one vectorised step."""
        from .video import Video, as_videos, is_torch

        if isinstance(videos, (str, os.PathLike, Video)):
            return [videos], None
        if isinstance(videos, np.ndarray) or is_torch(videos):
            vs = as_videos(videos, fps=self.fps)
            return list(vs), [f"<memory:{i}>" for i in range(len(vs))]
        if isinstance(videos, Sequence):
            return list(videos), None
        raise TypeError(f"cannot score {type(videos).__name__}; pass paths, arrays, tensors or Videos")

    def stage_decode(self, item: Any) -> Any:
        """Stage 1: a sampled, resized Video from a path, Video or in-memory frames."""
        from .video import Video, as_video, read_video, resize_frames, sample_indices

        if isinstance(item, (str, os.PathLike)):
            return read_video(item, stride=self.stride, target_fps=self.target_fps,
                              max_frames=self.max_frames, size=self.size)
        v = item if isinstance(item, Video) else as_video(item, fps=self.fps)
        if self.stride != 1 or self.target_fps is not None or self.max_frames is not None:
            idx, fps = sample_indices(v.n_frames, v.fps, stride=self.stride, target_fps=self.target_fps,
                                      max_frames=self.max_frames)
            v = Video(frames=v.frames[idx], fps=fps, path=v.path, frame_indices=v.frame_indices[idx],
                      source_fps=v.source_fps, n_source_frames=v.n_source_frames, meta=dict(v.meta))
        if self.size is not None:
            v = Video(frames=resize_frames(v.frames, self.size), fps=v.fps, path=v.path,
                      frame_indices=v.frame_indices, source_fps=v.source_fps,
                      n_source_frames=v.n_source_frames, meta=dict(v.meta))
        return v

    def stage_ground(self, w: Work) -> None:
        """Stage 2: observations of the spec's entities in `w.video` (sidecar per video, else the model's)."""
        t0 = time.perf_counter()
        try:
            sidecar = w.sidecar if w.sidecar is not None else self.sidecar
            w.obs = self.grounder.ground(w.video, self.spec.entities, quoted=self.quoted, sidecar=sidecar)
            w.grounder = w.obs.source or self.grounder.name
            if w.obs.n_frames != w.video.n_frames:
                raise LtlRewardError(f"{w.vid}: grounder {w.grounder!r} returned {w.obs.n_frames} frames "
                                     f"for a video of {w.video.n_frames}")
        finally:
            w.timings["ground"] = time.perf_counter() - t0

    def stage_predicates(self, w: Work) -> None:
        """Stage 3: the spec's atom signals from `w.obs`."""
        from .predicates import compute_signals

        t0 = time.perf_counter()
        try:
            w.signals = compute_signals(self.atoms, w.obs, grounder=w.grounder, options=self.predicate_options)
        finally:
            w.timings["predicates"] = time.perf_counter() - t0

    def _observe(self, w: Work, item: Any) -> None:
        """Stages 1–3 for one video, timing each."""
        t0 = time.perf_counter()
        w.video = self.stage_decode(item)
        w.timings["decode"] = time.perf_counter() - t0
        self.stage_ground(w)
        self.stage_predicates(w)

    def _run(self, items: list[Any], sidecars: list[Any], ids: list[str] | None) -> list[Work]:
        works: list[Work] = []
        for i, item in enumerate(items):
            vid = ids[i] if ids else _video_id(item, i)
            w = Work(vid, sidecars[i], {s: 0.0 for s in STAGES})
            try:
                self._observe(w, item)
            except Exception as e:  # recorded per video: one bad video never stops a batch
                w.error = _error_text(e)
            works.append(w)
        groups: dict[float, list[Work]] = {}
        for w in works:
            if w.error is None:
                groups.setdefault(round(float(w.video.fps), 6), []).append(w)
        for fps, group in groups.items():
            try:
                self.stage_monitor(group, fps)
            except Exception as e:  # a monitor error (bad signal) fails the videos of that call
                for w in group:
                    w.error, w.result = _error_text(e), None
        for w in works:
            if w.result is None:
                w.result = RewardResult.failed(w.vid, w.error or "unknown error",
                                               grounder=w.grounder or self.grounder_name,
                                               reward_mode=self.spec.reward, timings=w.timings)
        return works

    def stage_monitor(self, group: list[Work], fps: float) -> None:
        """Stage 4: one monitor call for videos of equal fps (ragged via lengths), then rewards, outcomes, masks."""
        from .ltlf import monitor

        t0 = time.perf_counter()
        lengths = np.array([w.video.n_frames for w in group], dtype=np.int64)
        B, T = len(group), int(lengths.max())
        signals: dict[str, np.ndarray] = {}
        for key in group[0].signals.values:
            arr = np.zeros((B, T), np.float32)
            for b, w in enumerate(group):
                arr[b, : lengths[b]] = w.signals.values[key]
            signals[key] = arr
        ragged = bool((lengths < T).any())
        res = monitor(self.spec, signals, fps=fps, lengths=lengths if ragged else None)
        C = len(res.constraints)
        sat = res.satisfied if C else np.ones((B, 0), bool)
        rob = res.robustness if C else np.zeros((B, 0), np.float32)
        rewards = aggregate(self.spec.reward, sat, rob, self.weights)
        dt = time.perf_counter() - t0
        total = float(lengths.sum())
        for b, w in enumerate(group):
            L = int(lengths[b])
            outcomes = [
                ConstraintOutcome(c.name, bool(c.satisfied[b]), float(c.robustness[b]), float(c.weight),
                                  c.witness(b), np.asarray(c.trace[b, :L], np.float32).copy())
                for c in res.constraints
            ]
            w.timings["monitor"] = dt * L / total
            t1 = time.perf_counter()
            mask = self._mask(w, res.constraints, b) if self.masks else None
            w.timings["masks"] = time.perf_counter() - t1
            v = w.video
            w.result = RewardResult(
                video=w.vid, reward=float(rewards[b]), satisfied=bool(sat[b].all()), constraints=outcomes,
                n_frames=L, fps=float(v.fps), timings=w.timings, grounder=w.grounder,
                reward_mode=self.spec.reward, height=v.height, width=v.width,
                frame_indices=np.asarray(v.frame_indices), masks=mask,
            )

    def _mask(self, w: Work, constraints: Sequence[Any], b: int) -> np.ndarray:
        """The (T,H,W) violation mask of trace `b` (see ltlreward.masks)."""
        from .masks import evidence_from_atoms, violation_mask

        L = w.video.n_frames
        evidence = []
        for c in constraints:
            if bool(c.satisfied[b]):
                continue
            frames = {k: m[b, :L] for k, m in c.atom_masks.items() if m[b, :L].any()}
            ents = {k: w.signals.support.get(k) or c.atom_entities.get(k, ()) for k in frames}
            evidence.append(evidence_from_atoms(c.name, c.weight, frames, ents))
        return violation_mask(evidence, w.obs, dilation=self.mask_dilation, max_weight=self.max_weight,
                              size=(w.video.height, w.video.width))


def _video_id(item: Any, i: int) -> str:
    """The id a result carries: the resolved path of a file, else '<memory:i>' (or a Video's path)."""
    if isinstance(item, (str, os.PathLike)):
        return str(Path(item).resolve())
    path = getattr(item, "path", None)
    return str(Path(path).resolve()) if path else f"<memory:{i}>"


__all__ = ["STAGES", "Analysis", "RewardModel", "aggregate", "load_task_spec"]
