"""`state` backend: `Observations` read from a simulator sidecar (sidecar.py parses and validates it), with
world positions projected through the sidecar's camera into the video's pixels.

Rows are picked with the video's `frame_indices`, so subsampled videos stay aligned; boxes come from the
sidecar (`box`), from projecting each entity's 3-D `size` box, or from its masks; masks from the sidecar's npz
(resized to the video) or, for the other entities, from their boxes; visibility from `visible`, else from the
projected centre lying in the image. The camera (checked against the video's image size), the support plane
and the known sizes pass on to the predicates (their 2.5-D semantics), and static `region` entries are
written in by `apply_regions`.

Time: a sidecar row is 1 / `fps` seconds of simulation. When that rate differs from the video's playback rate,
the observations' `fps` is the simulation rate of the sampled frames (`clock` "sidecar"), so speeds and `…s`
intervals are in simulated seconds; otherwise the video's (`clock` "video").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...errors import GroundingError
from ...raster import box_centers, box_masks, mask_boxes, nearest_resize
from ..base import find_sidecar
from ..camera import image_size_problem
from ..observations import Extent, Observations
from ..regions import apply_regions
from ..registry import registered_provides
from .sidecar import SIDECAR_VERSION, Camera, Sidecar, load_sidecar, parse_sidecar

if TYPE_CHECKING:
    from ...spec.ast import Entity
    from ...video import Video

__all__ = ["SIDECAR_VERSION", "Camera", "Sidecar", "StateGrounder", "load_sidecar", "parse_sidecar"]


class StateGrounder:
    """Ground from a simulator sidecar: 3-D positions projected through the camera, openings, contacts."""

    name = "state"
    provides = registered_provides("state")

    def __init__(self, sidecar: str | Path | None = None, strict_frames: bool = True) -> None:
        self.sidecar = sidecar  # default sidecar when ground() gets none and none sits next to the video
        self.strict_frames = strict_frames  # sidecar n_frames must equal the video's source frame count

    def ground(
        self,
        video: Video | None,
        entities: Sequence[Entity],
        *,
        quoted: Sequence[str] = (),
        sidecar: str | Path | None = None,
    ) -> Observations:
        """Observations of `entities` from the sidecar, one row per frame of `video` (all rows if None)."""
        path = sidecar or self.sidecar or find_sidecar(getattr(video, "path", None))
        if path is None:
            where = getattr(video, "path", None) or "this video"
            raise GroundingError(f"state grounder: no sidecar given and none found next to {where} "
                                 "(expected <video stem>.sidecar.json; see docs/sidecar.md)")
        return self.ground_sidecar(load_sidecar(path), video, entities, quoted=quoted)

    def ground_sidecar(
        self, sc: Sidecar, video: Video | None, entities: Sequence[Entity], *, quoted: Sequence[str] = ()
    ) -> Observations:
        """Observations from an already loaded sidecar (the cache-friendly entry point)."""
        names = tuple(e.name if hasattr(e, "name") else str(e) for e in entities)
        missing = [nm for nm in names if nm not in sc.entity_names]
        if missing:
            raise GroundingError(f"{sc.path}: entities: no entry for spec entity {missing[0]!r} "
                                 f"(the sidecar has: {', '.join(sc.entity_names)})")
        rows, (fps, clock), H, W = self._frames(sc, video)
        positions = _positions(sc, names, rows)
        centers, boxes = _image_geometry(sc, names, rows, positions, H, W)
        visibility = _visibility(sc, names, rows, centers, positions, H, W)
        masks = _masks(sc, names, rows, boxes, H, W)
        grippers = {nm: sc.grippers[nm][rows].astype(np.float32) for nm in names if nm in sc.grippers}
        contacts = {k: v[rows] for k, v in sc.contacts.items() if k[0] in names and k[1] in names}
        atoms = _atoms(sc, rows, quoted)
        filled = {"visibility"}
        filled |= {"centers"} if (~np.isnan(centers[..., 0])).any() else set()
        filled |= {"boxes"} if (~np.isnan(boxes[..., 0])).any() else set()
        filled |= {nm for nm, v in (("masks", masks), ("positions", positions)) if v is not None}
        filled |= {nm for nm, v in (("gripper_opening", grippers), ("contacts", contacts), ("atoms", atoms)) if v}
        obs = Observations(
            entities=names, n_frames=len(rows), height=H, width=W, fps=fps,
            boxes=boxes.astype(np.float32), centers=centers.astype(np.float32), visibility=visibility,
            masks=masks, positions=positions, gripper_opening=grippers, contacts=contacts, atoms=atoms,
            source=self.name,
            meta={"sidecar": sc.path, "provides": sorted(filled), "frame_indices": rows.tolist(),
                  "sidecar_fps": sc.fps},
            camera=sc.camera.scaled(W, H) if sc.camera is not None else None, support_z=sc.support_z,
            extents=_extents(sc, names, rows), clock=clock,
        )
        return apply_regions(obs, {nm: sc.regions[nm] for nm in names if nm in sc.regions}, f"{sc.path}: ")

    def _frames(self, sc: Sidecar, video: Video | None) -> tuple[np.ndarray, tuple[float, str], int, int]:
        """Sidecar rows for the video's frames, the time base (fps, clock), and the image height/width."""
        if video is None:
            if sc.camera is None:
                msg = "needed to know the image size when no video is given"
                raise GroundingError(f"{sc.path}: camera: {msg}")
            return np.arange(sc.n_frames), (sc.fps, "sidecar"), sc.camera.height, sc.camera.width
        frames = video.frames
        T, H, W = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
        idx = getattr(video, "frame_indices", None)
        rows = np.arange(T) if idx is None else np.asarray(idx, dtype=np.int64)
        n_src = getattr(video, "n_source_frames", None)
        where = getattr(video, "path", None) or "the video"
        if self.strict_frames and n_src and int(n_src) != sc.n_frames:
            raise GroundingError(f"{sc.path}: n_frames: the sidecar has {sc.n_frames} frames but {where} has "
                                 f"{int(n_src)}")
        if len(rows) != T:
            raise GroundingError(f"{where}: frame_indices has {len(rows)} entries for {T} frames")
        if len(rows) and (rows.min() < 0 or rows.max() >= sc.n_frames):
            raise GroundingError(f"{sc.path}: n_frames: the video uses source frame {int(rows.max())} but "
                                 f"the sidecar has only {sc.n_frames} frames")
        if sc.camera is not None:
            problem = image_size_problem(sc.camera, W, H)
            if problem is not None:
                raise GroundingError(f"{sc.path}: camera.width: {problem} ({where})")
        return rows, _clock(sc, video), H, W


