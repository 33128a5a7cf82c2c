"""`track` backend: a prompted, weight-free tracker. The user says once where each entity is (a prompts file,
ltlreward/grounding/prompts.py); each entity's appearance is learned from that region and followed through
the clip (track_model.py: template + colour models, a motion model, coasting through occlusions,
segmentation of the object's own pixels). Static entities keep their prompt region. Light install only
(numpy + OpenCV); no model weights.

A prompt on frame k > 0 is tracked forward from k and backward from k to the first frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import GroundingError
from ...raster import box_centers, box_masks, mask_boxes, nearest_index, nearest_resize
from ..camera import Camera, image_size_problem
from ..observations import Observations
from ..prompts import Prompts, Region, prompt_frame, require_prompted, resolve_prompts
from ..registry import registered_provides
from .track_model import EntityTracker, Level, Track, TrackParams, colour_bins, grabcut_mask

if TYPE_CHECKING:
    from ...spec.ast import Entity
    from ...video import Video

_MAX_LEVEL = 3


def level_for(box: np.ndarray, side: int) -> int:
    """Pyramid level at which the box's longer side is at most `side` pixels (0 … 3)."""
    longer = float(max(box[2] - box[0], box[3] - box[1]))
    level = 0
    while longer / 2 ** level > side and level < _MAX_LEVEL:
        level += 1
    return level


