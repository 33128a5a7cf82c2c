"""`state` backend: observations read from a simulator sidecar (JSON + optional npz), projected to pixels.

The schema is documented in docs/sidecar.md. Validation is strict and stops at the first offending field,
naming the file and the field's JSON path (`clip.sidecar.json: entities.bottle.position: expected 120 rows of
3 numbers, got 119`). Rows are picked with the video's `frame_indices`, so subsampled videos stay aligned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ltlreward.errors import GroundingError
from ltlreward.grounding.base import find_sidecar
from ltlreward.grounding.observations import Observations

if TYPE_CHECKING:
    from ltlreward.spec.ast import Entity
    from ltlreward.video import Video

SIDECAR_VERSION = 1
_TOP_KEYS = {
    "version", "fps", "n_frames", "camera", "entities", "grippers", "contacts", "atoms", "arrays", "meta"
}
_ENTITY_KEYS = {"position", "size", "box", "visible", "mask"}
_CAMERA_KEYS = {"intrinsics", "extrinsics", "width", "height"}


# ------------------------------------------------------------------------------------------ validation
class _Checker:
    """Raises GroundingError('<file>: <json path>: <message>') for the first bad field it meets."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, msg: str) -> GroundingError:
        return GroundingError(f"{self.file}: {path}: {msg}")

    def obj(self, value: Any, path: str, allowed: set[str] | None = None) -> dict:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        if allowed is not None:
            extra = sorted(set(value) - allowed)
            if extra:
                raise self.fail(f"{path}.{extra[0]}" if path != "(top level)" else extra[0],
                                f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return value

    def number(self, value: Any, path: str, *, positive: bool = False, integer: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        if integer and int(value) != value:
            raise self.fail(path, f"expected an integer, got {value!r}")
        if positive and value <= 0:
            raise self.fail(path, f"expected a positive number, got {value!r}")
        return value

    def matrix(self, value: Any, path: str, n_rows: int, n_cols: int, *, nulls: bool = False) -> np.ndarray:
        """A list of `n_rows` rows of `n_cols` numbers (JSON null → NaN when `nulls`)."""
        what = f"{n_rows} rows of {n_cols} numbers"
        if not isinstance(value, list):
            raise self.fail(path, f"expected {what}, got {_kind(value)}")
        if len(value) != n_rows:
            raise self.fail(path, f"expected {what}, got {len(value)}")
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != (n_rows, n_cols):
            for i, row in enumerate(value):
                if not isinstance(row, list) or len(row) != n_cols:
                    got = f"{len(row)} numbers" if isinstance(row, list) else _kind(row)
                    raise self.fail(f"{path}[{i}]", f"expected {n_cols} numbers, got {got}")
                for j, x in enumerate(row):
                    ok = (x is None and nulls) or (isinstance(x, (int, float)) and not isinstance(x, bool))
                    if not ok:
                        raise self.fail(f"{path}[{i}][{j}]", f"expected a number, got {_kind(x)}")
            raise self.fail(path, f"expected {what}")  # pragma: no cover - every bad case is found above
        bad = ~np.isfinite(a)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            if not (nulls and value[i][j] is None):
                raise self.fail(f"{path}[{i}][{j}]", f"expected a finite number, got {value[i][j]!r}")
            # a null row entry is allowed only when the whole row is null (entity unseen in that frame)
            rows_bad = bad.any(axis=1) & ~bad.all(axis=1)
            if rows_bad.any():
                i = int(np.flatnonzero(rows_bad)[0])
                raise self.fail(f"{path}[{i}]", "a row is either all numbers or all null")
        return a

    def series(
        self, value: Any, path: str, n: int, *, lo: float | None = None, hi: float | None = None
    ) -> np.ndarray:
        """A list of `n` numbers (JSON booleans count as 0/1), optionally inside [lo, hi]."""
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list of {n} numbers, got {_kind(value)}")
        if len(value) != n:
            raise self.fail(path, f"expected a list of {n} numbers, got {len(value)}")
        try:
            a = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != (n,) or not np.isfinite(a).all():
            for i, x in enumerate(value):
                if not isinstance(x, (int, float)) or not np.isfinite(x):
                    raise self.fail(f"{path}[{i}]", f"expected a number, got {_kind(x)}")
        if lo is not None and hi is not None:
            out = (a < lo) | (a > hi)
            if out.any():
                i = int(np.flatnonzero(out)[0])
                raise self.fail(f"{path}[{i}]", f"expected a number in [{lo:g}, {hi:g}], got {value[i]!r}")
        return a

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected an entity name, got {_kind(value)}")
        return value


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"number {v!r}"
    if isinstance(v, str):
        return f"string {v!r}" if len(v) < 40 else "a string"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    return f"an {type(v).__name__}" if isinstance(v, dict) else type(v).__name__


# ------------------------------------------------------------------------------------------ parsed sidecar
@dataclass
class Camera:
    """Pinhole camera: K (3,3), world→camera extrinsics (4,4, OpenCV axes: x right, y down, z forward)."""

    K: np.ndarray
    extrinsics: np.ndarray
    width: int
    height: int

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixel coordinates (..., 2); NaN for points at or behind the camera."""
        p = np.asarray(points, dtype=np.float64)
        R, t = self.extrinsics[:3, :3], self.extrinsics[:3, 3]
        cam = p @ R.T + t  # (..., 3) camera frame
        img = cam @ self.K.T  # (..., 3) homogeneous pixels
        z = img[..., 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = img[..., :2] / z
        uv[(cam[..., 2] <= 1e-9)] = np.nan
        return uv


@dataclass
class Sidecar:
    """A validated sidecar: every per-frame array has `n_frames` rows."""

    path: str
    n_frames: int
    fps: float
    camera: Camera | None
    positions: dict[str, np.ndarray]  # name -> (N, 3)
    sizes: dict[str, np.ndarray]  # name -> (N, 3)
    boxes: dict[str, np.ndarray]  # name -> (N, 4) pixels of the camera image, NaN rows = unseen
    visible: dict[str, np.ndarray]  # name -> (N,)
    masks: dict[str, np.ndarray]  # name -> (N, h, w) bool
    entity_names: tuple[str, ...]
    grippers: dict[str, np.ndarray]  # name -> (N,) opening in [0, 1]
    contacts: dict[tuple[str, str], np.ndarray]  # sorted pair -> (N,) bool
    atoms: dict[str, np.ndarray]  # name -> (N,) in [0, 1]
    meta: dict = field(default_factory=dict)


def load_sidecar(path: str | Path) -> Sidecar:
    """Read and validate a sidecar file; GroundingError names the file and the first bad field."""
    p = Path(path)
    c = _Checker(str(p))
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise GroundingError(f"{p}: sidecar file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GroundingError(f"{p}: cannot read sidecar ({e})") from None
    except json.JSONDecodeError as e:
        raise GroundingError(f"{p}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    return parse_sidecar(raw, c, base_dir=p.parent)


def parse_sidecar(raw: Any, c: _Checker | str = "<sidecar>", base_dir: Path | None = None) -> Sidecar:
    """Validate an already-decoded sidecar object (see `load_sidecar`)."""
    if isinstance(c, str):
        c = _Checker(c)
    top = c.obj(raw, "(top level)", _TOP_KEYS)
    if "version" not in top:
        raise c.fail("version", f"missing (this ltlreward reads sidecar version {SIDECAR_VERSION})")
    if top["version"] != SIDECAR_VERSION:
        got = top["version"]
        raise c.fail("version", f"unsupported sidecar version {got!r} (expected {SIDECAR_VERSION})")
    for key in ("fps", "n_frames", "entities"):
        if key not in top:
            raise c.fail(key, "missing required field")
    fps = float(c.number(top["fps"], "fps", positive=True))
    n = int(c.number(top["n_frames"], "n_frames", positive=True, integer=True))

    camera = None
    if "camera" in top:
        cam = c.obj(top["camera"], "camera", _CAMERA_KEYS)
        for key in ("intrinsics", "extrinsics", "width", "height"):
            if key not in cam:
                raise c.fail(f"camera.{key}", "missing required field")
        K = c.matrix(cam["intrinsics"], "camera.intrinsics", 3, 3)
        ext = c.matrix(cam["extrinsics"], "camera.extrinsics", 4, 4)
        if not np.allclose(K[2], [0, 0, 1]):
            raise c.fail("camera.intrinsics[2]", f"expected [0, 0, 1], got {cam['intrinsics'][2]}")
        if not np.allclose(ext[3], [0, 0, 0, 1]):
            raise c.fail("camera.extrinsics[3]", f"expected [0, 0, 0, 1], got {cam['extrinsics'][3]}")
        w = int(c.number(cam["width"], "camera.width", positive=True, integer=True))
        h = int(c.number(cam["height"], "camera.height", positive=True, integer=True))
        camera = Camera(K, ext, w, h)

    npz = None
    if "arrays" in top:
        if not isinstance(top["arrays"], str):
            raise c.fail("arrays", f"expected the file name of an .npz, got {_kind(top['arrays'])}")
        npz_path = (base_dir or Path(".")) / top["arrays"]
        try:
            with np.load(npz_path, allow_pickle=False) as z:
                npz = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise c.fail("arrays", f"file {npz_path} not found") from None
        except Exception as e:
            raise c.fail("arrays", f"cannot read {npz_path}: {e}") from None

    ents = c.obj(top["entities"], "entities")
    if not ents:
        raise c.fail("entities", "expected at least one entity")
    positions, sizes, boxes, visible, masks = {}, {}, {}, {}, {}
    for name, spec in ents.items():
        base = f"entities.{name}"
        e = c.obj(spec, base, _ENTITY_KEYS)
        if "position" not in e and "box" not in e:
            raise c.fail(base, "needs a 'position' (world metres) or a 'box' (pixels)")
        if "position" in e:
            positions[name] = c.matrix(e["position"], f"{base}.position", n, 3, nulls=True)
        if "size" in e:
            s = e["size"]
            if isinstance(s, list) and s and isinstance(s[0], list):
                sizes[name] = c.matrix(s, f"{base}.size", n, 3)
            else:
                if not isinstance(s, list) or len(s) != 3:
                    msg = f"expected 3 numbers or {n} rows of 3 numbers, got {_kind(s)}"
                    raise c.fail(f"{base}.size", msg)
                sizes[name] = np.tile([c.number(x, f"{base}.size[{i}]") for i, x in enumerate(s)], (n, 1))
            neg = np.argwhere(sizes[name] < 0)
            if len(neg):
                raise c.fail(f"{base}.size", "sizes must be non-negative")
        if "box" in e:
            b = c.matrix(e["box"], f"{base}.box", n, 4, nulls=True)
            flipped = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
            if flipped.any():
                i = int(np.flatnonzero(flipped)[0])
                raise c.fail(f"{base}.box[{i}]", f"expected x0 <= x1 and y0 <= y1, got {e['box'][i]}")
            boxes[name] = b
        if "visible" in e:
            visible[name] = c.series(e["visible"], f"{base}.visible", n, lo=0.0, hi=1.0)
        if "mask" in e:
            key = e["mask"]
            if npz is None:
                raise c.fail(f"{base}.mask", "names an array but the sidecar has no 'arrays' npz file")
            if not isinstance(key, str) or key not in npz:
                has = ", ".join(sorted(npz))
                raise c.fail(f"{base}.mask", f"no array {key!r} in {top['arrays']} (has: {has})")
            m = npz[key]
            if m.ndim != 3 or m.shape[0] != n:
                raise c.fail(f"{base}.mask", f"array {key!r} must have shape ({n}, H, W), got {m.shape}")
            masks[name] = m.astype(bool, copy=False)
        if name in positions and name not in boxes and name in sizes and camera is None:
            raise c.fail(f"{base}.size", "projecting a size into a box needs a 'camera'")

    grippers = {}
    if "grippers" in top:
        for name, g in c.obj(top["grippers"], "grippers").items():
            g = c.obj(g, f"grippers.{name}", {"opening"})
            if "opening" not in g:
                raise c.fail(f"grippers.{name}.opening", "missing required field")
            grippers[name] = c.series(g["opening"], f"grippers.{name}.opening", n, lo=0.0, hi=1.0)

    contacts: dict[tuple[str, str], np.ndarray] = {}
    if "contacts" in top:
        if not isinstance(top["contacts"], list):
            got = _kind(top["contacts"])
            raise c.fail("contacts", f"expected a list of [a, b, [0/1 × {n}]] entries, got {got}")
        for i, item in enumerate(top["contacts"]):
            if not isinstance(item, list) or len(item) != 3:
                msg = f"expected [entity_a, entity_b, [0/1 × {n}]], got {_kind(item)}"
                raise c.fail(f"contacts[{i}]", msg)
            a, b = c.name(item[0], f"contacts[{i}][0]"), c.name(item[1], f"contacts[{i}][1]")
            for j, who in ((0, a), (1, b)):
                if who not in ents:
                    msg = f"unknown entity {who!r} (entities: {', '.join(ents)})"
                    raise c.fail(f"contacts[{i}][{j}]", msg)
            contacts[tuple(sorted((a, b)))] = c.series(item[2], f"contacts[{i}][2]", n, lo=0.0, hi=1.0) > 0.5

    atoms = {}
    if "atoms" in top:
        for name, series in c.obj(top["atoms"], "atoms").items():
            atoms[name] = c.series(series, f"atoms.{name}", n, lo=0.0, hi=1.0)

    meta = top.get("meta", {})
    if not isinstance(meta, dict):
        raise c.fail("meta", f"expected an object, got {_kind(meta)}")
    return Sidecar(c.file, n, fps, camera, positions, sizes, boxes, visible, masks, tuple(ents), grippers,
                   contacts, atoms, meta)


# ------------------------------------------------------------------------------------------ the grounder
def _strip_quotes(s: str) -> str:
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def _box_masks(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise boxes (..., 4) into boolean masks (..., H, W) (NaN boxes → empty)."""
    ys = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    b = boxes[..., None, None, :]
    with np.errstate(invalid="ignore"):
        return (xs >= b[..., 0]) & (xs <= b[..., 2]) & (ys >= b[..., 1]) & (ys <= b[..., 3])


class StateGrounder:
    """Ground from a simulator sidecar: 3-D positions projected through the camera, openings, contacts."""

    name = "state"
    provides = frozenset({"centers", "boxes", "visibility", "masks", "positions", "gripper_opening",
                          "contacts", "atoms"})

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
        rows, fps, H, W = self._frames(sc, video)
        E, T = len(names), len(rows)

        positions = None
        if any(nm in sc.positions for nm in names):
            positions = np.full((E, T, 3), np.nan, np.float32)
            for i, nm in enumerate(names):
                if nm in sc.positions:
                    positions[i] = sc.positions[nm][rows]

        cam = sc.camera
        sx = W / cam.width if cam else 1.0
        sy = H / cam.height if cam else 1.0
        scale = np.array([sx, sy], np.float64)
        centers = np.full((E, T, 2), np.nan, np.float64)
        boxes = np.full((E, T, 4), np.nan, np.float64)
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
            if nm in sc.boxes:
                boxes[i] = sc.boxes[nm][rows] * np.tile(scale, 2)
                no_centre = np.isnan(centers[i, :, 0])
                centers[i, no_centre] = (boxes[i, no_centre, :2] + boxes[i, no_centre, 2:]) / 2

        cx, cy = centers[..., 0], centers[..., 1]
        with np.errstate(invalid="ignore"):
            inside = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)  # False for NaN (behind the camera, unseen)
        has_centre = ~np.isnan(cx)
        visibility = np.ones((E, T), np.float32)
        for i, nm in enumerate(names):
            if nm in sc.visible:
                visibility[i] = sc.visible[nm][rows]
            elif (cam is not None and nm in sc.positions) or nm in sc.boxes:
                visibility[i] = inside[i]
            elif positions is not None and nm in sc.positions:
                visibility[i] = ~np.isnan(positions[i, :, 0])
        masks = None
        if any(nm in sc.masks for nm in names):
            masks = np.zeros((E, T, H, W), bool)
            for i, nm in enumerate(names):
                if nm in sc.masks:
                    m = sc.masks[nm][rows]
                    if m.shape[1:] != (H, W):  # nearest-neighbour resize to the video's resolution
                        yi = (np.arange(H) * m.shape[1] / H).astype(int)
                        xi = (np.arange(W) * m.shape[2] / W).astype(int)
                        m = m[:, yi][:, :, xi]
                    masks[i] = m
                else:
                    masks[i] = _box_masks(boxes[i].astype(np.float32), H, W)

        grippers = {nm: sc.grippers[nm][rows].astype(np.float32) for nm in names if nm in sc.grippers}
        contacts = {k: v[rows] for k, v in sc.contacts.items() if k[0] in names and k[1] in names}
        atoms = {k: v[rows].astype(np.float32) for k, v in sc.atoms.items()}
        by_text = {_strip_quotes(k): k for k in sc.atoms}
        for q in quoted:
            key = by_text.get(_strip_quotes(q))
            if key is None:
                raise GroundingError(f"{sc.path}: atoms: no signal for the quoted atom {q!r} "
                                     f"(atoms: {', '.join(sc.atoms) or 'none'})")
            atoms[q] = atoms[key]

        filled = {"visibility"}
        filled |= {"centers"} if has_centre.any() else set()
        filled |= {"boxes"} if (~np.isnan(boxes[..., 0])).any() else set()
        filled |= {nm for nm, v in (("masks", masks), ("positions", positions)) if v is not None}
        dicts = (("gripper_opening", grippers), ("contacts", contacts), ("atoms", atoms))
        filled |= {nm for nm, v in dicts if v}
        return Observations(
            entities=names, n_frames=T, height=H, width=W, fps=fps,
            boxes=boxes.astype(np.float32), centers=centers.astype(np.float32), visibility=visibility,
            masks=masks, positions=positions, gripper_opening=grippers, contacts=contacts, atoms=atoms,
            source=self.name,
            meta={"sidecar": sc.path, "provides": sorted(filled), "frame_indices": rows.tolist(),
                  "sidecar_fps": sc.fps},
        )

    def _frames(self, sc: Sidecar, video: Video | None) -> tuple[np.ndarray, float, int, int]:
        """Sidecar rows for the video's frames, its fps, and its image height/width."""
        if video is None:
            if sc.camera is None:
                msg = "needed to know the image size when no video is given"
                raise GroundingError(f"{sc.path}: camera: {msg}")
            return np.arange(sc.n_frames), sc.fps, sc.camera.height, sc.camera.width
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
        fps = float(getattr(video, "fps", None) or sc.fps)
        return rows, fps, H, W
