"""The scoring stages as functions of values, and the glue every engine shares.

    item ─decode─▶ Video ─ground─▶ Observations ─predicates─▶ Signals ─┐
    item ─decode─▶ …                                                   ├─ monitor (one call per frame rate,
    item ─decode─▶ …                                                   ┘  ragged via lengths) ─▶ Analysis each

`Pipeline` holds what the stages need for one spec (the grounder built once, frame sampling, predicate
options, mask settings) and has one method per stage; each takes and returns values and raises on bad input:
`decode(item) -> Video`, `ground(video) -> Observations`, `predicates(obs) -> Signals`,
`monitor(group, fps) -> [Analysis]` (RewardResult with its mask, plus what overlays read).

Between stages a video travels as an immutable value: `Decoded` → `Grounded` → `Observed`, or a `Failure`
once a stage raised. The `*_step` functions run one stage on such a value, time it and turn an exception into
a `Failure` (a later step passes a `Failure` through), so an engine may run the stages in one process
(`observe`) or in separate workers (ltlreward.ray_engine). `monitor_all` is stage 4 for a batch: it groups the
observed videos by frame rate, retries a group whose call raises one video at a time (so a bad signal fails
only its own video) and turns every `Failure` into a failed result. RewardModel (in process), the local
process pool (ltlreward.local_engine) and Ray (ltlreward.ray_engine) only call these functions in different
places, so their records are equal; the stage times land in `RewardResult.timings` under `STAGES`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GroundingError, LtlRewardError
from .result import ConstraintOutcome, Localisation, RewardResult
from .reward_modes import aggregate

if TYPE_CHECKING:
    from .grounding.observations import Observations
    from .ltlf import ConstraintResult, MonitorResult
    from .masks import Coverage, ViolationEvidence
    from .predicates import PredicateOptions, Signals
    from .spec.ast import TaskSpec
    from .video import Video

STAGES = ("decode", "ground", "predicates", "monitor", "masks")
Timings = Mapping[str, float]  # stage -> seconds, for the stages a video has been through


def stage_times(timings: Timings) -> dict[str, float]:
    """Seconds of every stage in `STAGES` order (0.0 for a stage the video did not reach)."""
    return {s: float(timings.get(s, 0.0)) for s in STAGES}


def error_text(e: BaseException) -> str:
    """How a record states an error: 'TypeName: message'."""
    return f"{type(e).__name__}: {e}"


def grounder_label(grounder: Any) -> str:
    """The name a grounder argument goes by in records: a backend name as given, else the object's `name`."""
    return grounder if isinstance(grounder, str) else getattr(grounder, "name", "custom")


def video_id(item: Any, i: int) -> str:
    """The id a result carries: the resolved path of a file, else a Video's resolved path or '<memory:i>'."""
    if isinstance(item, (str, os.PathLike)):
        return str(Path(item).resolve())
    path = getattr(item, "path", None)
    return str(Path(path).resolve()) if path else f"<memory:{i}>"


# ------------------------------------------------------------------------------------------ values
@dataclass(frozen=True)
class Sampling:
    """Frame sampling and resizing applied to every video, files and in-memory frames alike."""

    stride: int = 1
    target_fps: float | None = None
    max_frames: int | None = None
    size: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        from .video import sample_indices

        sample_indices(1, 1.0, stride=self.stride, target_fps=self.target_fps, max_frames=self.max_frames)

    @property
    def resamples(self) -> bool:
        """Whether frames are dropped (stride, target fps or a frame limit)."""
        return self.stride != 1 or self.target_fps is not None or self.max_frames is not None


@dataclass(frozen=True)
class VideoInfo:
    """What the monitor stage, masks and records read of a Video once its frames are dropped."""

    n_frames: int
    height: int
    width: int
    fps: float
    frame_indices: np.ndarray  # (T,) int64 source frame of each sampled frame
    path: str | None = None

    @classmethod
    def of(cls, video: Video | VideoInfo) -> VideoInfo:
        """The metadata of `video` (itself when it already is one)."""
        if isinstance(video, VideoInfo):
            return video
        return cls(video.n_frames, video.height, video.width, float(video.fps), np.asarray(video.frame_indices),
                   video.path)


@dataclass(frozen=True)
class Failure:
    """A video a stage could not process: the error text, the backend that grounded it (if any), times so far,
    and why an "auto" grounder chose that backend."""

    vid: str
    error: str
    grounder: str = ""
    timings: Timings = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class Decoded:
    """Stage 1's value: the sampled, resized frames."""

    vid: str
    video: Video
    timings: Timings


