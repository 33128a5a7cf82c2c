"""`RewardModel`: video → grounding → predicate signals → LTLf monitor → reward, witnesses and masks.

    model = RewardModel("specs/handover.ltl")               # grounder "auto": sidecar → state, else colour
    result = model.score("examples/handover_drop.mp4")      # RewardResult (reward, constraints, witnesses)
    rewards, info = model(videos)                           # trainer API: (B,) float32 + per-constraint info

RewardModel is the in-process face of `ltlreward.pipeline`: it validates its arguments, builds the grounder
once into a `Pipeline` (the four stages as functions of values) and runs videos through `pipeline.observe`
(decode, ground, predicates) and `pipeline.monitor_all` (one monitor call per frame rate). The spec's
`reward` line picks a mode of `ltlreward.reward_modes` (weighted_mean, all, mean_robustness,
min_robustness). A spec without constraints scores 1. A video that cannot be scored gets reward NaN in its
RewardResult (the error is recorded, the rest of the batch goes on); `__call__` returns `failure_reward`
(default 0) for it. `lost_record(model_kwargs, …)` is the record of a video whose worker process died, as
the model those kwargs build would have named it (both batch engines use it).

Batching: `score_batch` / `__call__` decode, ground and compute predicates per video, then monitor all
videos of equal fps in one call, padding shorter traces and passing their `lengths` (ragged batch). The
monitor stage's time is shared among those videos in proportion to their frame counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SpecError
from .pipeline import STAGES, Analysis, Pipeline, Sampling, grounder_label, monitor_all, observe, video_id
from .result import RewardResult
from .reward_modes import REWARD_MODES, aggregate, unknown_mode
from .spec.ast import TaskSpec


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


def _pixels(pixels: str) -> str:
    if pixels not in ("auto", "always"):
        raise ValueError(f"pixels must be 'auto' or 'always', got {pixels!r}")
    return pixels


def _build_grounder(grounder: Any, options: Mapping[str, Any] | None) -> Any:
    """A backend from its name (built once with `options`) or a ready object with the Grounder protocol."""
    from .grounding import get_grounder

    if isinstance(grounder, str):
        return get_grounder(grounder, **dict(options or {}))
    if callable(getattr(grounder, "ground", None)):
        return grounder  # an instance of a custom backend (the Grounder protocol)
    raise TypeError(f"grounder must be a backend name or an object with .ground(), got {grounder!r}")


def _check_prompts(prompts: Any, task: TaskSpec) -> Any:
    """Default prompts checked once, before any video: one file (or dict) is read and its entity names checked
    against the spec; a directory (one file per video) is kept as is."""
    if prompts is None or (isinstance(prompts, (str, os.PathLike)) and Path(prompts).is_dir()):
        return prompts
    from .grounding.prompts import load_prompts

    loaded = load_prompts(prompts)
    loaded.check_entities(tuple(e.name for e in task.entities))
    return loaded


class RewardModel:
    """Scores videos against one task spec; see the module docstring for modes, batching and failures.

    Options: `grounder` backend name ("auto", "state", "color", …) built once with `grounder_options`, or
    a ready backend object (anything with the Grounder protocol's `.ground`);
    `sidecar` a simulator sidecar used for every video (default: `<stem>.sidecar.json` beside each video);
    `prompts` where each entity is on one frame, for every video (ltlreward.grounding.prompts: a prompts file,
    a directory of `<stem>.prompts.json`, a dict or a Prompts; default: `<stem>.prompts.json` beside each);
    `stride` / `target_fps` / `max_frames` / `size` frame sampling and resizing (files and in-memory frames);
    `fps` the frame rate assumed for in-memory frames; `masks` build (T,H,W) violation masks with
    `mask_dilation` frames of temporal dilation; `predicate_options` a PredicateOptions or its kwargs;
    `pixels` "auto" (a file scored by a grounder that reads no pixels, the state grounder, is not decoded:
    its frame count, size and rate come from the container) or "always" (overlays need the frames).
    `pipeline` is the resulting `ltlreward.pipeline.Pipeline` (what the batch engines run).
    """

    def __init__(
        self,
        spec: TaskSpec | str | os.PathLike[str],
        grounder: Any = "auto",
        *,
        sidecar: str | os.PathLike[str] | None = None,
        prompts: Any = None,
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
        pixels: str = "auto",
    ) -> None:
        from .predicates import PredicateOptions
        from .video import DEFAULT_FPS

        task = load_task_spec(spec)
        if task.reward not in REWARD_MODES:
            raise SpecError(unknown_mode(task.reward), file=task.path)
        sampling = Sampling(stride, target_fps, max_frames, size)  # validated here, before any video
        backend = _build_grounder(grounder, grounder_options)
        prompts = _check_prompts(prompts, task)
        if isinstance(predicate_options, Mapping):
            predicate_options = PredicateOptions(**predicate_options)
        self.pipeline = Pipeline(
            spec=task, grounder=backend, grounder_name=grounder_label(grounder), sampling=sampling,
            predicate_options=predicate_options or PredicateOptions(),
            fps=float(fps) if fps is not None else DEFAULT_FPS, sidecar=sidecar, prompts=prompts, masks=masks,
            mask_dilation=int(mask_dilation), pixels=_pixels(pixels),
        )
        self.failure_reward = float(failure_reward)

    @property
    def spec(self) -> TaskSpec:
        """The task spec scored."""
        return self.pipeline.spec

    @property
    def grounder(self) -> Any:
        """The grounding backend, built once."""
        return self.pipeline.grounder

    @property
    def grounder_name(self) -> str:
        """The grounder as named in failed records (the name given, or the backend object's name)."""
        return self.pipeline.grounder_name

    @property
    def names(self) -> tuple[str, ...]:
        """Constraint names in spec order."""
        return self.pipeline.names

    def __repr__(self) -> str:
        return (f"RewardModel(spec={self.spec.path or self.spec.task!r}, grounder={self.grounder_name!r}, "
                f"constraints={list(self.names)}, reward={self.spec.reward!r})")

    # -- public API ---------------------------------------------------------------------------------------
    def score(self, video: Any, *, sidecar: str | os.PathLike[str] | None = None, prompts: Any = None
              ) -> RewardResult:
        """Score one video (path, Video, uint8 (T,H,W,3) or [0,1] float frames); failures are recorded."""
        return self.analyze(video, sidecar=sidecar, prompts=prompts).result

    def analyze(self, video: Any, *, sidecar: str | os.PathLike[str] | None = None, prompts: Any = None
                ) -> Analysis:
        """Score one video and keep the decoded frames, observations and signals (for overlays)."""
        return self._analyze([video], [sidecar], ids=None, prompts=[prompts])[0]

    def score_batch(
        self, videos: Any, *, sidecars: Sequence[str | os.PathLike[str] | None] | None = None,
        prompts: Sequence[Any] | None = None,
    ) -> list[RewardResult]:
        """Score many videos with one monitor call per frame rate; failed videos are results with `error`.
        `sidecars` / `prompts`: one per video (None = the model's default)."""
        items, ids = self._items(videos)
        sc = list(sidecars) if sidecars is not None else [None] * len(items)
        pr = list(prompts) if prompts is not None else [None] * len(items)
        for what, got in (("sidecars", sc), ("prompts", pr)):
            if len(got) != len(items):
                raise ValueError(f"got {len(got)} {what} for {len(items)} videos")
        return [a.result for a in self._analyze(items, sc, ids, pr)]

    def __call__(
        self, videos: Any, prompts: Sequence[str] | None = None, metadata: Any = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Trainer entry point: rewards (B,) float32 and an info dict.

        `videos`: a list of paths / arrays / Videos, a uint8 (B,T,H,W,3) array, or a float (B,T,C,H,W)
        array or torch tensor in [0,1]. `prompts` (the trainer's text prompts) are ignored: the spec fixes the
        task. `metadata`: optional list of per-video dicts; a "sidecar" key there gives that video's simulator
        sidecar, a "prompts" key its entity prompts (a prompts file, dict or Prompts: where each entity is on
        the conditioning frame).
        info: "satisfied" / "robustness" {constraint: (B,) bool / float32}, "all_satisfied" (B,) bool,
        "masks" list of (T,H,W) float32 (None for failed videos or masks=False), "errors" list of str|None,
        "results" list of RewardResult, "constraint_names".
        """
        items, ids = self._items(videos)
        sidecars: list[Any] = [None] * len(items)
        entity_prompts: list[Any] = [None] * len(items)
        if isinstance(metadata, Sequence) and not isinstance(metadata, str):
            if len(metadata) != len(items):
                raise ValueError(f"got {len(metadata)} metadata entries for {len(items)} videos")
            sidecars = [m.get("sidecar") if isinstance(m, Mapping) else None for m in metadata]
            entity_prompts = [m.get("prompts") if isinstance(m, Mapping) else None for m in metadata]
        results = [a.result for a in self._analyze(items, sidecars, ids, entity_prompts)]
        rewards = np.array([r.reward if r.ok else self.failure_reward for r in results], dtype=np.float32)
        return rewards, self._info(results)

    # -- internals ---------------------------------------------------------------------------------------
    def _info(self, results: list[RewardResult]) -> dict[str, Any]:
        """The trainer's info dict of `__call__` (see there)."""
        B, C = len(results), len(self.names)
        sat = np.zeros((B, C), bool)
        rob = np.full((B, C), np.nan, np.float32)
        for i, r in enumerate(results):
            if r.ok:
                sat[i] = [c.satisfied for c in r.constraints]
                rob[i] = [c.robustness for c in r.constraints]
        return {
            "constraint_names": list(self.names),
            "satisfied": {n: sat[:, j] for j, n in enumerate(self.names)},
            "robustness": {n: rob[:, j] for j, n in enumerate(self.names)},
            "all_satisfied": np.array([r.ok and r.satisfied for r in results], bool),
            "masks": [r.masks for r in results],
            "errors": [r.error for r in results],
            "results": results,
        }

    def _items(self, videos: Any) -> tuple[list[Any], list[str] | None]:
        """Split a batch into per-video items; a 5-D array/tensor is converted in one vectorised step."""
        from .video import Video, as_videos, is_torch

        if isinstance(videos, (str, os.PathLike, Video)):
            return [videos], None
        if isinstance(videos, np.ndarray) or is_torch(videos):
            vs = as_videos(videos, fps=self.pipeline.fps)
            return list(vs), [f"<memory:{i}>" for i in range(len(vs))]
        if isinstance(videos, Sequence):
            return list(videos), None
        raise TypeError(f"cannot score {type(videos).__name__}; pass paths, arrays, tensors or Videos")

    def _analyze(self, items: list[Any], sidecars: list[Any], ids: list[str] | None,
                 prompts: list[Any] | None = None) -> list[Analysis]:
        """Stages 1–3 per video, then stage 4 per frame rate; one Analysis per item, in order."""
        pr = prompts or [None] * len(items)
        observed = [observe(self.pipeline, ids[i] if ids else video_id(item, i), item, sidecars[i], pr[i])
                    for i, item in enumerate(items)]
        return monitor_all(self.pipeline, observed)


def lost_record(model_kwargs: Mapping[str, Any], vid: str, error: BaseException | str) -> dict[str, Any]:
    """The JSON record of a video lost outside the stages (its worker process died): the error, and the
    grounder and reward mode that `RewardModel(**model_kwargs)` would have recorded."""
    try:
        mode = load_task_spec(model_kwargs["spec"]).reward
    except Exception:  # the record of a lost video must not fail itself
        mode = ""
    grounder = grounder_label(model_kwargs.get("grounder", "auto"))
    return RewardResult.failed(vid, error, grounder=grounder, reward_mode=mode).to_json()


__all__ = ["STAGES", "Analysis", "RewardModel", "aggregate", "load_task_spec", "lost_record"]
