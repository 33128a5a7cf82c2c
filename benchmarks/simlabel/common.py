"""Shared pieces of the simulator-labelled benchmark: episode records, camera maths, sidecar and label writing.

An `Episode` is what a suite's runner hands back: rendered frames plus, per rendered frame, entity positions,
gripper openings, contact flags and the simulator's own success flag. `write_episode` turns it into the
three files of one item — `<id>.mp4`, `<id>.sidecar.json` (docs/sidecar.md, version 1) and a label record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_SIZE = 224  # rendered square frames, pixels


@dataclass
class Episode:
    """One rendered rollout with per-frame simulator state (all arrays have T rows)."""

    suite: str
    task: str
    failure_mode: str
    seed: int
    fps: float
    frames: np.ndarray  # (T, H, W, 3) uint8
    positions: dict[str, np.ndarray]  # entity -> (T, 3) world metres, z up
    sizes: dict[str, Sequence[float]]  # entity -> (3,) extent in metres (for projected boxes)
    openings: dict[str, np.ndarray]  # gripper entity -> (T,) opening in [0, 1], 1 = open
    contacts: dict[tuple[str, str], np.ndarray]  # entity pair -> (T,) bool
    success: np.ndarray  # (T,) bool, the simulator's own success check at each rendered frame
    camera: dict[str, Any]  # sidecar camera block (intrinsics, extrinsics, width, height)
    description: str
    meta: dict[str, Any] = field(default_factory=dict)
    masks: dict[str, np.ndarray] | None = None  # natural renders: entity -> (T, H, W) bool instance masks

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


def gl_camera_to_sidecar(pos: np.ndarray, forward: np.ndarray, up: np.ndarray, near: float, top: float,
                         width: int, height: int) -> dict[str, Any]:
    """Sidecar camera (K, world→camera OpenCV extrinsics) from a MuJoCo mjvGLCamera's pose and frustum."""
    f = np.asarray(forward, np.float64)
    f = f / np.linalg.norm(f)
    u = np.asarray(up, np.float64)
    u = u - f * (u @ f)
    u = u / np.linalg.norm(u)
    right = np.cross(f, u)
    R = np.stack([right, -u, f])  # rows: camera x (right), y (down), z (forward) in world coordinates
    t = -R @ np.asarray(pos, np.float64)
    ext = np.eye(4)
    ext[:3, :3], ext[:3, 3] = R, t
    fy = (height / 2.0) * near / top
    K = np.array([[fy, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])
    return {"intrinsics": np.round(K, 6).tolist(), "extrinsics": np.round(ext, 8).tolist(),
            "width": int(width), "height": int(height)}


def project(camera: dict[str, Any], points: np.ndarray) -> np.ndarray:
    """World points (..., 3) → pixels (..., 2) through a sidecar camera block (for checks and tests)."""
    K = np.asarray(camera["intrinsics"], np.float64)
    E = np.asarray(camera["extrinsics"], np.float64)
    cam = np.asarray(points, np.float64) @ E[:3, :3].T + E[:3, 3]
    img = cam @ K.T
    return img[..., :2] / img[..., 2:3]


def first_true(x: np.ndarray) -> int | None:
    """Index of the first True in a 1-D bool array, or None."""
    idx = np.flatnonzero(np.asarray(x, bool))
    return int(idx[0]) if idx.size else None


GEOM, SITE = 5, 6  # mujoco.mjtObj.mjOBJ_GEOM / mjOBJ_SITE, as the segmentation buffer reports them


@dataclass(frozen=True)
class Segmenter:
    """Turns MuJoCo segmentation buffers into per-entity masks: lookup tables from geom / site id to entity."""

    names: tuple[str, ...]
    geom_lut: np.ndarray  # (ngeom,) int: entity index of each geom, −1 for none
    site_lut: np.ndarray  # (nsite,) int: entity index of each site, −1 for none

    @classmethod
    def build(cls, ngeom: int, nsite: int, geoms: dict[str, set[int]],
              sites: dict[str, set[int]] | None = None) -> Segmenter:
        names = tuple(dict.fromkeys([*geoms, *(sites or {})]))
        g, s = np.full(ngeom, -1, np.int64), np.full(nsite, -1, np.int64)
        for i, n in enumerate(names):
            g[sorted(geoms.get(n, ()))] = i
            s[sorted((sites or {}).get(n, ()))] = i
        return cls(names, g, s)

    def __call__(self, seg: np.ndarray) -> np.ndarray:
        """(H, W, 2) segmentation → (H, W) entity index, −1 for background and unnamed objects."""
        oid, otype = seg[..., 0], seg[..., 1]
        g = self.geom_lut[np.clip(oid, 0, max(len(self.geom_lut) - 1, 0))] if len(self.geom_lut) else -1
        s = self.site_lut[np.clip(oid, 0, max(len(self.site_lut) - 1, 0))] if len(self.site_lut) else -1
        return np.where((otype == GEOM) & (oid >= 0), g, np.where((otype == SITE) & (oid >= 0), s, -1))

    def masks(self, labels: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Per-frame entity-index images (T × (H, W)) → entity → (T, H, W) bool."""
        lab = np.stack(labels)  # (T, H, W)
        return {n: lab == i for i, n in enumerate(self.names)}


def label_record(ep: Episode, item_id: str, video: str, spec: str | None) -> dict[str, Any]:
    """The label line of one episode: success at the last frame and at any frame, from the simulator."""
    s = np.asarray(ep.success, bool)
    return {
        "id": item_id,
        "video": video,
        "suite": ep.suite,
        "task": ep.task,
        "failure_mode": ep.failure_mode,
        "seed": int(ep.seed),
        "success": bool(s[-1]),  # the label the agreement benchmark uses: success at the final frame
        "success_any": bool(s.any()),
        "first_success_frame": first_true(s),
        "success_fraction": round(float(s.mean()), 4),
        "n_frames": ep.n_frames,
        "fps": ep.fps,
        "spec": spec,
        "description": ep.description,
    }


def sidecar_dict(ep: Episode, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The episode's simulator sidecar (docs/sidecar.md, version 1)."""
    T = ep.n_frames
    ents: dict[str, Any] = {}
    for name, p in ep.positions.items():
        p = np.asarray(p, np.float64)
        if p.shape != (T, 3):
            raise ValueError(f"{name}: positions must be ({T}, 3), got {p.shape}")
        ents[name] = {"position": np.round(p, 5).tolist()}
        if name in ep.sizes:
            ents[name]["size"] = [round(float(v), 4) for v in ep.sizes[name]]
    out: dict[str, Any] = {
        "version": 1,
        "fps": float(ep.fps),
        "n_frames": T,
        "camera": ep.camera,
        "entities": ents,
        "grippers": {g: {"opening": np.round(np.clip(o, 0.0, 1.0), 4).tolist()} for g, o in ep.openings.items()},
        "contacts": [[a, b, np.asarray(c, bool).astype(int).tolist()] for (a, b), c in ep.contacts.items()],
        "meta": {"suite": ep.suite, "task": ep.task, "failure_mode": ep.failure_mode, "seed": int(ep.seed),
                 **ep.meta, **(meta or {})},
    }
    return out


def write_episode(ep: Episode, out_dir: str | os.PathLike[str], item_id: str,
                  spec: str | None = None) -> dict[str, Any]:
    """Write `<id>.mp4` and `<id>.sidecar.json` under out_dir/videos; return the label record."""
    from ltlreward.video import write_video

    vdir = Path(out_dir) / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    mp4 = vdir / f"{item_id}.mp4"
    write_video(mp4, ep.frames, ep.fps)
    extra = write_segmentation(ep, vdir / f"{item_id}.seg.npz") if ep.masks is not None else None
    side = vdir / f"{item_id}.sidecar.json"
    side.write_text(json.dumps(sidecar_dict(ep, extra), separators=(",", ":")))
    rec = label_record(ep, item_id, os.path.relpath(mp4, out_dir), spec)
    if extra is not None:
        rec.update(natural=True, visible_fraction=extra["visible_fraction"])
    return rec


def write_segmentation(ep: Episode, path: Path) -> dict[str, Any]:
    """Save the episode's ground-truth instance masks (one (T, H, W) bool array per entity, compressed) and
    return the sidecar meta that points at them, with the share of frames in which each entity is seen."""
    assert ep.masks is not None
    np.savez_compressed(path, **{k: np.asarray(v, bool) for k, v in ep.masks.items()})
    seen = {k: round(float(np.asarray(v).reshape(ep.n_frames, -1).any(axis=1).mean()), 4)
            for k, v in ep.masks.items()}
    return {"segmentation": path.name, "visible_fraction": seen}


def episode_rng(seed: int) -> np.random.Generator:
    """The one random stream of an episode (failure-mode parameters and action noise)."""
    return np.random.default_rng(np.random.SeedSequence([20261121, int(seed)]))


def start_episode(
    task_name: str,
    modes: Sequence[str],
    weights: dict[str, float],
    seed: int,
    mode: str | None,
    horizon: int,
    stride: int,
) -> tuple[np.random.Generator, str, int]:
    """The shared start of every suite's episode: its random stream, the failure mode (drawn from the seed with
    `weights` over `modes`, even when `mode` is given, so later draws do not depend on it) and the horizon
    rounded down to a multiple of `stride`."""
    rng = episode_rng(seed)
    w = np.array([weights[m] for m in modes])
    drawn = str(modes[int(rng.choice(len(modes), p=w / w.sum()))])
    mode = mode or drawn
    if mode not in modes:
        raise ValueError(f"{task_name}: failure mode {mode!r} not available (modes: {', '.join(modes)})")
    H = int(horizon)
    return rng, mode, H - H % stride