def _downscale(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    """(T, H, W[, C]) frames area-resized to (h, w): one cv2 call on the stacked frames when H is a multiple of h
    (no row mixes two frames), else one call per frame."""
    import cv2

    T, H, W = frames.shape[:3]
    if H % h == 0:
        flat = frames.reshape(T * H, W, *frames.shape[3:])
        return cv2.resize(flat, (w, T * h), interpolation=cv2.INTER_AREA).reshape(T, h, w, *frames.shape[3:])
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def build_level(frames: np.ndarray, gray: np.ndarray, level: int) -> Level:
    """Pyramid level `level` of a clip (frames (T, H, W, 3) uint8 RGB, their grey (T, H, W))."""
    H, W = frames.shape[1:3]
    h, w = max(1, H >> level), max(1, W >> level)
    rgb = frames if level == 0 else _downscale(frames, h, w)
    g = gray if level == 0 else _downscale(gray, h, w)
    return Level(g, colour_bins(rgb), rgb, (w / W, h / H))


class TrackGrounder:
    """Ground prompted entities by tracking their learned appearance (see the module docstring)."""

    name = "track"
    provides = registered_provides("track")

    def __init__(self, prompts: Any = None, masks: bool = True, unprompted: str = "error",
                 params: TrackParams | dict | None = None) -> None:
        if unprompted not in ("error", "unseen"):
            raise GroundingError(f"track grounder: unprompted must be 'error' or 'unseen', got {unprompted!r}")
        if isinstance(params, dict):
            unknown = sorted(set(params) - set(TrackParams.__dataclass_fields__))
            if unknown:
                raise GroundingError(f"track grounder: unknown parameter {unknown[0]!r} (parameters: "
                                     f"{', '.join(TrackParams.__dataclass_fields__)})")
            params = TrackParams(**params)
        self.prompts = prompts  # default for every video: a prompts file, a directory of them, a dict or Prompts
        self.masks = masks
        self.unprompted = unprompted  # a spec entity without a prompt: an error, or never seen
        self.params = params or TrackParams()

    def ground(self, video: Video, entities: Sequence[Entity], *, quoted: Sequence[str] = (),
               sidecar: str | Path | None = None, prompts: Any = None) -> Observations:
        """Observations of every prompted entity: boxes, centres, visibility and masks in every frame. The
        sidecar (simulator state) is never read; quoted atoms need a text-capable grounder."""
        pr = resolve_prompts(video, prompts if prompts is not None else self.prompts)
        names = tuple(getattr(e, "name", str(e)) for e in entities)
        frames = np.ascontiguousarray(video.frames)
        T, H, W = (int(x) for x in frames.shape[:3])
        regions = pr.regions(names, H, W)
        if self.unprompted == "error":
            require_prompted(pr, names, regions)
        k = prompt_frame(pr, video)
        boxes = np.full((len(names), T, 4), np.nan, np.float32)
        vis = np.zeros((len(names), T), np.float32)
        masks = np.zeros((len(names), T, H, W), bool) if self.masks else None
        tracked = _Clip(frames, self.params)
        for i, name in enumerate(names):
            if name not in regions:
                continue
            r = regions[name]
            if r.static:
                boxes[i], vis[i] = r.box, 1.0
                if masks is not None:
                    masks[i] = r.mask
                continue
            boxes[i], vis[i] = tracked.entity(r, k, masks[i] if masks is not None else None)
        return Observations(
            entities=names, n_frames=T, height=H, width=W, fps=float(video.fps), boxes=boxes,
            centers=box_centers(boxes), visibility=vis, masks=masks, source=self.name,
            meta=_meta(pr, names, regions, k, self.masks, tracked.levels_used),
            camera=_camera(pr, W, H), support_z=pr.support_z,
            extents={n: x for n, x in pr.extents.items() if n in names},
        )


def _camera(pr: Prompts, W: int, H: int) -> Camera | None:
    """The prompts' camera for this video's pixels (scaled with a resize); an error when it describes another
    image. With it (and a support plane or known extents) metre-valued predicates are judged in 2.5-D."""
    if pr.camera is None:
        return None
    problem = image_size_problem(pr.camera, W, H)
    if problem is not None:
        raise pr.fail("camera.width", problem)
    return pr.camera.scaled(W, H)


def _meta(pr: Prompts, names: tuple[str, ...], regions: dict[str, Region], k: int, masks: bool,
          levels: dict[str, int]) -> dict:
    """What the observations record about the prompts: file, frame, static and unprompted entities, levels and
    the prompts' camera (sidecar schema) for metric predicates."""
    meta: dict[str, Any] = {
        "provides": sorted({"boxes", "centers", "visibility"} | ({"masks"} if masks else set())),
        "prompts": pr.path, "prompt_frame": k, "static": sorted(n for n, r in regions.items() if r.static),
        "unprompted": [n for n in names if n not in regions], "levels": levels,
    }
    if pr.camera is not None:
        cam = pr.camera
        meta["camera"] = {"intrinsics": cam.K.tolist(), "extrinsics": cam.extrinsics.tolist(),
                          "width": cam.width, "height": cam.height}
    return meta


class _Clip:
    """A clip's pyramid levels (built on first use) and the tracking of its moving entities."""

    def __init__(self, frames: np.ndarray, params: TrackParams) -> None:
        import cv2

        T, H, W = frames.shape[:3]
        self.frames, self.params = frames, params
        self.gray = cv2.cvtColor(frames.reshape(T * H, W, 3), cv2.COLOR_RGB2GRAY).reshape(T, H, W)
        self.levels: dict[int, Level] = {}
        self.levels_used: dict[str, int] = {}

    def level(self, n: int) -> Level:
        """Pyramid level n of the clip, built on first use."""
        if n not in self.levels:
            self.levels[n] = build_level(self.frames, self.gray, n)
        return self.levels[n]

    def entity(self, r: Region, k: int, mask_out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (T, 4) and visibility (T,) in video pixels of one moving entity prompted on frame k; its masks
        are written into `mask_out` (T, H, W) when given."""
        n = level_for(r.box, self.params.side)
        self.levels_used[r.name] = n
        lv = self.level(n)
        sx, sy = lv.scale
        box = r.box.astype(np.float64) * np.array([sx, sy, sx, sy])
        h, w = lv.gray.shape[1:3]
        if r.shape == "mask":
            fg = nearest_resize(r.mask[None], h, w)[0]
        elif r.shape == "points":  # the object around the clicked points: grabCut in a box grown around them
            seeds = r.points * np.array([sx, sy])
            g = max(8 * sx, float(max(box[2] - box[0], box[3] - box[1])))
            fg = grabcut_mask(lv.rgb[k], box + np.array([-g, -g, g, g]), seeds, self.params.grabcut_iterations)
            box = mask_boxes(fg).astype(np.float64)
        else:
            fg = grabcut_mask(lv.rgb[k], box, iterations=self.params.grabcut_iterations)
        T = lv.gray.shape[0]
        fwd = EntityTracker(_from(lv, k), box, fg, self.params).run()
        parts = [(np.arange(k, T), fwd)]
        if k > 0:
            parts.append((np.arange(k, -1, -1), EntityTracker(lv.reversed_from(k), box, fg, self.params).run()))
        boxes = np.full((T, 4), np.nan, np.float32)
        vis = np.zeros(T, np.float32)
        scale = np.array([sx, sy, sx, sy], np.float32)
        for frames, tr in parts:
            boxes[frames], vis[frames] = tr.boxes / scale, tr.visibility
            if mask_out is not None:
                _paste(mask_out, frames, tr, (sx, sy), boxes)
        return boxes, vis


def _from(lv: Level, k: int) -> Level:
    """Frames k, k+1, … of a level (views)."""
    return Level(lv.gray[k:], lv.bins[k:], lv.rgb[k:], lv.scale)


def _upsample(crop: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A level's mask crop (h, w) brought to `shape` (H', W') pixels by nearest neighbour: index gathering."""
    return crop[nearest_index(shape[0], crop.shape[0])[:, None], nearest_index(shape[1], crop.shape[1])[None, :]]


def _paste(out: np.ndarray, frames: np.ndarray, tr: Track, scale: tuple[float, float], boxes: np.ndarray) -> None:
    """Write a track's masks into out (T, H, W): each segmented crop brought to video pixels (nearest), the box
    where the entity coasted without a segmentation."""
    H, W = out.shape[1:]
    sx, sy = scale
    for j, t in enumerate(frames):
        if j in tr.crops:
            x0, y0, crop = tr.crops[j]
            X0, Y0 = round(x0 / sx), round(y0 / sy)
            X1, Y1 = min(W, round((x0 + crop.shape[1]) / sx)), min(H, round((y0 + crop.shape[0]) / sy))
            if X1 > X0 and Y1 > Y0:
                out[t, Y0:Y1, X0:X1] = _upsample(crop, (Y1 - Y0, X1 - X0))
        elif tr.visibility[j] > 0:
            out[t] = box_masks(boxes[t], H, W)
