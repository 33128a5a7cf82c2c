"""The simulator sidecar format (docs/sidecar.md): `load_sidecar` / `parse_sidecar` validate a sidecar JSON
(+ optional npz of masks) into a typed `Sidecar`; `Camera` projects its world positions into pixels.

Validation is strict and stops at the first offending field, naming the file and the field's JSON path
(`clip.sidecar.json: entities.bottle.position: expected 120 rows of 3 numbers, got 119`). Sections are read in
file order, each by one function: header (version, fps, n_frames), camera, support, arrays, entities,
grippers, contacts, atoms, meta. The `state` grounder (state.py) turns a `Sidecar` into `Observations`.

A sidecar need not hold simulator state: entities given only by masks (`mask`), boxes and known sizes, with a
calibrated `camera` and the `support` plane, are what a perfect segmenter gives — the predicates then use
their 2.5-D semantics (ltlreward/predicates/lift.py). `region` entries are static regions (grounding/regions.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import GroundingError
from ..camera import MIN_DEPTH, Camera, check_camera
from ..regions import Region

SIDECAR_VERSION = 1
_TOP_KEYS = {
    "version", "fps", "n_frames", "camera", "support", "entities", "grippers", "contacts", "atoms", "arrays",
    "meta",
}
_ENTITY_KEYS = {"position", "size", "shape", "anchor", "box", "visible", "mask", "region"}
_CAMERA_KEYS = {"intrinsics", "extrinsics", "width", "height"}
_ENTITY_TRACKS = ("positions", "sizes", "boxes", "visible", "masks")  # the per-entity dicts of a Sidecar
_SHAPES = ("box", "sphere", "cylinder")


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
    support_z: float | None = None  # world height of the support plane (table top), metres
    regions: dict[str, Region] = field(default_factory=dict)  # static regions, by entity name
    shapes: dict[str, str] = field(default_factory=dict)  # name -> "box" | "sphere" | "cylinder" (with a size)
    anchors: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (3,) reference point − extent centre


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
    """Validate an already-decoded sidecar object (see `load_sidecar`), section by section in file order."""
    if isinstance(c, str):
        c = _Checker(c)
    top = c.obj(raw, "(top level)", _TOP_KEYS)
    fps, n = _header(top, c)
    camera = _camera(top["camera"], c) if "camera" in top else None
    support = _support(top["support"], c) if "support" in top else None
    npz = _arrays(top["arrays"], c, base_dir) if "arrays" in top else None
    tracks = _entities(top["entities"], c, n, camera, npz, top.get("arrays"))
    names = tuple(top["entities"])
    grippers = _grippers(top["grippers"], c, n) if "grippers" in top else {}
    contacts = _contacts(top["contacts"], c, n, names) if "contacts" in top else {}
    atoms = _atoms(top["atoms"], c, n) if "atoms" in top else {}
    meta = top.get("meta", {})
    if not isinstance(meta, dict):
        raise c.fail("meta", f"expected an object, got {_kind(meta)}")
    return Sidecar(c.file, n, fps, camera, entity_names=names, grippers=grippers, contacts=contacts, atoms=atoms,
                   meta=meta, support_z=support, **tracks)


def _header(top: dict, c: _Checker) -> tuple[float, int]:
    """(fps, n_frames) after checking the version and the required fields."""
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
    return fps, n


def parse_camera(raw: Any, c: _Checker, path: str = "camera") -> Camera:
    """A `camera` object: intrinsics (3×3, last row 0 0 1, focal lengths > 0), world→camera extrinsics (4×4,
    last row 0 0 0 1, a rotation), image size (also the prompts file's optional camera)."""
    cam = c.obj(raw, path, _CAMERA_KEYS)
    for key in ("intrinsics", "extrinsics", "width", "height"):
        if key not in cam:
            raise c.fail(f"{path}.{key}", "missing required field")
    K = c.matrix(cam["intrinsics"], f"{path}.intrinsics", 3, 3)
    ext = c.matrix(cam["extrinsics"], f"{path}.extrinsics", 4, 4)
    problem = check_camera(K, ext)
    if problem is not None:
        raise c.fail(f"{path}.{problem[0]}", problem[1])
    w = int(c.number(cam["width"], f"{path}.width", positive=True, integer=True))
    h = int(c.number(cam["height"], f"{path}.height", positive=True, integer=True))
    return Camera(K, ext, w, h)


_camera = parse_camera


def _support(raw: Any, c: _Checker) -> float:
    """`support`: {"z": metres} — the world height (z up) of the plane objects rest on (a table top)."""
    sup = c.obj(raw, "support", {"z"})
    if "z" not in sup:
        raise c.fail("support.z", "missing required field (the support plane's world height in metres)")
    return float(c.number(sup["z"], "support.z"))


def _region(raw: Any, c: _Checker, path: str, camera: Camera | None) -> Region:
    """An entity's static `region`: {"box": [x0, y0, x1, y1]} (camera-image pixels) or {"center": [x, y, z],
    "size": [sx, sy, sz]} (world metres)."""
    r = c.obj(raw, path, {"box", "center", "size"})
    if ("box" in r) == ("center" in r):
        raise c.fail(path, "give either 'box' (pixels) or 'center' (+ 'size', metres)")
    if "box" in r:
        if "size" in r:
            raise c.fail(f"{path}.size", "a pixel box region takes no size")
        b = c.series(r["box"], f"{path}.box", 4)
        if b[2] < b[0] or b[3] < b[1]:
            raise c.fail(f"{path}.box", f"expected x0 <= x1 and y0 <= y1, got {r['box']}")
        return Region(box=tuple(float(v) for v in b))
    center = tuple(float(v) for v in c.series(r["center"], f"{path}.center", 3))
    size = (0.0, 0.0, 0.0)
    if "size" in r:
        size = tuple(float(v) for v in _size(r["size"], c, f"{path}.size", 1)[0])
    if camera is not None and camera.depth(np.asarray(center)) <= MIN_DEPTH:
        raise c.fail(f"{path}.center", "lies behind the camera (extrinsics must map world to camera)")
    return Region(center=center, size=size)


def _arrays(raw: Any, c: _Checker, base_dir: Path | None) -> dict[str, np.ndarray]:
    """`arrays`: the npz beside the sidecar that entity masks name, read whole."""
    if not isinstance(raw, str):
        raise c.fail("arrays", f"expected the file name of an .npz, got {_kind(raw)}")
    npz_path = (base_dir or Path(".")) / raw
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise c.fail("arrays", f"file {npz_path} not found") from None
    except Exception as e:
        raise c.fail("arrays", f"cannot read {npz_path}: {e}") from None


def _entities(raw: Any, c: _Checker, n: int, camera: Camera | None, npz: dict[str, np.ndarray] | None,
              arrays_name: str | None) -> dict[str, dict[str, np.ndarray]]:
    """`entities`: per-entity tracks {"positions"|"sizes"|"boxes"|"visible"|"masks": {name: array}} and the
    static "regions" {name: Region}."""
    ents = c.obj(raw, "entities")
    if not ents:
        raise c.fail("entities", "expected at least one entity")
    out: dict[str, dict[str, Any]] = {k: {} for k in (*_ENTITY_TRACKS, "regions", "shapes", "anchors")}
    for name, spec in ents.items():
        base = f"entities.{name}"
        e = c.obj(spec, base, _ENTITY_KEYS)
        if not {"position", "box", "mask", "region"} & set(e):
            raise c.fail(base, "needs a 'position' (world metres), a 'box' or 'mask' (pixels) or a 'region'")
        if "region" in e:
            extra = sorted(set(e) - {"region"})
            if extra:
                raise c.fail(f"{base}.{extra[0]}", "a static region takes no per-frame tracks")
            out["regions"][name] = _region(e["region"], c, f"{base}.region", camera)
            continue
        if "position" in e:
            out["positions"][name] = c.matrix(e["position"], f"{base}.position", n, 3, nulls=True)
            if camera is not None:
                _check_in_front(out["positions"][name], camera, c, f"{base}.position")
        if "size" in e:
            out["sizes"][name] = _size(e["size"], c, f"{base}.size", n)
        for key in ("shape", "anchor"):
            if key in e and "size" not in e:
                raise c.fail(f"{base}.{key}", "describes the entity's 'size', which is missing")
        if "shape" in e:
            if e["shape"] not in _SHAPES:
                raise c.fail(f"{base}.shape", f"expected one of {', '.join(_SHAPES)}, got {_kind(e['shape'])}")
            out["shapes"][name] = e["shape"]
        if "anchor" in e:
            out["anchors"][name] = c.series(e["anchor"], f"{base}.anchor", 3)
        if "box" in e:
            out["boxes"][name] = _box(e["box"], c, f"{base}.box", n)
        if "visible" in e:
            out["visible"][name] = c.series(e["visible"], f"{base}.visible", n, lo=0.0, hi=1.0)
        if "mask" in e:
            out["masks"][name] = _mask(e["mask"], c, f"{base}.mask", n, npz, arrays_name)
        if name in out["positions"] and name not in out["boxes"] and name in out["sizes"] and camera is None:
            raise c.fail(f"{base}.size", "projecting a size into a box needs a 'camera'")
    return out


def _check_in_front(pos: np.ndarray, camera: Camera, c: _Checker, path: str) -> None:
    """An entity's positions (n, 3) must lie in front of the camera in some frame (else the extrinsics are
    inverted or the position is in another frame)."""
    seen = np.isfinite(pos).all(axis=1)
    if seen.any() and not (camera.depth(pos[seen]) > MIN_DEPTH).any():
        z = float(camera.depth(pos[seen][0]))
        raise c.fail(path, f"every position lies behind the camera (depth {z:+.3g} m in the first frame): the "
                           "extrinsics must map world to camera coordinates (OpenCV axes, z forward)")


def _size(s: Any, c: _Checker, path: str, n: int) -> np.ndarray:
    """An entity's box size in metres: 3 numbers (constant) or n rows of 3, non-negative → (n, 3)."""
    if isinstance(s, list) and s and isinstance(s[0], list):
        size = c.matrix(s, path, n, 3)
    else:
        if not isinstance(s, list) or len(s) != 3:
            raise c.fail(path, f"expected 3 numbers or {n} rows of 3 numbers, got {_kind(s)}")
        size = np.tile([c.number(x, f"{path}[{i}]") for i, x in enumerate(s)], (n, 1))
    if (size < 0).any():
        raise c.fail(path, "sizes must be non-negative")
    return size


def _box(raw: Any, c: _Checker, path: str, n: int) -> np.ndarray:
    """An entity's per-frame pixel box (n, 4) x0 ≤ x1, y0 ≤ y1; null rows = unseen."""
    b = c.matrix(raw, path, n, 4, nulls=True)
    flipped = (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if flipped.any():
        i = int(np.flatnonzero(flipped)[0])
        raise c.fail(f"{path}[{i}]", f"expected x0 <= x1 and y0 <= y1, got {raw[i]}")
    return b


def _mask(key: Any, c: _Checker, path: str, n: int, npz: dict[str, np.ndarray] | None,
          arrays_name: str | None) -> np.ndarray:
    """An entity's masks (n, H, W) bool: the array `key` of the sidecar's npz."""
    if npz is None:
        raise c.fail(path, "names an array but the sidecar has no 'arrays' npz file")
    if not isinstance(key, str) or key not in npz:
        raise c.fail(path, f"no array {key!r} in {arrays_name} (has: {', '.join(sorted(npz))})")
    m = npz[key]
    if m.ndim != 3 or m.shape[0] != n:
        raise c.fail(path, f"array {key!r} must have shape ({n}, H, W), got {m.shape}")
    return m.astype(bool, copy=False)


def _grippers(raw: Any, c: _Checker, n: int) -> dict[str, np.ndarray]:
    """`grippers`: name → (n,) opening in [0, 1]."""
    out = {}
    for name, g in c.obj(raw, "grippers").items():
        g = c.obj(g, f"grippers.{name}", {"opening"})
        if "opening" not in g:
            raise c.fail(f"grippers.{name}.opening", "missing required field")
        out[name] = c.series(g["opening"], f"grippers.{name}.opening", n, lo=0.0, hi=1.0)
    return out


def _contacts(raw: Any, c: _Checker, n: int, entities: tuple[str, ...]) -> dict[tuple[str, str], np.ndarray]:
    """`contacts`: [a, b, [0/1 × n]] entries → sorted entity pair → (n,) bool."""
    if not isinstance(raw, list):
        raise c.fail("contacts", f"expected a list of [a, b, [0/1 × {n}]] entries, got {_kind(raw)}")
    out: dict[tuple[str, str], np.ndarray] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, list) or len(item) != 3:
            raise c.fail(f"contacts[{i}]", f"expected [entity_a, entity_b, [0/1 × {n}]], got {_kind(item)}")
        a, b = c.name(item[0], f"contacts[{i}][0]"), c.name(item[1], f"contacts[{i}][1]")
        for j, who in ((0, a), (1, b)):
            if who not in entities:
                raise c.fail(f"contacts[{i}][{j}]", f"unknown entity {who!r} (entities: {', '.join(entities)})")
        out[tuple(sorted((a, b)))] = c.series(item[2], f"contacts[{i}][2]", n, lo=0.0, hi=1.0) > 0.5
    return out


def _atoms(raw: Any, c: _Checker, n: int) -> dict[str, np.ndarray]:
    """`atoms`: named proposition or quoted atom → (n,) probability in [0, 1]."""
    return {name: c.series(series, f"atoms.{name}", n, lo=0.0, hi=1.0)
            for name, series in c.obj(raw, "atoms").items()}
