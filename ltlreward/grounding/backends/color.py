"""`color` backend: classical OpenCV colour segmentation + a small tracker, no model weights needed.

Per entity: an HSV range (from its `hsv=` hint, its `color=` hint, or a colour word in its prompt), thresholded
over the whole clip at 1/d resolution in one array operation, cleaned by a morphological opening, split into
connected components (one call for the whole clip: frames are stacked with a blank separator row, and only the
rows holding pixels are labelled), and tracked: each frame the component that best continues the track (near
the predicted centre, of similar size) is taken, fragments touching it are merged in, and through brief
occlusions the track coasts on its velocity with a decaying visibility. The full-resolution mask and exact box
are then computed only in a crop around each tracked box (all crops of a track as one array), gripper openings
for all frames of a track at once, and centres and boxes are smoothed over time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import GroundingError
from ...raster import box_centers, mask_boxes
from ..observations import Observations
from ..registry import registered_provides

if TYPE_CHECKING:
    from ...spec.ast import Entity
    from ...video import Video

HSVRange = tuple[int, int, int, int, int, int]  # h_lo, s_lo, v_lo, h_hi, s_hi, v_hi (OpenCV: H 0-180)

# Colour words → HSV ranges (OpenCV units). Hues wrap: a range with h_lo > h_hi (red) covers both ends.
COLOR_RANGES: dict[str, HSVRange] = {
    "red": (168, 90, 60, 9, 255, 255),
    "orange": (9, 110, 90, 19, 255, 255),
    "yellow": (19, 90, 90, 35, 255, 255),
    "green": (36, 70, 50, 85, 255, 255),
    "cyan": (86, 70, 50, 99, 255, 255),
    "blue": (100, 110, 50, 130, 255, 255),
    "purple": (131, 60, 50, 155, 255, 255),
    "magenta": (156, 60, 80, 167, 255, 255),
    "pink": (150, 30, 150, 175, 150, 255),
    "brown": (5, 80, 30, 22, 255, 150),
    "white": (0, 0, 200, 180, 40, 255),
    "gray": (0, 0, 50, 180, 40, 200),
    "black": (0, 0, 0, 180, 255, 50),
}
_COLOR_ALIASES = {"grey": "gray", "violet": "purple", "teal": "cyan", "turquoise": "cyan", "gold": "yellow",
                  "golden": "yellow", "crimson": "red", "scarlet": "red", "navy": "blue", "lime": "green"}


def color_names() -> tuple[str, ...]:
    """Colour words the backend understands (hints and prompts)."""
    return tuple(sorted([*COLOR_RANGES, *_COLOR_ALIASES]))


def _split_wrap(r: HSVRange) -> list[tuple[np.ndarray, np.ndarray]]:
    """(lower, upper) uint8 bounds for cv2.inRange; a wrapping hue range becomes two."""
    h0, s0, v0, h1, s1, v1 = (round(x) for x in r)
    if h0 <= h1:
        return [(np.array([h0, s0, v0], np.uint8), np.array([h1, s1, v1], np.uint8))]
    return [(np.array([h0, s0, v0], np.uint8), np.array([180, s1, v1], np.uint8)),
            (np.array([0, s0, v0], np.uint8), np.array([h1, s1, v1], np.uint8))]


def entity_hsv_range(entity: Entity) -> HSVRange:
    """The HSV range of `entity`: its hsv= hint, else color= hint, else the first colour word of its prompt."""
    name = getattr(entity, "name", str(entity))
    hsv = entity.hint("hsv") if hasattr(entity, "hint") else None
    if hsv is not None:
        vals = tuple(hsv) if isinstance(hsv, (tuple, list)) else ()
        limits = (180, 255, 255, 180, 255, 255)
        in_range = len(vals) == 6 and all(
            isinstance(v, (int, float)) and 0 <= v <= m for v, m in zip(vals, limits, strict=True)
        )
        if not in_range:
            raise GroundingError(
                f"entity {name!r}: hsv= hint must be 6 numbers (h_lo,s_lo,v_lo,h_hi,s_hi,v_hi) with H in 0..180 "
                f"and S, V in 0..255 (OpenCV units), got {hsv!r}")
        if vals[1] > vals[4] or vals[2] > vals[5]:
            raise GroundingError(f"entity {name!r}: hsv= hint has s_lo > s_hi or v_lo > v_hi: {hsv!r}")
        return tuple(round(v) for v in vals)  # type: ignore[return-value]
    color = entity.hint("color") if hasattr(entity, "hint") else None
    if color is not None:
        key = _COLOR_ALIASES.get(str(color).lower(), str(color).lower())
        if key not in COLOR_RANGES:
            raise GroundingError(f"entity {name!r}: unknown color={color!r}; known colours: "
                                 f"{', '.join(color_names())} (or give hsv=(h_lo,s_lo,v_lo,h_hi,s_hi,v_hi))")
        return COLOR_RANGES[key]
    prompt = getattr(entity, "prompt", "") or ""
    for word in re.findall(r"[a-z]+", prompt.lower()):
        key = _COLOR_ALIASES.get(word, word)
        if key in COLOR_RANGES:
            return COLOR_RANGES[key]
    raise GroundingError(
        f"entity {name!r} ({prompt!r}) has no colour the color grounder can segment: add color=<name> or "
        f"hsv=(h_lo,s_lo,v_lo,h_hi,s_hi,v_hi) to its entity line (colours: {', '.join(sorted(COLOR_RANGES))})")


def _threshold(hsv: np.ndarray, r: HSVRange) -> np.ndarray:
    """uint8 mask (255 = inside the range) of an HSV image; hue ranges may wrap."""
    import cv2

    mask = None
    for lo, hi in _split_wrap(r):
        m = cv2.inRange(hsv, lo, hi)
        mask = m if mask is None else cv2.bitwise_or(mask, m)
    return mask


def _opening_track(raw: np.ndarray, vis: np.ndarray) -> np.ndarray | None:
    """Per-frame gripper opening (T,) from per-frame measurements `raw` (NaN = not measurable): kept where the
    gripper is seen, carried over gaps, median-of-3 smoothed; None when the gripper never shows two separate
    fingers (its opening is then not observable)."""
    T = len(raw)
    raw = np.where(vis >= 1, raw, np.nan)
    ok = ~np.isnan(raw)
    if not ok.any() or np.nanmax(raw) < 0.2:
        return None
    idx = np.where(ok, np.arange(T), 0)
    np.maximum.accumulate(idx, out=idx)  # forward fill
    filled = raw[idx]
    first = int(np.argmax(ok))
    filled[:first] = raw[first]  # back fill the start
    padded = np.r_[filled[0], filled, filled[-1]]
    smooth = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return smooth.astype(np.float32)


def _subsample(frames: np.ndarray, d: int) -> np.ndarray:
    """Every d-th row and column of (T, H, W, 3) frames, contiguous (one nearest-neighbour resize if exact)."""
    import cv2

    if d == 1:
        return frames
    T, H, W = frames.shape[:3]
    if H % d or W % d:
        return np.ascontiguousarray(frames[:, ::d, ::d])
    small = cv2.resize(frames.reshape(T * H, W, 3), (W // d, T * H // d), interpolation=cv2.INTER_NEAREST)
    return small.reshape(T, H // d, W // d, 3)


def _grow(m: np.ndarray) -> np.ndarray:
    """3 × 3 binary dilation of each (h, w) image of a boolean stack (n, h, w), separably."""
    n, h, w = m.shape
    p = np.zeros((n, h + 2, w + 2), bool)  # a blank border around each image
    p[:, 1:-1, 1:-1] = m
    rows = p[:, :-2] | p[:, 1:-1] | p[:, 2:]
    return rows[:, :, :-2] | rows[:, :, 1:-1] | rows[:, :, 2:]


def gripper_opening_from_mask(mask: np.ndarray) -> float:
    """Opening in [0, 1] of a parallel gripper seen as a U (palm + two fingers) in a boolean mask (H, W).

    Pixels are expressed along the mask's major axis u (across the palm) and minor axis w; each 1-px slice
    across w has a pixel count and a u-extent. Palm slices are solid; finger slices are hollow, and their
    gap (extent - count) over the widest possible gap (palm extent - finger pixels) is the opening, so a fully
    open gripper (fingers at the palm's ends) reads 1 and touching fingers read 0. NaN with too few pixels."""
    ys, xs = np.nonzero(mask)
    return float(_openings(np.zeros(len(ys), np.int64), ys, xs, 1)[0])


def _grouped_quantile(group: np.ndarray, values: np.ndarray, q: float, n_groups: int) -> np.ndarray:
    """Linear-interpolated `q` quantile of `values` within each group id in [0, n_groups) (NaN if empty)."""
    order = np.lexsort((values, group))  # one sort: by group, then by value
    v = values[order].astype(np.float64)
    counts = np.bincount(group, minlength=n_groups)
    out = np.full(n_groups, np.nan)
    has = counts > 0
    start = (np.cumsum(counts) - counts)[has]
    pos = q * (counts[has] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.ceil(pos).astype(np.int64)
    out[has] = v[start + lo] + (v[start + hi] - v[start + lo]) * (pos - lo)
    return out


def _openings(t: np.ndarray, ys: np.ndarray, xs: np.ndarray, n_frames: int) -> np.ndarray:
    """Gripper openings (n_frames,) from the mask pixels (t, y, x) of many frames at once (t ascending), as
    `gripper_opening_from_mask` per frame: closed-form 2×2 PCA per frame (sums by reduceat over each frame's
    run of pixels), then count and u-extent of every (frame, slice) key by bincount / ufunc.at (no sort), and
    per-frame quantiles over the few hollow slices; NaN for frames with < 20 pixels."""
    out = np.full(n_frames, np.nan)
    n = np.diff(np.searchsorted(t, np.arange(n_frames + 1)))  # pixels per frame (t is sorted)
    if (n[n > 0] < 20).any():  # drop frames with too few pixels
        keep = n[t] >= 20
        t, xs, ys = t[keep], xs[keep], ys[keep]
        n[n < 20] = 0
    frames = np.flatnonzero(n)
    if not len(frames):
        return out
    n = n[frames]
    starts = np.cumsum(n) - n

    def total(v: np.ndarray) -> np.ndarray:  # per-frame sum of a per-pixel value
        return np.add.reduceat(v, starts)

    def per_pixel(v: np.ndarray) -> np.ndarray:  # a per-frame value repeated for each pixel of the frame
        return np.repeat(v, n)

    qx, qy = xs - per_pixel(total(xs) / n), ys - per_pixel(total(ys) / n)  # centred, float64
    sxx, syy, sxy = total(qx * qx), total(qy * qy), total(qx * qy)
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)  # angle of each frame's major axis
    c, s = np.cos(theta), np.sin(theta)  # major axis (c, s); minor axis ±(-s, c), signed as numpy's eigh does:
    sign = np.where((sxy != 0) & np.where(np.abs(s) >= np.abs(c), s < 0, c > 0), -1.0, 1.0)  # largest < 0
    u = qx * per_pixel(c) + qy * per_pixel(s)  # along the major axis
    w = qy * per_pixel(sign * c) - qx * per_pixel(sign * s)  # along the minor axis
    wb = np.round(w - per_pixel(np.minimum.reduceat(w, starts))).astype(np.int64)
    K = int(wb.max()) + 1
    key = per_pixel(np.arange(len(frames)) * K) + wb  # one key per (frame, 1-px slice across the minor axis)
    count = np.bincount(key, minlength=len(frames) * K).astype(np.float64)
    hi, lo = np.full(len(count), -np.inf), np.full(len(count), np.inf)
    np.maximum.at(hi, key, u)
    np.minimum.at(lo, key, u)
    occupied = np.flatnonzero(count)  # slices in (frame, position) order
    count, span, sf = count[occupied], hi[occupied] - lo[occupied] + 1.0, occupied // K
    span_max = np.maximum.reduceat(span, np.searchsorted(sf, np.arange(len(frames))))
    hollow = count < 0.75 * span
    gap = _grouped_quantile(sf[hollow], (span - count)[hollow], 0.3, len(frames))  # low quantile: ignores pads
    fingers = _grouped_quantile(sf[hollow], count[hollow], 0.5, len(frames))
    with np.errstate(invalid="ignore"):
        out[frames] = np.where(np.isnan(gap), 0.0, np.clip(gap / np.maximum(span_max - fingers, 1.0), 0.0, 1.0))
    return out


@dataclass
class _Components:
    """Connected components of one colour over a whole clip (frames stacked with separator rows, of which only
    the rows that hold pixels, and the blank row after each run of them, are kept)."""

    shape: tuple[int, int, int]  # (T, Hs, Ws) of the coarse mask
    labels: np.ndarray  # (R+1, Ws) int32 component label per pixel of the kept rows (0 = background) + a blank row
    row: np.ndarray  # (T·(Hs+1),) row of `labels` for each row of the stacked clip (dropped rows: the blank one)
    frame: np.ndarray  # (N,) frame of each component (index 0 = background is -1)
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1 in full-resolution pixels (x1, y1 exclusive)
    area: np.ndarray  # (N,) pixels at full resolution
    by_frame: list[list[int]]  # per frame: labels of components big enough to be candidates

    def crop(self, frames: np.ndarray, y0: np.ndarray, x0: np.ndarray, h: int, w: int) -> np.ndarray:
        """Labels (n, h, w) of the cells [y0, y0+h) × [x0, x0+w) of each of the n given frames."""
        rows = self.row[(frames * (self.shape[1] + 1) + y0)[:, None] + np.arange(h)]  # (n, h)
        return sliding_window_view(self.labels[rows], w, axis=2)[np.arange(len(frames)), :, x0]


@dataclass
class _Crops:
    """Same-size full-resolution mask crops of one track: crop j shows frame frames[j] from (y0[j], x0[j])."""

    frames: np.ndarray  # (n,) frame indices
    y0: np.ndarray  # (n,) top row of each crop
    x0: np.ndarray  # (n,) left column of each crop
    mask: np.ndarray  # (n, h, w) bool

    def paste(self, out: np.ndarray) -> None:
        """Write the crops into a (T, H, W) mask (crops overhanging its edge hold no pixels there)."""
        _, h, w = self.mask.shape
        T, H, W = out.shape
        pad_h, pad_w = max(0, int(self.y0.max()) + h - H), max(0, int(self.x0.max()) + w - W)
        target = np.zeros((T, H + pad_h, W + pad_w), bool) if pad_h or pad_w else out
        sliding_window_view(target, (h, w), axis=(1, 2), writeable=True)[self.frames, self.y0, self.x0] = self.mask
        if target is not out:
            out[:] = target[:, :H, :W]


@dataclass
class _Track:
    """One entity's track between frames: predicted centre and velocity (pixels per frame), smoothed area and
    size (√area), its last box and how many frames it has coasted since it was last seen. Plain floats: the
    few candidates of a frame are scored faster without numpy calls."""

    gate: float  # max jump from the prediction, in object sizes (+8 px), for a blob of about the same size
    coast_frames: int  # frames a lost track keeps its predicted position
    decay: float  # visibility multiplier per coasted frame
    center: tuple[float, float] | None = None  # None = not tracking (never acquired, or lost for good)
    vel: tuple[float, float] = (0.0, 0.0)
    area: float = 0.0
    size: float = 0.0
    box: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    missed: int = 0

    def pick(self, cands: list[int], boxes: list[list[float]], areas: list[float]) -> int | None:
        """The candidate component that best continues the track; the largest one when (re)acquiring."""
        if not cands:
            return None
        if self.center is None:
            return max(cands, key=areas.__getitem__)
        px, py = self.center[0] + self.vel[0], self.center[1] + self.vel[1]
        # near the prediction the blob may change shape (partly occluded, merged with a finger);
        # a far jump (fast motion, a fall) is taken only by a blob of about the same size
        near = self.size + 8.0
        gate = self.gate * self.size * (1 + 0.5 * self.missed) + 8.0
        pick, best = None, math.inf
        for k in cands:
            x0, y0, x1, y1 = boxes[k]
            dist = math.hypot((x0 + x1) / 2 - px, (y0 + y1) / 2 - py)
            ratio = max(areas[k] / self.area, self.area / areas[k])
            cost = dist / gate + 2.0 * math.log(ratio)
            if ((dist <= near and ratio <= 6.0) or (dist <= gate and ratio <= 1.4)) and cost < best:
                pick, best = k, cost
        return pick

    def hit(self, box: list[float], area: float) -> np.ndarray:
        """Move onto the chosen components' box and total area (velocity and area smoothed); the float32 box."""
        new_center = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        if self.center is None:
            self.vel, self.area = (0.0, 0.0), area
        else:
            dx, dy = new_center[0] - self.center[0], new_center[1] - self.center[1]
            v = self.vel
            self.vel = (0.5 * v[0] + 0.5 * dx, 0.5 * v[1] + 0.5 * dy) if self.missed == 0 else (dx, dy)
            self.area = 0.7 * self.area + 0.3 * area
        self.center, self.size, self.missed = new_center, math.sqrt(self.area), 0
        self.box = np.array(box, np.float32)
        return self.box

    def coast(self) -> tuple[np.ndarray, float] | None:
        """An unseen frame: the predicted box and decayed visibility while the track may coast (its velocity
        damped); None, and the track dropped, once it has coasted `coast_frames` frames or never started."""
        if self.center is None or self.missed >= self.coast_frames:
            self.center, self.vel, self.missed = None, (0.0, 0.0), 0
            return None
        self.missed += 1
        self.center = (self.center[0] + self.vel[0], self.center[1] + self.vel[1])
        self.vel = (self.vel[0] * 0.8, self.vel[1] * 0.8)
        half = (self.box[2:] - self.box[:2]) / 2
        self.box = np.concatenate([np.array(self.center) - half, np.array(self.center) + half]).astype(np.float32)
        return self.box, self.decay**self.missed


def _merge_fragments(pick: int, cands: list[int], boxes: list[list[float]], m: float
                     ) -> tuple[list[int], list[float]]:
    """The chosen component plus the fragments (an object split by an occluder) whose boxes come within `m`
    pixels of its box, and the box around them all."""
    box = list(boxes[pick])
    group = [pick]
    for k in cands:
        kb = boxes[k]
        if k != pick and kb[0] <= box[2] + m and kb[2] >= box[0] - m and kb[1] <= box[3] + m and kb[3] >= box[1] - m:
            group.append(k)
            box = [min(box[0], kb[0]), min(box[1], kb[1]), max(box[2], kb[2]), max(box[3], kb[3])]
    return group, box


class ColorGrounder:
    """Ground entities by colour: HSV threshold → opening → connected components → tracker → smoothing."""

    name = "color"
    provides = registered_provides("color")

    def __init__(
        self,
        downsample: int = 0,
        min_area: float = 0.0004,
        open_px: int = 3,
        coast_frames: int = 6,
        visibility_decay: float = 0.7,
        gate: float = 3.0,
        merge_px: float = 4.0,
        smooth: int = 3,
        smooth_px: float = 1.5,
        masks: bool = True,
        gripper_opening: bool = True,
    ) -> None:
        if downsample < 0 or int(downsample) != downsample:
            msg = f"downsample must be 0 (auto) or a positive integer, got {downsample!r}"
            raise GroundingError(f"color grounder: {msg}")
        self.downsample = int(downsample)  # components at 1/downsample resolution; 0 = 2 for frames >= 160 px
        self.min_area = min_area  # smallest component, as a fraction of the frame area
        self.open_px = open_px  # morphological opening kernel size in full-resolution pixels; <= 1 = none
        self.coast_frames = coast_frames  # frames a lost track keeps its predicted position
        self.visibility_decay = visibility_decay  # visibility multiplier per coasted frame
        self.gate = gate  # max jump from the predicted centre, in object sizes (+8 px), for a same-size blob
        self.merge_px = merge_px  # fragments within this many pixels of the chosen component are merged
        self.smooth = smooth  # centred moving-average window over time for centres/boxes (1 = none)
        self.smooth_px = smooth_px  # smoothing moves a coordinate at most this far: jitter goes, motion stays
        self.masks = masks
        self.gripper_opening = gripper_opening  # estimate openings of `: gripper` entities from their U shape

    # ------------------------------------------------------------------------------------------ public
    def ground(
        self,
        video: Video,
        entities: Sequence[Entity],
        *,
        quoted: Sequence[str] = (),
        sidecar: str | Path | None = None,
    ) -> Observations:
        """Observations from colour: boxes, centres, visibility and (optionally) masks for every entity.
        Quoted atoms and sidecars are not used: text atoms need a text-capable grounder (the predicate layer
        reports them as a CapabilityError)."""
        import cv2

        ranges = [entity_hsv_range(e) for e in entities]  # errors before any work
        frames = np.ascontiguousarray(video.frames)
        T, H, W = (int(x) for x in frames.shape[:3])
        d = self.downsample if self.downsample else (2 if min(H, W) >= 160 else 1)
        small = _subsample(frames, d)  # components at 1/d resolution; full resolution only around the tracks
        Hs, Ws = small.shape[1:3]
        hsv = cv2.cvtColor(small.reshape(T * Hs, Ws, 3), cv2.COLOR_RGB2HSV)
        E = len(entities)
        boxes = np.full((E, T, 4), np.nan, np.float32)
        vis = np.zeros((E, T), np.float32)
        masks = np.zeros((E, T, H, W), bool) if self.masks else None
        cache: dict[HSVRange, tuple[_Components, list[set[int]]]] = {}
        names = tuple(getattr(e, "name", str(e)) for e in entities)
        openings: dict[str, np.ndarray] = {}
        for i, r in enumerate(ranges):
            if r not in cache:  # same-colour entities share components and split them between them
                cache[r] = (self._components(_threshold(hsv, r).reshape(T, Hs, Ws), d), [set() for _ in range(T)])
            comps, claimed = cache[r]
            main, extra, box, v = self._track(comps, claimed, T)
            vis[i] = v
            is_gripper = self.gripper_opening and getattr(entities[i], "kind", "") == "gripper"
            if d == 1 and masks is None and not is_gripper:
                boxes[i] = box
                continue
            crops, boxes[i] = self._track_crops(frames, comps, main, extra, box, r, d)
            if masks is not None and len(crops.frames):
                crops.paste(masks[i])
            if is_gripper:
                tt, ys, xs = np.nonzero(crops.mask)
                op = _opening_track(_openings(crops.frames[tt], ys, xs, T), v)
                if op is not None:
                    openings[names[i]] = op
        boxes = self._smooth(boxes, vis)
        centers = box_centers(boxes)
        return Observations(
            entities=names, n_frames=T, height=H, width=W,
            fps=float(video.fps), boxes=boxes, centers=centers, visibility=vis, masks=masks,
            gripper_opening=openings, source=self.name,
            meta={"provides": sorted({"centers", "boxes", "visibility"} | ({"masks"} if self.masks else set())
                                     | ({"gripper_opening"} if openings else set())),
                  "hsv_ranges": {getattr(e, "name", str(e)): list(r) for e, r in zip(entities, ranges, strict=True)}},
        )

    # ------------------------------------------------------------------------------------------ stages
    def _components(self, mask: np.ndarray, d: int) -> _Components:
        """Opening + connected components of one colour's (T, Hs, Ws) mask over the whole clip at once."""
        import cv2

        T, Hs, Ws = mask.shape
        # frames stacked with a blank row after each (keeps frames apart); only the rows with pixels, the blank
        # row after each run of them and row 0 are kept: opening (⊆ its input) and labelling treat the runs as
        # they would the whole image, labels stay numbered in raster order, tops map back through `rows`
        filled = np.zeros((T, Hs + 1), bool)
        filled[:, :Hs] = mask.view(bool).any(axis=2)  # rows with pixels (bool's any is the fast one)
        filled = filled.ravel()
        rows = np.flatnonzero(filled | np.r_[True, filled[:-1]])
        t, y = np.divmod(rows, Hs + 1)
        src = np.concatenate([mask.reshape(T * Hs, Ws), np.zeros((1, Ws), mask.dtype)])
        flat = src[np.where(y < Hs, t * Hs + y, T * Hs)]
        k = max(1, round(self.open_px / d))
        if k > 1:  # opening; explicit anchors so that even kernels do not shift the result
            kernel = np.ones((k, k), np.uint8)
            flat = cv2.dilate(cv2.erode(flat, kernel, anchor=(0, 0)), kernel, anchor=(k - 1, k - 1))
        _, dense, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8, ltype=cv2.CV_32S)
        labels = np.concatenate([dense, np.zeros((1, Ws), np.int32)])
        row = np.full(T * (Hs + 1), len(rows))
        row[rows] = np.arange(len(rows))
        top = rows[stats[:, cv2.CC_STAT_TOP]]
        frame = top // (Hs + 1)
        frame[0] = -1
        x0 = stats[:, cv2.CC_STAT_LEFT].astype(np.float32)
        y0 = (top - frame * (Hs + 1)).astype(np.float32)
        boxes = np.stack([x0, y0, x0 + stats[:, cv2.CC_STAT_WIDTH], y0 + stats[:, cv2.CC_STAT_HEIGHT]], axis=1) * d
        area = stats[:, cv2.CC_STAT_AREA].astype(np.float32) * d * d
        min_px = self.min_area * Hs * Ws * d * d
        cand = np.flatnonzero(area >= min_px)
        cand = cand[cand > 0]
        order = np.argsort(frame[cand], kind="stable")
        cand = cand[order]
        bounds = np.searchsorted(frame[cand], np.arange(T + 1)).tolist()
        listed = cand.tolist()
        by_frame = [listed[a:b] for a, b in pairwise(bounds)]
        return _Components((T, Hs, Ws), labels, row, frame, boxes, area, by_frame)

    @staticmethod
    def _track_crops(
        frames: np.ndarray, c: _Components, main: np.ndarray, extra: list[tuple[int, int]], boxes: np.ndarray,
        r: HSVRange, d: int,
    ) -> tuple[_Crops, np.ndarray]:
        """Full-resolution mask crops of a track and its boxes (T, 4), exact where it has pixels.

        Only a crop around each frame's box is looked at (one crop size for the whole track, so the crops form
        one array): the coarse footprint (main component + merged fragments, grown by one cell when d > 1),
        replicated to full resolution and intersected with the full-resolution threshold of the crop."""
        import cv2

        _, H, W = frames.shape[:3]
        _, Hs, Ws = c.shape
        seen = np.flatnonzero(main >= 0)
        if not len(seen):
            return _Crops(seen, seen, seen, np.zeros((0, 1, 1), bool)), boxes
        g = 1 if d > 1 else 0  # the grown footprint reaches one cell beyond the box
        cells = np.rint(boxes[seen] / d).astype(np.int64)  # x0, y0, x1, y1 in coarse cells
        ch = min(Hs, int((cells[:, 3] - cells[:, 1]).max()) + 2 * g)
        cw = min(Ws, int((cells[:, 2] - cells[:, 0]).max()) + 2 * g)
        cy = np.clip(cells[:, 1] - g, 0, Hs - ch)
        cx = np.clip(cells[:, 0] - g, 0, Ws - cw)
        lab = c.crop(seen, cy, cx, ch, cw)  # (n, ch, cw)
        m = lab == main[seen, None, None]
        for t, k in extra:  # fragments merged into the main component (rare)
            j = int(np.searchsorted(seen, t))
            m[j] |= lab[j] == k
        crops = _Crops(seen, cy * d, cx * d, m)
        if d == 1:
            return crops, boxes
        # back to full resolution: the grown coarse footprint (each cell → d × d pixels) ∧ the crop's threshold
        if Hs * d > H or Ws * d > W:  # d does not divide H, W: pad so that edge crops stay in the array
            frames = np.pad(frames, ((0, 0), (0, Hs * d - H), (0, Ws * d - W), (0, 0)), mode="edge")
        n, h, w = len(seen), ch * d, cw * d
        rgb = sliding_window_view(frames, (h, w), axis=(1, 2))[seen, crops.y0, crops.x0]  # (n, 3, h, w)
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb.transpose(0, 2, 3, 1)).reshape(n * h, w, 3), cv2.COLOR_RGB2HSV)
        grown = _grow(m).view(np.uint8).reshape(n * ch, cw)  # 0/1
        up = cv2.resize(grown, (w, n * h), interpolation=cv2.INTER_NEAREST)  # exact replication of each cell
        crops.mask = np.bitwise_and(up, _threshold(hsv, r)).view(bool).reshape(n, h, w)  # 1 & 255 = 1
        if Hs * d > H or Ws * d > W:  # no pixels in the cells' part past the edge
            ys, xs = crops.y0[:, None] + np.arange(h), crops.x0[:, None] + np.arange(w)
            crops.mask &= (ys < H)[:, :, None] & (xs < W)[:, None, :]
        ref = mask_boxes(crops.mask) + np.stack([crops.x0, crops.y0, crops.x0, crops.y0], axis=1)  # (n, 4)
        ok = ~np.isnan(ref[:, 0])
        out = boxes.copy()
        out[seen[ok]] = ref[ok]
        return crops, out

    def _track(
        self, c: _Components, claimed: list[set[int]], T: int
    ) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray, np.ndarray]:
        """Follow one entity through the clip → main component label per frame (T,) (-1 = none), merged
        fragments [(frame, label)], boxes (T, 4) and visibility (T,). Components other entities of the same
        colour claimed are skipped; this entity's are claimed in turn."""
        main = np.full(T, -1, np.int32)
        extra: list[tuple[int, int]] = []
        out = np.full((T, 4), np.nan, np.float32)
        vis = np.zeros(T, np.float32)
        comp_boxes, comp_area = c.boxes.tolist(), c.area.tolist()  # plain floats: a frame has few candidates
        track = _Track(self.gate, self.coast_frames, self.visibility_decay)
        for t in range(T):
            cands = [k for k in c.by_frame[t] if k not in claimed[t]]
            pick = track.pick(cands, comp_boxes, comp_area)
            if pick is not None:
                group, box = _merge_fragments(pick, cands, comp_boxes, self.merge_px)
                claimed[t].update(group)
                main[t] = pick
                extra.extend((t, k) for k in group[1:])
                out[t], vis[t] = track.hit(box, sum(comp_area[k] for k in group)), 1.0
            elif (coasted := track.coast()) is not None:
                out[t], vis[t] = coasted
        return main, extra, out, vis

    def _smooth(self, boxes: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """Remove jitter: centred moving average over observed frames (vis == 1), each coordinate moved by at
        most `smooth_px` so real accelerations (a falling object) are not smeared."""
        k = self.smooth
        if k <= 1:
            return boxes
        seen = (vis >= 1.0)[..., None].astype(np.float64)  # (E, T, 1)
        vals = np.where(seen > 0, boxes, 0.0).astype(np.float64)
        pad = k // 2

        def conv(a: np.ndarray) -> np.ndarray:  # moving sum along T for every (entity, coordinate)
            a = np.pad(a, ((0, 0), (pad, pad), (0, 0)))
            c = np.cumsum(a, axis=1)
            c = np.concatenate([np.zeros_like(c[:, :1]), c], axis=1)
            return c[:, k:] - c[:, :-k]

        num, den = conv(vals * seen), conv(np.broadcast_to(seen, vals.shape).copy())
        out = boxes.copy()
        ok = (seen[..., 0] > 0) & (den[..., 0] == k)  # full symmetric windows only: no bias at track ends
        shift = np.clip(num[ok] / den[ok] - boxes[ok], -self.smooth_px, self.smooth_px)
        out[ok] = (boxes[ok] + shift).astype(np.float32)
        return out
