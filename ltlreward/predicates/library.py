"""Predicate semantics: `Observations` → robustness signals in [-1, 1], vectorised over frames.

One squashing everywhere: an atom's robustness is a signed margin (positive = holds) divided by a scale
and clipped, r = clip(margin / scale, -1, 1). So r > 0 exactly when the thresholded predicate holds, |r|
grows linearly with the margin and saturates at one scale away. For quantities bounded in [0, 1]
(visibility, gripper opening, overlap fractions) the scale on each side of the threshold is the distance
to that end of the range, so 0 maps to -1, the threshold to 0 and 1 to +1.

Two semantics, picked per atom (`PredicateOptions.space`, default "auto"): 3-D state semantics when
`obs.positions` has a finite position for every named entity (metres, z up), else 2-D image semantics
from boxes / masks / centres (pixels, y down). Explicit thresholds are metres (3-D) or fractions of the
image diagonal (2-D); a threshold of 0 (the catalogue default) means the automatic default of each
predicate, documented on its function and in the catalogue.

Unseen entities: in 2-D an entity's effective visibility is its score where it has a centre and 0 where
it has none; in 3-D it is seen where its position is finite. Every atom (except visible, gripper_open and
gripper_closed, which read their own signals) is capped by the visibility margin of each entity it names,
r = min(r, ramp(v, visibility threshold)) (±1 in 3-D), so an atom about an unseen entity is negative with a
margin set by how unseen it is; frames with unknown geometry get -1. Its negation is then positive: "not
near" holds while an entity is out of sight.

Against one-frame flicker each atom's signal is median-filtered over `smooth` frames (default 3, edges
repeated; 0 or 1 disables).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import CapabilityError, GroundingError
from ..grounding.observations import Observations
from ..spec.ast import Atom, Call, Compare, Num, Quoted
from .catalog import PREDICATES, PredicateInfo

# ---------------------------------------------------------------------------------- default thresholds
# 3-D state semantics (metres, metres/second)
NEAR_3D = 0.10  # near(a,b): centre distance
TOUCH_3D = 0.05  # touching(a,b) without contacts: centre distance; with contacts: scale of the negative side
ABOVE_SCALE_3D = 0.10  # above(a,b): height difference that saturates the robustness
ON_DZ_3D = 0.15  # on(a,b): largest vertical centre gap
ON_R_3D = 0.10  # on(a,b): largest horizontal centre distance
ON_SCALE_3D = 0.05  # on(a,b): vertical scale
INSIDE_3D = 0.05  # inside(a,b): centre distance
LIFT_3D = 0.03  # lifted(a): rise above the resting height
MOVE_3D = 0.05  # moving(a): speed
HOLD_3D = 0.05  # holding(g,o): gripper-to-object centre distance
AT_3D = 0.05  # at(a,b): centre distance
# 2-D image semantics (relative to box diagonals s, box heights, image diagonal D)
NEAR_2D_K = 1.5  # near: d = 1.5 × mean box diagonal …
NEAR_2D_MIN = 0.02  # … at least 0.02 D
TOUCH_2D_TOL = 0.05  # touching: gap tolerance = 0.05 × mean box diagonal
TOUCH_2D_SCALE = 0.25  # touching: scale = 0.25 × mean box diagonal
REL_2D_SCALE = 0.5  # above / left_of / right_of: scale = 0.5 × mean box diagonal
ON_2D_TOL = 0.1  # on: a's bottom may float 0.1 × a's diagonal above b's top
ON_2D_SCALE = 0.25  # on: vertical scale = 0.25 × a's diagonal
INSIDE_Q = 0.9  # inside: fraction of a within b (catalogue option q)
LIFT_2D = 0.5  # lifted: rise = 0.5 × a's box height
MOVE_2D = 0.5  # moving: 0.5 box diagonals per second …
MOVE_2D_MIN = 0.01  # … at least 0.01 D per second
MIN_PX = 2.0  # floor of every pixel threshold / scale
# numeric functions: comparison scales (units of the function)
COMPARE_SCALE = {"dist": 0.1, "height": 0.1, "speed": 0.1, "x": 0.1, "y": 0.1, "area": 0.02}

IMAGE_ONLY = frozenset({"left_of", "right_of", "visible", "area"})
UNGATED = frozenset({"visible", "gripper_open", "gripper_closed"})
SPACES = ("auto", "3d", "2d")
FRACTION_OPTIONS = frozenset({"p", "q"})  # thresholds on [0, 1] quantities (visibility, opening, overlap)


@dataclass(frozen=True)
class PredicateOptions:
    """Knobs of the predicate library that are not per-atom thresholds."""

    smooth: int = 3  # median-filter window in frames against one-frame flicker (odd; 0 or 1 = off)
    space: str = "auto"  # "auto" (3-D when positions exist), "3d" (require positions) or "2d" (image only)
    visibility: float = 0.5  # visibility score at which an entity counts as seen (2-D gating)
    speed_window: float = 0.1  # seconds each side of a frame for finite-difference velocities
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


# ------------------------------------------------------------------------------------------ squashing
def squash(margin: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """The one squashing: clip(margin / scale, -1, 1) (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(margin / scale, -1.0, 1.0)


def ramp(x: np.ndarray, thr: float) -> np.ndarray:
    """Margin of a [0, 1] quantity above `thr`, scaled by the distance to the range end on each side."""
    thr = min(max(float(thr), 1e-6), 1.0 - 1e-6)
    m = x - thr
    return np.clip(np.where(m >= 0, m / (1.0 - thr), m / thr), -1.0, 1.0)


def median_smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Median filter over time (edges repeated); an even window is rounded up to the next odd one."""
    if window <= 1 or x.shape[-1] < 2:
        return x
    w = window if window % 2 else window + 1
    h = w // 2
    padded = np.pad(x, (h, h), mode="edge")
    if w == 3:  # the default: median of three without sorting
        a, b, c = padded[:-2], padded[1:-1], padded[2:]
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, w), axis=-1)


# ------------------------------------------------------------------------------------------ context
class _Ctx:
    """Per-call view of one Observations with cached per-entity quantities."""

    def __init__(self, obs: Observations, opts: PredicateOptions, grounder: str) -> None:
        self.obs = obs
        self.opts = opts
        self.grounder = grounder or obs.source or "unknown"
        self.T = int(obs.n_frames)
        self.W = float(obs.width)
        self.H = float(obs.height)
        self.diag = math.hypot(self.W, self.H) or 1.0
        self.fps = float(obs.fps) if obs.fps and obs.fps > 0 else 1.0
        self._cache: dict = {}

    def memo(self, key, fn: Callable):
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
        return self.pos(e) if sp == "3d" else self.ctr(e)

    def vis(self, e: str) -> np.ndarray:
        """Effective visibility: the score where the entity has a centre, else 0."""

        def make():
            v = np.nan_to_num(np.asarray(self.obs.visibility[self.row(e, e)], dtype=np.float64))
            return np.where(np.isfinite(self.ctr(e)).all(axis=1), v, 0.0)

        return self.memo(("vis", e), make)

    def gate(self, e: str, sp: str) -> np.ndarray:
        """Visibility margin of e: ramp(visibility) in 2-D, ±1 for a finite position in 3-D."""
        if sp == "3d":
            return self.memo(("gate3", e), lambda: np.where(np.isfinite(self.pos(e)).all(axis=1), 1.0, -1.0))
        return self.memo(("gate2", e), lambda: ramp(self.vis(e), self.opts.visibility))

    def size(self, e: str) -> float:
        """Median box diagonal over the frames where e has a box (pixels); 0.05 D when never boxed."""

        def make():
            b = self.box(e)
            d = np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
            d = d[np.isfinite(d)]
            return max(float(np.median(d)) if d.size else 0.05 * self.diag, MIN_PX)

        return self.memo(("size", e), make)

    def box_height(self, e: str) -> float:
        def make():
            b = self.box(e)
            h = (b[:, 3] - b[:, 1])[np.isfinite(b[:, 3] - b[:, 1])]
            return max(float(np.median(h)) if h.size else 0.05 * self.diag, MIN_PX)

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

    def frames(self, x, name: str) -> np.ndarray:
        """A per-frame track checked to have one value per frame."""
        x = np.asarray(x).reshape(-1)
        if x.shape[0] != self.T:
            raise GroundingError(
                f"{name} from grounder {self.grounder!r} has {x.shape[0]} frames, the video has {self.T}"
            )
        return x

    # -- semantics choice -------------------------------------------------------------------------
    def space(self, name: str, ents: Sequence[str], what: str) -> str:
        """'3d' or '2d' for this atom (see module doc)."""
        for e in ents:
            self.row(e, what)
        if name in IMAGE_ONLY:
            if ents and not self.image_available():
                raise self.fail(
                    what,
                    f"{name} is defined in the image and it gave no image centres for {', '.join(ents)}",
                    "add camera intrinsics/extrinsics to the sidecar so the state grounder projects "
                    "positions into the image, or use an image grounder (--grounder color)",
                )
            return "2d"
        mode = self.opts.space
        if mode == "2d":
            return "2d"
        missing = [e for e in ents if not self.has_pos(e)]
        if mode == "3d" and missing:
            raise self.fail(
                what,
                f"it gives no 3-D positions for {', '.join(missing)}",
                "use --grounder state with a sidecar that has positions, "
                "or space='auto' for the 2-D image semantics",
            )
        return "3d" if not missing else "2d"


# ------------------------------------------------------------------------------------------ helpers
def _dist(ctx: _Ctx, a: str, b: str, sp: str) -> np.ndarray:
    return np.linalg.norm(ctx.point(a, sp) - ctx.point(b, sp), axis=1)


def _mean_size(ctx: _Ctx, a: str, b: str) -> float:
    return 0.5 * (ctx.size(a) + ctx.size(b))


def _auto(value: float, auto: float) -> float:
    return float(value) if value > 0 else auto


def _contact_r(contact: np.ndarray, dist: np.ndarray, scale: float) -> np.ndarray:
    """+1 in contact; otherwise -clip(dist / scale, 0.1, 1) (never 0, graded by centre distance)."""
    return np.where(contact, 1.0, -np.clip(dist / scale, 0.1, 1.0))


def _box_gap(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Signed box separation max(x-gap, y-gap): > 0 apart, < 0 overlapping (minus the smaller overlap)."""
    gx = np.maximum(A[:, 0], B[:, 0]) - np.minimum(A[:, 2], B[:, 2])
    gy = np.maximum(A[:, 1], B[:, 1]) - np.minimum(A[:, 3], B[:, 3])
    return np.maximum(gx, gy)


# ------------------------------------------------------------------------------------------ predicates
# Each takes (ctx, space, entity args, resolved options) and returns the raw (T,) robustness (NaN allowed).
def visible(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Visibility score above p (default 0.5): r = ramp(v, p); v is 0 where the entity has no centre."""
    return ramp(ctx.vis(args[0]), o["p"])


def near(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Centre distance below d: r = (d − dist) / d. 3-D auto d = 0.10 m; 2-D auto d = 1.5 × mean box
    diagonal (≥ 0.02 image diagonal), explicit d in image diagonals."""
    a, b = args
    dist = _dist(ctx, a, b, sp)
    if sp == "3d":
        thr = _auto(o["d"], NEAR_3D)
    else:
        auto = max(NEAR_2D_K * _mean_size(ctx, a, b), NEAR_2D_MIN * ctx.diag)
        thr = o["d"] * ctx.diag if o["d"] > 0 else auto
    return squash(thr - dist, thr)


def _touching_2d(ctx: _Ctx, a: str, b: str, d: float) -> np.ndarray:
    m = _mean_size(ctx, a, b)
    tol = d * ctx.diag if d > 0 else TOUCH_2D_TOL * m
    return squash(tol - _box_gap(ctx.box(a), ctx.box(b)), max(TOUCH_2D_SCALE * m, MIN_PX))


def touching(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """3-D: sidecar contact (+1, else −clip(dist/d, 0.1, 1)) or, without contacts, centre distance < d
    (auto 0.05 m); 2-D: signed box gap below d·D (auto 0.05 × mean box diagonal), scale 0.25 × mean
    diagonal."""
    a, b = args
    if sp == "3d":
        thr = _auto(o["d"], TOUCH_3D)
        dist = _dist(ctx, a, b, sp)
        c = ctx.contact(a, b)
        return _contact_r(c, dist, thr) if c is not None else squash(thr - dist, thr)
    return _touching_2d(ctx, a, b, o["d"])


def above(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """a higher than b by more than d (default 0): 3-D (z_a − z_b − d) / 0.10 m; 2-D (y_b − y_a − d·D) /
    (0.5 × mean box diagonal)."""
    a, b = args
    if sp == "3d":
        return squash(ctx.pos(a)[:, 2] - ctx.pos(b)[:, 2] - o["d"], ABOVE_SCALE_3D)
    m = ctx.ctr(b)[:, 1] - ctx.ctr(a)[:, 1] - o["d"] * ctx.diag
    return squash(m, REL_2D_SCALE * _mean_size(ctx, a, b))


def on(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """a rests on b. 3-D with contacts: contact and z_a > z_b (scale 0.05 m); without: 0 < z_a − z_b < d
    (auto 0.15 m) and horizontal distance < w (auto 0.10 m). 2-D: a's centre x within b's x-range and a's
    bottom edge between b's top − d·D (auto 0.1 × a's diagonal) and b's bottom."""
    a, b = args
    if sp == "3d":
        pa, pb = ctx.pos(a), ctx.pos(b)
        dz = pa[:, 2] - pb[:, 2]
        c = ctx.contact(a, b)
        if c is not None:
            return np.minimum(_contact_r(c, _dist(ctx, a, b, sp), TOUCH_3D), squash(dz, ON_SCALE_3D))
        dmax, rad = _auto(o["d"], ON_DZ_3D), _auto(o["w"], ON_R_3D)
        rv = squash(np.minimum(dz, dmax - dz), ON_SCALE_3D)
        rh = squash(rad - np.linalg.norm(pa[:, :2] - pb[:, :2], axis=1), rad)
        return np.minimum(rv, rh)
    A, B, ca = ctx.box(a), ctx.box(b), ctx.ctr(a)
    half_w = np.maximum((B[:, 2] - B[:, 0]) / 2, MIN_PX)
    rh = squash(np.minimum(ca[:, 0] - B[:, 0], B[:, 2] - ca[:, 0]), half_w)
    sa = ctx.size(a)
    tol = o["d"] * ctx.diag if o["d"] > 0 else ON_2D_TOL * sa
    rv = squash(np.minimum(A[:, 3] - (B[:, 1] - tol), B[:, 3] - A[:, 3]), max(ON_2D_SCALE * sa, MIN_PX))
    return np.minimum(rh, rv)


def inside(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """3-D: centre distance < d (auto 0.05 m). 2-D: fraction f of a (mask where both masks are non-empty,
    else box) within b above q (default 0.9): r = ramp(f, q)."""
    a, b = args
    if sp == "3d":
        thr = _auto(o["d"], INSIDE_3D)
        return squash(thr - _dist(ctx, a, b, sp), thr)
    A, B = ctx.box(a), ctx.box(b)
    iw = np.clip(np.minimum(A[:, 2], B[:, 2]) - np.maximum(A[:, 0], B[:, 0]), 0, None)
    ih = np.clip(np.minimum(A[:, 3], B[:, 3]) - np.maximum(A[:, 1], B[:, 1]), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = iw * ih / ((A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1]))
        pa, pb = ctx.mask_pixels(a), ctx.mask_pixels(b)
        if pa is not None and pb is not None:
            both = (pa > 0) & (pb > 0)
            if both.any():
                ma = ctx.obs.masks[ctx.row(a, a)][both]
                mb = ctx.obs.masks[ctx.row(b, b)][both]
                frac[both] = (ma & mb).sum(axis=(1, 2)) / pa[both]
    out = ramp(np.nan_to_num(frac, nan=0.5), o["q"])
    return np.where(np.isnan(frac), np.nan, out)


def left_of(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Image only: x_b − x_a > d·D (default 0); r = (x_b − x_a − d·D) / (0.5 × mean box diagonal)."""
    a, b = args
    m = ctx.ctr(b)[:, 0] - ctx.ctr(a)[:, 0] - o["d"] * ctx.diag
    return squash(m, REL_2D_SCALE * _mean_size(ctx, a, b))


def right_of(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Image only: x_a − x_b > d·D (default 0); r = (x_a − x_b − d·D) / (0.5 × mean box diagonal)."""
    return left_of(ctx, sp, args[::-1], o)


def _baseline_frames(ctx: _Ctx, n: float) -> int:
    return min(ctx.T, int(n) if n >= 1 else max(3, ctx.T // 10))


def lifted(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Rise above the resting height (extreme over the first n frames, auto max(3, T/10)) exceeds h:
    r = (rise − h) / h. 3-D: z − min z, auto h = 0.03 m; 2-D: baseline centre y − y, auto h = 0.5 × a's
    median box height, explicit h in image diagonals."""
    a = args[0]
    n = _baseline_frames(ctx, o["n"])
    if sp == "3d":
        z = ctx.pos(a)[:, 2]
        if not np.isfinite(z).any():
            return np.full(ctx.T, np.nan)
        head = z[:n] if np.isfinite(z[:n]).any() else z
        rise, thr = z - np.nanmin(head), _auto(o["h"], LIFT_3D)
    else:
        y = ctx.ctr(a)[:, 1]
        if not np.isfinite(y).any():
            return np.full(ctx.T, np.nan)
        head = y[:n] if np.isfinite(y[:n]).any() else y
        rise = np.nanmax(head) - y
        thr = o["h"] * ctx.diag if o["h"] > 0 else max(LIFT_2D * ctx.box_height(a), MIN_PX)
    return squash(rise - thr, thr)


def _move_thr(ctx: _Ctx, a: str, sp: str, v: float) -> float:
    if sp == "3d":
        return _auto(v, MOVE_3D)
    return v * ctx.diag if v > 0 else max(MOVE_2D * ctx.size(a), MOVE_2D_MIN * ctx.diag)


def moving(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Speed (central difference over ±0.1 s) above v: r = (speed − v) / v. 3-D auto v = 0.05 m/s; 2-D auto
    v = 0.5 × a's box diagonal per second (≥ 0.01 D/s), explicit v in image diagonals per second."""
    a = args[0]
    thr = _move_thr(ctx, a, sp, o["v"])
    return squash(ctx.speed(a, sp) - thr, thr)


def _follows(ctx: _Ctx, g: str, obj: str, sp: str) -> np.ndarray:
    """o moves with g: min(speed of o relative to g below o's moving threshold, max(lifted(o), moving(o)))."""
    thr = _move_thr(ctx, obj, sp, 0.0)
    rel = np.linalg.norm(ctx.velocity(obj, sp) - ctx.velocity(g, sp), axis=1)
    carried = np.fmax(lifted(ctx, sp, [obj], {"h": 0.0, "n": 0.0}), squash(ctx.speed(obj, sp) - thr, thr))
    return np.minimum(squash(thr - rel, thr), carried)


def _closed(op: np.ndarray, p: float) -> np.ndarray:
    return -ramp(op, p)


def holding(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """g holds o. 3-D: min(opening < p, max(contact(g,o), dist < d)) with auto d = 0.05 m, p = 0.8 — an
    open gripper bumping the object does not hold it; contact alone when the opening is not observed;
    min(dist < d, o follows g) with neither. 2-D: min(touching(g,o) (d = gap tolerance), opening < p where
    observed, else o follows g (o lifted or moving, and moving with g))."""
    g, obj = args
    what = f"holding({g},{obj})"
    op = ctx.opening(g, what, required=False)
    if sp == "3d":
        thr = _auto(o["d"], HOLD_3D)
        dist = _dist(ctx, g, obj, sp)
        rnear = squash(thr - dist, thr)
        c = ctx.contact(g, obj)
        rc = None if c is None else _contact_r(c, dist, TOUCH_3D)
        if op is None:
            return rc if rc is not None else np.minimum(rnear, _follows(ctx, g, obj, sp))
        at_obj = rnear if rc is None else np.fmax(rc, rnear)
        return np.minimum(_closed(op, o["p"]), at_obj)
    cue = _closed(op, o["p"]) if op is not None else _follows(ctx, g, obj, sp)
    return np.minimum(_touching_2d(ctx, g, obj, o["d"]), cue)


def gripper_open(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Opening (0 closed … 1 open) above p (default 0.5): r = ramp(opening, p)."""
    return ramp(ctx.opening(args[0], f"gripper_open({args[0]})"), o["p"])


def gripper_closed(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Opening below p (default 0.5): r = −ramp(opening, p)."""
    return _closed(ctx.opening(args[0], f"gripper_closed({args[0]})"), o["p"])


def at(ctx: _Ctx, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """a's centre in region b. 3-D: centre distance < d (auto 0.05 m). 2-D: inside b's box grown by d·D
    (default 0); r = (distance to the nearest box edge + d·D) / (0.5 × min(b's width, height))."""
    a, b = args
    if sp == "3d":
        thr = _auto(o["d"], AT_3D)
        return squash(thr - _dist(ctx, a, b, sp), thr)
    c, B = ctx.ctr(a), ctx.box(b)
    edge = np.minimum.reduce([c[:, 0] - B[:, 0], B[:, 2] - c[:, 0], c[:, 1] - B[:, 1], B[:, 3] - c[:, 1]])
    scale = np.maximum(0.5 * np.minimum(B[:, 2] - B[:, 0], B[:, 3] - B[:, 1]), MIN_PX)
    return squash(edge + o["d"] * ctx.diag, scale)


PREDICATE_FUNCS: dict[str, Callable[[_Ctx, str, Sequence[str], Mapping[str, float]], np.ndarray]] = {
    f.__name__: f
    for f in (visible, near, touching, above, on, inside, left_of, right_of, lifted, moving, holding,
              gripper_open, gripper_closed, at)
}


# ------------------------------------------------------------------------------------ numeric functions
def numeric_value(ctx: _Ctx, name: str, args: Sequence[str], sp: str) -> np.ndarray:
    """Value of a numeric function per frame: metres / m/s in 3-D; image fractions in 2-D."""
    a = args[0]
    if name == "dist":
        d = _dist(ctx, a, args[1], sp)
        return d if sp == "3d" else d / ctx.diag
    if name == "speed":
        s = ctx.speed(a, sp)
        return s if sp == "3d" else s / ctx.diag
    if name == "area":
        B = ctx.box(a)
        area = (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1])
        px = ctx.mask_pixels(a)
        if px is not None:
            area = np.where(px > 0, px, area)
        return area / (ctx.W * ctx.H)
    axis = {"x": 0, "y": 1, "height": 2}[name]
    if sp == "3d":
        return ctx.pos(a)[:, axis]
    c = ctx.ctr(a)
    if name == "height":
        return 1.0 - c[:, 1] / ctx.H
    return c[:, axis] / (ctx.W if axis == 0 else ctx.H)


# ------------------------------------------------------------------------------------------ evaluation
def _check_call(ctx: _Ctx, call: Call, what: str, numeric: bool) -> PredicateInfo:
    info = PREDICATES.get(call.name)
    if info is None:
        kind = "numeric function" if numeric else "predicate"
        known = ", ".join(n for n, p in PREDICATES.items() if p.numeric == numeric)
        raise CapabilityError(f"unknown {kind} {call.name!r} in {what} (known: {known})")
    if info.numeric != numeric:
        if numeric:
            raise CapabilityError(f"{call.name} is a predicate, not a numeric function, in {what}")
        raise CapabilityError(
            f"{call.name} is a numeric function; compare it, e.g. {call.name}(…) < 0.1 ({what})"
        )
    if len(call.args) != len(info.params):
        raise CapabilityError(
            f"{info.name} takes {len(info.params)} argument(s) ({info.signature()}), "
            f"got {len(call.args)} in {what}"
        )
    for a in call.args:
        if not isinstance(a, str):
            raise CapabilityError(f"{what}: arguments of {info.name} must be entity names, got {a!r}")
    for k, v in call.kwargs:
        if k not in info.option_names:
            allowed = ", ".join(info.option_names) or "none"
            raise CapabilityError(f"unknown option {k!r} for {info.name} in {what} (options: {allowed})")
        if isinstance(v, str) or not math.isfinite(float(v)) or float(v) < 0:
            raise CapabilityError(
                f"option {k} of {info.name} must be a non-negative number, got {v!r} in {what}"
            )
        if k in FRACTION_OPTIONS and float(v) > 1:
            raise CapabilityError(f"option {k} of {info.name} is a fraction in [0, 1], got {v!r} in {what}")
    return info


def _resolve_options(ctx: _Ctx, info: PredicateInfo, call: Call) -> dict[str, float]:
    opts = {k: float(v) for k, v in info.options}
    opts.update({k: float(v) for k, v in ctx.opts.defaults.get(info.name, {}).items()})
    opts.update({k: float(v) for k, v in call.kwargs})
    return opts


def _finish(ctx: _Ctx, r: np.ndarray, gates: Sequence[np.ndarray]) -> np.ndarray:
    """Unknown → -1, cap by visibility margins, median-smooth, clip, float32."""
    r = np.where(np.isnan(r), -1.0, r)
    for g in gates:
        r = np.minimum(r, g)
    r = median_smooth(r, ctx.opts.smooth)
    return np.clip(r, -1.0, 1.0).astype(np.float32)


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _named_signal(ctx: _Ctx, key: str, what: str, fix: str) -> np.ndarray:
    p = ctx.obs.atoms.get(key)
    if p is None:
        have = ", ".join(repr(k) for k in ctx.obs.atoms) or "none"
        raise ctx.fail(what, f"its observations have no signal {key!r} (it answers: {have})", fix)
    p = ctx.frames(p, f"atoms[{key!r}]").astype(np.float64)
    return np.clip(2.0 * p - 1.0, -1.0, 1.0)


def _atom_signal(ctx: _Ctx, node: Atom | Compare | Quoted) -> tuple[np.ndarray, tuple[str, ...]]:
    """Robustness (T,) float32 and supporting entities of one atom."""
    if isinstance(node, Quoted):
        fix = (f'use a grounder that answers free text (--grounder vlm), or give the sidecar/observations '
               f'atoms["{node.text}"]')
        return _finish(ctx, _named_signal(ctx, node.text, node.canonical, fix), ()), ()
    if isinstance(node, Atom):
        call = node.call
        what = call.canonical
        if not call.args and not call.kwargs and call.name not in PREDICATES:
            fix = (f"give the sidecar/observations an atoms.{call.name} probability track, "
                   f'or use a vlm grounder with a quoted atom such as "{call.name}"')
            return _finish(ctx, _named_signal(ctx, call.name, what, fix), ()), ()
        info = _check_call(ctx, call, what, numeric=False)
        ents = call.identifiers
        sp = ctx.space(info.name, ents, what)
        raw = PREDICATE_FUNCS[info.name](ctx, sp, ents, _resolve_options(ctx, info, call))
        gates = [] if info.name in UNGATED else [ctx.gate(e, sp) for e in ents]
        return _finish(ctx, raw, gates), _unique(ents)
    if isinstance(node, Compare):
        what = node.canonical
        vals, scales, gates, ents = [], [], [], []
        for term in (node.left, node.right):
            if isinstance(term, Num):
                vals.append(np.full(ctx.T, float(term.value)))
                continue
            info = _check_call(ctx, term, what, numeric=True)
            sp = ctx.space(info.name, term.identifiers, what)
            vals.append(numeric_value(ctx, info.name, term.identifiers, sp))
            scales.append(ctx.opts.compare_scales.get(info.name, COMPARE_SCALE[info.name]))
            gates += [ctx.gate(e, sp) for e in term.identifiers]
            ents += term.identifiers
        scale = max(scales) if scales else 1.0
        lhs, rhs = vals
        margin = rhs - lhs if node.op in ("<", "<=") else lhs - rhs
        if node.op not in ("<", "<=", ">", ">="):
            raise CapabilityError(f"unknown comparison operator {node.op!r} in {what}")
        return _finish(ctx, squash(margin, scale), gates), _unique(ents)
    raise TypeError(f"not an atom: {node!r}")


def compute_signals_impl(
    atoms: Sequence[Atom | Compare | Quoted], obs: Observations, grounder: str, options: PredicateOptions
) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, ...]]]:
    ctx = _Ctx(obs, options, grounder)
    if ctx.T < 1:
        raise GroundingError(f"observations from grounder {ctx.grounder!r} have no frames")
    values: dict[str, np.ndarray] = {}
    support: dict[str, tuple[str, ...]] = {}
    for node in atoms:
        key = node.canonical
        if key in values:
            continue
        values[key], support[key] = _atom_signal(ctx, node)
    return values, support
