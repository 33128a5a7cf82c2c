"""Prompts files: where each entity is on one frame, said once by the user (`<stem>.prompts.json` beside the
video, or one file for every video). The `track` grounder and the model grounders start from them.

    {"version": 1, "frame": 0,
     "entities": {"block": {"box": [40, 60, 72, 90]},
                  "gripper": {"mask": "gripper.png"},
                  "cup": {"points": [[120, 80], [126, 92]]},
                  "goal": {"box": [150, 150, 180, 175], "static": true}},
     "camera": {"intrinsics": […], "extrinsics": […], "width": 224, "height": 224}}

Coordinates are pixels of the video's own resolution (x right, y down; a box is x0, y0, x1, y1 with exclusive
ends as in `ltlreward.raster`); optional `"width"`/`"height"` name another resolution the coordinates are in
(they are then scaled to the video's). Keys are the spec's entity names. A mask is a PNG (its non-zero,
non-transparent pixels are the entity) whose path is relative to the JSON file. `"static": true` keeps the
entity at its prompt region. The optional `"camera"` and `"support"` are the sidecar's sections (read by the
sidecar's own parser), and an entity may carry the sidecar's known extent keys `"size"` ([sx, sy, sz] metres),
`"shape"` (box, sphere, cylinder) and `"anchor"`: with them, metre-valued predicates run from pixels in
2.5-D, as with a sidecar of masks and a camera. `"frame"` is the source frame the prompts describe.

`load_prompts` validates the file's own content (version, fields, mask files) and names the file and the
field of the first error; `Prompts.regions` checks the entities against the spec and the boxes against the
image, which are known only when a video is grounded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import GroundingError
from ..raster import box_masks, mask_boxes, nearest_resize
from .observations import SHAPES as EXTENT_SHAPES
from .observations import Extent

if TYPE_CHECKING:
    from .backends.sidecar import Camera

PROMPTS_VERSION = 1
_TOP_KEYS = {"version", "frame", "entities", "camera", "support", "width", "height", "meta"}
_SHAPES = ("box", "mask", "points")
_EXTENT_KEYS = ("size", "shape", "anchor")  # the sidecar's known-extent keys (what a user knows of an object)
_ENTITY_KEYS = {*_SHAPES, "static", *_EXTENT_KEYS}


@dataclass(frozen=True)
class EntityPrompt:
    """One entity's prompt in the file's coordinates: exactly one of box / mask / points, and `static`."""

    name: str
    shape: str  # "box" | "mask" | "points"
    box: np.ndarray  # (4,) float64 x0, y0, x1, y1: the box, the mask's extent, or the points' extent (+1 px)
    mask: np.ndarray | None = None  # (h, w) bool, mask prompts only
    points: np.ndarray | None = None  # (n, 2) float64 x, y, points prompts only
    static: bool = False


@dataclass(frozen=True)
class Region:
    """An entity's prompt at the video's resolution: its box (4,) float32 and mask (H, W) bool (the mask
    prompt, else the box; points prompts keep their points (n, 2) for backends that click them)."""

    name: str
    shape: str
    box: np.ndarray
    mask: np.ndarray
    points: np.ndarray | None
    static: bool


@dataclass(frozen=True)
class Prompts:
    """A validated prompts file (see the module docstring)."""

    path: str  # the file, or "<prompts>" for an in-memory object
    frame: int  # source frame the prompts describe
    entities: dict[str, EntityPrompt]
    camera: Camera | None = None
    size: tuple[int, int] | None = None  # (height, width) of the coordinates when the file names it
    meta: dict = field(default_factory=dict)
    digest: str = ""  # sha256 of the content (cache keys)
    support_z: float | None = None  # world height of the support plane (the sidecar's `support.z`), metres
    extents: dict[str, Extent] = field(default_factory=dict)  # entity -> known size, shape, anchor

    def fail(self, where: str, msg: str) -> GroundingError:
        """A GroundingError naming this file and a field."""
        return GroundingError(f"{self.path}: {where}: {msg}")

    def check_entities(self, names: tuple[str, ...]) -> None:
        """Every prompted entity must be a spec entity (a typo would otherwise be silently unused)."""
        for name in self.entities:
            if name not in names:
                raise self.fail(f"entities.{name}", f"unknown entity {name!r} (the spec's entities: "
                                                    f"{', '.join(names) or 'none'})")

    def regions(self, names: tuple[str, ...], height: int, width: int) -> dict[str, Region]:
        """Each prompted entity of `names` at a video resolution (H, W), after checking the entity names and that
        every box, mask and point lies in the image."""
        self.check_entities(names)
        H0, W0 = self.size or (height, width)
        sx, sy = width / W0, height / H0
        out = {}
        for name, p in self.entities.items():
            where = f"entities.{name}.{p.shape}"
            if p.shape == "mask":
                if p.mask.shape != (H0, W0):
                    raise self.fail(where, f"the mask is {p.mask.shape[1]}×{p.mask.shape[0]} but the image is "
                                           f"{W0}×{H0}")
            elif p.shape == "box" and ((p.box[:2] < 0).any() or p.box[2] > W0 or p.box[3] > H0):
                raise self.fail(where, f"the box {_show(p.box)} lies outside the {W0}×{H0} image (x in "
                                       f"[0, {W0}], y in [0, {H0}])")
            elif p.shape == "points" and ((p.points < 0).any() or (p.points >= (W0, H0)).any()):
                raise self.fail(where, f"a point of {_show(p.points)} lies outside the {W0}×{H0} image")
            out[name] = _region(p, sx, sy, height, width)
        return out


def _show(a: np.ndarray) -> str:
    """An array as JSON text, for error messages."""
    return json.dumps(np.asarray(a).tolist())


def _region(p: EntityPrompt, sx: float, sy: float, H: int, W: int) -> Region:
    """An EntityPrompt scaled by (sx, sy) to an (H, W) video."""
    if p.shape == "mask":
        mask = nearest_resize(p.mask[None], H, W)[0]
        box = mask_boxes(mask)
    else:
        box = (p.box * np.array([sx, sy, sx, sy])).astype(np.float32)
        mask = box_masks(box, H, W)
    points = None if p.points is None else p.points * np.array([sx, sy])
    return Region(p.name, p.shape, np.asarray(box, np.float32), mask, points, p.static)


def require_prompted(prompts: Prompts, names: tuple[str, ...], regions: dict[str, Region]) -> None:
    """Every spec entity must have a prompt (a grounder that starts from prompts finds nothing else)."""
    missing = [n for n in names if n not in regions]
    if missing:
        raise prompts.fail("entities", f"no prompt for spec entity {missing[0]!r}: add it (a static region for a "
                                       "goal that is not drawn), or use the grounder option unprompted='unseen'")


def prompt_frame(prompts: Prompts, video: Any) -> int:
    """Index of the sampled frame of `video` nearest the source frame the prompts describe."""
    idx = getattr(video, "frame_indices", None)
    idx = np.arange(video.frames.shape[0]) if idx is None else np.asarray(idx)
    return int(np.argmin(np.abs(idx - prompts.frame)))


# ------------------------------------------------------------------------------------------ reading
def resolve_prompts(video: Any, given: Any, *, required: bool = True) -> Prompts | None:
    """The validated prompts of `video`: `given` (a Prompts, a dict, a file, a directory of `<stem>.prompts.json`),
    else the `<stem>.prompts.json` beside it; with none, an error naming the video (or None if not `required`)."""
    path = getattr(video, "path", None)
    source = given if isinstance(given, (Prompts, dict)) else find_prompts(path, given)
    if source is None:
        if not required:
            return None
        where = path or "this in-memory video"
        raise GroundingError(f"no prompts for {where}: put <stem>.prompts.json beside the video or pass --prompts "
                             "FILE (see the README's 'Prompted tracker')")
    return load_prompts(source)


def prompts_path_for(video_path: str | os.PathLike[str]) -> Path:
    """The conventional prompts file of a video: `clip.mp4` → `clip.prompts.json` in the same directory."""
    p = Path(video_path)
    return p.with_name(p.stem + ".prompts.json")


def find_prompts(video_path: str | os.PathLike[str] | None, given: Any = None) -> Path | Prompts | None:
    """The prompts for a video: `given` (a Prompts, a file, or a directory holding `<stem>.prompts.json`),
    else the file beside the video, else None."""
    if isinstance(given, Prompts):
        return given
    if given is not None:
        g = Path(given)
        if not g.is_dir():
            return g
        if video_path is None:
            raise GroundingError(f"{g}: a prompts directory needs a video file to find <stem>.prompts.json")
        return g / prompts_path_for(video_path).name
    if video_path is None:
        return None
    p = prompts_path_for(video_path)
    return p if p.is_file() else None


def load_prompts(source: Any) -> Prompts:
    """A validated Prompts from a file path, a JSON-like dict (mask paths then relative to the current
    directory) or a Prompts; GroundingError names the file and the first bad field."""
    if isinstance(source, Prompts):
        return source
    if isinstance(source, dict):
        return parse_prompts(source, "<prompts>", Path("."))
    p = Path(source)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise GroundingError(f"{p}: prompts file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GroundingError(f"{p}: cannot read prompts file ({e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise GroundingError(f"{p}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    return parse_prompts(raw, str(p), p.parent)


def parse_prompts(raw: Any, file: str = "<prompts>", base_dir: Path | None = None) -> Prompts:
    """Validate a decoded prompts object (see `load_prompts`), field by field in file order."""
    from .backends.sidecar import _camera, _Checker, _support

    c = _Checker(file)
    top = c.obj(raw, "(top level)", _TOP_KEYS)
    if "version" not in top:
        raise c.fail("version", f"missing (this ltlreward reads prompts version {PROMPTS_VERSION})")
    if top["version"] != PROMPTS_VERSION or isinstance(top["version"], bool):
        raise c.fail("version", f"unsupported prompts version {top['version']!r} (expected {PROMPTS_VERSION})")
    frame = top.get("frame", 0)
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise c.fail("frame", f"expected a frame index (an integer >= 0), got {frame!r}")
    size = None
    if "width" in top or "height" in top:
        for key in ("width", "height"):
            if key not in top:
                raise c.fail(key, "missing: 'width' and 'height' come together")
        size = (int(c.number(top["height"], "height", positive=True, integer=True)),
                int(c.number(top["width"], "width", positive=True, integer=True)))
    if "entities" not in top:
        raise c.fail("entities", "missing required field")
    ents = c.obj(top["entities"], "entities")
    if not ents:
        raise c.fail("entities", "expected at least one entity")
    entities = {name: _entity(name, spec, c, base_dir or Path(".")) for name, spec in ents.items()}
    camera = _camera(top["camera"], c) if "camera" in top else None
    support = _support(top["support"], c) if "support" in top else None
    extents = {name: x for name, spec in ents.items() if (x := _extent(name, spec, c)) is not None}
    meta = top.get("meta", {})
    if not isinstance(meta, dict):
        raise c.fail("meta", "expected an object")
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()
                            + b"".join(np.packbits(e.mask).tobytes() for e in entities.values()
                                       if e.mask is not None)).hexdigest()
    return Prompts(file, int(frame), entities, camera, size, meta, digest, support, extents)


def _extent(name: str, e: dict, c: Any) -> Extent | None:
    """An entity's known extent from the sidecar's keys `size` / `shape` / `anchor`, or None without `size`."""
    where = f"entities.{name}"
    if "size" not in e:
        given = [k for k in _EXTENT_KEYS if k in e]
        if given:
            raise c.fail(f"{where}.{given[0]}", "describes the entity's 'size', which is missing")
        return None
    vec = {}
    for key in ("size", "anchor"):
        if key in e:
            if not isinstance(e[key], list):
                raise c.fail(f"{where}.{key}", f"expected [x, y, z] in metres, got {e[key]!r}")
            vec[key] = c.matrix([e[key]], f"{where}.{key}", 1, 3)[0]
    if (vec["size"] <= 0).any():
        raise c.fail(f"{where}.size", f"expected three positive extents in metres, got {_show(vec['size'])}")
    shape = e.get("shape", "box")
    if shape not in EXTENT_SHAPES:
        raise c.fail(f"{where}.shape", f"expected one of {', '.join(EXTENT_SHAPES)}, got {shape!r}")
    anchor = vec.get("anchor", np.zeros(3))
    return Extent(tuple(float(v) for v in vec["size"]), shape, tuple(float(v) for v in anchor))


def _entity(name: str, spec: Any, c: Any, base_dir: Path) -> EntityPrompt:
    """One `entities.NAME` entry: exactly one shape (box, mask, points) and an optional `static` flag."""
    where = f"entities.{name}"
    e = c.obj(spec, where, _ENTITY_KEYS)
    shapes = [k for k in _SHAPES if k in e]
    if len(shapes) != 1:
        raise c.fail(where, "needs exactly one of 'box', 'mask', 'points'" + (f" (got {', '.join(shapes)})"
                                                                             if shapes else ""))
    static = e.get("static", False)
    if not isinstance(static, bool):
        raise c.fail(f"{where}.static", f"expected true or false, got {static!r}")
    shape = shapes[0]
    if shape == "box":
        box = c.matrix([e["box"]], f"{where}.box", 1, 4)[0] if isinstance(e["box"], list) else None
        if box is None:
            raise c.fail(f"{where}.box", f"expected [x0, y0, x1, y1], got {e['box']!r}")
        if box[2] <= box[0] or box[3] <= box[1]:
            raise c.fail(f"{where}.box", f"expected x0 < x1 and y0 < y1, got {_show(box)}")
        return EntityPrompt(name, shape, box, static=static)
    if shape == "points":
        pts = e["points"]
        if not isinstance(pts, list) or not pts:
            raise c.fail(f"{where}.points", f"expected a list of [x, y] points, got {pts!r}")
        xy = c.matrix(pts, f"{where}.points", len(pts), 2)
        box = np.concatenate([xy.min(axis=0), xy.max(axis=0) + 1.0])
        return EntityPrompt(name, shape, box, points=xy, static=static)
    mask = _mask_png(e["mask"], c, f"{where}.mask", base_dir)
    return EntityPrompt(name, shape, mask_boxes(mask).astype(np.float64), mask=mask, static=static)


def _mask_png(value: Any, c: Any, where: str, base_dir: Path) -> np.ndarray:
    """A mask PNG (path relative to the prompts file) as (h, w) bool: non-zero pixels of its first channel."""
    import cv2

    if not isinstance(value, str) or not value:
        raise c.fail(where, f"expected the path of a PNG file, got {value!r}")
    path = base_dir / value
    if not path.is_file():
        raise c.fail(where, f"mask file {path} not found")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise c.fail(where, f"{path} is not a readable image")
    mask = img > 0 if img.ndim == 2 else (img[..., :3] > 0).any(axis=-1)
    if img.ndim == 3 and img.shape[-1] == 4:
        mask &= img[..., 3] > 0  # transparent pixels are not the entity
    if not mask.any():
        raise c.fail(where, f"{path} is empty (no non-zero pixel)")
    return mask