def _clock(sc: Sidecar, video: Video) -> tuple[float, str]:
    """(fps, source) of the sampled frames: the simulation rate when the sidecar's rate differs from the
    video's playback rate (scaled by the sampling), else the video's own rate."""
    fps = float(getattr(video, "fps", None) or sc.fps)
    src = float(getattr(video, "source_fps", None) or fps)
    if abs(src - sc.fps) <= 1e-6 * max(src, sc.fps):
        return fps, "video"
    return sc.fps * fps / src, "sidecar"


# ------------------------------------------------------------------------------------------ per field
def _extents(sc: Sidecar, names: tuple[str, ...], rows: np.ndarray) -> dict[str, Extent]:
    """Known extents of the entities with a `size` (the median over the video's rows), shape and anchor."""
    return {nm: Extent(tuple(float(v) for v in np.median(sc.sizes[nm][rows], axis=0)), sc.shapes.get(nm, "box"),
                       tuple(float(v) for v in sc.anchors.get(nm, (0.0, 0.0, 0.0))))
            for nm in names if nm in sc.sizes}


def _positions(sc: Sidecar, names: tuple[str, ...], rows: np.ndarray) -> np.ndarray | None:
    """(E, T, 3) float32 world positions (NaN for entities without one), or None when no entity has one."""
    if not any(nm in sc.positions for nm in names):
        return None
    positions = np.full((len(names), len(rows), 3), np.nan, np.float32)
    for i, nm in enumerate(names):
        if nm in sc.positions:
            positions[i] = sc.positions[nm][rows]
    return positions


