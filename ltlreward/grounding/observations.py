"""`Observations`: what a grounder saw in one video, per entity per frame. The contract between grounding
and predicates (grounders know nothing of predicates; predicates read only this)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GroundingError
from .camera import Camera, check_camera

OBS_FORMAT_VERSION = 1
SHAPES = ("box", "sphere", "cylinder")  # how an Extent's size is read (cylinder: vertical axis, size = d, d, h)


@dataclass(frozen=True)
class Extent:
    """An entity's known extent (what a user knows of an object, not state): `size` (3,) world-axis extents in
    metres, its `shape`, and `anchor` (3,), where the entity's reference point lies relative to the extent's
    centre (metres; e.g. (0, 0, -h/2) for a position at its bottom)."""

    size: tuple[float, float, float]
    shape: str = "box"
    anchor: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")

    def to_json(self) -> dict:
        return {"size": [float(v) for v in self.size], "shape": self.shape, "anchor": [float(v) for v in self.anchor]}


@dataclass
class Observations:
    """Per-entity, per-frame observations of one video.

    Shapes use E = len(entities), T = n_frames. Pixel coordinates are (x, y) with the origin at the top-left.
    Missing values are NaN (boxes, centres, positions) or 0 (visibility).
    """

    entities: tuple[str, ...]
    n_frames: int
    height: int
    width: int
    fps: float
    boxes: np.ndarray  # (E, T, 4) float32 x0, y0, x1, y1 in pixels; NaN where unseen
    centers: np.ndarray  # (E, T, 2) float32 pixel centre; NaN where unseen
    visibility: np.ndarray  # (E, T) float32 in [0, 1]
    masks: np.ndarray | None = None  # (E, T, H, W) bool, optional
    positions: np.ndarray | None = None  # (E, T, 3) float32 world metres, z up; optional (state grounders)
    gripper_opening: dict[str, np.ndarray] = field(default_factory=dict)  # entity -> (T,) in [0,1], 1 = open
    contacts: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # sorted pair -> (T,) bool
    atoms: dict[str, np.ndarray] = field(default_factory=dict)  # quoted atom / named signal -> (T,) prob
    source: str = ""  # backend that produced it
    meta: dict = field(default_factory=dict)
    camera: Camera | None = None  # calibrated camera of this video's pixels (enables the 2.5-D semantics)
    support_z: float | None = None  # world height (metres, z up) of the support plane objects rest on
    extents: dict[str, Extent] = field(default_factory=dict)  # entity -> its known size, shape and anchor
    static: tuple[str, ...] = ()  # entities that do not move (static regions)
    clock: str = "video"  # what `fps` is: the video's frame rate, or the simulation rate of a sidecar ("sidecar")

    def index(self, entity: str) -> int:
        """Row of `entity` in the per-entity arrays."""
        try:
            return self.entities.index(entity)
        except ValueError:
            raise KeyError(f"no observations for entity {entity!r}; observed: {', '.join(self.entities)}") from None


# ------------------------------------------------------------------------------------------ on disk
# `<stem>.json` holds the scalars, the entity order and the keys of the dict-valued fields; `<stem>.npz`
# (compressed) holds every array. Arrays of dict-valued fields are stored under "<field>.<i>", where i is
# the key's position in the JSON's list for that field, so keys may be any string.
OBS_FORMAT_NAME = "ltlreward.observations"


def _obs_paths(path: str | Path) -> tuple[Path, Path]:
    """`(json, npz)` paths for a stem or for either of the two files."""
    p = Path(path)
    if p.suffix in (".json", ".npz"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".json"), p.with_name(p.name + ".npz")


def _jsonable(value, where: str):
    """`value` with numpy scalars/arrays turned into plain JSON values (GroundingError if impossible)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise GroundingError(f"cannot save observations: {where} holds a {type(value).__name__}, not JSON data")


def save_observations(obs: Observations, path_stem: str | Path) -> tuple[Path, Path]:
    """Write `obs` as `<stem>.json` + `<stem>.npz` (format OBS_FORMAT_VERSION); returns both paths."""
    json_path, npz_path = _obs_paths(path_stem)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "boxes": np.asarray(obs.boxes, np.float32),
        "centers": np.asarray(obs.centers, np.float32),
        "visibility": np.asarray(obs.visibility, np.float32),
    }
    if obs.masks is not None:
        arrays["masks"] = np.asarray(obs.masks, bool)
    if obs.positions is not None:
        arrays["positions"] = np.asarray(obs.positions, np.float32)
    gripper_keys = list(obs.gripper_opening)
    contact_keys = [list(k) for k in obs.contacts]
    atom_keys = list(obs.atoms)
    for i, k in enumerate(gripper_keys):
        arrays[f"gripper_opening.{i}"] = np.asarray(obs.gripper_opening[k], np.float32)
    for i, k in enumerate(obs.contacts):
        arrays[f"contacts.{i}"] = np.asarray(obs.contacts[k], bool)
    for i, k in enumerate(atom_keys):
        arrays[f"atoms.{i}"] = np.asarray(obs.atoms[k], np.float32)
    header = {
        "format": OBS_FORMAT_NAME,
        "version": OBS_FORMAT_VERSION,
        "entities": list(obs.entities),
        "n_frames": int(obs.n_frames),
        "height": int(obs.height),
        "width": int(obs.width),
        "fps": float(obs.fps),
        "source": obs.source,
        "meta": _jsonable(obs.meta, "meta"),
        "gripper_opening": gripper_keys,
        "contacts": contact_keys,
        "atoms": atom_keys,
        "has_masks": obs.masks is not None,
        "has_positions": obs.positions is not None,
        "camera": obs.camera.to_json() if obs.camera is not None else None,
        "support_z": obs.support_z,
        "extents": {k: v.to_json() for k, v in obs.extents.items()},
        "static": list(obs.static),
        "clock": obs.clock,
    }
    json_path.write_text(json.dumps(header, indent=1) + "\n")
    np.savez_compressed(npz_path, **arrays)
    return json_path, npz_path


