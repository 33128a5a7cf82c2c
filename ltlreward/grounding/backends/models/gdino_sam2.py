"""`gdino-sam2` and `owlv2` backends: an open-vocabulary detector finds each entity prompt on keyframes, SAM2
(transformers' Sam2VideoModel) is prompted with the boxes and propagates masks through the clip, and a track
that is lost (object score below `lost_score`, or an empty mask) is re-detected at the next keyframe and
re-prompted. Each entity is one SAM2 object id for the whole clip, so identity is kept.

With entity prompts (ltlreward/grounding/prompts.py: a prompts file beside the video or given) the detector is
skipped: SAM2 is prompted on the prompts' frame with each entity's box (a mask prompt by its box, points as
positive clicks) and propagates from there (frames before it stay unseen); static entities keep their region.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ....errors import GroundingError
from ....raster import box_centers, mask_boxes
from ...observations import Observations
from ...prompts import Prompts, Region, prompt_frame, require_prompted, resolve_prompts
from ...registry import registered_provides
from .cache import ObservationsCache, cache_key, video_key
from .config import ModelsConfig, apply_overrides, load_config
from .detectors import DETECTORS, IMAGENET_MEAN, IMAGENET_STD, frames_to_tensor
from .loading import (
    ModelStats,
    load_model,
    read_preprocessor_config,
    resolve_model_dir,
)

if TYPE_CHECKING:
    from ....spec.ast import Entity
    from ....video import Video


def make_config(config: str | Path | ModelsConfig | None, **overrides: Any) -> ModelsConfig:
    """A ModelsConfig from a path / an existing config / the default search, with keyword overrides."""
    if isinstance(config, ModelsConfig):
        return apply_overrides(config, **overrides)
    return load_config(config, **overrides)


def entity_prompt(e: Entity) -> str:
    """The text a model is prompted with: the entity's prompt, else its name."""
    return (getattr(e, "prompt", "") or getattr(e, "name", str(e))).strip()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (..., 4) and b (..., 4), broadcast; NaN boxes give 0."""
    x0, y0 = np.maximum(a[..., 0], b[..., 0]), np.maximum(a[..., 1], b[..., 1])
    x1, y1 = np.minimum(a[..., 2], b[..., 2]), np.minimum(a[..., 3], b[..., 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])  # noqa: E731
    out = inter / np.maximum(area(a) + area(b) - inter, 1e-9)
    return np.nan_to_num(out, nan=0.0)


def tracks_from_low_res(low: np.ndarray | None, score: np.ndarray, H: int, W: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-entity tracks from low-resolution mask logits (T, E, h, w) (None = nothing tracked) and object score
    logits (T, E): full-resolution masks (E, T, H, W), boxes (their extents), centres, and visibility =
    sigmoid(score) where the mask is non-empty, else 0."""
    import torch
    import torch.nn.functional as F

    T, E = score.shape
    masks = np.zeros((E, T, H, W), bool)
    if low is not None:
        h, w = low.shape[-2:]
        lt = torch.from_numpy(low)
        for i in range(0, T, 8):
            up = F.interpolate(lt[i:i + 8].reshape(-1, 1, h, w), size=(H, W), mode="bilinear", align_corners=False)
            masks[:, i:i + 8] = (up > 0).reshape(-1, E, H, W).numpy().transpose(1, 0, 2, 3)
    boxes = mask_boxes(masks)
    vis = np.where(masks.any(axis=(2, 3)), 1.0 / (1.0 + np.exp(-np.clip(score.T, -50, 50))), 0.0)
    return masks, boxes, box_centers(boxes), vis.astype(np.float32)


