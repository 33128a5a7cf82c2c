"""What a predicate reads: `Context`, a per-call view of one video's `Observations` with cached per-entity
quantities (pixel boxes and centres, world positions, effective visibility and its gate, box sizes,
velocities, gripper openings, contacts), and `PredicateOptions`, the knobs that are not per-atom thresholds.

Three spaces, picked per atom by `Context.space` (`PredicateOptions.space`, default "auto"): "3d" — state
semantics when `obs.positions` has a finite position for every named entity (metres, z up); "2.5d" — the same
metric semantics on positions lifted from masks / boxes through a calibrated camera (predicates/lift.py) when
every named entity can be lifted; else "2d", image semantics from boxes / masks / centres (pixels, y down).
Image-only predicates always take 2-D. A unit on the atom's constants narrows the choice: metres need 3-D or
2.5-D (else a located SpecError, or with `allow_2d` the image and a warning naming the atom), pixels the
image. Records name the spaces "3d", "2.5d" and "image" (`SPACE_NAMES`).

Unseen entities: in 2-D an entity's effective visibility is its score where it has a centre and 0 where it
has none; in 3-D it is seen where its position is finite. `gate` turns that into the visibility margin every
gated atom is capped by, r = min(r, ramp(v, visibility threshold)) (±1 in 3-D).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CapabilityError, GroundingError
from ..grounding.observations import Observations
from .catalog import COMPARE_SCALE, PREDICATES, PredicateInfo
from .robustness import ramp

SPACES = ("auto", "3d", "2.5d", "2d")
SPACE_NAMES = {"3d": "3d", "2.5d": "2.5d", "2d": "image"}  # how records name the space an atom was judged in
METRIC = frozenset({"3d", "2.5d"})  # spaces in metres
SPEED_WINDOW = 0.1  # seconds each side of a frame for finite-difference velocities (default)
MIN_PX = 2.0  # floor of every pixel threshold / scale
UNSEEN_SIZE = 0.05  # box diagonal (× image diagonal) of an entity never boxed


@dataclass(frozen=True)
class PredicateOptions:
    """Knobs of the predicate library that are not per-atom thresholds."""

    smooth: int = 3  # median-filter window in frames against one-frame flicker (odd; 0 or 1 = off)
    space: str = "auto"  # "auto" (3-D, else 2.5-D, else image), "3d", "2.5d" (require them) or "2d" (image only)
    allow_2d: bool = False  # a metre constant on an atom that only the image can judge: warn instead of failing
    visibility: float = 0.5  # visibility score at which an entity counts as seen (2-D gating)
    speed_window: float = SPEED_WINDOW  # seconds each side of a frame for finite-difference velocities
    defaults: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # {"near": {"d": 0.08}}
    compare_scales: Mapping[str, float] = field(default_factory=dict)  # {"dist": 0.05}

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        if not 0.0 < self.visibility < 1.0:
            raise ValueError(f"visibility threshold must be in (0, 1), got {self.visibility}")
        for name, opts in self.defaults.items():
            info = PREDICATES.get(name)
            if info is None:
                raise ValueError(f"defaults given for unknown predicate {name!r}")
            for k in opts:
                if k not in info.option_names:
                    allowed = ", ".join(info.option_names) or "none"
                    raise ValueError(f"unknown option {k!r} for {name} (options: {allowed})")
        for name in self.compare_scales:
            if name not in COMPARE_SCALE:
                known = ", ".join(COMPARE_SCALE)
                raise ValueError(f"compare_scales given for {name!r}; numeric functions: {known}")



class Context:
    """Per-call view of one video's Observations (+ the options) with cached per-entity quantities: what
    every predicate reads instead of the raw arrays."""

    def __init__(self, obs: Observations, opts: PredicateOptions, grounder: str,
                 kinds: Mapping[str, str] | None = None) -> None:
        self.obs = obs
        self.opts = opts
        self.grounder = grounder or obs.source or "unknown"
        self.kinds = dict(kinds or {})  # entity -> spec kind (gripper, region, …); unknown entities: object
        self.T = int(obs.n_frames)
        self.W = float(obs.width)
        self.H = float(obs.height)
        self.diag = math.hypot(self.W, self.H) or 1.0
        self.fps = float(obs.fps) if obs.fps and obs.fps > 0 else 1.0
        self._cache: dict[Any, Any] = {}

    def memo(self, key: Any, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def fail(self, what: str, why: str, fix: str) -> CapabilityError:
        return CapabilityError(f"{what} cannot be answered by grounder {self.grounder!r}: {why}; {fix}")

    # -- entity rows ------------------------------------------------------------------------------
    def row(self, e: str, what: str) -> int:
        try:
            return self.obs.entities.index(e)
        except ValueError:
            raise self.fail(
                what,
                f"it has no observations of entity {e!r} "
                f"(observed: {', '.join(self.obs.entities) or 'none'})",
                "declare the entity in the spec so the grounder tracks it, or give the sidecar an entry",
            ) from None

    def box(self, e: str) -> np.ndarray:
        """(T, 4) x0, y0, x1, y1 in pixels, NaN where unseen."""
        return self.memo(("box", e), lambda: np.asarray(self.obs.boxes[self.row(e, e)], dtype=np.float64))

    def ctr(self, e: str) -> np.ndarray:
        """(T, 2) pixel centre; the box centre where the grounder gave a box but no centre."""

        def make():
            c = np.asarray(self.obs.centers[self.row(e, e)], dtype=np.float64)
            b = self.box(e)
            bc = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
            return np.where(np.isnan(c), bc, c)

        return self.memo(("ctr", e), make)

    def pos(self, e: str) -> np.ndarray:
        """(T, 3) world position in metres."""
        return self.memo(("pos", e), lambda: np.asarray(self.obs.positions[self.row(e, e)], dtype=np.float64))

    def has_pos(self, e: str) -> bool:
        return self.obs.positions is not None and bool(np.isfinite(self.pos(e)).all(axis=1).any())

    def image_available(self) -> bool:
        """Whether the grounder gave any image geometry (a state sidecar without a camera gives none)."""
        obs = self.obs
        return self.memo("img", lambda: bool(np.isfinite(obs.centers).any() or np.isfinite(obs.boxes).any()))

    def point(self, e: str, sp: str) -> np.ndarray:
        """(T, D) the entity's point in space `sp`: world metres (3-D given, 2.5-D lifted) or pixel centre."""
        return self.ctr(e) if sp == "2d" else self.mpos(e, sp)

    def mpos(self, e: str, sp: str) -> np.ndarray:
        """(T, 3) world position in metres: the given one in 3-D, the lifted one (lift.py) in 2.5-D."""
        return self.pos(e) if sp == "3d" else self.lifted()[0][self.row(e, e)]

    def is_static(self, e: str) -> bool:
        """A static entity: a region of the spec, or listed in `Observations.static` (static regions)."""
        return e in self.obs.static or self.kinds.get(e) == "region"

    def liftable(self, e: str) -> bool:
        """Whether e can be placed in 2.5-D: a camera, image geometry of e, and a known extent or support plane."""
        obs = self.obs
        if obs.camera is None:
            return False
        if self.has_pos(e):
            return True
        seen = bool(np.isfinite(self.box(e)).all(axis=1).any())
        return seen and (e in obs.extents or obs.support_z is not None)

    def lifted(self) -> tuple[np.ndarray, np.ndarray]:
        """(E, T, 3) lifted world positions and (E, T) placement levels of every entity (lift.lift_all)."""

        def make():
            from .lift import lift_all

            obs = self.obs
            names = obs.entities
            grounded = np.array([self.kinds.get(n) != "gripper" for n in names])
            static = np.array([self.is_static(n) for n in names])
            return lift_all(obs.camera, np.asarray(obs.boxes, np.float64), obs.masks,
                            [obs.extents.get(n) for n in names], obs.support_z, grounded, static, obs.positions)

        return self.memo("lifted", make)

    def depth(self, e: str, sp: str) -> np.ndarray:
        """(T,) camera depth (metres) of e's metric position (2.5-D contact and support checks)."""
        return self.obs.camera.depth(self.mpos(e, sp))

    def extent(self, e: str) -> float:
        """e's largest known extent in metres (0 when unknown)."""
        ext = self.obs.extents.get(e)
        return float(max(ext.size)) if ext is not None else 0.0

    def amodal_mask(self, e: str) -> np.ndarray | None:
        """(T, H, W) amodal masks of e (holes filled; a static entity's unoccluded extent), or None without masks."""
        if self.obs.masks is None:
            return None
        from .mask_geometry import amodal

        return self.memo(("amodal", e), lambda: amodal(self.obs.masks[self.row(e, e)], self.is_static(e)))

    def amodal_box(self, e: str) -> np.ndarray:
        """(T, 4) e's amodal box: its box (filling holes does not grow a box), and for a static entity with
        masks the box of its unoccluded extent where that is larger."""

        def make():
            m = self.amodal_mask(e) if self.is_static(e) else None
            if m is None:
                return self.box(e)
            from ..raster import mask_boxes

            b, own = mask_boxes(m).astype(np.float64), self.box(e)
            grown = np.concatenate([np.fmin(b[:, :2], own[:, :2]), np.fmax(b[:, 2:], own[:, 2:])], axis=1)
            return np.where(np.isnan(b), own, grown)

        return self.memo(("abox", e), make)

    def vis(self, e: str) -> np.ndarray:
        """Effective visibility: the score where the entity has a centre, else 0."""

        def make():
            v = np.nan_to_num(np.asarray(self.obs.visibility[self.row(e, e)], dtype=np.float64))
            return np.where(np.isfinite(self.ctr(e)).all(axis=1), v, 0.0)

        return self.memo(("vis", e), make)

    def gate(self, e: str, sp: str) -> np.ndarray:
        """Visibility margin of e: ramp(visibility) in 2-D, ±1 for a finite position in 3-D and 2.5-D."""
        if sp in METRIC:
            return self.memo(("gate", sp, e), lambda: np.where(np.isfinite(self.mpos(e, sp)).all(axis=1), 1.0, -1.0))
        return self.memo(("gate2", e), lambda: ramp(self.vis(e), self.opts.visibility))

    def size(self, e: str) -> float:
        """Median box diagonal over the frames where e has a box (pixels); 0.05 D when never boxed."""

        def make():
            b = self.box(e)
            d = np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
            d = d[np.isfinite(d)]
            return max(float(np.median(d)) if d.size else UNSEEN_SIZE * self.diag, MIN_PX)

        return self.memo(("size", e), make)

    def box_height(self, e: str) -> float:
        def make():
            b = self.box(e)
            h = (b[:, 3] - b[:, 1])[np.isfinite(b[:, 3] - b[:, 1])]
            return max(float(np.median(h)) if h.size else UNSEEN_SIZE * self.diag, MIN_PX)

        return self.memo(("bh", e), make)

    def velocity(self, e: str, sp: str) -> np.ndarray:
        """(T, D) central difference over ±speed_window seconds (one-sided at the ends), units per second."""

        def make():
            p = self.point(e, sp)
            if self.T < 2:
                return np.zeros_like(p)
            k = max(1, round(self.opts.speed_window * self.fps))
            t = np.arange(self.T)
            hi, lo = np.minimum(t + k, self.T - 1), np.maximum(t - k, 0)
            return (p[hi] - p[lo]) * (self.fps / (hi - lo))[:, None]

        return self.memo(("vel", e, sp), make)

    def speed(self, e: str, sp: str) -> np.ndarray:
        return np.linalg.norm(self.velocity(e, sp), axis=1)

    def mask_pixels(self, e: str) -> np.ndarray | None:
        """(T,) mask pixel count, or None without masks."""
        if self.obs.masks is None:
            return None
        masks = self.obs.masks
        return self.memo(("mpx", e), lambda: masks[self.row(e, e)].sum(axis=(1, 2)).astype(np.float64))

    def opening(self, g: str, what: str, required: bool = True) -> np.ndarray | None:
        op = self.obs.gripper_opening.get(g)
        if op is None:
            if not required:
                return None
            raise self.fail(
                what,
                f"it did not observe the opening of gripper {g!r}",
                f"use --grounder state with a sidecar that has grippers.{g}.opening, or a vlm grounder "
                f'with a quoted atom such as "the {g} gripper is open"',
            )
        return self.frames(op, f"gripper_opening[{g!r}]").astype(np.float64)

    def contact(self, a: str, b: str) -> np.ndarray | None:
        c = self.obs.contacts.get(tuple(sorted((a, b))))
        return None if c is None else self.frames(c, f"contacts[{tuple(sorted((a, b)))!r}]").astype(bool)

    def frames(self, x: Any, name: str) -> np.ndarray:
        """A per-frame track checked to have one value per frame."""
        x = np.asarray(x).reshape(-1)
        if x.shape[0] != self.T:
            raise GroundingError(
                f"{name} from grounder {self.grounder!r} has {x.shape[0]} frames, the video has {self.T}"
            )
        return x

    # -- semantics choice -------------------------------------------------------------------------
    def space(self, info: PredicateInfo, ents: Sequence[str], what: str, want: str = "") -> str:
        """'3d', '2.5d' or '2d' for this atom (see module doc); `want` is what its constants' units ask for:
        "metric", "image" or "" (bare)."""
        for e in ents:
            self.row(e, what)
        if info.image_only or want == "image":
            if ents and not self.image_available():
                raise self.fail(
                    what,
                    f"{info.name} is judged in the image and it gave no image centres for {', '.join(ents)}",
                    "add camera intrinsics/extrinsics to the sidecar so the state grounder projects "
                    "positions into the image, or use an image grounder (--grounder color)",
                )
            return "2d"
        mode = self.opts.space
        if mode == "2d":
            return "2d"
        no_pos = [e for e in ents if not self.has_pos(e)]
        if not no_pos and mode != "2.5d":
            return "3d"
        if mode == "3d":
            raise self.fail(what, f"it gives no 3-D positions for {', '.join(no_pos)}",
                            "use --grounder state with a sidecar that has positions, or space='auto'")
        if all(self.liftable(e) for e in ents):
            return "2.5d"
        if mode == "2.5d":
            raise self.fail(what, f"it cannot lift {', '.join(e for e in ents if not self.liftable(e))} to 2.5-D",
                            "give the sidecar a camera and masks or boxes, with entity sizes or a support plane")
        return "2d"