def load_observations(path: str | Path) -> Observations:
    """Read observations saved by `save_observations` (stem, .json or .npz path); checks version, shapes."""
    json_path, npz_path = _obs_paths(path)
    for p in (json_path, npz_path):
        if not p.is_file():
            raise GroundingError(f"{p}: observations file not found")
    header = _read_header(json_path)
    entities = tuple(str(e) for e in header["entities"])
    E, T, H, W = len(entities), header["n_frames"], header["height"], header["width"]
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile / format errors of a corrupt file
        raise GroundingError(f"{npz_path}: cannot read arrays ({e})") from None

    def arr(key: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        if key not in data:
            raise GroundingError(f"{npz_path}: {key}: array missing")
        a = data[key]
        if a.shape != shape:
            raise GroundingError(f"{npz_path}: {key}: expected shape {shape}, got {a.shape}")
        return a.astype(dtype, copy=False)

    boxes, centers = arr("boxes", (E, T, 4), np.float32), arr("centers", (E, T, 2), np.float32)
    visibility = arr("visibility", (E, T), np.float32)
    masks = arr("masks", (E, T, H, W), bool) if header.get("has_masks") else None
    positions = arr("positions", (E, T, 3), np.float32) if header.get("has_positions") else None
    gripper = {str(k): arr(f"gripper_opening.{i}", (T,), np.float32) for i, k in enumerate(header["gripper_opening"])}
    contacts = {}
    for i, k in enumerate(header["contacts"]):
        if not (isinstance(k, list) and len(k) == 2):
            raise GroundingError(f"{json_path}: contacts[{i}]: expected a pair of entity names, got {k!r}")
        contacts[(str(k[0]), str(k[1]))] = arr(f"contacts.{i}", (T,), bool)
    atoms = {str(k): arr(f"atoms.{i}", (T,), np.float32) for i, k in enumerate(header["atoms"])}
    return Observations(
        entities=entities, n_frames=T, height=H, width=W, fps=float(header["fps"]),
        boxes=boxes, centers=centers, visibility=visibility, masks=masks, positions=positions,
        gripper_opening=gripper, contacts=contacts, atoms=atoms,
        source=str(header.get("source", "")), meta=dict(header.get("meta") or {}),
        **_geometry(header, json_path),
    )


def _geometry(header: dict, json_path: Path) -> dict:
    """The optional camera, support plane, extents and static entities of a saved header (checked)."""
    out: dict = {"extents": {}, "static": ()}
    cam = header.get("camera")
    if cam is not None:
        try:
            K, E = np.asarray(cam["intrinsics"], np.float64), np.asarray(cam["extrinsics"], np.float64)
            if K.shape != (3, 3) or E.shape != (4, 4):
                raise ValueError("intrinsics must be 3×3 and extrinsics 4×4")
            problem = check_camera(K, E)
            if problem is not None:
                raise ValueError(f"{problem[0]}: {problem[1]}")
            out["camera"] = Camera(K, E, int(cam["width"]), int(cam["height"]))
        except (KeyError, TypeError, ValueError) as e:
            raise GroundingError(f"{json_path}: camera: {e}") from None
    if header.get("support_z") is not None:
        out["support_z"] = float(header["support_z"])
    for k, v in (header.get("extents") or {}).items():
        try:
            size = np.asarray(v["size"], np.float64)
            anchor = np.asarray(v.get("anchor", (0, 0, 0)), np.float64)
            if size.shape != (3,) or anchor.shape != (3,) or not np.isfinite([*size, *anchor]).all() \
                    or (size < 0).any():
                raise ValueError("size and anchor must be 3 finite numbers, size non-negative")
            out["extents"][str(k)] = Extent(tuple(size), str(v.get("shape", "box")), tuple(anchor))
        except (KeyError, TypeError, ValueError) as e:
            raise GroundingError(f"{json_path}: extents.{k}: {e}") from None
    out["static"] = tuple(str(s) for s in header.get("static") or ())
    out["clock"] = str(header.get("clock", "video"))
    return out


def _read_header(json_path: Path) -> dict:
    """The JSON header of saved observations, checked for its version and the fields' types."""
    try:
        header = json.loads(json_path.read_text())
    except (OSError, ValueError) as e:
        raise GroundingError(f"{json_path}: not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise GroundingError(f"{json_path}: (top level): expected a JSON object")
    if header.get("version") != OBS_FORMAT_VERSION:
        raise GroundingError(f"{json_path}: version: unsupported observations format version "
                             f"{header.get('version')!r} (this ltlreward reads version {OBS_FORMAT_VERSION})")
    for key, typ in (("entities", list), ("n_frames", int), ("height", int), ("width", int),
                     ("fps", (int, float)), ("gripper_opening", list), ("contacts", list), ("atoms", list)):
        if not isinstance(header.get(key), typ) or isinstance(header.get(key), bool):
            what = typ.__name__ if isinstance(typ, type) else "number"
            raise GroundingError(f"{json_path}: {key}: missing or not a {what}")
    return header
