"""Every predicate and numeric function: its semantics (a function of the per-call `Context`) under one
`@predicate(...)` decorator that registers it with its metadata — parameters, options and defaults, English
phrasing, 2-D and 3-D semantics, the Observations fields it reads. To add a predicate, add a function here.

A predicate function takes (ctx, space, entity args, resolved options) and returns the raw (T,) robustness
r = clip(margin / scale, -1, 1) (robustness.py), NaN where the geometry is unknown; a numeric function returns
its (T,) value in its units. The evaluation (evaluate.py) turns NaN into -1, caps gated atoms by the
visibility margin of the entities they name, and median-filters every signal.

Explicit thresholds are metres (3-D) or fractions of the image diagonal D (2-D); a threshold of 0 (the
default) means the automatic default below, relative to object and image size in 2-D. Each default is a
constant here, written once: the functions and the semantics texts of the catalogue both read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .catalog import predicate
from .context import METRIC, MIN_PX, SPEED_WINDOW, Context
from .robustness import ramp, squash

# ---------------------------------------------------------------------------------- default thresholds
# 3-D state semantics (metres, metres/second)
NEAR_3D = 0.10  # near(a,b): centre distance
TOUCH_3D = 0.05  # touching(a,b) without contacts: centre distance; with contacts: scale of the negative side
CONTACT_MIN = 0.1  # with contacts, a pair not in contact is at most this close to 0 (never exactly 0)
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
LIFT_2D = 0.5  # lifted: rise = 0.5 × a's box height
MOVE_2D = 0.5  # moving: 0.5 box diagonals per second …
MOVE_2D_MIN = 0.01  # … at least 0.01 D per second
# defaults of fraction options (thresholds on [0, 1] quantities)
VISIBLE_P = 0.5  # visible: visibility score
INSIDE_Q = 0.9  # inside: fraction of a within b
HOLD_P = 0.8  # holding: gripper opening below which it counts as closed
GRIPPER_P = 0.5  # gripper_open / gripper_closed: opening
# numeric functions: comparison scales (units of the function)
LENGTH_SCALE = 0.1  # dist, height, x, y: metres in 3-D, image fractions in 2-D
SPEED_SCALE = 0.1  # speed: m/s in 3-D, image diagonals/s in 2-D
AREA_SCALE = 0.02  # area: fraction of the image

_GEO = "centers (+ boxes for the default) / positions"


# ------------------------------------------------------------------------------------------ helpers
def _dist(ctx: Context, a: str, b: str, sp: str) -> np.ndarray:
    return np.linalg.norm(ctx.point(a, sp) - ctx.point(b, sp), axis=1)


def _mean_size(ctx: Context, a: str, b: str) -> float:
    return 0.5 * (ctx.size(a) + ctx.size(b))


def _auto(value: float, auto: float) -> float:
    return float(value) if value > 0 else auto


def _contact_r(contact: np.ndarray, dist: np.ndarray, scale: float) -> np.ndarray:
    """+1 in contact; otherwise -clip(dist / scale, CONTACT_MIN, 1) (never 0, graded by centre distance)."""
    return np.where(contact, 1.0, -np.clip(dist / scale, CONTACT_MIN, 1.0))


def _box_gap(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Signed box separation max(x-gap, y-gap) (T,): > 0 apart, < 0 overlapping (minus the smaller overlap)."""
    gx = np.maximum(A[:, 0], B[:, 0]) - np.minimum(A[:, 2], B[:, 2])
    gy = np.maximum(A[:, 1], B[:, 1]) - np.minimum(A[:, 3], B[:, 3])
    return np.maximum(gx, gy)


# ------------------------------------------------------------------------------------------ predicates
@predicate("visible", params=("a",), options={"p": VISIBLE_P}, english="{0} is visible", negated="{0} is not visible",
           doc=f"the entity is detected in the frame (visibility score above p, default {VISIBLE_P:g})",
           image="visibility score v (0 where the entity has no centre); r = (v − p) / (1 − p) above p, "
                 "(v − p) / p below",
           state="same as 2-D (visibility is an image notion)",
           needs="visibility, centers", image_only=True, gated=False)
