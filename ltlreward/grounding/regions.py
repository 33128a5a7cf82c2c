"""Static regions: entities whose geometry is given, not observed — a goal zone drawn as a pixel box, or a
goal point the render never shows given as a metric box (centre and size in world metres).

    entity goal = region box=(40, 60, 90, 110)                  # pixels of the video, x right, y down
    entity goal = region center=(0.1, 0.8, 0.02) size=(4cm, 4cm, 4cm)   # metres, world z up (needs a camera
                                                                #  to be placed in the image)

A sidecar can give the same thing per video (`entities.NAME.region`, docs/sidecar.md). `apply_regions` writes
each region into `Observations` after grounding, as the rows of its entity: its box (given, or the projected
corners of its metric box) in every frame, the box's centre, visibility 1, a box mask where the observations
carry masks, and for a metric region its centre as the world position and its size as its extent; it is listed in
`Observations.static`. The grounders never see these entities.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GroundingError
from .observations import Extent

if TYPE_CHECKING:
    from ..spec.ast import Entity
    from .camera import Camera
    from .observations import Observations

GEOMETRY_HINTS = ("box", "center", "size")  # the hints that make a region entity static


@dataclass(frozen=True)
class Region:
    """A static region: a pixel `box` (x0, y0, x1, y1) of the video, or a metric box (`center` and `size`, world
    metres)."""

    box: tuple[float, float, float, float] | None = None
    center: tuple[float, float, float] | None = None
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def metric(self) -> bool:
        return self.center is not None

    def image_box(self, camera: Camera | None, what: str) -> np.ndarray:
        """(4,) float64 pixel box: the given box, or the projection of the metric box's 8 corners."""
        if self.box is not None:
            return np.asarray(self.box, np.float64)
        if camera is None:
            raise GroundingError(f"{what}: a region given in metres (center=…) needs a camera to be placed in "
                                 "the image; give the sidecar or prompts file a camera, or the region as box=…")
        half = np.array([-0.5, 0.5])
        corners = np.stack(np.meshgrid(half, half, half, indexing="ij"), -1).reshape(8, 3)  # (8, 3)
        uv = camera.project(np.asarray(self.center) + corners * np.asarray(self.size))  # (8, 2)
        if np.isnan(uv).any():
            raise GroundingError(f"{what}: the region's box lies (partly) behind the camera")
        return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def spec_regions(entities: tuple[Entity, ...]) -> dict[str, Region]:
    """The static regions a spec declares (region entities with box= or center=), by entity name."""
    from ..spec.units import to_metres

    out = {}
    for e in entities:
        if e.kind != "region" or not any(e.hint(k) is not None for k in ("box", "center")):
            continue
        box, center, size = e.hint("box"), e.hint("center"), e.hint("size")
        if box is not None:
            out[e.name] = Region(box=tuple(float(getattr(v, "value", v)) for v in box))
        else:
            out[e.name] = Region(center=tuple(to_metres(v) for v in center),
                                 size=tuple(to_metres(v) for v in size) if size is not None else (0.0, 0.0, 0.0))
    return out


def apply_regions(obs: Observations, regions: Mapping[str, Region], where: str = "") -> Observations:
    """`obs` with each region's rows filled in (entities appended when `obs` has none of them yet)."""
    if not regions:
        return obs
    names = tuple(obs.entities) + tuple(n for n in regions if n not in obs.entities)
    E, T, H, W = len(names), obs.n_frames, obs.height, obs.width
    grow = E - len(obs.entities)

    def pad(a: np.ndarray | None, fill: float | bool) -> np.ndarray | None:
        if a is None:
            return None
        return np.concatenate([a, np.full((grow, *a.shape[1:]), fill, a.dtype)]) if grow else a.copy()

    boxes, centers = pad(obs.boxes, np.nan), pad(obs.centers, np.nan)
    vis, masks = pad(obs.visibility, 0.0), pad(obs.masks, False)
    metric = any(r.metric for r in regions.values())
    positions = pad(obs.positions, np.nan)
    if positions is None and metric:
        positions = np.full((E, T, 3), np.nan, np.float32)
    extents = dict(obs.extents)
    for name, r in regions.items():
        i = names.index(name)
        b = r.image_box(obs.camera, f"{where}entity {name}" if where else f"entity {name}")
        boxes[i] = b
        centers[i] = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
        vis[i] = 1.0
        if masks is not None:
            from ..raster import box_masks

            masks[i] = box_masks(b.astype(np.float32), H, W)[None]
        if r.metric:
            positions[i] = r.center
            extents[name] = Extent(tuple(float(v) for v in r.size))
    static = tuple(dict.fromkeys([*obs.static, *regions]))
    return replace(obs, entities=names, boxes=boxes, centers=centers, visibility=vis, masks=masks,
                   positions=positions, extents=extents, static=static)


__all__ = ["GEOMETRY_HINTS", "Region", "apply_regions", "spec_regions"]
