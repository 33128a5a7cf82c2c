"""2.5-D lifting: world positions (metres) of entities seen only as masks or boxes through a calibrated camera.

What a camera gives without depth: each pixel's viewing ray. A point on a ray is fixed by one more fact, and
the lifting uses two, per frame:

- **support** — an entity resting on the support plane (world z = `support_z`, a table top) has its centre at
  the plane's height plus half its known height; the ray through its silhouette's centroid meets that
  horizontal plane at its centre (ray–plane intersection, accurate to the pixel);
- **size** — an entity of known extent (`Extent`: size, shape) at depth Z spans about f·s/Z pixels, where s is
  its extent across the image axis; depth = min over the image's two axes of f·s / (box side in pixels)
  (the smaller depth is the less occluded side), median-filtered over `SMOOTH` frames.

An entity that is not a gripper rests in the frames where the two depths agree within `REST_TOL` (the accuracy
of depth from size); there it takes the support position, and those frames calibrate its size depth (the
median ratio of the two, which removes the bias of a box model of a round or hollow object) for the frames
where it is lifted. A static entity (a region, or one listed in `Observations.static`) takes one position:
the median over its unoccluded frames (silhouette area within 80 % of its largest). Without a known extent an
entity can only be placed on the support plane (the ray through the bottom centre of its box, where it
touches the plane). The entity's position is its extent's centre plus its `anchor` (where its reference
point lies on it, e.g. the bottom of a pot).

Every function is vectorised over frames; shapes are (T, …) per entity.
"""

from __future__ import annotations

import numpy as np

from ..grounding.camera import Camera
from ..grounding.observations import Extent
from .robustness import median_smooth

REST_TOL = 0.1  # plane depth above the calibrated size depth by less than this: the object still rests
START_TOL = 0.2  # pixel rounding allowed around the depth range a known size gives (first frames)
CONTACT_PX = 2.0  # masks closer than this (pixels) touch in the image
CONTACT_DEPTH = 0.35  # |log depth ratio| under which two touching entities can be at one depth
# how an entity was placed in a frame, least to most certain
SIZE, CALIBRATED, RESTING, KNOWN = 0.0, 1.0, 2.0, 3.0
SMOOTH = 5  # frames of the median filter on depth from size
UNOCCLUDED = 0.8  # share of its largest silhouette area at which a static entity counts as unoccluded
MIN_REST_FRAMES = 3  # resting frames needed to calibrate depth from size