@dataclass(frozen=True)
class Grounded:
    """Stage 2's value: observations of every entity; `grounder` is the backend that produced them."""

    vid: str
    video: Video | VideoInfo  # VideoInfo once the frames are dropped (Ray, without overlays)
    observations: Observations
    grounder: str
    timings: Timings
    reason: str | None = None  # why an "auto" grounder chose `grounder` (None: the user named it)


@dataclass(frozen=True)
class Observed:
    """Stage 3's value, what the monitor stage reads: the atom signals (and observations for masks/overlays)."""

    vid: str
    video: Video | VideoInfo
    observations: Observations | None  # None once dropped (Ray, when neither masks nor overlays are wanted)
    signals: Signals
    grounder: str
    timings: Timings
    reason: str | None = None


@dataclass(frozen=True)
class Analysis:
    """Everything scoring one video produced: the result plus the decoded video, observations, signals and the
    per-entity violation evidence the masks were built from (None after a failure), for overlays and debugging."""

    result: RewardResult
    video: Video | VideoInfo | None = None
    observations: Observations | None = None
    signals: Signals | None = None
    evidence: tuple[ViolationEvidence, ...] | None = None


# ------------------------------------------------------------------------------------------ the stages
@dataclass(frozen=True)
class Pipeline:
    """The four stages for one spec; see the module docstring. Built by `ltlreward.RewardModel`."""

    spec: TaskSpec
    grounder: Any  # a backend with the Grounder protocol (ltlreward.grounding.base), built once
    grounder_name: str  # what failed records name when no backend ran
    sampling: Sampling
    predicate_options: PredicateOptions
    fps: float  # frame rate assumed for in-memory frames
    sidecar: str | os.PathLike[str] | None = None  # default sidecar for every video
    prompts: Any = None  # default prompts for every video (ltlreward.grounding.prompts: a Prompts, a file, a dir)
    masks: bool = True  # build (T,H,W) violation masks
    mask_dilation: int = 2  # frames of temporal dilation of the masks
    pixels: str = "auto"  # "auto": skip decoding for a grounder that reads no pixels; "always" (overlays)

    @cached_property
    def atoms(self) -> tuple[Any, ...]:
        """The spec's atoms (Atom, Compare, Quoted), each once."""
        from .spec import spec_atoms

        return tuple(spec_atoms(self.spec))

    @cached_property
    def quoted(self) -> tuple[str, ...]:
        """Texts of the spec's quoted atoms (the grounder answers them)."""
        from .spec.ast import Quoted

        return tuple(a.text for a in self.atoms if isinstance(a, Quoted))

    @cached_property
    def constraint_atoms(self) -> dict[str, tuple[str, ...]]:
        """Each constraint's atoms (canonical strings, each once, in formula order)."""
        from .spec.walk import atoms_of

        return {c.name: tuple(dict.fromkeys(a.canonical for a in atoms_of(c.formula))) for c in self.spec.constraints}

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Constraint names in spec order."""
        return tuple(c.name for c in self.spec.constraints)

    @cached_property
    def weights(self) -> np.ndarray:
        """(C,) float64 constraint weights."""
        return np.array([c.weight for c in self.spec.constraints], dtype=np.float64)

    @property
    def max_weight(self) -> float:
        """The spec's largest weight: a violation of that constraint paints 1.0 in a mask."""
        return float(self.weights.max()) if self.weights.size else 1.0

    def decode(self, item: Any) -> Video:
        """Stage 1: a sampled, resized Video from a path, a Video or in-memory frames."""
        from .video import Video, as_video, read_video, resize_frames, sample_indices

        s = self.sampling
        if isinstance(item, (str, os.PathLike)):
            return read_video(item, stride=s.stride, target_fps=s.target_fps, max_frames=s.max_frames, size=s.size,
                              pixels=self.needs_pixels(item))
        v = item if isinstance(item, Video) else as_video(item, fps=self.fps)
        if s.resamples:
            idx, fps = sample_indices(v.n_frames, v.fps, stride=s.stride, target_fps=s.target_fps,
                                      max_frames=s.max_frames)
            v = Video(frames=v.frames[idx], fps=fps, path=v.path, frame_indices=v.frame_indices[idx],
                      source_fps=v.source_fps, n_source_frames=v.n_source_frames, meta=dict(v.meta))
        if s.size is not None:
            v = Video(frames=resize_frames(v.frames, s.size), fps=v.fps, path=v.path, frame_indices=v.frame_indices,
                      source_fps=v.source_fps, n_source_frames=v.n_source_frames, meta=dict(v.meta))
        return v

    def choice(self, path: Any, sidecar: str | os.PathLike[str] | None = None,
               prompts: Any = None) -> tuple[str, str | None]:
        """The backend that grounds the video at `path` and why ("auto" chooses per video; a named grounder
        has no reason to give)."""
        choose = getattr(self.grounder, "choose", None)
        if callable(choose):
            sc = sidecar if sidecar is not None else self.sidecar
            pr = prompts if prompts is not None else self.prompts
            return choose(path if isinstance(path, (str, os.PathLike)) else None, sc, pr)
        return self.grounder_name, None

    def needs_pixels(self, path: str | os.PathLike[str]) -> bool:
        """Whether decoding `path` must produce pixels: always for overlays, else when the grounder that will
        ground it reads them (its registry metadata; the state grounder does not)."""
        from .grounding.registry import needs_pixels

        if self.pixels == "always":
            return True
        name = self.choice(path)[0]
        backend = self.grounder.backend_for(path, self.sidecar) if name != self.grounder_name else self.grounder
        return needs_pixels(backend, name)

    @cached_property
    def regions(self) -> dict[str, Any]:
        """The spec's static regions (entity NAME = region box=… | center=…), by name: not grounded, written in."""
        from .grounding.regions import spec_regions

        return spec_regions(self.spec.entities)

    def ground(self, video: Video, *, sidecar: str | os.PathLike[str] | None = None, prompts: Any = None
               ) -> Observations:
        """Stage 2: observations of the spec's entities in `video` (`sidecar` / `prompts`, else the pipeline's
        defaults); prompts go only to a backend that takes them (naming one that does not is an error); the
        spec's static regions are written in after the grounder ran (grounding/regions.py)."""
        from .grounding.regions import apply_regions
        from .grounding.registry import takes_prompts

        sc = sidecar if sidecar is not None else self.sidecar
        pr = prompts if prompts is not None else self.prompts
        observed = tuple(e for e in self.spec.entities if e.name not in self.regions)
        if pr is None:
            obs = self.grounder.ground(video, observed, quoted=self.quoted, sidecar=sc)
        elif not takes_prompts(self.grounder):
            raise GroundingError(f"grounder {self.grounder_name!r} takes no prompts; use the track grounder, a "
                                 "model grounder or auto")
        else:
            obs = self.grounder.ground(video, observed, quoted=self.quoted, sidecar=sc, prompts=pr)
        return apply_regions(obs, self.regions, f"{self.spec.path}: " if self.spec.path else "")

    def backend(self, obs: Observations) -> str:
        """The backend that produced `obs` (an "auto" grounder reports the one it chose)."""
        return obs.source or self.grounder.name

    def predicates(self, obs: Observations, grounder: str) -> Signals:
        """Stage 3: the spec's atom signals from `obs`; `grounder` is named in capability errors."""
        from .predicates import compute_signals

        return compute_signals(self.atoms, obs, grounder=grounder, options=self.predicate_options, spec=self.spec)

    def monitor(self, group: Sequence[Observed], fps: float) -> list[Analysis]:
        """Stage 4: one monitor call for videos of equal fps (ragged via lengths), then each video's rewards,
        outcomes and mask. The call's time is shared among the videos in proportion to their frame counts."""
        from .ltlf import monitor

        t0 = time.perf_counter()
        lengths, signals = stack_signals(group)
        ragged = bool((lengths < lengths.max()).any())
        res = monitor(self.spec, signals, fps=fps, lengths=lengths if ragged else None)
        B, C = len(group), len(res.constraints)
        sat = res.satisfied if C else np.ones((B, 0), bool)  # (B, C)
        rob = res.robustness if C else np.zeros((B, 0), np.float32)  # (B, C)
        rewards = aggregate(self.spec.reward, sat, rob, self.weights)  # (B,)
        per_frame = (time.perf_counter() - t0) / float(lengths.sum())
        return [self._analysis(o, res, b, float(rewards[b]), bool(sat[b].all()), per_frame * int(lengths[b]))
                for b, o in enumerate(group)]

    def _analysis(self, o: Observed, res: MonitorResult, b: int, reward: float, satisfied: bool,
                  monitor_s: float) -> Analysis:
        """Trace `b` of a monitor call as one video's Analysis (outcomes, evidence, mask, localisation, timings)."""
        L, v = o.video.n_frames, o.video
        spaces = o.signals.spaces
        outcomes = [ConstraintOutcome(c.name, bool(c.satisfied[b]), float(c.robustness[b]), float(c.weight),
                                      c.witness(b), np.asarray(c.trace[b, :L], np.float32).copy(),
                                      {a: spaces[a] for a in self.constraint_atoms.get(c.name, ()) if a in spaces})
                    for c in res.constraints]
        t1 = time.perf_counter()
        evidence = self.evidence(o, res.constraints, b)
        mask, covers = self.mask(o, evidence) if self.masks else (None, None)
        timings = stage_times({**o.timings, "monitor": monitor_s, "masks": time.perf_counter() - t1})
        result = RewardResult(
            video=o.vid, reward=reward, satisfied=satisfied, constraints=outcomes, n_frames=L, fps=float(v.fps),
            timings=timings, grounder=o.grounder, reward_mode=self.spec.reward, height=v.height, width=v.width,
            frame_indices=np.asarray(v.frame_indices), masks=mask, localisation=localise(outcomes, covers, L),
            spaces=dict(o.signals.spaces), warnings=list(o.signals.warnings),
            clock={"fps": clock_fps(o), "source": o.signals.clock}, grounder_reason=o.reason,
        )
        return Analysis(result, o.video, o.observations, o.signals, tuple(evidence))

    def evidence(self, o: Observed, constraints: Sequence[ConstraintResult], b: int) -> list[ViolationEvidence]:
        """Per violated constraint of trace `b`, the frames at which its witness names each entity (the one
        source of the masks and of the overlays' VIOLATION marks)."""
        from .masks import evidence_from_atoms

        L = o.video.n_frames
        out = []
        for c in constraints:
            if bool(c.satisfied[b]):
                continue
            frames = {k: m[b, :L] for k, m in c.atom_masks.items() if m[b, :L].any()}
            ents = {k: o.signals.support.get(k) or c.atom_entities.get(k, ()) for k in frames}
            out.append(evidence_from_atoms(c.name, c.weight, frames, ents))
        return out

    def mask(self, o: Observed, evidence: Sequence[ViolationEvidence]) -> tuple[np.ndarray, list[Coverage]]:
        """The (T,H,W) violation mask of a video and each violated constraint's coverage (ltlreward.masks)."""
        from .masks import violation_masks

        if o.observations is None:
            raise LtlRewardError(f"{o.vid}: masks need the observations, which were dropped")
        return violation_masks(evidence, o.observations, dilation=self.mask_dilation, max_weight=self.max_weight,
                               size=(o.video.height, o.video.width))

    def failed(self, f: Failure) -> Analysis:
        """The failed result of a video that did not get through the stages (reward NaN, error set)."""
        return Analysis(RewardResult.failed(f.vid, f.error, grounder=f.grounder or self.grounder_name,
                                            reward_mode=self.spec.reward, timings=stage_times(f.timings),
                                            grounder_reason=f.reason))