def visible(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Visibility score above p: r = ramp(v, p); v is 0 where the entity has no centre."""
    return ramp(ctx.vis(args[0]), o["p"])


@predicate("near", params=("a", "b"), options={"d": 0.0}, english="{0} is near {1}", negated="{0} is not near {1}",
           doc=f"centre distance below d (0 = auto: {NEAR_3D:.2f} m in 3-D; {NEAR_2D_K:g} × the mean box diagonal "
               "in 2-D)",
           image=f"centre distance < d·image diagonal; auto d = {NEAR_2D_K:g} × mean of the two median box "
                 f"diagonals (at least {NEAR_2D_MIN:g} of the image diagonal); r = (d − dist) / d",
           state=f"‖p_a − p_b‖ < d; auto d = {NEAR_3D:.2f} m; r = (d − dist) / d",
           needs=_GEO)
def near(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Centre distance below d: r = (d − dist) / d. 3-D auto d = NEAR_3D; 2-D auto d = NEAR_2D_K × mean box
    diagonal (≥ NEAR_2D_MIN · D), explicit d in image diagonals."""
    a, b = args
    dist = _dist(ctx, a, b, sp)
    if sp in METRIC:
        thr = _auto(o["d"], NEAR_3D)
    else:
        auto = max(NEAR_2D_K * _mean_size(ctx, a, b), NEAR_2D_MIN * ctx.diag)
        thr = o["d"] * ctx.diag if o["d"] > 0 else auto
    return squash(thr - dist, thr)


def _touching_2d(ctx: Context, a: str, b: str, d: float, masks: bool = False) -> np.ndarray:
    """Image contact: signed gap (boxes; with `masks`, the masks' own where both have pixels) below the
    tolerance d·D (auto TOUCH_2D_TOL × mean box diagonal), scale TOUCH_2D_SCALE × mean box diagonal."""
    m = _mean_size(ctx, a, b)
    tol = d * ctx.diag if d > 0 else TOUCH_2D_TOL * m
    gap = _box_gap(ctx.box(a), ctx.box(b))
    if masks and ctx.obs.masks is not None:
        from .mask_geometry import mask_gap

        mg = ctx.memo(("mgap", a, b), lambda: mask_gap(ctx.obs.masks[ctx.row(a, a)], ctx.obs.masks[ctx.row(b, b)]))
        gap = np.where(np.isnan(mg), gap, mg)
    return squash(tol - gap, max(TOUCH_2D_SCALE * m, MIN_PX))


def _depth_agree(ctx: Context, a: str, b: str, sp: str, d: float = 0.0) -> np.ndarray:
    """2.5-D: a and b at one depth from the camera: |Z_a − Z_b| below half their extents summed + d (auto
    TOUCH_3D); r = (tol − |ΔZ|) / tol. +1 in 3-D (positions are exact)."""
    if sp != "2.5d":
        return np.ones(ctx.T)
    tol = 0.5 * (ctx.extent(a) + ctx.extent(b)) + _auto(d, TOUCH_3D)
    return squash(tol - np.abs(ctx.depth(a, sp) - ctx.depth(b, sp)), tol)


def _touching_25d(ctx: Context, a: str, b: str, d: float) -> np.ndarray:
    """2.5-D contact: the masks touch in the image (gap tolerance as in 2-D) and the depths agree."""
    return np.minimum(_touching_2d(ctx, a, b, 0.0, masks=True), _depth_agree(ctx, a, b, "2.5d", d))


@predicate("touching", params=("a", "b"), options={"d": 0.0}, english="{0} touches {1}",
           negated="{0} does not touch {1}",
           doc="contact (state) or overlapping / adjacent boxes (image); d = gap tolerance (0 = auto)",
           image=f"signed box gap g = max(x-gap, y-gap) (< 0 when overlapping) below d·image diagonal; "
                 f"auto d = {TOUCH_2D_TOL:g} × mean box diagonal; r = (d − g) / ({TOUCH_2D_SCALE:g} × mean box "
                 "diagonal)",
           state=f"contacts[(a,b)] when the sidecar has the pair: +1 in contact, else −clip(dist / d, {CONTACT_MIN:g}, "
                 f"1); without contacts ‖p_a − p_b‖ < d, r = (d − dist) / d; auto d = {TOUCH_3D:.2f} m",
           lifted="min(the masks touch: signed mask gap below the 2-D tolerance; the depths agree: |Z_a − Z_b| < "
                  f"half the two extents + d, auto d = {TOUCH_3D:.2f} m); contacts when given",
           needs="boxes / contacts or positions")
def touching(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """3-D: sidecar contact (+1, else −clip(dist/d, CONTACT_MIN, 1)) or, without contacts, centre distance < d
    (auto TOUCH_3D); 2-D: signed box gap below d·D (auto TOUCH_2D_TOL × mean box diagonal), scale
    TOUCH_2D_SCALE × mean diagonal."""
    a, b = args
    if sp in METRIC:
        thr = _auto(o["d"], TOUCH_3D)
        dist = _dist(ctx, a, b, sp)
        c = ctx.contact(a, b)
        if c is not None:
            return _contact_r(c, dist, thr)
        return _touching_25d(ctx, a, b, o["d"]) if sp == "2.5d" else squash(thr - dist, thr)
    return _touching_2d(ctx, a, b, o["d"])


@predicate("above", params=("a", "b"), options={"d": 0.0}, english="{0} is above {1}",
           negated="{0} is not above {1}", doc="a is higher than b by more than d (default 0)",
           image=f"centre y of a above centre y of b by more than d·image diagonal; "
                 f"r = (y_b − y_a − d) / ({REL_2D_SCALE:g} × mean box diagonal)",
           state=f"z_a − z_b > d metres; r = (z_a − z_b − d) / {ABOVE_SCALE_3D:.2f} m",
           needs=_GEO)
def above(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """a higher than b by more than d (default 0): 3-D (z_a − z_b − d) / ABOVE_SCALE_3D; 2-D (y_b − y_a − d·D) /
    (REL_2D_SCALE × mean box diagonal)."""
    a, b = args
    if sp in METRIC:
        return squash(ctx.mpos(a, sp)[:, 2] - ctx.mpos(b, sp)[:, 2] - o["d"], ABOVE_SCALE_3D)
    m = ctx.ctr(b)[:, 1] - ctx.ctr(a)[:, 1] - o["d"] * ctx.diag
    return squash(m, REL_2D_SCALE * _mean_size(ctx, a, b))


@predicate("on", params=("a", "b"), options={"d": 0.0, "w": 0.0}, english="{0} is on {1}", negated="{0} is not on {1}",
           doc="a rests on top of b: above it, horizontally within it, and in contact",
           image=f"min of: a's centre x inside b's x-range (r = edge distance / ½ b's width); a's bottom edge "
                 f"between b's top − d·image diagonal and b's bottom (auto d = {ON_2D_TOL:g} × a's box diagonal; "
                 f"scale {ON_2D_SCALE:g} × a's box diagonal); b's box is its amodal extent",
           state=f"with contacts[(a,b)]: contact and z_a > z_b (scale {ON_SCALE_3D:.2f} m); without: 0 < z_a − z_b "
                 f"< d (auto {ON_DZ_3D:.2f} m, scale {ON_SCALE_3D:.2f} m) and horizontal distance < w (auto "
                 f"{ON_R_3D:.2f} m, r = (w − dxy) / w)",
           lifted="min(the 2-D semantics, depths agree as for touching)",
           needs="boxes / positions (+ contacts)")
def on(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """a rests on b. 3-D with contacts: contact and z_a > z_b (scale ON_SCALE_3D); without: 0 < z_a − z_b < d
    (auto ON_DZ_3D) and horizontal distance < w (auto ON_R_3D). 2-D: a's centre x within b's x-range and a's
    bottom edge between b's top − d·D (auto ON_2D_TOL × a's diagonal) and b's bottom."""
    a, b = args
    if sp == "2.5d":
        return np.minimum(on(ctx, "2d", args, {**o, "d": 0.0}), _depth_agree(ctx, a, b, sp))
    if sp in METRIC:
        pa, pb = ctx.mpos(a, sp), ctx.mpos(b, sp)
        dz = pa[:, 2] - pb[:, 2]
        c = ctx.contact(a, b)
        if c is not None:
            return np.minimum(_contact_r(c, _dist(ctx, a, b, sp), TOUCH_3D), squash(dz, ON_SCALE_3D))
        dmax, rad = _auto(o["d"], ON_DZ_3D), _auto(o["w"], ON_R_3D)
        rv = squash(np.minimum(dz, dmax - dz), ON_SCALE_3D)
        rh = squash(rad - np.linalg.norm(pa[:, :2] - pb[:, :2], axis=1), rad)
        return np.minimum(rv, rh)
    A, B, ca = ctx.box(a), ctx.amodal_box(b), ctx.ctr(a)
    half_w = np.maximum((B[:, 2] - B[:, 0]) / 2, MIN_PX)
    rh = squash(np.minimum(ca[:, 0] - B[:, 0], B[:, 2] - ca[:, 0]), half_w)
    sa = ctx.size(a)
    tol = o["d"] * ctx.diag if o["d"] > 0 else ON_2D_TOL * sa
    rv = squash(np.minimum(A[:, 3] - (B[:, 1] - tol), B[:, 3] - A[:, 3]), max(ON_2D_SCALE * sa, MIN_PX))
    return np.minimum(rh, rv)


@predicate("inside", params=("a", "b"), options={"d": 0.0, "q": INSIDE_Q}, english="{0} is inside {1}",
           negated="{0} is not inside {1}",
           doc="a lies within b's extent (2-D: fraction q of a inside b; 3-D: centres within d)",
           image=f"fraction f of a's mask (box when no masks) inside b's amodal mask (box); r = (f − q) / (1 − q) "
                 f"above q, (f − q) / q below; default q = {INSIDE_Q:g}",
           state=f"‖p_a − p_b‖ < d; auto d = {INSIDE_3D:.2f} m; r = (d − dist) / d",
           lifted="min(the 2-D semantics, depths agree as for touching)",
           needs="masks or boxes / positions")
def inside(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """3-D: centre distance < d (auto INSIDE_3D). 2-D: fraction f of a (mask where both masks are non-empty,
    else box) within b above q: r = ramp(f, q)."""
    a, b = args
    if sp == "2.5d":
        return np.minimum(inside(ctx, "2d", args, o), _depth_agree(ctx, a, b, sp))
    if sp in METRIC:
        thr = _auto(o["d"], INSIDE_3D)
        return squash(thr - _dist(ctx, a, b, sp), thr)
    A, B = ctx.box(a), ctx.amodal_box(b)
    iw = np.clip(np.minimum(A[:, 2], B[:, 2]) - np.maximum(A[:, 0], B[:, 0]), 0, None)
    ih = np.clip(np.minimum(A[:, 3], B[:, 3]) - np.maximum(A[:, 1], B[:, 1]), 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = iw * ih / ((A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1]))
        pa, pb = ctx.mask_pixels(a), ctx.mask_pixels(b)
        if pa is not None and pb is not None:
            both = (pa > 0) & (pb > 0)
            if both.any():
                ma = ctx.obs.masks[ctx.row(a, a)][both]
                mb = ctx.amodal_mask(b)[both]
                frac[both] = (ma & mb).sum(axis=(1, 2)) / pa[both]
    out = ramp(np.nan_to_num(frac, nan=0.5), o["q"])
    return np.where(np.isnan(frac), np.nan, out)


@predicate("left_of", params=("a", "b"), options={"d": 0.0}, english="{0} is left of {1}",
           negated="{0} is not left of {1}", doc="a's centre is left of b's in the image (the viewer's left)",
           image=f"x_b − x_a > d·image diagonal; r = (x_b − x_a − d) / ({REL_2D_SCALE:g} × mean box diagonal)",
           state="image-only: world axes have no canonical left; a state grounder must project to the image",
           needs="centers, boxes", image_only=True)
def left_of(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Image only: x_b − x_a > d·D (default 0); r = (x_b − x_a − d·D) / (REL_2D_SCALE × mean box diagonal)."""
    a, b = args
    m = ctx.ctr(b)[:, 0] - ctx.ctr(a)[:, 0] - o["d"] * ctx.diag
    return squash(m, REL_2D_SCALE * _mean_size(ctx, a, b))


@predicate("right_of", params=("a", "b"), options={"d": 0.0}, english="{0} is right of {1}",
           negated="{0} is not right of {1}", doc="a's centre is right of b's in the image (the viewer's right)",
           image=f"x_a − x_b > d·image diagonal; r = (x_a − x_b − d) / ({REL_2D_SCALE:g} × mean box diagonal)",
           state="image-only (as left_of)", needs="centers, boxes", image_only=True)
def right_of(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Image only: left_of with the arguments swapped."""
    return left_of(ctx, sp, args[::-1], o)


def _baseline_frames(ctx: Context, n: float) -> int:
    return min(ctx.T, int(n) if n >= 1 else max(3, ctx.T // 10))


@predicate("lifted", params=("a",), options={"h": 0.0, "n": 0.0}, english="{0} is lifted",
           negated="{0} is not lifted",
           doc="a is raised above its resting height (lowest point over the first n frames) by more than h",
           image=f"rise = baseline centre y − centre y (pixels) > h·image diagonal; auto h = {LIFT_2D:g} × a's "
                 "median box height; r = (rise − h) / h; baseline = max centre y over the first n frames "
                 "(auto n = max(3, T/10))",
           state=f"rise = z − min z over the first n frames; auto h = {LIFT_3D:.2f} m; r = (rise − h) / h",
           needs=_GEO)
def lifted(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Rise above the resting height (extreme over the first n frames, auto max(3, T/10)) exceeds h:
    r = (rise − h) / h. 3-D: z − min z, auto h = LIFT_3D; 2-D: baseline centre y − y, auto h = LIFT_2D × a's
    median box height, explicit h in image diagonals."""
    a = args[0]
    n = _baseline_frames(ctx, o["n"])
    if sp in METRIC:
        z = ctx.mpos(a, sp)[:, 2]
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


def _move_thr(ctx: Context, a: str, sp: str, v: float) -> float:
    if sp in METRIC:
        return _auto(v, MOVE_3D)
    return v * ctx.diag if v > 0 else max(MOVE_2D * ctx.size(a), MOVE_2D_MIN * ctx.diag)


@predicate("moving", params=("a",), options={"v": 0.0}, english="{0} is moving", negated="{0} is not moving",
           doc=f"a's speed exceeds v (finite differences over ±{SPEED_WINDOW:g} s at the video's fps)",
           image=f"centre speed in image diagonals/s > v; auto v = {MOVE_2D:g} × a's box diagonal per second "
                 f"(at least {MOVE_2D_MIN:g} image diagonals/s); r = (speed − v) / v",
           state=f"‖dp/dt‖ > v m/s; auto v = {MOVE_3D:.2f} m/s; r = (speed − v) / v",
           needs="centers, fps / positions, fps")
def moving(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Speed (central difference over ±speed_window s) above v: r = (speed − v) / v. 3-D auto v = MOVE_3D; 2-D
    auto v = MOVE_2D × a's box diagonal per second (≥ MOVE_2D_MIN · D/s), explicit v in image diagonals/s."""
    a = args[0]
    thr = _move_thr(ctx, a, sp, o["v"])
    return squash(ctx.speed(a, sp) - thr, thr)


def _follows(ctx: Context, g: str, obj: str, sp: str) -> np.ndarray:
    """o moves with g: min(speed of o relative to g below o's moving threshold, max(lifted(o), moving(o)))."""
    thr = _move_thr(ctx, obj, sp, 0.0)
    rel = np.linalg.norm(ctx.velocity(obj, sp) - ctx.velocity(g, sp), axis=1)
    carried = np.fmax(lifted(ctx, sp, [obj], {"h": 0.0, "n": 0.0}), squash(ctx.speed(obj, sp) - thr, thr))
    return np.minimum(squash(thr - rel, thr), carried)


def _closed(op: np.ndarray, p: float) -> np.ndarray:
    return -ramp(op, p)


@predicate("holding", params=("g", "o"), options={"d": 0.0, "p": HOLD_P}, english="{0} holds {1}",
           negated="{0} does not hold {1}",
           doc="gripper g is closed on o (contact, or a closed gripper at o, or o moving with g)",
           image=f"min(touching(g, o, d), cue): cue = gripper closed (opening < p, default {HOLD_P:g}) where the "
                 "opening is observed, else o follows g: min(|v_o − v_g| < moving threshold of o, "
                 "max(lifted(o), moving(o)))",
           state=f"min(opening < p, max(contact(g, o), ‖p_g − p_o‖ < d)); auto d = {HOLD_3D:.2f} m; contact alone "
                 "without an observed opening; with neither: min(‖p_g − p_o‖ < d, o follows g)",
           lifted="min(touching(g, o) in 2.5-D, cue): cue = gripper closed where the opening is observed, else o "
                  "follows g in the image (as in 2-D); as in 3-D when the sidecar has contacts",
           needs="boxes / positions, + gripper_opening or contacts (optional)")
def holding(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """g holds o. 3-D: min(opening < p, max(contact(g,o), dist < d)) with auto d = HOLD_3D — an open gripper
    bumping the object does not hold it; contact alone when the opening is not observed; min(dist < d, o
    follows g) with neither. 2-D: min(touching(g,o) (d = gap tolerance), opening < p where observed, else o
    follows g (o lifted or moving, and moving with g))."""
    g, obj = args
    what = f"holding({g},{obj})"
    op = ctx.opening(g, what, required=False)
    if sp == "2.5d" and ctx.contact(g, obj) is None:  # mask contact, cue in the image (lifted speeds are noisy)
        cue = _closed(op, o["p"]) if op is not None else _follows(ctx, g, obj, "2d")
        return np.minimum(_touching_25d(ctx, g, obj, o["d"]), cue)
    if sp in METRIC:
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


@predicate("gripper_open", params=("g",), options={"p": GRIPPER_P}, english="{0} is open", negated="{0} is not open",
           doc="gripper opening above p (opening in [0, 1], 1 = fully open)",
           image="r = (opening − p) / (1 − p) above p, (opening − p) / p below", state="same as 2-D",
           needs="gripper_opening[g]", gated=False)
def gripper_open(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Opening (0 closed … 1 open) above p: r = ramp(opening, p)."""
    return ramp(ctx.opening(args[0], f"gripper_open({args[0]})"), o["p"])


@predicate("gripper_closed", params=("g",), options={"p": GRIPPER_P}, english="{0} is closed",
           negated="{0} is not closed", doc="gripper opening below p (opening in [0, 1], 1 = fully open)",
           image="r = (p − opening) / p below p, (p − opening) / (1 − p) above", state="same as 2-D",
           needs="gripper_opening[g]", gated=False)
def gripper_closed(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Opening below p: r = −ramp(opening, p)."""
    return _closed(ctx.opening(args[0], f"gripper_closed({args[0]})"), o["p"])


@predicate("at", params=("a", "b"), options={"d": 0.0}, english="{0} is at {1}", negated="{0} is not at {1}",
           doc="a's centre lies in region/entity b",
           image="a's centre inside b's amodal box grown by d·image diagonal (default 0); "
                 "r = (smallest distance to b's box edges + d) / (0.5 × min(b's width, height))",
           state=f"‖p_a − p_b‖ < d; auto d = {AT_3D:.2f} m; r = (d − dist) / d",
           lifted="min(the 2-D semantics, depths agree as for touching)",
           needs=_GEO)
def at(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """a's centre in region b. 3-D: centre distance < d (auto AT_3D). 2-D: inside b's box grown by d·D
    (default 0); r = (distance to the nearest box edge + d·D) / (0.5 × min(b's width, height))."""
    a, b = args
    if sp == "2.5d":
        return np.minimum(at(ctx, "2d", args, {**o, "d": 0.0}), _depth_agree(ctx, a, b, sp))
    if sp in METRIC:
        thr = _auto(o["d"], AT_3D)
        return squash(thr - _dist(ctx, a, b, sp), thr)
    c, B = ctx.ctr(a), ctx.amodal_box(b)
    edge = np.minimum.reduce([c[:, 0] - B[:, 0], B[:, 2] - c[:, 0], c[:, 1] - B[:, 1], B[:, 3] - c[:, 1]])
    scale = np.maximum(0.5 * np.minimum(B[:, 2] - B[:, 0], B[:, 3] - B[:, 1]), MIN_PX)
    return squash(edge + o["d"] * ctx.diag, scale)


# ------------------------------------------------------------------------------------ numeric functions
# Each takes (ctx, space, entity args, {}) and returns the (T,) value: metres / m/s in 3-D, image fractions in 2-D.
@predicate("dist", params=("a", "b"), numeric=True, scale=LENGTH_SCALE, dim="length", image_unit="diag",
           english="the distance between {0} and {1}",
           doc=f"centre distance (metres in state, fraction of the image diagonal in image); scale {LENGTH_SCALE:g}",
           image=f"‖c_a − c_b‖ / image diagonal; comparison scale {LENGTH_SCALE:g}",
           state=f"‖p_a − p_b‖ in metres; comparison scale {LENGTH_SCALE:g} m", needs="centers / positions")
def dist(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Centre distance: metres, or image diagonals."""
    d = _dist(ctx, args[0], args[1], sp)
    return d if sp in METRIC else d / ctx.diag


@predicate("height", params=("a",), numeric=True, scale=LENGTH_SCALE, dim="length", image_unit="H",
           english="the height of {0}",
           doc=f"z in metres (state) or 1 - y/H (image); scale {LENGTH_SCALE:g}",
           image=f"1 − centre y / H; comparison scale {LENGTH_SCALE:g}",
           state=f"z in metres; comparison scale {LENGTH_SCALE:g} m", needs="centers / positions")
def height(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """z in metres, or 1 − y / H (up is +)."""
    return ctx.mpos(args[0], sp)[:, 2] if sp in METRIC else 1.0 - ctx.ctr(args[0])[:, 1] / ctx.H


@predicate("speed", params=("a",), numeric=True, scale=SPEED_SCALE, dim="speed", image_unit="diag",
           english="the speed of {0}",
           doc=f"metres/s (state) or image diagonals per second (image); scale {SPEED_SCALE:g}",
           image=f"centre speed in image diagonals/s; comparison scale {SPEED_SCALE:g}",
           state=f"speed in m/s; comparison scale {SPEED_SCALE:g} m/s", needs="centers, fps / positions, fps")
def speed(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Speed: m/s, or image diagonals per second."""
    s = ctx.speed(args[0], sp)
    return s if sp in METRIC else s / ctx.diag


@predicate("x", params=("a",), numeric=True, scale=LENGTH_SCALE, dim="length", image_unit="W",
           english="the x position of {0}",
           doc=f"x (metres or fraction of width); scale {LENGTH_SCALE:g}",
           image=f"centre x / W; comparison scale {LENGTH_SCALE:g}",
           state=f"x in metres; comparison scale {LENGTH_SCALE:g} m", needs="centers / positions")
def x(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """x in metres, or x / W."""
    return ctx.mpos(args[0], sp)[:, 0] if sp in METRIC else ctx.ctr(args[0])[:, 0] / ctx.W


@predicate("y", params=("a",), numeric=True, scale=LENGTH_SCALE, dim="length", image_unit="H",
           english="the y position of {0}",
           doc=f"y (metres or fraction of height); scale {LENGTH_SCALE:g}",
           image=f"centre y / H (down is +); comparison scale {LENGTH_SCALE:g}",
           state=f"y in metres; comparison scale {LENGTH_SCALE:g} m", needs="centers / positions")
def y(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """y in metres, or y / H (down is +)."""
    return ctx.mpos(args[0], sp)[:, 1] if sp in METRIC else ctx.ctr(args[0])[:, 1] / ctx.H


@predicate("area", params=("a",), numeric=True, scale=AREA_SCALE, dim="fraction", image_unit="WH",
           english="the area of {0}",
           doc=f"fraction of the image covered; scale {AREA_SCALE:g}",
           image=f"mask pixels / (H·W) (box area when no mask); comparison scale {AREA_SCALE:g}",
           state="same as 2-D (an image quantity)", needs="masks or boxes", image_only=True)
def area(ctx: Context, sp: str, args: Sequence[str], o: Mapping[str, float]) -> np.ndarray:
    """Fraction of the image: mask pixels, or the box where the mask is empty or missing."""
    B = ctx.box(args[0])
    a = (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1])
    px = ctx.mask_pixels(args[0])
    if px is not None:
        a = np.where(px > 0, px, a)
    return a / (ctx.W * ctx.H)
