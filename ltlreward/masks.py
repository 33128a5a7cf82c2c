"""Violation masks: witnesses × entity masks → a (T, H, W) credit map per video for the trainer.

For each violated constraint c with weight w_c, the monitor's witness says at which frames which atoms
decided the violation; each atom names entities (its arguments, or the predicate layer's support). So an
entity e is *witnessed at frame t* by c when an atom of c's witness that names e is witnessed at t. Those
frames are dilated in time by `dilation` frames on each side (default 2: an event rarely sits on exactly
one frame, and the trainer should also credit its lead-in). The mask is then

    mask[t, y, x] = max over (c, e) with e witnessed by c at t (after dilation) of
                    (w_c / w_max) · region_e(t)[y, x]

where region_e(t) is e's segmentation mask at t, or its box when the grounder gave no mask (or an empty
mask at that frame). Overlaps take the maximum, not the sum, so the map stays in [0, 1].
Normalisation: w_max is the largest weight in the *spec* (RewardModel passes it), so a violation of the
heaviest constraint paints 1.0 and a lighter one paints w_c / w_max, comparable across videos; called
without `max_weight` it is the largest weight among the given violations. Frames and pixels not
implicated are 0; a video whose constraints all hold has an all-zero mask. Saved files: one compressed npz
per video, `<dir>/<video stem>.npz` with array `mask` (T,H,W) float32 (+ `frame_indices` when known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .grounding.observations import Observations
from .raster import box_bands, box_masks, nearest_resize

DEFAULT_DILATION = 2


@dataclass
class ViolationEvidence:
    """One violated constraint on one video: its weight and, per entity, the (T,) bool witnessed frames."""

    name: str
    weight: float
    entity_frames: dict[str, np.ndarray]


def evidence_from_atoms(
    name: str,
    weight: float,
    atom_frames: Mapping[str, np.ndarray],
    atom_entities: Mapping[str, Sequence[str]],
) -> ViolationEvidence:
    """Evidence from per-atom witnessed frames (T,) bool and the entities each atom names."""
    ent: dict[str, np.ndarray] = {}
    for atom, frames in atom_frames.items():
        f = np.asarray(frames, dtype=bool)
        for e in atom_entities.get(atom, ()):
            ent[e] = f.copy() if e not in ent else (ent[e] | f)
    return ViolationEvidence(name, float(weight), ent)


def dilate_frames(active: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation along the last (time) axis by `radius` frames each side, via one cumulative sum."""
    a = np.asarray(active, dtype=bool)
    if radius <= 0 or a.shape[-1] == 0:
        return a.copy()
    T = a.shape[-1]
    pad = [(0, 0)] * (a.ndim - 1) + [(radius + 1, radius)]
    c = np.cumsum(np.pad(a, pad).astype(np.int32), axis=-1)  # (..., T + 2r + 1)
    return (c[..., 2 * radius + 1 :] - c[..., :T]) > 0


def entity_regions(obs: Observations, entity: str, frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, H, W) bool region of `entity` at `frames`: its mask, or its box where the mask is missing/empty."""
    return _weighted_regions(obs, entity, frames, np.ones(len(frames), np.float32), size) > 0


def _weighted_regions(
    obs: Observations, entity: str, frames: np.ndarray, level: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """(n, H, W) float32: level[k] inside `entity`'s region at frames[k], 0 outside (boxes as outer products
    of row and column bands, so no boolean (n, H, W) intermediate is built for them)."""
    H, W = size
    i = obs.index(entity)
    sy, sx = H / obs.height, W / obs.width
    boxes = obs.boxes[i, frames].astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)  # (n, 4)
    lv = np.asarray(level, np.float32)
    if obs.masks is None:
        rows, cols = box_bands(boxes, H, W)
        return (rows * lv[:, None])[:, :, None] * cols[:, None, :]  # (n, H, 1) x (n, 1, W)
    m = nearest_resize(np.asarray(obs.masks[i, frames], dtype=bool), H, W)  # (n, H, W)
    empty = ~m.any(axis=(1, 2))
    if empty.any():
        m[empty] = box_masks(boxes[empty], H, W)
    return m * lv[:, None, None]


def violation_mask(
    evidence: Sequence[ViolationEvidence],
    obs: Observations,
    *,
    dilation: int = DEFAULT_DILATION,
    max_weight: float | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """(T, H, W) float32 in [0, 1]: witnessed entities' regions at witnessed (dilated) frames, weighted by
    w_c / max_weight (see the module docstring). `size` (H, W) defaults to the observations' resolution."""
    T = int(obs.n_frames)
    H, W = size or (int(obs.height), int(obs.width))
    out = np.zeros((T, H, W), np.float32)
    if not evidence:
        return out
    wmax = float(max_weight) if max_weight else max(float(ev.weight) for ev in evidence)
    if wmax <= 0:
        raise ValueError(f"max_weight must be > 0, got {wmax}")
    level: dict[str, np.ndarray] = {}  # entity -> (T,) weight of its strongest witnessing constraint
    for ev in evidence:
        w = np.float32(min(1.0, ev.weight / wmax))
        for e, frames in ev.entity_frames.items():
            if e not in obs.entities:
                continue
            f = np.asarray(frames, dtype=bool)
            if f.shape != (T,):
                raise ValueError(f"{ev.name}: frames of {e!r} have shape {f.shape}, expected ({T},)")
            v = np.where(dilate_frames(f, dilation), w, np.float32(0))
            level[e] = v if e not in level else np.maximum(level[e], v)
    for e, v in level.items():
        idx = np.flatnonzero(v > 0)
        if idx.size == 0:
            continue
        lo, hi = int(idx[0]), int(idx[-1]) + 1  # one contiguous span: frames inside it with v = 0 add 0
        frames = np.arange(lo, hi)
        view = out[lo:hi]
        np.maximum(view, _weighted_regions(obs, e, frames, v[lo:hi], (H, W)), out=view)
    return out


def save_masks(directory: str | Path, stem: str, mask: np.ndarray, **arrays: np.ndarray) -> Path:
    """Write `<directory>/<stem>.npz` (compressed) with `mask` (T,H,W) float32 and any extra arrays."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{stem}.npz"
    extra = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez_compressed(path, mask=np.asarray(mask, dtype=np.float32), **extra)
    return path


def load_masks(path: str | Path) -> np.ndarray:
    """The (T,H,W) float32 mask saved by `save_masks`."""
    with np.load(path, allow_pickle=False) as z:
        return z["mask"].astype(np.float32, copy=False)


__all__ = [
    "DEFAULT_DILATION",
    "ViolationEvidence",
    "box_masks",
    "dilate_frames",
    "entity_regions",
    "evidence_from_atoms",
    "load_masks",
    "save_masks",
    "violation_mask",
]
