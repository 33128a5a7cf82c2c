"""One entity's track for the `track` grounder: appearance learned from the prompt, then frame by frame
localisation, occlusion handling and segmentation (OpenCV pieces; see the README's "Prompted tracker").

Each entity is tracked at the pyramid level of the clip where its prompt's longer side is at most
`TrackParams.side` pixels (cost does not grow with the object). Its appearance is three models learned on the
prompt frame:
- a grey-level template of the prompt box with some context, matched by normalised cross-correlation
  (`cv2.matchTemplate`, TM_CCOEFF_NORMED) and blended with each confident match;
- a localisation colour model (Staple, Bertinetto et al. 2016): 16³-bin RGB histograms of the box and of a ring
  around it give each pixel a likelihood of belonging to the box, averaged over every candidate box by an
  integral image; updated slowly;
- a segmentation colour model: `cv2.grabCut` separates the object from the background inside the prompt box
  (a mask prompt is used as is), and its foreground / background histograms classify pixels.
A candidate position scores (1 − w)·NCC + w·colour, both relative to their value on the prompt, minus a
penalty growing with the distance from the motion model's prediction (constant velocity, an α–β filter): a
look-alike far from where the entity is heading loses (the same-coloured arm, a second red block). Below
`lost` the entity counts as occluded: it coasts on its damped velocity with decaying visibility for
`coast_frames` frames, then is lost; it is taken up again, in a window that grows while it is missing, when a
candidate scores `reacquire`. The box a frame reports is the extent of the segmented pixels near the located
position (connected components, `cv2.connectedComponentsWithStats`), so it follows the object's own shape
(fingers closing, an object turning) rather than the prompt's size; those pixels are the frame's mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

BINS = 16  # colour histogram bins per RGB channel
_EPS = 1e-9


@dataclass(frozen=True)
class TrackParams:
    """Settings of the tracker (defaults measured on the natural development set; benchmarks/simlabel)."""

    side: int = 24  # track at the pyramid level where the prompt's longer side is at most this (px)
    context: float = 0.25  # template margin around the box, as a fraction of its longer side
    ring: float = 0.6  # width of the background ring of the colour models, fraction of the longer side
    search: float = 0.8  # search radius around the prediction, fraction of the longer side (+ speed)
    colour_weight: float = 0.6  # weight of the colour score against the template's (Staple merges 0.3)
    motion_weight: float = 0.3  # score penalty at the edge of the search window (quadratic in distance)
    lost: float = 0.3  # below this relative score the entity is occluded or gone
    reacquire: float = 0.45  # relative score that takes a missing entity up again
    update_above: float = 0.5  # only matches above this update the template and colour model
    template_rate: float = 0.1  # template blending rate
    colour_rate: float = 0.05  # localisation histogram blending rate
    coast_frames: int = 10  # frames a missing entity keeps its predicted position
    visibility_decay: float = 0.8  # visibility multiplier per coasted frame
    grabcut_iterations: int = 2  # cv2.grabCut iterations on the prompt
    seg_grow: float = 1.3  # the segmentation looks in the located box grown by this factor
    redetect: bool = True  # fall back on the segmentation colours' blobs when the match fails
    min_area: float = 0.1  # a match with less of the object's colours around it than this share of the usual
    # area is the entity hidden (by an occluder that the template alone might match)


@dataclass
class Level:
    """One pyramid level of a clip: grey (T, h, w) uint8, colour bins (T, h, w) uint16, RGB (T, h, w, 3) uint8
    (for grabCut on the prompt frame) and its scale (w / W, h / H) relative to the video (about 2^-L)."""

    gray: np.ndarray
    bins: np.ndarray
    rgb: np.ndarray
    scale: tuple[float, float]

    def reversed_from(self, t: int) -> Level:
        """Frames t, t-1, …, 0 of this level (views), for tracking back from a prompt frame."""
        return Level(self.gray[t::-1], self.bins[t::-1], self.rgb[t::-1], self.scale)


def colour_bins(rgb: np.ndarray) -> np.ndarray:
    """16³-bin colour index (…,) uint16 of uint8 RGB pixels (…, 3)."""
    q = rgb >> 4  # 256 / BINS levels per bin
    return (q[..., 0].astype(np.uint16) * BINS + q[..., 1]) * BINS + q[..., 2]


def histogram(bins: np.ndarray) -> np.ndarray:
    """Normalised colour histogram (BINS³,) float64 of colour indices (any shape); zeros when empty."""
    h = np.bincount(bins.ravel(), minlength=BINS**3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def likelihood(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Per-bin probability (BINS³,) float32 that a pixel of that colour is foreground: fg / (fg + bg)."""
    return (fg / (fg + bg + _EPS)).astype(np.float32)


