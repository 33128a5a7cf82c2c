"""The predicate catalogue: names, parameters, options and English phrasing of every predicate and numeric
function. Pure metadata — the spec layer validates against it; the semantics live in `library.py`.

Option convention: a threshold option whose default is 0 means "the automatic default" (relative to object
and image size in 2-D, a fixed length in metres in 3-D); writing the option explicitly as 0 means the same.
Explicit values are metres (3-D state semantics) or fractions of the image diagonal (2-D image semantics).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class PredicateInfo:
    """One predicate (Boolean-valued, robustness in [-1, 1]) or numeric function (usable in comparisons)."""

    name: str
    params: tuple[str, ...]  # positional entity parameters
    options: tuple[tuple[str, float], ...] = ()  # keyword thresholds and their defaults
    numeric: bool = False
    english: str = ""  # positive phrasing, e.g. "{0} holds {1}"
    negated: str = ""  # negative phrasing, e.g. "{0} does not hold {1}"
    doc: str = ""
    image: str = ""  # 2-D image semantics (boxes / masks / centres), with its default thresholds
    state: str = ""  # 3-D state semantics (positions in metres, z up), with its default thresholds
    needs: str = ""  # the Observations fields it reads

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.options)

    def signature(self) -> str:
        opts = [f"{k}={v:g}" for k, v in self.options]
        return f"{self.name}({', '.join(list(self.params) + opts)})"


def _p(name, params, options=(), english="", negated="", doc="", numeric=False, image="", state="",
       needs="") -> PredicateInfo:
    return PredicateInfo(
        name, tuple(params), tuple(options), numeric, english, negated, doc, image, state, needs
    )


_GEO = "centers (+ boxes for the default) / positions"

PREDICATES: dict[str, PredicateInfo] = {
    p.name: p
    for p in [
        _p("visible", ["a"], [("p", 0.5)], "{0} is visible", "{0} is not visible",
           "the entity is detected in the frame (visibility score above p, default 0.5)",
           image="visibility score v (0 where the entity has no centre); r = (v − p) / (1 − p) above p, "
                 "(v − p) / p below",
           state="same as 2-D (visibility is an image notion)",
           needs="visibility, centers"),
        _p("near", ["a", "b"], [("d", 0.0)], "{0} is near {1}", "{0} is not near {1}",
           "centre distance below d (0 = auto: 0.10 m in 3-D; 1.5 × the mean box diagonal in 2-D)",
           image="centre distance < d·image diagonal; auto d = 1.5 × mean of the two median box diagonals "
                 "(at least 0.02 of the image diagonal); r = (d − dist) / d",
           state="‖p_a − p_b‖ < d; auto d = 0.10 m; r = (d − dist) / d",
           needs=_GEO),
        _p("touching", ["a", "b"], [("d", 0.0)], "{0} touches {1}", "{0} does not touch {1}",
           "contact (state) or overlapping / adjacent boxes (image); d = gap tolerance (0 = auto)",
           image="signed box gap g = max(x-gap, y-gap) (< 0 when overlapping) below d·image diagonal; "
                 "auto d = 0.05 × mean box diagonal; r = (d − g) / (0.25 × mean box diagonal)",
           state="contacts[(a,b)] when the sidecar has the pair: +1 in contact, else "
                 "−clip(dist / d, 0.1, 1); "
                 "without contacts ‖p_a − p_b‖ < d, r = (d − dist) / d; auto d = 0.05 m",
           needs="boxes / contacts or positions"),
        _p("above", ["a", "b"], [("d", 0.0)], "{0} is above {1}", "{0} is not above {1}",
           "a is higher than b by more than d (default 0)",
           image="centre y of a above centre y of b by more than d·image diagonal; "
                 "r = (y_b − y_a − d) / (0.5 × mean box diagonal)",
           state="z_a − z_b > d metres; r = (z_a − z_b − d) / 0.10 m",
           needs=_GEO),
        _p("on", ["a", "b"], [("d", 0.0), ("w", 0.0)], "{0} is on {1}", "{0} is not on {1}",
           "a rests on top of b: above it, horizontally within it, and in contact",
           image="min of: a's centre x inside b's x-range (r = edge distance / ½ b's width); a's bottom edge "
                 "between b's top − d·image diagonal and b's bottom (auto d = 0.1 × a's box diagonal; "
                 "scale 0.25 × a's box diagonal)",
           state="with contacts[(a,b)]: contact and z_a > z_b (scale 0.05 m); without: 0 < z_a − z_b < d "
                 "(auto 0.15 m, scale 0.05 m) and horizontal distance < w (auto 0.10 m, r = (w − dxy) / w)",
           needs="boxes / positions (+ contacts)"),
        _p("inside", ["a", "b"], [("d", 0.0), ("q", 0.9)], "{0} is inside {1}", "{0} is not inside {1}",
           "a lies within b's extent (2-D: fraction q of a inside b; 3-D: centres within d)",
           image="fraction f of a's mask (box when no masks) inside b's mask (box); r = (f − q) / (1 − q) "
                 "above q, (f − q) / q below; default q = 0.9",
           state="‖p_a − p_b‖ < d; auto d = 0.05 m; r = (d − dist) / d",
           needs="masks or boxes / positions"),
        _p("left_of", ["a", "b"], [("d", 0.0)], "{0} is left of {1}", "{0} is not left of {1}",
           "a's centre is left of b's in the image (the viewer's left)",
           image="x_b − x_a > d·image diagonal; r = (x_b − x_a − d) / (0.5 × mean box diagonal)",
           state="image-only: world axes have no canonical left; a state grounder must project to the image",
           needs="centers, boxes"),
        _p("right_of", ["a", "b"], [("d", 0.0)], "{0} is right of {1}", "{0} is not right of {1}",
           "a's centre is right of b's in the image (the viewer's right)",
           image="x_a − x_b > d·image diagonal; r = (x_a − x_b − d) / (0.5 × mean box diagonal)",
           state="image-only (as left_of)",
           needs="centers, boxes"),
        _p("lifted", ["a"], [("h", 0.0), ("n", 0.0)], "{0} is lifted", "{0} is not lifted",
           "a is raised above its resting height (lowest point over the first n frames) by more than h",
           image="rise = baseline centre y − centre y (pixels) > h·image diagonal; auto h = 0.5 × a's "
                 "median box height; r = (rise − h) / h; baseline = max centre y over the first n frames "
                 "(auto n = max(3, T/10))",
           state="rise = z − min z over the first n frames; auto h = 0.03 m; r = (rise − h) / h",
           needs=_GEO),
        _p("moving", ["a"], [("v", 0.0)], "{0} is moving", "{0} is not moving",
           "a's speed exceeds v (finite differences over ±0.1 s at the video's fps)",
           image="centre speed in image diagonals/s > v; auto v = 0.5 × a's box diagonal per second "
                 "(at least 0.01 image diagonals/s); r = (speed − v) / v",
           state="‖dp/dt‖ > v m/s; auto v = 0.05 m/s; r = (speed − v) / v",
           needs="centers, fps / positions, fps"),
        _p("holding", ["g", "o"], [("d", 0.0), ("p", 0.8)], "{0} holds {1}", "{0} does not hold {1}",
           "gripper g is closed on o (contact, or a closed gripper at o, or o moving with g)",
           image="min(touching(g, o, d), cue): cue = gripper closed (opening < p, default 0.8) where the "
                 "opening is observed, else o follows g: min(|v_o − v_g| < moving threshold of o, "
                 "max(lifted(o), moving(o)))",
           state="min(opening < p, max(contact(g, o), ‖p_g − p_o‖ < d)); auto d = 0.05 m; contact alone "
                 "without an observed opening; with neither: min(‖p_g − p_o‖ < d, o follows g)",
           needs="boxes / positions, + gripper_opening or contacts (optional)"),
        _p("gripper_open", ["g"], [("p", 0.5)], "{0} is open", "{0} is not open",
           "gripper opening above p (opening in [0, 1], 1 = fully open)",
           image="r = (opening − p) / (1 − p) above p, (opening − p) / p below",
           state="same as 2-D",
           needs="gripper_opening[g]"),
        _p("gripper_closed", ["g"], [("p", 0.5)], "{0} is closed", "{0} is not closed",
           "gripper opening below p (opening in [0, 1], 1 = fully open)",
           image="r = (p − opening) / p below p, (p − opening) / (1 − p) above",
           state="same as 2-D",
           needs="gripper_opening[g]"),
        _p("at", ["a", "b"], [("d", 0.0)], "{0} is at {1}", "{0} is not at {1}",
           "a's centre lies in region/entity b",
           image="a's centre inside b's box grown by d·image diagonal (default 0); "
                 "r = (smallest distance to b's box edges + d) / (0.5 × min(b's width, height))",
           state="‖p_a − p_b‖ < d; auto d = 0.05 m; r = (d − dist) / d",
           needs=_GEO),
        _p("dist", ["a", "b"], (), "the distance between {0} and {1}", numeric=True,
           doc="centre distance (metres in state, fraction of the image diagonal in image); scale 0.1",
           image="‖c_a − c_b‖ / image diagonal; comparison scale 0.1",
           state="‖p_a − p_b‖ in metres; comparison scale 0.1 m",
           needs="centers / positions"),
        _p("height", ["a"], (), "the height of {0}", numeric=True,
           doc="z in metres (state) or 1 - y/H (image); scale 0.1",
           image="1 − centre y / H; comparison scale 0.1", state="z in metres; comparison scale 0.1 m",
           needs="centers / positions"),
        _p("speed", ["a"], (), "the speed of {0}", numeric=True,
           doc="metres/s (state) or image diagonals per second (image); scale 0.1",
           image="centre speed in image diagonals/s; comparison scale 0.1",
           state="speed in m/s; comparison scale 0.1 m/s",
           needs="centers, fps / positions, fps"),
        _p("x", ["a"], (), "the x position of {0}", numeric=True,
           doc="x (metres or fraction of width); scale 0.1",
           image="centre x / W; comparison scale 0.1", state="x in metres; comparison scale 0.1 m",
           needs="centers / positions"),
        _p("y", ["a"], (), "the y position of {0}", numeric=True,
           doc="y (metres or fraction of height); scale 0.1",
           image="centre y / H (down is +); comparison scale 0.1",
           state="y in metres; comparison scale 0.1 m",
           needs="centers / positions"),
        _p("area", ["a"], (), "the area of {0}", numeric=True,
           doc="fraction of the image covered; scale 0.02",
           image="mask pixels / (H·W) (box area when no mask); comparison scale 0.02",
           state="same as 2-D (an image quantity)",
           needs="masks or boxes"),
    ]
}


def lookup(name: str) -> PredicateInfo | None:
    return PREDICATES.get(name)


def suggest(name: str, *, numeric: bool | None = None) -> str | None:
    """The closest known name (for did-you-mean messages), or None."""
    names = [n for n, p in PREDICATES.items() if numeric is None or p.numeric == numeric]
    hits = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return hits[0] if hits else None