def _image_geometry(sc: Sidecar, names: tuple[str, ...], rows: np.ndarray, positions: np.ndarray | None,
                    H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 centres (E, T, 2) and boxes (E, T, 4) in the video's pixels: projected positions and 3-D size
    boxes (camera image scaled to the video), then the sidecar's own boxes, whose centres fill in where no
    position projects."""
    cam = sc.camera
    scale = np.array([W / cam.width if cam else 1.0, H / cam.height if cam else 1.0], np.float64)  # (sx, sy)
    centers = np.full((len(names), len(rows), 2), np.nan, np.float64)
    boxes = np.full((len(names), len(rows), 4), np.nan, np.float64)
    if cam is not None and positions is not None:
        centers = cam.project(positions.astype(np.float64)) * scale  # (E, T, 2)
        sized = [i for i, nm in enumerate(names) if nm in sc.sizes and nm not in sc.boxes]
        if sized:
            half = (-0.5, 0.5)
            corners = np.array([[x, y, z] for x in half for y in half for z in half])  # (8, 3)
            size = np.stack([sc.sizes[names[i]][rows] for i in sized])  # (S, T, 3)
            pts = positions[sized][:, :, None, :] + size[:, :, None, :] * corners  # (S, T, 8, 3)
            uv = cam.project(pts) * scale  # (S, T, 8, 2)
            boxes[sized] = np.concatenate([uv.min(axis=2), uv.max(axis=2)], axis=-1)
    for i, nm in enumerate(names):
        if nm in sc.boxes or (nm in sc.masks and nm not in sc.positions):
            if nm in sc.boxes:
                boxes[i] = sc.boxes[nm][rows] * np.tile(scale, 2)
            else:  # a mask-only entity (what a segmenter gives): its mask's box, at the video's scale
                m = sc.masks[nm][rows]
                boxes[i] = mask_boxes(m, (W / m.shape[2], H / m.shape[1]))
            no_centre = np.isnan(centers[i, :, 0])
            centers[i, no_centre] = box_centers(boxes[i, no_centre])
    return centers, boxes


def _visibility(sc: Sidecar, names: tuple[str, ...], rows: np.ndarray, centers: np.ndarray,
                positions: np.ndarray | None, H: int, W: int) -> np.ndarray:
    """(E, T) float32: the sidecar's `visible`, else whether the centre lies in the image (an entity seen
    through the camera or by its box), else whether it has a position."""
    cx, cy = centers[..., 0], centers[..., 1]
    with np.errstate(invalid="ignore"):
        inside = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)  # False for NaN (behind the camera, unseen)
    visibility = np.ones((len(names), len(rows)), np.float32)
    for i, nm in enumerate(names):
        if nm in sc.visible:
            visibility[i] = sc.visible[nm][rows]
        elif (sc.camera is not None and nm in sc.positions) or nm in sc.boxes or nm in sc.masks:
            visibility[i] = inside[i]
        elif positions is not None and nm in sc.positions:
            visibility[i] = ~np.isnan(positions[i, :, 0])
    return visibility


def _masks(sc: Sidecar, names: tuple[str, ...], rows: np.ndarray, boxes: np.ndarray, H: int, W: int
           ) -> np.ndarray | None:
    """(E, T, H, W) bool when the sidecar has any mask: its masks resized to the video, boxes for the others."""
    if not any(nm in sc.masks for nm in names):
        return None
    masks = np.zeros((len(names), len(rows), H, W), bool)
    for i, nm in enumerate(names):
        if nm in sc.masks:
            masks[i] = nearest_resize(sc.masks[nm][rows], H, W)
        else:
            masks[i] = box_masks(boxes[i].astype(np.float32), H, W)
    return masks


def _strip_quotes(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _atoms(sc: Sidecar, rows: np.ndarray, quoted: Sequence[str]) -> dict[str, np.ndarray]:
    """Every sidecar atom (T,) float32, plus each quoted atom of the spec under its own text (a sidecar key may
    carry the quotes or not); a quoted atom the sidecar lacks is an error naming what it has."""
    atoms = {k: v[rows].astype(np.float32) for k, v in sc.atoms.items()}
    by_text = {_strip_quotes(k): k for k in sc.atoms}
    for q in quoted:
        key = by_text.get(_strip_quotes(q))
        if key is None:
            raise GroundingError(f"{sc.path}: atoms: no signal for the quoted atom {q!r} "
                                 f"(atoms: {', '.join(sc.atoms) or 'none'})")
        atoms[q] = atoms[key]
    return atoms