def clip_box(box: Sequence[float], w: int, h: int) -> tuple[int, int, int, int]:
    """Integer pixel box (x0, y0, x1, y1) covering `box`, clipped to a w × h image."""
    return (max(0, math.floor(box[0])), max(0, math.floor(box[1])), min(w, math.ceil(box[2])),
            min(h, math.ceil(box[3])))


def grabcut_mask(rgb: np.ndarray, box: np.ndarray, seeds: np.ndarray | None = None, iterations: int = 2
                 ) -> np.ndarray:
    """Foreground (h, w) bool of the object in `box` of one RGB image (cv2.grabCut on a crop around it, seeded
    for reproducibility; `seeds` (n, 2) x, y are sure-foreground points); the box itself when grabCut finds
    less than a tenth of it."""
    import cv2

    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = clip_box(box, w, h)
    g = max(4, max(x1 - x0, y1 - y0) // 2)
    X0, Y0, X1, Y1 = clip_box((x0 - g, y0 - g, x1 + g, y1 + g), w, h)
    crop = np.ascontiguousarray(rgb[Y0:Y1, X0:X1])
    init = np.zeros(crop.shape[:2], np.uint8)  # GC_BGD
    init[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0] = cv2.GC_PR_FGD
    if seeds is not None:
        sx = np.clip(seeds[:, 0].astype(int) - X0, 0, X1 - X0 - 1)
        sy = np.clip(seeds[:, 1].astype(int) - Y0, 0, Y1 - Y0 - 1)
        init[sy, sx] = cv2.GC_FGD
    out = np.zeros((h, w), bool)
    fg = np.zeros(crop.shape[:2], bool)
    if min(x1 - x0, y1 - y0) >= 2:
        cv2.setRNGSeed(0)  # grabCut's k-means draws from OpenCV's global RNG
        try:
            cv2.grabCut(crop, init, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_MASK)
            fg = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
        except cv2.error:  # a degenerate crop (one colour): keep the box
            pass
    if fg.sum() < 0.1 * max(1, (x1 - x0) * (y1 - y0)):
        fg[:] = False
        fg[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0] = True
    out[Y0:Y1, X0:X1] = fg
    return out


@dataclass
class Track:
    """What tracking one entity gave, in its level's pixels: boxes (T, 4) (NaN = lost), visibility (T,), and
    per frame the segmented pixels as crops {t: (x0, y0, mask (h, w) bool)}."""

    boxes: np.ndarray
    visibility: np.ndarray
    crops: dict[int, tuple[int, int, np.ndarray]] = field(default_factory=dict)


class EntityTracker:
    """Tracks one entity through a Level from its prompt (box and foreground mask at frame 0 of the level)."""

    def __init__(self, level: Level, box: np.ndarray, fg: np.ndarray, params: TrackParams) -> None:
        self.lv, self.p = level, params
        self.H, self.W = level.gray.shape[1:3]
        b = np.asarray(box, np.float64)
        self.w, self.h = max(1.0, b[2] - b[0]), max(1.0, b[3] - b[1])
        self.c = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        self.v = np.zeros(2)
        self.missed = 0
        side = max(self.w, self.h)
        self.pad = max(2.0, params.context * side)
        self.tw, self.th = min(round(self.w + 2 * self.pad), self.W), min(round(self.h + 2 * self.pad), self.H)
        self.template = self._patch(0).astype(np.float32)
        q = level.bins[0]
        fg_box, bg_ring = self._box_and_ring(q, self.c)
        self.loc_fg, self.loc_bg = fg_box, bg_ring
        self.loc = likelihood(fg_box, bg_ring)  # (BINS³,) per-colour likelihood of the box against its ring
        ring = self._ring_mask()
        self.seg = (likelihood(histogram(q[fg]), histogram(q[ring & ~fg])) > 0.5).view(np.uint8)  # (BINS³,) 0/1
        self.area = float(max(fg.sum(), 1))  # the entity's usual area of its colours (running mean), level px

    # ------------------------------------------------------------------------------------------ models
    def _patch(self, t: int) -> np.ndarray:
        """The template-sized grey patch (th, tw) centred on the current position in frame t."""
        x = min(max(round(self.c[0] - self.tw / 2), 0), self.W - self.tw)
        y = min(max(round(self.c[1] - self.th / 2), 0), self.H - self.th)
        return self.lv.gray[t, y:y + self.th, x:x + self.tw]

    def _core(self, c: np.ndarray) -> np.ndarray:
        """The entity's box (4,) at centre c."""
        return np.array([c[0] - self.w / 2, c[1] - self.h / 2, c[0] + self.w / 2, c[1] + self.h / 2])

    def _box_and_ring(self, q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Colour histograms of the box at c and of the ring around it, in one frame's colour bins q."""
        x0, y0, x1, y1 = clip_box(self._core(c), self.W, self.H)
        g = max(3.0, self.p.ring * max(self.w, self.h))
        X0, Y0, X1, Y1 = clip_box((x0 - g, y0 - g, x1 + g, y1 + g), self.W, self.H)
        inner = np.bincount(q[y0:y1, x0:x1].ravel(), minlength=BINS**3).astype(np.float64)
        outer = np.bincount(q[Y0:Y1, X0:X1].ravel(), minlength=BINS**3).astype(np.float64) - inner
        return inner / max(inner.sum(), 1.0), outer / max(outer.sum(), 1.0)

    def _ring_mask(self) -> np.ndarray:
        """(H, W) bool: the box grown by the ring width (what the segmentation model's background comes from)."""
        g = max(3.0, self.p.ring * max(self.w, self.h))
        b = self._core(self.c)
        X0, Y0, X1, Y1 = clip_box((b[0] - g, b[1] - g, b[2] + g, b[3] + g), self.W, self.H)
        m = np.zeros((self.H, self.W), bool)
        m[Y0:Y1, X0:X1] = True
        return m

    # ------------------------------------------------------------------------------------------ tracking
    def run(self) -> Track:
        """Track through every frame of the level (frame 0 is the prompt)."""
        T = self.lv.gray.shape[0]
        out = Track(np.full((T, 4), np.nan, np.float32), np.zeros(T, np.float32))
        out.boxes[0], crop, found = self._segment(0, self.c)
        self.area = max(found, 1.0)  # the same measure as later frames': the object's colours around it
        out.visibility[0] = 1.0
        if crop is not None:
            out.crops[0] = crop
        for t in range(1, T):
            hit = self._locate(t)
            seg = self._segment(t, hit[0]) if hit is not None else None
            if (seg is None or seg[2] < self.p.min_area * self.area) and self.p.redetect:
                hit = self._redetect(t)
                seg = self._segment(t, hit[0]) if hit is not None else None
            if seg is not None and seg[2] >= self.p.min_area * self.area:  # the object's own pixels are there
                self._accept(t, *hit)
                self.area = 0.9 * self.area + 0.1 * seg[2]
                out.boxes[t], out.visibility[t] = seg[0], 1.0
                if seg[1] is not None:
                    out.crops[t] = seg[1]
            elif self._coast():
                out.boxes[t], out.visibility[t] = self._core(self.c), self.p.visibility_decay**self.missed
        return out

    def _window(self) -> tuple[np.ndarray, float, tuple[int, int, int, int]]:
        """Prediction (2,), search radius and the pixel window searched."""
        pred = self.c + self.v
        R = max(4.0, self.p.search * max(self.w, self.h)) + float(np.abs(self.v).max()) + 2.0 * self.missed
        x0, y0 = int(max(0, np.floor(pred[0] - R - self.tw / 2))), int(max(0, np.floor(pred[1] - R - self.th / 2)))
        x1 = int(min(self.W, np.ceil(pred[0] + R + self.tw / 2)))
        y1 = int(min(self.H, np.ceil(pred[1] + R + self.th / 2)))
        # a prediction at the image's edge: the window keeps at least the template's size inside the image
        x0, y0 = min(x0, self.W - self.tw), min(y0, self.H - self.th)
        x1, y1 = max(x1, x0 + self.tw), max(y1, y0 + self.th)
        return pred, R, (x0, y0, x1, y1)

    def _locate(self, t: int) -> tuple[np.ndarray, float] | None:
        """The best position (2,) in frame t and its score, or None when no candidate scores enough."""
        import cv2

        pred, R, (x0, y0, x1, y1) = self._window()
        ncc = cv2.matchTemplate(self.lv.gray[t, y0:y1, x0:x1].astype(np.float32), self.template,
                                cv2.TM_CCOEFF_NORMED)  # (nh, nw)
        col = self._colour_map(t, (x0, y0, x1, y1), ncc.shape)  # (nh, nw) mean box likelihood
        nh, nw = ncc.shape
        cx = np.arange(nw) + x0 + self.tw / 2  # (nw,) centre x of each candidate
        cy = np.arange(nh) + y0 + self.th / 2  # (nh,)
        d2 = ((cx[None, :] - pred[0]) ** 2 + (cy[:, None] - pred[1]) ** 2) / (R * R)  # (nh, nw)
        w = self.p.colour_weight
        score = (1 - w) * ncc + w * col
        k = int(np.argmax(score - self.p.motion_weight * d2))
        iy, ix = divmod(k, nw)
        best = float(score[iy, ix])
        if best < (self.p.lost if self.missed == 0 else self.p.reacquire):
            return None
        return np.array([cx[ix], cy[iy]]), best

    def _redetect(self, t: int) -> tuple[np.ndarray, float] | None:
        """When the template and colour score find nothing: the blob of the object's segmentation colours in the
        search window nearest the prediction whose area is within a factor 3 of the usual one (the entity
        changed its look, e.g. a gripper turning, faster than the template adapts)."""
        import cv2

        pred, _, (x0, y0, x1, y1) = self._window()
        fg = self.seg[self.lv.bins[t, y0:y1, x0:x1]]
        _, _, stats, cent = cv2.connectedComponentsWithStats(fg, connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
        ok = (area >= self.area / 3) & (area <= self.area * 3)
        if not ok.any():
            return None
        d = np.hypot(cent[1:, 0] + x0 - pred[0], cent[1:, 1] + y0 - pred[1])
        d[~ok] = np.inf
        k = int(np.argmin(d))
        return np.array([cent[k + 1, 0] + x0, cent[k + 1, 1] + y0]), self.p.reacquire

    def _colour_map(self, t: int, win: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
        """Mean localisation likelihood over the entity's box at every template position of the window, by an
        integral image (the box sits `pad` inside the template)."""
        import cv2

        x0, y0, x1, y1 = win
        pr = self.loc[self.lv.bins[t, y0:y1, x0:x1]]  # (h, w)
        ii = cv2.integral(pr)  # (h+1, w+1) float64
        ox, oy = min(round(self.pad), self.tw - 1), min(round(self.pad), self.th - 1)
        cw, ch = max(1, min(self.tw - ox, round(self.w))), max(1, min(self.th - oy, round(self.h)))
        nh, nw = shape
        a = (ii[oy + ch:oy + ch + nh, ox + cw:ox + cw + nw] - ii[oy:oy + nh, ox + cw:ox + cw + nw]
             - ii[oy + ch:oy + ch + nh, ox:ox + nw] + ii[oy:oy + nh, ox:ox + nw])
        return a / (cw * ch)

    def _accept(self, t: int, c: np.ndarray, score: float) -> None:
        """Move to c (velocity: α–β update, reset after a miss) and, for a confident match, adapt the template
        and the localisation colour model."""
        self.v = 0.5 * self.v + 0.5 * (c - self.c) if self.missed == 0 else np.zeros(2)
        self.c, self.missed = c, 0
        if score > self.p.update_above:
            a, e = self.p.template_rate, self.p.colour_rate
            self.template = (1 - a) * self.template + a * self._patch(t).astype(np.float32)
            fg, bg = self._box_and_ring(self.lv.bins[t], c)
            self.loc_fg, self.loc_bg = (1 - e) * self.loc_fg + e * fg, (1 - e) * self.loc_bg + e * bg
            self.loc = likelihood(self.loc_fg, self.loc_bg)

    def _coast(self) -> bool:
        """A missed frame: keep the predicted position on the damped velocity while coasting is allowed."""
        self.missed += 1
        if self.missed > self.p.coast_frames:
            self.v = np.zeros(2)
            return False
        self.c = np.clip(self.c + self.v, 0, [self.W, self.H])  # an entity leaving the image waits at its edge
        self.v = self.v * 0.8
        return True

    def _segment(self, t: int, c: np.ndarray) -> tuple[np.ndarray, tuple[int, int, np.ndarray] | None, float]:
        """The frame's box and mask crop (x0, y0, mask) at c — the segmented components near c (those of at least
        15 % of the largest's area whose centroid lies in the entity's box), else the located box and no crop —
        and the area of the object's colours around c (0 when it is hidden)."""
        import cv2

        g = self.p.seg_grow
        x0, y0, x1, y1 = clip_box((c[0] - self.w * g / 2, c[1] - self.h * g / 2,
                                   c[0] + self.w * g / 2, c[1] + self.h * g / 2), self.W, self.H)
        fg = self.seg[self.lv.bins[t, y0:y1, x0:x1]]  # (h, w) uint8 0/1: the object's colours
        found = float(np.count_nonzero(fg))
        if found < 4:
            return self._core(c), None, found
        _n, labels, stats, cent = cv2.connectedComponentsWithStats(fg, connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA]
        near = ((np.abs(cent[1:, 0] + x0 - c[0]) <= self.w / 2 + 1)
                & (np.abs(cent[1:, 1] + y0 - c[1]) <= self.h / 2 + 1) & (area >= max(2.0, 0.15 * area.max())))
        keep = np.flatnonzero(near) + 1
        if not len(keep):
            return self._core(c), None, found
        s = stats[keep]
        bx0, by0 = s[:, 0].min(), s[:, 1].min()
        bx1, by1 = (s[:, 0] + s[:, 2]).max(), (s[:, 1] + s[:, 3]).max()
        lut = np.zeros(len(stats), bool)
        lut[keep] = True
        crop = lut[labels[by0:by1, bx0:bx1]]
        box = np.array([x0 + bx0, y0 + by0, x0 + bx1, y0 + by1], np.float64)
        return box, (x0 + int(bx0), y0 + int(by0), crop), found