def localise(outcomes: Sequence[ConstraintOutcome], covers: Sequence[Coverage] | None, n_frames: int
             ) -> list[Localisation]:
    """The record's `localisation`: per violated constraint, its witness's share of the frames and, with masks,
    its mask's coverage (`covers` from ltlreward.masks, one per violated constraint in order)."""
    by_name = {c.name: c for c in covers or ()}
    out = []
    for c in outcomes:
        if c.satisfied:
            continue
        k = len(c.witness.frames) if c.witness is not None else 0
        cov = by_name.get(c.name)
        out.append(Localisation(c.name, k, k / max(n_frames, 1),
                                None if cov is None else cov.frame_fraction,
                                None if cov is None else cov.pixel_fraction,
                                () if cov is None else cov.stand_ins))
    return out


def stack_signals(group: Sequence[Observed]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Lengths (B,) int64 and each atom's signals (B, T) float32 of a group, zero-padded past each length."""
    lengths = np.array([o.video.n_frames for o in group], dtype=np.int64)
    B, T = len(group), int(lengths.max())
    signals: dict[str, np.ndarray] = {}
    for key in group[0].signals.values:
        arr = np.zeros((B, T), np.float32)  # (B, T)
        for b, o in enumerate(group):
            arr[b, : lengths[b]] = o.signals.values[key]
        signals[key] = arr
    return lengths, signals


# ------------------------------------------------------------------------------------------ steps
def decode_step(pipe: Pipeline, vid: str, item: Any) -> Decoded | Failure:
    """Stage 1 on one item, timed; an error becomes a Failure."""
    t0 = time.perf_counter()
    try:
        video = pipe.decode(item)
    except Exception as e:  # recorded per video: one bad video never stops a batch (nothing grounded it)
        return Failure(vid, error_text(e), "", {"decode": time.perf_counter() - t0})
    return Decoded(vid, video, {"decode": time.perf_counter() - t0})


def ground_step(pipe: Pipeline, d: Decoded | Failure, sidecar: str | os.PathLike[str] | None = None,
                prompts: Any = None) -> Grounded | Failure:
    """Stage 2 on a decoded video, timed, checking the frame count; an error becomes a Failure."""
    if isinstance(d, Failure):
        return d
    t0 = time.perf_counter()
    grounder, reason = pipe.choice(getattr(d.video, "path", None), sidecar, prompts)
    grounder = grounder if reason else ""
    try:
        obs = pipe.ground(d.video, sidecar=sidecar, prompts=prompts)
        grounder = pipe.backend(obs)
        if obs.n_frames != d.video.n_frames:
            raise LtlRewardError(f"{d.vid}: grounder {grounder!r} returned {obs.n_frames} frames "
                                 f"for a video of {d.video.n_frames}")
    except Exception as e:
        return Failure(d.vid, error_text(e), grounder, {**d.timings, "ground": time.perf_counter() - t0}, reason)
    return Grounded(d.vid, d.video, obs, grounder, {**d.timings, "ground": time.perf_counter() - t0},
                    obs.meta.get("grounder_reason", reason))


def predicates_step(pipe: Pipeline, g: Grounded | Failure) -> Observed | Failure:
    """Stage 3 on a grounded video, timed; an error becomes a Failure."""
    if isinstance(g, Failure):
        return g
    t0 = time.perf_counter()
    try:
        signals = pipe.predicates(g.observations, g.grounder)
    except Exception as e:
        return Failure(g.vid, error_text(e), g.grounder, {**g.timings, "predicates": time.perf_counter() - t0},
                       g.reason)
    return Observed(g.vid, g.video, g.observations, signals, g.grounder,
                    {**g.timings, "predicates": time.perf_counter() - t0}, g.reason)


def observe(pipe: Pipeline, vid: str, item: Any, sidecar: str | os.PathLike[str] | None = None,
            prompts: Any = None) -> Observed | Failure:
    """Stages 1–3 for one video in this process."""
    return predicates_step(pipe, ground_step(pipe, decode_step(pipe, vid, item), sidecar, prompts))


def clock_fps(o: Observed) -> float:
    """The frame rate seconds are counted in for `o`: its signals' time base (a sidecar's simulation rate when
    it differs from the playback rate), else the video's."""
    return round(float(o.signals.fps or o.video.fps), 6)


def fps_groups(items: Sequence[Observed | Failure]) -> dict[float, list[int]]:
    """Positions of the observed videos per time base (`clock_fps`, rounded to 1e-6), groups in first-seen
    order."""
    groups: dict[float, list[int]] = {}
    for i, it in enumerate(items):
        if isinstance(it, Observed):
            groups.setdefault(clock_fps(it), []).append(i)
    return groups


def monitor_all(pipe: Pipeline, items: Sequence[Observed | Failure]) -> list[Analysis]:
    """Stage 4 for a batch, results in input order: one monitor call per frame rate; failures become failed
    results."""
    out: list[Analysis | None] = [None] * len(items)
    for fps, idx in fps_groups(items).items():
        group = [items[i] for i in idx]
        for i, a in zip(idx, _monitor_group(pipe, group, fps), strict=True):  # type: ignore[arg-type]
            out[i] = a
    return [a if a is not None else pipe.failed(items[i]) for i, a in enumerate(out)]  # type: ignore[arg-type]


def _monitor_group(pipe: Pipeline, group: list[Observed], fps: float) -> list[Analysis]:
    """One monitor call; when it raises, each video again on its own, so only the videos that fail alone fail."""
    try:
        return pipe.monitor(group, fps)
    except Exception as e:  # a monitor error (a bad signal)
        if len(group) == 1:
            o = group[0]
            return [pipe.failed(Failure(o.vid, error_text(e), o.grounder, o.timings, o.reason))]
        return [a for o in group for a in _monitor_group(pipe, [o], fps)]


__all__ = [
    "STAGES",
    "Analysis",
    "Decoded",
    "Failure",
    "Grounded",
    "Observed",
    "Pipeline",
    "Sampling",
    "VideoInfo",
    "decode_step",
    "error_text",
    "fps_groups",
    "ground_step",
    "grounder_label",
    "localise",
    "monitor_all",
    "observe",
    "predicates_step",
    "stack_signals",
    "stage_times",
    "video_id",
]
