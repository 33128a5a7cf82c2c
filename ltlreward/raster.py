"""Raster helpers shared by grounders, predicates, violation masks and overlays: boxes ⇄ masks on the pixel
grid, nearest-neighbour resizing, and runs of frames. Pure numpy, vectorised, no cv2.

Conventions (the same everywhere in ltlreward): a box is x0, y0, x1, y1 in pixels with the origin at the
top-left corner of the image; a pixel (x, y) covers [x, x+1) × [y, y+1) and lies inside a box when its centre
(x + 0.5, y + 0.5) does, edges included; a mask's box has exclusive ends (x1 = last column + 1); NaN boxes
stand for "not seen" and rasterise to empty masks, and empty masks give NaN boxes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_bands", "box_centers", "box_masks", "frame_runs", "mask_boxes", "nearest_index", "nearest_resize"]


def box_masks(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise boxes (..., 4) into bool masks (..., H, W) by broadcasting (pixel-centre rule; NaN → empty)."""
    b = np.asarray(boxes, dtype=np.float32)[..., None, None, :]  # (..., 1, 1, 4)
    ys = np.arange(height, dtype=np.float32)[:, None] + 0.5  # (H, 1)
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5  # (1, W)
    with np.errstate(invalid="ignore"):
        return (xs >= b[..., 0]) & (xs <= b[..., 2]) & (ys >= b[..., 1]) & (ys <= b[..., 3])


def box_bands(boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (n, H) and column (n, W) bool bands of boxes (n, 4); their outer AND is `box_masks` (so a weighted
    box region is an outer product, with no (n, H, W) bool intermediate)."""
    b = np.asarray(boxes, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32) + 0.5  # (H,)
    xs = np.arange(width, dtype=np.float32) + 0.5  # (W,)
    with np.errstate(invalid="ignore"):
        rows = (ys >= b[:, 1:2]) & (ys <= b[:, 3:4])  # (n, H)
        cols = (xs >= b[:, 0:1]) & (xs <= b[:, 2:3])  # (n, W)
    return rows, cols


def mask_boxes(masks: np.ndarray, scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """float32 boxes (..., 4) of bool masks (..., h, w): the masks' extents with exclusive ends, times `scale`
    = (sx, sy); NaN for empty masks."""
    h, w = masks.shape[-2:]
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)  # (..., h), (..., w)
    y0, y1 = rows.argmax(axis=-1), h - rows[..., ::-1].argmax(axis=-1)
    x0, x1 = cols.argmax(axis=-1), w - cols[..., ::-1].argmax(axis=-1)
    b = np.stack([x0 * scale[0], y0 * scale[1], x1 * scale[0], y1 * scale[1]], axis=-1).astype(np.float32)
    b[~rows.any(axis=-1)] = np.nan
    return b


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """Centres (..., 2) of boxes (..., 4), in the boxes' dtype (NaN boxes → NaN centres)."""
    return np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], axis=-1)


def nearest_index(n_out: int, n_in: int) -> np.ndarray:
    """Source index of each of `n_out` output cells when `n_in` cells are resized by nearest neighbour
    (⌊i · n_in / n_out⌋, exact integer arithmetic)."""
    return (np.arange(n_out) * n_in) // n_out


def nearest_resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (N, h, w[, C]) arrays to (N, height, width[, C]) by index gathering (exact,
    vectorised); the input itself when the size already matches."""
    h, w = arr.shape[1:3]
    if (h, w) == (height, width):
        return arr
    return arr[:, nearest_index(height, h)][:, :, nearest_index(width, w)]


def frame_runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """Sorted int frames → inclusive (start, end) runs of consecutive frames: [2, 3, 4, 9] → [(2, 4), (9, 9)]."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) > 1)
    starts = np.concatenate([[frames[0]], frames[breaks + 1]])
    ends = np.concatenate([frames[breaks], [frames[-1]]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