def silhouette(masks: np.ndarray | None, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (T, 2) and area (T,) of an entity's silhouette: its masks' where it has pixels, else its box's
    centre and area; NaN / 0 where unseen."""
    b = np.asarray(boxes, np.float64)  # (T, 4)
    uv = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    area = np.nan_to_num((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    if masks is not None:
        m = np.asarray(masks, bool)  # (T, H, W)
        px = m.sum(axis=(1, 2)).astype(np.float64)  # (T,)
        ys = (m.sum(axis=2) * (np.arange(m.shape[1]) + 0.5)).sum(axis=1)  # (T,) sum of pixel-centre y
        xs = (m.sum(axis=1) * (np.arange(m.shape[2]) + 0.5)).sum(axis=1)  # (T,)
        has = px > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            uv = np.where(has[:, None], np.stack([xs / px, ys / px], axis=1), uv)
        area = np.where(has, px, area)
    return uv, area


def apparent_extent(cam: Camera, ext: Extent) -> tuple[np.ndarray, np.ndarray]:
    """The entity's extent in metres across the image's x and y axes (orthographic at its depth), as the range
    (low (2,), high (2,)) a body of that size can span: a sphere or an upright cylinder spans one width; a box
    extent spans between its inscribed ellipsoid's width (a round object) and the box's own (a boxy one)."""
    R = cam.R
    if ext.shape == "sphere":
        w = np.full(2, float(ext.size[0]))
        return w, w
    if ext.shape == "cylinder":  # vertical axis: diameter size[0], height size[2]
        d, h = float(ext.size[0]), float(ext.size[2])
        w = np.array([d * np.sqrt(max(0.0, 1 - R[i, 2] ** 2)) + h * abs(R[i, 2]) for i in (0, 1)])
        return w, w
    s = np.asarray(ext.size, np.float64)
    return np.linalg.norm(R[:2] * s, axis=1), np.abs(R[:2]) @ s


def size_depth(cam: Camera, boxes: np.ndarray, ext: Extent) -> tuple[np.ndarray, np.ndarray]:
    """(T,) low and high depth from the known extent, each min(fx·sx / box width, fy·sy / box height) (the less
    occluded side) for the low and high apparent extents, median-smoothed over the frames it is seen; NaN unseen."""
    b = np.asarray(boxes, np.float64)
    side = np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)  # (T, 2) pixels
    f = np.array([cam.K[0, 0], cam.K[1, 1]])
    out = []
    for s in apparent_extent(cam, ext):
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(side > 0, f * s / side, np.inf).min(axis=1)
        z = np.where(np.isfinite(z), z, np.nan)
        seen = np.isfinite(z)
        if seen.sum() > 1:
            z[seen] = median_smooth(z[seen], SMOOTH)
        out.append(z)
    return out[0], out[1]


def _starts_on_support(plane: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the entity rests on the support in its first frames: there its plane depth lies within the range
    its size allows (widened by START_TOL for pixel rounding)."""
    seen = np.flatnonzero(np.isfinite(plane) & np.isfinite(lo) & np.isfinite(hi))
    head = seen[: max(MIN_REST_FRAMES, len(plane) // 10)]
    if not head.size:
        return False
    p, a, b = np.median(plane[head]), np.median(lo[head]), np.median(hi[head])
    return bool(a / (1 + START_TOL) <= p <= b * (1 + START_TOL))


def lift(cam: Camera, boxes: np.ndarray, masks: np.ndarray | None, ext: Extent | None, support_z: float | None,
         *, grounded: bool = True, static: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) world centre of one entity's extent (NaN where it cannot be placed) and (T,) how it was placed
    (SIZE, CALIBRATED, RESTING); see the module docstring. `grounded` False (grippers) never rests."""
    uv, area = silhouette(masks, boxes)
    T = len(uv)
    if ext is None:
        if support_z is None:
            return np.full((T, 3), np.nan), np.zeros(T)
        b = np.asarray(boxes, np.float64)
        foot = cam.on_plane(np.stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]], axis=1), support_z)  # touching the plane
        return (_static(foot, area) if static else foot), np.full(T, RESTING)
    lo, hi = size_depth(cam, boxes, ext)
    z_mid = np.sqrt(lo * hi)
    centre, level = cam.at_depth(uv, z_mid), np.full(T, SIZE)
    if support_z is not None and grounded:
        on = cam.on_plane(uv, support_z + float(ext.size[2]) / 2)  # resting centre (T, 3)
        plane = cam.depth(on)
        if _starts_on_support(plane, lo, hi):  # calibrate depth from size on the resting frames
            head = np.isfinite(plane / z_mid)
            k = float(np.median((plane / z_mid)[head][: max(MIN_REST_FRAMES, T // 10)]))
            rest = plane / (k * z_mid) < 1 + REST_TOL  # a lifted object's ray meets the plane behind it
            centre = np.where(rest[:, None], on, cam.at_depth(uv, z_mid * k))
            level = np.where(rest, RESTING, CALIBRATED)
    centre = np.where(area[:, None] > 0, centre, np.nan)
    if static:  # one position, averaged over its unoccluded frames: as sure as a resting one
        return _static(centre, area), np.full(T, RESTING)
    return centre, level


def lift_all(cam: Camera, boxes: np.ndarray, masks: np.ndarray | None, extents: list[Extent | None],
             support_z: float | None, grounded: np.ndarray, static: np.ndarray, known: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(E, T, 3) world positions (reference points: extent centre + anchor) and (E, T) placement levels of
    all entities: each lifted alone (`lift`), known positions kept (`known` (E, T, 3), level KNOWN), then depth
    handed on through contact (`propagate`)."""
    E, T = boxes.shape[:2]
    pos, level = np.full((E, T, 3), np.nan), np.zeros((E, T))
    for i in range(E):
        m = masks[i] if masks is not None else None
        pos[i], level[i] = lift(cam, boxes[i], m, extents[i], support_z, grounded=bool(grounded[i]),
                                static=bool(static[i]))
    if known is not None:
        have = np.isfinite(known).all(axis=-1)  # (E, T)
        centre = known - np.array([e.anchor if e is not None else (0.0, 0.0, 0.0) for e in extents])[:, None]
        pos = np.where(have[..., None], centre, pos)
        level = np.where(have, KNOWN, level)
    if masks is not None:
        pos, level = propagate(cam, pos, level, masks, static)
    anchor = np.array([e.anchor if e is not None else (0.0, 0.0, 0.0) for e in extents], np.float64)  # (E, 3)
    return pos + anchor[:, None, :], level


def propagate(cam: Camera, pos: np.ndarray, level: np.ndarray, masks: np.ndarray, static: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Depth through contact: in a frame where the masks of a and b touch (gap ≤ CONTACT_PX), a was placed more
    surely than b (level at least one higher) and their depths agree within CONTACT_DEPTH, b takes a's depth
    along its own ray (level: a's − 1). Static entities keep theirs. One pass, surest sources first."""
    from .mask_geometry import mask_gap

    pos, level = pos.copy(), level.copy()
    depth = cam.depth(pos)  # (E, T)
    E = pos.shape[0]
    order = sorted(range(E), key=lambda i: -np.nanmax(level[i]) if level[i].size else 0.0)
    for a in order:
        for b in range(E):
            if a == b or static[b]:
                continue
            cand = (level[a] >= level[b] + 1) & np.isfinite(depth[a]) & np.isfinite(depth[b])
            if not cand.any():
                continue
            touch = np.zeros_like(cand)
            touch[cand] = mask_gap(masks[a][cand], masks[b][cand]) <= CONTACT_PX
            with np.errstate(invalid="ignore", divide="ignore"):
                agree = np.abs(np.log(depth[b] / depth[a])) < CONTACT_DEPTH
                ok = touch & (agree | (level[b] <= SIZE))  # an uncalibrated size depth always defers
            if ok.any():
                uv = cam.project(pos[b, ok])
                pos[b, ok] = cam.at_depth(uv, depth[a, ok])
                depth[b, ok], level[b, ok] = depth[a, ok], level[a, ok] - 1
    return pos, level


def _static(pos: np.ndarray, area: np.ndarray) -> np.ndarray:
    """One position for every frame: the median over the unoccluded frames (area ≥ UNOCCLUDED × the largest)."""
    ok = np.isfinite(pos).all(axis=1) & (area >= UNOCCLUDED * (area.max() if area.size else 0.0)) & (area > 0)
    if not ok.any():
        return np.full_like(pos, np.nan)
    return np.broadcast_to(np.median(pos[ok], axis=0), pos.shape).copy()


__all__ = ["CALIBRATED", "KNOWN", "MIN_REST_FRAMES", "RESTING", "REST_TOL", "SIZE", "SMOOTH", "UNOCCLUDED",
           "apparent_extent", "lift", "lift_all", "propagate", "silhouette", "size_depth"]
