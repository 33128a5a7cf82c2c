"""Mask geometry the predicates read: the signed gap between two entities' masks (contact), and amodal
extents (holes filled; a static region's extent from its unoccluded frames), so that an object standing on a
zone counts as inside it although it hides part of it.

OpenCV does the per-image work (distance transforms, contour filling): one call per frame is the unit it
vectorises over, as in video.resize_frames; it is a core dependency (opencv-python-headless) and exact.
"""

from __future__ import annotations

import numpy as np

UNOCCLUDED = 0.9  # a static region's frames with a filled area within this share of its largest are unoccluded


def mask_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T,) signed gap in pixels between masks (T, H, W): the distance between the nearest pixel centres of a
    and b minus one (0 when adjacent), or, when they overlap, minus the depth of the overlap (the largest
    distance from an overlap pixel to the overlap's outside); NaN where either mask is empty."""
    import cv2

    T = a.shape[0]
    out = np.full(T, np.nan)
    has = a.reshape(T, -1).any(axis=1) & b.reshape(T, -1).any(axis=1)
    for t in np.flatnonzero(has):
        both = a[t] & b[t]
        if both.any():
            inner = cv2.distanceTransform(both.astype(np.uint8), cv2.DIST_L2, 5)
            out[t] = -float(inner.max())
        else:
            dist_b = cv2.distanceTransform((~b[t]).astype(np.uint8), cv2.DIST_L2, 5)  # distance to b's pixels
            out[t] = float(dist_b[a[t]].min()) - 1.0
    return out


def fill_holes(masks: np.ndarray) -> np.ndarray:
    """(T, H, W) masks with every hole filled (pixels not connected to the image border through background)."""
    import cv2

    out = np.asarray(masks, bool).copy()
    for t in range(out.shape[0]):
        m = out[t].astype(np.uint8)
        if not m.any():
            continue
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        filled = np.zeros_like(m)
        cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
        out[t] = filled.astype(bool)
    return out


def amodal(masks: np.ndarray, static: bool) -> np.ndarray:
    """An entity's amodal masks (T, H, W): holes filled in every frame; for a static entity, the union of its
    filled masks over its unoccluded frames (filled area ≥ UNOCCLUDED × the largest) in every frame."""
    filled = fill_holes(masks)
    if not static:
        return filled
    area = filled.reshape(filled.shape[0], -1).sum(axis=1)
    if not area.any():
        return filled
    union = filled[area >= UNOCCLUDED * area.max()].any(axis=0)
    return np.broadcast_to(union, filled.shape).copy()


__all__ = ["UNOCCLUDED", "amodal", "fill_holes", "mask_gap"]
