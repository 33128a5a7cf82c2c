"""Violation masks: witnesses × entity masks → a (T, H, W) credit map per video for the trainer.

For each violated constraint c with weight w_c, the monitor's witness says at which frames which atoms
decided the violation; each atom names entities (its arguments, or the predicate layer's support). So an
entity e is *witnessed at frame t* by c when an atom of c's witness that names e is witnessed at t (the
`ViolationEvidence`, which the overlays read too). Those frames are dilated in time by `dilation` frames on
each side (default 2: an event rarely sits on exactly one frame, and the trainer should also credit its
lead-in). The mask is then

    mask[t, y, x] = max over (c, e) with e witnessed by c at t (after dilation) of
                    (w_c / w_max) · region_e(t)[y, x]

where region_e(t) is e's segmentation mask at t, or its box when the grounder gave no mask (or an empty
mask at that frame). An entity unseen at a painted frame (no mask pixel, no box) — a vanished object is a
common generation failure — takes a stand-in: its region at the last frame it was seen, else at the next
one, else (never seen) the whole frame; `Coverage.stand_ins` says which, and records carry it. Overlaps take
the maximum, not the sum, so the map stays in [0, 1].
Normalisation: w_max is the largest weight in the *spec* (RewardModel passes it), so a violation of the
heaviest constraint paints 1.0 and a lighter one paints w_c / w_max, comparable across videos; called
without `max_weight` it is the largest weight among the given violations. Frames and pixels not
implicated are 0; a video whose constraints all hold has an all-zero mask. `violation_masks` also returns,
per violated constraint, the fraction of frames and of pixels its own mask covers (`Coverage`). Saved files:
one compressed npz per video, `<dir>/<video stem>.npz` with array `mask` (T,H,W) float32 (+ `frame_indices`
when known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .grounding.observations import Observations
from .raster import box_masks, frame_runs, nearest_resize

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


STAND_INS = ("last seen", "next seen", "whole frame")  # how an unseen entity's region is stood in for


@dataclass(frozen=True)
class StandIn:
    """Painted frames at which `entity` was unseen, and the region used there (one of `STAND_INS`)."""

    entity: str
    region: str
    frames: tuple[tuple[int, int], ...]  # inclusive runs of frames

    def to_json(self) -> dict:
        return {"entity": self.entity, "region": self.region, "frames": [list(r) for r in self.frames]}


@dataclass(frozen=True)
class Coverage:
    """What one violated constraint's own mask covers: fractions of the frames and of the (T·H·W) pixels."""

    name: str
    frame_fraction: float
    pixel_fraction: float
    stand_ins: tuple[StandIn, ...] = ()


def _source_frames(obs: Observations, i: int, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For painted `frames` of entity row i: the frame whose region to use (-1: the whole frame) and the stand-in
    kind (0 seen, 1 last seen, 2 next seen, 3 never seen)."""
    T = obs.n_frames
    known = np.isfinite(obs.boxes[i]).all(axis=1)  # (T,)
    if obs.masks is not None:
        known |= np.asarray(obs.masks[i]).any(axis=(1, 2))
    t = np.arange(T)
    last = np.maximum.accumulate(np.where(known, t, -1))  # last known frame ≤ t
    nxt = np.minimum.accumulate(np.where(known, t, T)[::-1])[::-1]  # next known frame ≥ t
    lf, nf, kf = last[frames], nxt[frames], known[frames]
    src = np.where(kf, frames, np.where(lf >= 0, lf, np.where(nf < T, nf, -1)))
    kind = np.where(kf, 0, np.where(lf >= 0, 1, np.where(nf < T, 2, 3)))
    return src, kind


def _stand_ins(entity: str, frames: np.ndarray, kind: np.ndarray) -> list[StandIn]:
    """The stand-ins used for `entity` at `frames`, one per kind, with their frame runs."""
    return [StandIn(entity, STAND_INS[k - 1], tuple(frame_runs(frames[kind == k]))) for k in (1, 2, 3)
            if (kind == k).any()]


def entity_regions(obs: Observations, entity: str, frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, H, W) bool region of `entity` at `frames`: its mask, else its box, else a stand-in (module doc)."""
    return _regions(obs, entity, np.asarray(frames), size)[0]


def _regions(obs: Observations, entity: str, frames: np.ndarray, size: tuple[int, int]
             ) -> tuple[np.ndarray, list[StandIn]]:
    """(n, H, W) bool regions of `entity` at `frames` (stand-ins where unseen) and the stand-ins used."""
    H, W = size
    i = obs.index(entity)
    src, kind = _source_frames(obs, i, frames)
    at = np.maximum(src, 0)
    sy, sx = H / obs.height, W / obs.width
    boxes = obs.boxes[i, at].astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)  # (n, 4)
    if obs.masks is None:
        m = box_masks(boxes, H, W)
    else:
        m = nearest_resize(np.asarray(obs.masks[i, at], dtype=bool), H, W).copy()  # (n, H, W)
        empty = ~m.any(axis=(1, 2))
        if empty.any():
            m[empty] = box_masks(boxes[empty], H, W)
    m[src < 0] = True  # never seen: the whole frame
    return m, _stand_ins(entity, frames, kind)


def violation_masks(
    evidence: Sequence[ViolationEvidence],
    obs: Observations,
    *,
    dilation: int = DEFAULT_DILATION,
    max_weight: float | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, list[Coverage]]:
    """(T, H, W) float32 mask in [0, 1] (see the module docstring) and each violated constraint's `Coverage`.
    `size` (H, W) defaults to the observations' resolution."""
    T = int(obs.n_frames)
    H, W = size or (int(obs.height), int(obs.width))
    out = np.zeros((T, H, W), np.float32)
    if not evidence:
        return out, []
    wmax = float(max_weight) if max_weight else max(float(ev.weight) for ev in evidence)
    if wmax <= 0:
        raise ValueError(f"max_weight must be > 0, got {wmax}")
    covers = []
    for ev in evidence:
        own = np.zeros((T, H, W), bool)  # this constraint's pixels
        stand: list[StandIn] = []
        for e, frames in ev.entity_frames.items():
            if e not in obs.entities:
                continue
            f = np.asarray(frames, dtype=bool)
            if f.shape != (T,):
                raise ValueError(f"{ev.name}: frames of {e!r} have shape {f.shape}, expected ({T},)")
            idx = np.flatnonzero(dilate_frames(f, dilation))
            if idx.size:
                reg, st = _regions(obs, e, idx, (H, W))
                own[idx] |= reg
                stand += st
        hit = np.flatnonzero(own.any(axis=(1, 2)))
        if hit.size:
            lo, hi = int(hit[0]), int(hit[-1]) + 1  # one span: frames inside it without pixels add 0
            w = np.float32(min(1.0, ev.weight / wmax))
            np.maximum(out[lo:hi], own[lo:hi] * w, out=out[lo:hi])
        covers.append(Coverage(ev.name, hit.size / max(T, 1), float(own.mean()) if own.size else 0.0,
                               tuple(stand)))
    return out, covers


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
    return violation_masks(evidence, obs, dilation=dilation, max_weight=max_weight, size=size)[0]


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
    "STAND_INS",
    "Coverage",
    "StandIn",
    "ViolationEvidence",
    "box_masks",
    "dilate_frames",
    "entity_regions",
    "evidence_from_atoms",
    "load_masks",
    "save_masks",
    "violation_mask",
    "violation_masks",
]