class _LazyFrames:
    """SAM2's per-frame inputs computed on demand in chunks (only one chunk kept), so a long clip never sits in
    memory at 1024² float; time spent here is our pre-processing, not model time."""

    def __init__(self, frames: np.ndarray, device: Any, dtype: Any, size: int, mean: Any, std: Any,
                 chunk: int = 16) -> None:
        self.frames, self.device, self.dtype, self.size = frames, device, dtype, size
        self.mean, self.std, self.chunk = mean, std, chunk
        self._start, self._data = -1, None
        self.seconds = 0.0

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, t: int) -> Any:
        start = (int(t) // self.chunk) * self.chunk
        if start != self._start:
            t0 = time.perf_counter()
            self._data = frames_to_tensor(self.frames[start:start + self.chunk], self.device, self.dtype,
                                          (self.size, self.size), self.mean, self.std)
            self._start = start
            self.seconds += time.perf_counter() - t0
        return self._data[int(t) - start]


class Sam2Tracker:
    """SAM2 video tracking through transformers' Sam2VideoModel, driven frame by frame."""

    role = "sam2"
    class_name = "Sam2VideoModel"
    model_types = ("sam2_video", "sam2")

    def __init__(self, source: str, *, device: str = "auto", dtype: str = "auto", allow_download: bool = False,
                 cpu_threads: int = 0, stats: ModelStats | None = None) -> None:
        self.model, self.model_dir, self.device_note = load_model(
            self.role, source, self.class_name, self.model_types, device=device, dtype=dtype,
            allow_download=allow_download, cpu_threads=cpu_threads)
        pre = read_preprocessor_config(self.model_dir)
        self.mean, self.std = pre.get("image_mean", IMAGENET_MEAN), pre.get("image_std", IMAGENET_STD)
        size = self.model.config.image_size
        self.size = int(size[0] if isinstance(size, (list, tuple)) else size)
        p = next(self.model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.stats = stats if stats is not None else ModelStats()

    def session(self, frames: np.ndarray) -> tuple[Any, _LazyFrames]:
        """A fresh inference session over `frames` (T, H, W, 3) uint8."""
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        H, W = frames.shape[1:3]
        lazy = _LazyFrames(frames, self.device, self.dtype, self.size, self.mean, self.std)
        s = Sam2VideoInferenceSession(video=None, video_height=H, video_width=W, inference_device=self.device,
                                      inference_state_device=self.device, video_storage_device=self.device,
                                      dtype=self.dtype)
        s.processed_frames = lazy
        return s, lazy

    def prompt_box(self, session: Any, obj_id: int, t: int, box: np.ndarray) -> None:
        """Condition object `obj_id` on frame `t` with a pixel box (x0, y0, x1, y1)."""
        self.prompt_points(session, obj_id, t, np.asarray(box, np.float64).reshape(2, 2), [2, 3])

    def prompt_points(self, session: Any, obj_id: int, t: int, xy: np.ndarray, labels: Sequence[int]) -> None:
        """Condition object `obj_id` on frame `t` with pixel points (n, 2) labelled SAM-style (1 = positive
        click, 2 / 3 = a box's top-left / bottom-right corner)."""
        import torch

        sx, sy = self.size / session.video_width, self.size / session.video_height
        pts = torch.tensor(np.asarray(xy, np.float64) * [sx, sy], dtype=torch.float32)
        idx = session.obj_id_to_idx(obj_id)
        session.add_point_inputs(idx, t, {"point_coords": pts.view(1, 1, -1, 2).to(self.device),
                                          "point_labels": torch.tensor([[list(labels)]], dtype=torch.int32,
                                                                       device=self.device)})
        session.remove_mask_inputs(idx, t)
        if obj_id not in session.obj_with_new_inputs:
            session.obj_with_new_inputs.append(obj_id)

    def step(self, session: Any, t: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Run frame `t`: (object ids, low-res mask logits (n, h, w) float32, object score logits (n,))."""
        import torch

        with torch.inference_mode():
            out = self.stats.timed(self.role, self.model, session, frame_idx=t)
        logits = out.pred_masks[:, 0].float().cpu().numpy()
        score = out.object_score_logits.reshape(-1).float().cpu().numpy()
        return list(out.object_ids), logits, score


class DetectTrackGrounder:
    """Detector on keyframes → SAM2 tracking → re-detection of lost tracks (base of gdino-sam2 and owlv2)."""

    name = "gdino-sam2"
    detector_role = "grounding_dino"
    provides = registered_provides("gdino-sam2")

    def __init__(self, config: str | Path | ModelsConfig | None = None, *, models: dict[str, str] | None = None,
                 device: str | None = None, dtype: str | None = None, cpu_threads: int | None = None,
                 cache_dir: str | None = None,
                 allow_download: bool | None = None, box_threshold: float | None = None,
                 detect_every: int | None = None, lost_score: float | None = None,
                 detector_batch: int | None = None, masks: bool = True, prompts: Any = None) -> None:
        self.cfg = make_config(config, models=models, device=device, dtype=dtype, cpu_threads=cpu_threads,
                               cache_dir=cache_dir,
                               allow_download=allow_download, box_threshold=box_threshold,
                               detect_every=detect_every, lost_score=lost_score, detector_batch=detector_batch)
        self.masks = masks
        self.prompts = prompts  # default entity prompts for every video (else <stem>.prompts.json beside it)
        self.stats = ModelStats()
        self.cache = ObservationsCache(self.cfg.cache_dir)
        self._detector = None
        self._tracker = None

    # ------------------------------------------------------------------------------------------ models
    @property
    def detector(self) -> Any:
        if self._detector is None:
            cls = DETECTORS[self.detector_role]
            self._detector = cls(self.cfg.model(self.detector_role), device=self.cfg.device, dtype=self.cfg.dtype,
                                 allow_download=self.cfg.allow_download, batch=self.cfg.detector_batch,
                                 cpu_threads=self.cfg.cpu_threads,
                                 stats=self.stats)
        return self._detector

    @property
    def tracker(self) -> Sam2Tracker:
        if self._tracker is None:
            self._tracker = Sam2Tracker(self.cfg.model("sam2"), device=self.cfg.device, dtype=self.cfg.dtype,
                                        allow_download=self.cfg.allow_download, cpu_threads=self.cfg.cpu_threads,
                                        stats=self.stats)
        return self._tracker

    def identity(self) -> dict:
        """Model + settings that determine the output (cache key); resolves the weights, loads nothing."""
        out = {}
        for role in (self.detector_role, "sam2"):
            d = resolve_model_dir(role, self.cfg.model(role), allow_download=self.cfg.allow_download)
            out[role] = str(d.resolve())
        out.update(dtype=self.cfg.dtype, device=self.cfg.device, box_threshold=self.cfg.box_threshold,
                   every=self.cfg.detect_every, lost=self.cfg.lost_score, masks=self.masks)
        return out

    # ------------------------------------------------------------------------------------------ public
    def ground(self, video: Video, entities: Sequence[Entity], *, quoted: Sequence[str] = (),
               sidecar: str | Path | None = None, prompts: Any = None) -> Observations:
        """Masks, boxes, centres and visibility of every entity in every frame (cached on disk); entity prompts
        (given, the grounder's default, or `<stem>.prompts.json` beside the video) replace the detector."""
        names = tuple(getattr(e, "name", str(e)) for e in entities)
        texts = [entity_prompt(e) for e in entities]
        if not entities:
            raise GroundingError(f"grounder {self.name!r}: the spec has no entities to detect")
        pr = resolve_prompts(video, prompts if prompts is not None else self.prompts, required=False)
        key = None
        if self.cache.enabled:
            key = cache_key(video_key(video), self.name, self.identity(), [texts, pr.digest if pr else None])
            hit = self.cache.get(self.name, key)
            if hit is not None and hit.n_frames == video.n_frames and len(hit.entities) == len(names):
                hit.entities = names  # rows follow the prompt order; names may have changed
                hit.meta["cache"] = "hit"
                return hit
        obs = self._ground(video, names, texts) if pr is None else self._ground_prompted(video, names, texts, pr)
        if key is not None:
            self.cache.put(self.name, key, obs)
            obs.meta["cache"] = "miss"
        return obs

    # ------------------------------------------------------------------------------------------ stages
    def _ground_prompted(self, video: Video, names: tuple[str, ...], texts: list[str], pr: Prompts) -> Observations:
        """SAM2 from the entity prompts (no detector): each moving entity prompted on the prompts' frame k and
        propagated from there; static entities keep their region."""
        frames = video.frames
        T, H, W = (int(x) for x in frames.shape[:3])
        regions = pr.regions(names, H, W)
        require_prompted(pr, names, regions)
        k = prompt_frame(pr, video)
        moving = [i for i, n in enumerate(names) if not regions[n].static]
        tracker = self.tracker
        session, lazy = tracker.session(frames)
        for i in moving:
            _prompt_region(tracker, session, i + 1, k, regions[names[i]])
        low: np.ndarray | None = None  # (T, E, h, w) mask logits
        score = np.full((T, len(names)), -np.inf, np.float32)  # (T, E) object score logits
        for t in range(k, T) if moving else ():
            ids, logits, s = tracker.step(session, t)
            if low is None:
                low = np.full((T, len(names), *logits.shape[-2:]), -1e4, np.float32)
            rows = np.asarray(ids) - 1
            low[t, rows], score[t, rows] = logits, s
        self.stats.seconds -= lazy.seconds
        masks, boxes, _, vis = tracks_from_low_res(low, score, H, W)
        for i, n in enumerate(names):
            if regions[n].static:
                masks[i], boxes[i], vis[i] = regions[n].mask, regions[n].box, 1.0
        meta = {"provides": sorted(self.provides if self.masks else self.provides - {"masks"}),
                "prompts": dict(zip(names, texts, strict=True)), "entity_prompts": pr.path, "prompt_frame": k,
                "static": sorted(n for n in names if regions[n].static), "models": {"sam2": str(tracker.model_dir)}}
        return Observations(entities=names, n_frames=T, height=H, width=W, fps=float(video.fps), boxes=boxes,
                            centers=box_centers(boxes), visibility=vis, masks=masks if self.masks else None,
                            source=self.name, meta=meta)

    def _pick(self, boxes: np.ndarray, scores: np.ndarray, taken: list[np.ndarray]) -> tuple[np.ndarray | None,
                                                                                            float]:
        """Best detection (k, 4)/(k,) at or above the threshold not overlapping a box in `taken` (IoU > 0.5)."""
        ok = scores >= self.cfg.box_threshold
        for other in taken:
            ok &= iou(boxes, other[None]) <= 0.5
        if not ok.any():
            return None, 0.0
        i = int(np.flatnonzero(ok)[np.argmax(scores[ok])])
        return boxes[i], float(scores[i])

    def _ground(self, video: Video, names: tuple[str, ...], prompts: list[str]) -> Observations:
        frames = video.frames
        T, H, W = (int(x) for x in frames.shape[:3])
        every = self.cfg.detect_every
        keyframes = np.arange(0, T, every)
        uniq = list(dict.fromkeys(prompts))
        col = np.array([uniq.index(p) for p in prompts])  # (E,) each entity's prompt
        dets = self.detector.detect(frames[keyframes], uniq)  # (K, P, k, 4), (K, P, k)
        tracker = self.tracker
        session, lazy = tracker.session(frames)
        st = _Tracks.empty(T, len(names))
        low: np.ndarray | None = None  # (T, E, h, w) mask logits
        score = np.full((T, len(names)), -np.inf, np.float32)  # (T, E) object score logits
        for t in range(T):
            if t % every == 0:
                self._prompt_lost(st, session, t, dets.boxes[t // every][col], dets.scores[t // every][col])
            if not st.started.any():
                continue
            ids, logits, s = tracker.step(session, t)
            if low is None:
                low = np.full((T, len(names), *logits.shape[-2:]), -1e4, np.float32)
            rows = np.asarray(ids) - 1
            low[t, rows], score[t, rows] = logits, s
            m = logits > 0
            st.last_box[rows] = mask_boxes(m, (W / m.shape[-1], H / m.shape[-2]))
            st.alive[rows] = (s >= self.cfg.lost_score) & m.any(axis=(1, 2))
        self.stats.seconds -= lazy.seconds  # pre-processing inside the model call is ours
        masks, boxes, centers, vis = tracks_from_low_res(low, score, H, W)
        meta = {"provides": sorted(self.provides if self.masks else self.provides - {"masks"}),
                "prompts": dict(zip(names, prompts, strict=True)), "keyframes": keyframes.tolist(),
                **st.meta(names),
                "models": {self.detector_role: str(self.detector.model_dir), "sam2": str(tracker.model_dir)}}
        note = self.detector.device_note or tracker.device_note
        if note:
            meta["device_note"] = note
        return Observations(entities=names, n_frames=T, height=H, width=W, fps=float(video.fps), boxes=boxes,
                            centers=centers, visibility=vis,
                            masks=masks if self.masks else None, source=self.name, meta=meta)

    def _prompt_lost(self, st: _Tracks, session: Any, t: int, boxes: np.ndarray, scores: np.ndarray) -> None:
        """On keyframe t, prompt SAM2 with a fresh detection for every entity not tracked now (boxes (E, k, 4),
        scores (E, k) of each entity's prompt); entities take detections in order, never one already taken."""
        taken = [st.last_box[j] for j in range(len(st.alive)) if st.alive[j]]
        for e in np.flatnonzero(~st.alive):
            box, s = self._pick(boxes[e], scores[e], taken)
            if box is None:
                continue
            self.tracker.prompt_box(session, int(e) + 1, t, box)
            st.started[e], st.prompted[t, e], st.det_score[t, e], st.det_box[t, e] = True, True, s, box
            taken.append(box)


def _prompt_region(tracker: Sam2Tracker, session: Any, obj_id: int, t: int, r: Region) -> None:
    """Prompt SAM2 with one entity's region: its box (a mask prompt: the mask's box), or its points as positive
    clicks."""
    if r.shape == "points":
        tracker.prompt_points(session, obj_id, t, r.points, [1] * len(r.points))
    else:
        tracker.prompt_box(session, obj_id, t, r.box)


@dataclass
class _Tracks:
    """Per-entity tracking state of one clip (E entities, T frames) and the prompts given so far."""

    started: np.ndarray  # (E,) bool: prompted at least once
    alive: np.ndarray  # (E,) bool: tracked at the last frame (score above lost_score, non-empty mask)
    last_box: np.ndarray  # (E, 4) float32 box at the last tracked frame
    prompted: np.ndarray  # (T, E) bool: a detection prompted this entity at this frame
    det_score: np.ndarray  # (T, E) float32 detector score of that prompt
    det_box: np.ndarray  # (T, E, 4) float32 its box

    @classmethod
    def empty(cls, T: int, E: int) -> _Tracks:
        return cls(np.zeros(E, bool), np.zeros(E, bool), np.full((E, 4), np.nan, np.float32), np.zeros((T, E), bool),
                   np.zeros((T, E), np.float32), np.full((T, E, 4), np.nan, np.float32))

    def meta(self, names: tuple[str, ...]) -> dict[str, dict[str, list]]:
        """Where each entity was prompted, with the detector's scores and boxes (Observations.meta)."""
        p = self.prompted
        return {"prompted_frames": {n: np.flatnonzero(p[:, i]).tolist() for i, n in enumerate(names)},
                "detector_scores": {n: self.det_score[p[:, i], i].tolist() for i, n in enumerate(names)},
                "prompt_boxes": {n: self.det_box[p[:, i], i].tolist() for i, n in enumerate(names)}}


class GdinoSam2Grounder(DetectTrackGrounder):
    """Grounding DINO keyframe detection + SAM2 tracking."""

    name = "gdino-sam2"
    detector_role = "grounding_dino"


class Owlv2Sam2Grounder(DetectTrackGrounder):
    """OWLv2 keyframe detection + SAM2 tracking."""

    name = "owlv2"
    detector_role = "owlv2"
    provides = registered_provides("owlv2")
