"""Predicate library: exact robustness values on hand-built Observations (3-D state and 2-D image)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltlreward.errors import CapabilityError
from ltlreward.grounding.observations import Observations
from ltlreward.predicates import (
    PREDICATES,
    PredicateOptions,
    Signals,
    compute_signals,
    median_smooth,
    predicate_table_markdown,
    ramp,
)
from ltlreward.spec.ast import Atom, Call, Compare, Num, Quoted

RAW = PredicateOptions(smooth=0)  # no median filter: exact per-frame values


def soft(x):
    """The squash of robustness.py on x = margin / scale: x / (1 + |x|)."""
    x = np.asarray(x, dtype=np.float64)
    return x / (1 + np.abs(x))


def atom(name: str, *args: str, **kw: float) -> Atom:
    return Atom(Call(name, tuple(args), tuple(sorted(kw.items()))))


def cmp(left, op: str, right) -> Compare:
    return Compare(left, op, right)


def make_obs(
    entities: tuple[str, ...],
    T: int,
    *,
    positions: dict[str, np.ndarray] | None = None,
    boxes: dict[str, np.ndarray] | None = None,
    visibility: dict[str, np.ndarray] | None = None,
    H: int = 100,
    W: int = 100,
    fps: float = 10.0,
    **extra,
) -> Observations:
    """Observations from per-entity arrays; entities without boxes are unseen in the image."""
    E = len(entities)
    bx = np.full((E, T, 4), np.nan, np.float32)
    vis = np.zeros((E, T), np.float32)
    for i, e in enumerate(entities):
        if boxes and e in boxes:
            bx[i] = np.broadcast_to(np.asarray(boxes[e], np.float32), (T, 4))
            vis[i] = np.where(np.isfinite(bx[i]).all(axis=1), 1.0, 0.0)
        if visibility and e in visibility:
            vis[i] = visibility[e]
    ctr = np.stack([(bx[..., 0] + bx[..., 2]) / 2, (bx[..., 1] + bx[..., 3]) / 2], axis=-1)
    pos = None
    if positions is not None:
        pos = np.full((E, T, 3), np.nan, np.float32)
        for i, e in enumerate(entities):
            if e in positions:
                pos[i] = np.broadcast_to(np.asarray(positions[e], np.float32), (T, 3))
    return Observations(entities, T, H, W, fps, bx, ctr, vis, positions=pos, **extra)


def sig(node, obs, options=RAW, grounder="test") -> np.ndarray:
    out = compute_signals([node], obs, grounder=grounder, options=options)
    return out.values[node.canonical]


# ------------------------------------------------------------------------------------------ 3-D state
def test_near_3d_equals_formula_and_override():
    obs = make_obs(("a", "b"), 4, positions={"a": [0, 0, 0], "b": [0.04, 0, 0.03]})
    dist = 0.05
    s = compute_signals([atom("near", "a", "b"), atom("near", "a", "b", d=0.08)], obs, options=RAW)
    assert isinstance(s, Signals)
    np.testing.assert_allclose(s.values["near(a,b)"], soft((0.10 - dist) / 0.10), atol=1e-6)
    np.testing.assert_allclose(s.values["near(a,b,d=0.08)"], soft((0.08 - dist) / 0.08), atol=1e-6)
    assert s.values["near(a,b)"].dtype == np.float32 and s.values["near(a,b)"].shape == (4,)
    assert s.support == {"near(a,b)": ("a", "b"), "near(a,b,d=0.08)": ("a", "b")}


def test_near_far_miss_stays_graded_and_zero_means_auto():
    obs = make_obs(("a", "b"), 3, positions={"a": [0, 0, 0], "b": [1.0, 0, 0]})
    np.testing.assert_allclose(sig(atom("near", "a", "b"), obs), soft((0.10 - 1.0) / 0.10), atol=1e-6)  # -0.9
    farther = make_obs(("a", "b"), 3, positions={"a": [0, 0, 0], "b": [2.0, 0, 0]})
    assert sig(atom("near", "a", "b"), farther)[0] < sig(atom("near", "a", "b"), obs)[0] < 0  # no saturation
    np.testing.assert_array_equal(sig(atom("near", "a", "b", d=0), obs), sig(atom("near", "a", "b"), obs))


def test_lifted_when_z_rises_5cm():
    z = np.r_[np.zeros(10), np.full(10, 0.05)]
    pos = np.stack([np.zeros(20), np.zeros(20), z], axis=1)
    obs = make_obs(("cube",), 20, positions={"cube": pos})
    r = sig(atom("lifted", "cube"), obs)
    np.testing.assert_allclose(r[:10], -0.5, atol=1e-6)  # rise 0: one scale (h) below the threshold
    np.testing.assert_allclose(r[10:], soft((0.05 - 0.03) / 0.03), atol=1e-6)
    r_h = sig(atom("lifted", "cube", h=0.1), obs)
    np.testing.assert_allclose(r_h[10:], soft((0.05 - 0.1) / 0.1), atol=1e-6)


def test_lifted_baseline_is_first_frames_not_whole_video():
    z = np.r_[np.full(10, 0.2), np.zeros(10)]  # falls off a shelf to the floor: never lifted
    obs = make_obs(("cube",), 20, positions={"cube": np.stack([np.zeros(20)] * 2 + [z], axis=1)})
    r = sig(atom("lifted", "cube", n=5), obs)
    np.testing.assert_allclose(r, np.r_[np.full(10, -0.5), np.full(10, soft((-0.2 - 0.03) / 0.03))], atol=1e-6)


def test_moving_speed_from_finite_differences():
    t = np.arange(30) / 10.0  # fps 10
    pos = np.stack([0.075 * t, np.zeros(30), np.zeros(30)], axis=1)
    obs = make_obs(("a",), 30, positions={"a": pos}, fps=10.0)
    np.testing.assert_allclose(sig(atom("moving", "a"), obs), soft((0.075 - 0.05) / 0.05), atol=1e-5)
    s = sig(cmp(Call("speed", ("a",)), ">", Num(0.05)), obs)
    np.testing.assert_allclose(s, soft((0.075 - 0.05) / 0.1), atol=1e-5)


def test_touching_and_holding_from_contacts():
    T = 6
    contact = np.array([0, 0, 1, 1, 0, 0], bool)
    obs = make_obs(
        ("g", "o"), T, positions={"g": [0, 0, 0.02], "o": [0, 0, 0]}, contacts={("g", "o"): contact}
    )
    expected = np.where(contact, 1.0, -np.clip(0.02 / 0.05, 0.1, 1.0))
    np.testing.assert_allclose(sig(atom("touching", "g", "o"), obs), expected, atol=1e-6)
    np.testing.assert_allclose(sig(atom("holding", "g", "o"), obs), expected, atol=1e-6)
    # argument order does not matter for the (sorted) contact pair
    np.testing.assert_allclose(sig(atom("touching", "o", "g"), obs), expected, atol=1e-6)


def test_holding_3d_closed_and_near_without_contacts():
    opening = np.array([1.0, 0.9, 0.6, 0.4, 0.4])
    pos = {"g": [0, 0, 0.01], "o": [0, 0, 0]}
    obs = make_obs(("g", "o"), 5, positions=pos, gripper_opening={"g": opening})
    closed = np.where(opening >= 0.8, -(opening - 0.8) / 0.2, (0.8 - opening) / 0.8)
    near = soft((0.05 - 0.01) / 0.05)
    np.testing.assert_allclose(sig(atom("holding", "g", "o"), obs), np.minimum(closed, near), atol=1e-6)


def test_holding_3d_falls_back_to_following_without_opening_or_contacts():
    T = 20
    t = np.arange(T) / 10.0
    z = np.where(np.arange(T) < 10, 0.0, 0.2 * (t - 0.9))
    o = np.stack([np.zeros(T), np.zeros(T), z], axis=1)
    g = o + np.array([0, 0, 0.01])
    obs = make_obs(("g", "o"), T, positions={"g": g, "o": o})
    r = sig(atom("holding", "g", "o"), obs)
    assert (r[:8] < 0).all()  # resting, nobody moves: not held
    assert (r[13:] > 0).all()  # rises with the gripper: held


def test_above_on_inside_at_3d():
    obs = make_obs(("a", "b"), 2, positions={"a": [0.03, 0.04, 0.10], "b": [0, 0, 0]})
    np.testing.assert_allclose(sig(atom("above", "a", "b"), obs), soft(0.10 / 0.10))
    np.testing.assert_allclose(sig(atom("above", "a", "b", d=0.08), obs), soft(0.02 / 0.10), atol=1e-6)
    rv = soft(min(0.10, 0.15 - 0.10) / 0.05)
    rh = soft((0.10 - 0.05) / 0.10)
    np.testing.assert_allclose(sig(atom("on", "a", "b"), obs), min(rv, rh), atol=1e-6)
    dist = math.sqrt(0.03**2 + 0.04**2 + 0.1**2)
    np.testing.assert_allclose(sig(atom("inside", "a", "b", d=0.2), obs), soft((0.2 - dist) / 0.2), atol=1e-6)
    np.testing.assert_allclose(sig(atom("at", "a", "b"), obs), soft((0.05 - dist) / 0.05), atol=1e-6)


def test_on_3d_with_contacts():
    obs = make_obs(
        ("cube", "table"), 3, positions={"cube": [0.4, 0, 0.02], "table": [0, 0, 0]},
        contacts={("cube", "table"): np.array([1, 1, 0], bool)},
    )
    r = sig(atom("on", "cube", "table"), obs)
    np.testing.assert_allclose(r[:2], min(1.0, soft(0.02 / 0.05)), atol=1e-6)
    assert r[2] == -1.0  # no contact, 0.4 m away (the contact rule of library.py is ±1 / clipped)


# ------------------------------------------------------------------------------------------ comparisons
def test_compare_margins_3d():
    obs = make_obs(("a", "b"), 3, positions={"a": [0.2, 0.1, 0.15], "b": [0.2, 0.14, 0.13]})
    s = compute_signals(
        [
            cmp(Call("dist", ("a", "b")), "<", Num(0.05)),
            cmp(Call("height", ("a",)), ">=", Num(0.1)),
            cmp(Call("y", ("a",)), "<", Call("y", ("b",))),
            cmp(Num(0.3), ">", Call("x", ("a",))),
            cmp(Call("height", ("a",)), "<", Num(-5.0)),
        ],
        obs,
        options=RAW,
    ).values
    np.testing.assert_allclose(s["dist(a,b)<0.05"], soft((0.05 - math.hypot(0.04, 0.02)) / 0.1), atol=1e-6)
    np.testing.assert_allclose(s["height(a)>=0.1"], soft((0.15 - 0.1) / 0.1), atol=1e-6)
    np.testing.assert_allclose(s["y(a)<y(b)"], soft(0.04 / 0.1), atol=1e-6)
    np.testing.assert_allclose(s["0.3>x(a)"], soft(0.1 / 0.1), atol=1e-6)
    np.testing.assert_allclose(s["height(a)<-5"], soft((-5 - 0.15) / 0.1), atol=1e-6)


def test_compare_scale_override():
    obs = make_obs(("a", "b"), 2, positions={"a": [0, 0, 0], "b": [0.04, 0, 0]})
    node = cmp(Call("dist", ("a", "b")), "<", Num(0.05))
    opts = PredicateOptions(smooth=0, compare_scales={"dist": 0.02})
    np.testing.assert_allclose(sig(node, obs, opts), soft(0.01 / 0.02), atol=1e-6)


def test_compare_2d_image_units():
    obs = make_obs(("a",), 2, boxes={"a": [10, 20, 30, 60]}, H=100, W=200)
    s = compute_signals(
        [cmp(Call("x", ("a",)), "<", Num(0.2)), cmp(Call("area", ("a",)), ">", Num(0.035)),
         cmp(Call("height", ("a",)), ">", Num(0.5))], obs, options=RAW,
    ).values
    np.testing.assert_allclose(s["x(a)<0.2"], soft((0.2 - 20 / 200) / 0.1), atol=1e-6)
    np.testing.assert_allclose(s["area(a)>0.035"], soft((20 * 40 / 20000 - 0.035) / 0.02), atol=1e-6)
    np.testing.assert_allclose(s["height(a)>0.5"], soft(((1 - 40 / 100) - 0.5) / 0.1), atol=1e-6)


# ------------------------------------------------------------------------------------------ 2-D image
def test_near_2d_from_boxes_relative_to_size():
    obs = make_obs(("a", "b"), 3, boxes={"a": [0, 0, 10, 10], "b": [20, 0, 30, 10]})
    s = math.hypot(10, 10)
    thr = max(1.5 * s, 0.02 * math.hypot(100, 100))
    np.testing.assert_allclose(sig(atom("near", "a", "b"), obs), soft((thr - 20) / thr), atol=1e-6)
    thr2 = 0.1 * math.hypot(100, 100)  # explicit d: fraction of the image diagonal
    np.testing.assert_allclose(sig(atom("near", "a", "b", d=0.1), obs), soft((thr2 - 20) / thr2), atol=1e-6)


def test_touching_2d_box_gap():
    s = math.hypot(10, 10)
    for bx1, gap in ((12, 2.0), (8, -2.0)):
        obs = make_obs(("a", "b"), 2, boxes={"a": [0, 0, 10, 10], "b": [bx1, 0, bx1 + 10, 10]})
        expected = soft((0.05 * s - gap) / (0.25 * s))
        np.testing.assert_allclose(sig(atom("touching", "a", "b"), obs), expected, atol=1e-6)


def test_relations_2d():
    obs = make_obs(("a", "b"), 2, boxes={"a": [10, 10, 20, 20], "b": [30, 40, 40, 50]})
    half = 0.5 * math.hypot(10, 10)
    np.testing.assert_allclose(sig(atom("above", "a", "b"), obs), soft(30 / half), atol=1e-6)
    np.testing.assert_allclose(sig(atom("left_of", "a", "b"), obs), soft(20 / half), atol=1e-6)
    np.testing.assert_allclose(sig(atom("right_of", "a", "b"), obs), soft(-20 / half), atol=1e-6)
    d = 0.1 * math.hypot(100, 100)
    np.testing.assert_allclose(sig(atom("left_of", "a", "b", d=0.1), obs), soft((20 - d) / half), atol=1e-6)


def test_on_2d_stacked_and_beside():
    stacked = make_obs(("a", "b"), 1, boxes={"a": [12, 30, 22, 40], "b": [10, 40, 30, 60]})
    sa = math.hypot(10, 10)
    rh = soft(min(17 - 10, 30 - 17) / 10)
    rv = soft(min(40 - (40 - 0.1 * sa), 60 - 40) / (0.25 * sa))
    np.testing.assert_allclose(sig(atom("on", "a", "b"), stacked), min(rh, rv), atol=1e-6)
    beside = make_obs(("a", "b"), 1, boxes={"a": [40, 50, 50, 60], "b": [10, 40, 30, 60]})
    assert sig(atom("on", "a", "b"), beside)[0] < 0


def test_inside_2d_boxes_and_masks():
    obs = make_obs(("a", "b"), 1, boxes={"a": [0, 0, 10, 10], "b": [5, 0, 50, 50]})
    np.testing.assert_allclose(sig(atom("inside", "a", "b"), obs), (0.5 - 0.9) / 0.9, atol=1e-6)
    np.testing.assert_allclose(sig(atom("inside", "a", "b", q=0.4), obs), (0.5 - 0.4) / 0.6, atol=1e-6)
    masks = np.zeros((2, 1, 100, 100), bool)
    masks[0, 0, 2:6, 2:7] = True  # 20 px
    masks[1, 0, :, 5:50] = True  # covers columns 5 and 6 of a: 8 px
    obs.masks = masks
    np.testing.assert_allclose(sig(atom("inside", "a", "b"), obs), (8 / 20 - 0.9) / 0.9, atol=1e-6)
    area = compute_signals([cmp(Call("area", ("a",)), ">", Num(0.001))], obs, options=RAW).values
    np.testing.assert_allclose(area["area(a)>0.001"], soft((20 / 10000 - 0.001) / 0.02), atol=1e-6)


def test_at_2d():
    obs = make_obs(("a", "zone"), 1, boxes={"a": [18, 18, 22, 22], "zone": [10, 10, 50, 30]})
    np.testing.assert_allclose(sig(atom("at", "a", "zone"), obs), soft(min(10, 40, 10, 10) / (0.5 * 20)), atol=1e-6)
    obs2 = make_obs(("a", "zone"), 1, boxes={"a": [58, 18, 62, 22], "zone": [10, 10, 50, 30]})
    np.testing.assert_allclose(sig(atom("at", "a", "zone"), obs2), soft(-10 / (0.5 * 20)), atol=1e-6)  # 10 px outside


def test_lifted_and_moving_2d():
    T = 10
    y0 = np.r_[np.zeros(5), np.full(5, -15.0)]  # rises 15 px on frame 5
    boxes = np.stack([np.full(T, 40.0), 60 + y0, np.full(T, 50.0), 80 + y0], axis=1)
    obs = make_obs(("a",), T, boxes={"a": boxes}, fps=10.0)
    r = sig(atom("lifted", "a"), obs)
    thr = 0.5 * 20  # half the box height
    np.testing.assert_allclose(r[:5], -0.5, atol=1e-6)  # rise 0: one scale below
    np.testing.assert_allclose(r[5:], soft((15 - thr) / thr), atol=1e-6)
    m = sig(atom("moving", "a"), obs)  # 15 px jump over 2 frames (0.2 s) at frames 4 and 5
    vthr = max(0.5 * math.hypot(10, 20), 0.01 * math.hypot(100, 100))
    np.testing.assert_allclose(m[[4, 5]], soft((75 - vthr) / vthr), atol=1e-5)
    np.testing.assert_allclose(m[[0, 1, 2, 8, 9]], -0.5, atol=1e-6)  # at rest: one scale below


def test_holding_2d_with_opening_and_by_following():
    T = 20
    rise = np.where(np.arange(T) < 10, 0.0, 2.0 * (np.arange(T) - 9))
    obj = np.stack([np.full(T, 40.0), 60 - rise, np.full(T, 50.0), 80 - rise], axis=1)
    grip = obj + np.array([-2.0, -8.0, 2.0, -12.0])  # overlaps the top of the object
    opening = np.r_[np.ones(5), np.full(15, 0.3)]
    with_open = make_obs(("g", "o"), T, boxes={"g": grip, "o": obj}, gripper_opening={"g": opening})
    r = sig(atom("holding", "g", "o"), with_open)
    # boxes overlap by 8 px (touching saturates at +1), so the closed-gripper cue decides
    np.testing.assert_allclose(r, np.r_[np.full(5, -1.0), np.full(15, (0.8 - 0.3) / 0.8)], atol=1e-6)
    follow = make_obs(("g", "o"), T, boxes={"g": grip, "o": obj})
    r2 = sig(atom("holding", "g", "o"), follow)  # no opening: the object rising with the gripper decides
    np.testing.assert_allclose(r2[:9], -0.5, atol=1e-6)  # at rest: lifted one scale below
    assert (r2[10:] > soft(0.7)).all()
    apart = make_obs(("g", "o"), T, boxes={"g": grip + np.array([40, 0, 40, 0]), "o": obj})
    assert (sig(atom("holding", "g", "o"), apart) < 0).all()


def test_gripper_open_closed_ramp():
    opening = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    obs = make_obs(("g",), 5, boxes={"g": [0, 0, 5, 5]}, gripper_opening={"g": opening})
    np.testing.assert_allclose(sig(atom("gripper_open", "g"), obs), [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(sig(atom("gripper_closed", "g"), obs), [1, 0.5, 0, -0.5, -1])
    np.testing.assert_allclose(ramp(opening, 0.8), [-1, -0.6875, -0.375, -0.0625, 1.0])


# ------------------------------------------------------------------------------------------ visibility
def test_unseen_entity_is_negative_by_visibility_margin():
    boxes = np.tile(np.array([0, 0, 10, 10], np.float32), (4, 1))
    boxes[3] = np.nan
    vis = np.array([1.0, 0.3, 0.9, 0.0], np.float32)
    obs = make_obs(("a", "b"), 4, boxes={"a": boxes, "b": [12, 0, 22, 10]}, visibility={"a": vis})
    r = sig(atom("near", "a", "b"), obs)
    thr = 1.5 * math.hypot(10, 10)
    geo = soft((thr - 12) / thr)
    np.testing.assert_allclose(r, [geo, (0.3 - 0.5) / 0.5, min(geo, 0.8), -1.0], atol=1e-6)
    np.testing.assert_allclose(sig(atom("visible", "a"), obs), [1.0, -0.4, 0.8, -1.0], atol=1e-6)
    np.testing.assert_allclose(sig(atom("visible", "a", p=0.2), obs), [1.0, 0.125, 0.875, -1.0], atol=1e-6)


def test_3d_unknown_position_is_minus_one():
    pos = np.zeros((3, 3))
    pos[1] = np.nan
    obs = make_obs(("a", "b"), 3, positions={"a": pos, "b": [0.01, 0, 0]})
    np.testing.assert_allclose(sig(atom("near", "a", "b"), obs), [soft(0.9), -1.0, soft(0.9)], atol=1e-6)


# ------------------------------------------------------------------------------------------ smoothing
def test_one_frame_flicker_removed_by_default_smoothing():
    x = np.zeros((12, 3))
    x[:, 0] = 0.02
    x[6, 0] = 0.5  # one-frame tracking glitch
    obs = make_obs(("a", "b"), 12, positions={"a": x, "b": [0, 0, 0]})
    raw = sig(atom("near", "a", "b"), obs, RAW)
    assert raw[6] == pytest.approx(soft(-4.0))  # 0.5 m: four scales out
    smooth = sig(atom("near", "a", "b"), obs, PredicateOptions())
    np.testing.assert_allclose(smooth, soft(0.8), atol=1e-6)


def test_median_smooth_edges_and_even_window():
    x = np.array([1.0, -1.0, 1.0, 1.0, -1.0, -1.0])
    np.testing.assert_array_equal(median_smooth(x, 3), [1, 1, 1, 1, -1, -1])
    np.testing.assert_array_equal(median_smooth(x, 2), median_smooth(x, 3))
    np.testing.assert_array_equal(median_smooth(x, 1), x)


# ------------------------------------------------------------------------------------------ text atoms
def test_quoted_and_bare_proposition_read_atoms():
    p = np.array([0.0, 0.25, 0.8, 1.0], np.float32)
    obs = make_obs(("a",), 4, atoms={"the drawer is open": p, "door_open": p[::-1]})
    s = compute_signals([Quoted("the drawer is open"), atom("door_open")], obs, options=RAW)
    np.testing.assert_allclose(s.values['"the drawer is open"'], 2 * p - 1, atol=1e-6)
    np.testing.assert_allclose(s.values["door_open"], 2 * p[::-1] - 1, atol=1e-6)
    assert s.support['"the drawer is open"'] == () and s.support["door_open"] == ()


# ------------------------------------------------------------------------------------------ errors
def test_gripper_open_without_opening_names_predicate_grounder_and_fix():
    obs = make_obs(("left",), 3, boxes={"left": [0, 0, 5, 5]}, source="color")
    with pytest.raises(CapabilityError) as ei:
        compute_signals([atom("gripper_open", "left")], obs)
    msg = str(ei.value)
    assert "gripper_open(left)" in msg and "'color'" in msg
    assert "grippers.left.opening" in msg and "vlm" in msg


def test_grounder_argument_wins_over_obs_source():
    obs = make_obs(("left",), 3, source="color")
    with pytest.raises(CapabilityError, match="grounder 'mine'"):
        compute_signals([atom("gripper_closed", "left")], obs, grounder="mine")


def test_quoted_atom_without_text_answers():
    obs = make_obs(("a",), 3, source="color")
    with pytest.raises(CapabilityError) as ei:
        compute_signals([Quoted("the drawer is open")], obs)
    msg = str(ei.value)
    assert '"the drawer is open"' in msg and "'color'" in msg and "--grounder vlm" in msg
    with pytest.raises(CapabilityError, match="door_open"):
        compute_signals([atom("door_open")], obs)


def test_3d_required_without_positions():
    obs = make_obs(("a", "b"), 3, boxes={"a": [0, 0, 5, 5], "b": [6, 0, 9, 5]}, source="color")
    with pytest.raises(CapabilityError, match=r"near\(a,b\).*'color'.*no 3-D positions.*--grounder state"):
        compute_signals([atom("near", "a", "b")], obs, options=PredicateOptions(space="3d"))


def test_left_of_needs_image_geometry():
    obs = make_obs(("a", "b"), 3, positions={"a": [0, 0, 0], "b": [1, 0, 0]}, source="state")
    with pytest.raises(CapabilityError, match=r"left_of\(a,b\).*'state'.*camera"):
        compute_signals([atom("left_of", "a", "b")], obs)


def test_unknown_option_entity_and_numeric_misuse():
    obs = make_obs(("a", "b"), 3, positions={"a": [0, 0, 0], "b": [1, 0, 0]})
    with pytest.raises(CapabilityError, match=r"unknown option 'z' for near .*options: d"):
        compute_signals([atom("near", "a", "b", z=1)], obs)
    with pytest.raises(CapabilityError, match=r"no observations of entity 'c'.*observed: a, b"):
        compute_signals([atom("near", "a", "c")], obs)
    with pytest.raises(CapabilityError, match="numeric function"):
        compute_signals([atom("dist", "a", "b")], obs)
    with pytest.raises(CapabilityError, match="not a numeric function"):
        compute_signals([cmp(Call("near", ("a", "b")), "<", Num(1))], obs)
    with pytest.raises(CapabilityError, match="takes 2 argument"):
        compute_signals([atom("near", "a")], obs)
    with pytest.raises(CapabilityError, match="fraction in"):
        compute_signals([atom("gripper_open", "a", p=2)], obs)
    with pytest.raises(ValueError, match="options: d"):
        PredicateOptions(defaults={"near": {"x": 1.0}})


def test_options_defaults_override_catalogue_default():
    obs = make_obs(("a", "b"), 2, positions={"a": [0, 0, 0], "b": [0.04, 0, 0]})
    opts = PredicateOptions(smooth=0, defaults={"near": {"d": 0.05}})
    np.testing.assert_allclose(sig(atom("near", "a", "b"), obs, opts), soft(0.2), atol=1e-6)


# ------------------------------------------------------------------------------------------ properties
def test_boolean_verdict_matches_threshold_on_random_positions():
    rng = np.random.default_rng(0)
    T = 200
    pa, pb = rng.uniform(-0.2, 0.2, (T, 3)), rng.uniform(-0.2, 0.2, (T, 3))
    obs = make_obs(("a", "b"), T, positions={"a": pa, "b": pb})
    dist = np.linalg.norm(pa - pb, axis=1)
    r = sig(atom("near", "a", "b"), obs)
    np.testing.assert_array_equal(r > 0, dist < 0.10)
    r2 = sig(atom("above", "a", "b"), obs)
    np.testing.assert_array_equal(r2 > 0, pa[:, 2] > pb[:, 2])


def test_every_predicate_in_range_on_2d_and_3d():
    rng = np.random.default_rng(1)
    T = 50
    xy = rng.uniform(10, 80, (2, T, 2))
    boxes = {e: np.concatenate([xy[i], xy[i] + 12], axis=1) for i, e in enumerate("ab")}
    pos = {e: rng.uniform(-0.1, 0.1, (T, 3)) for e in "ab"}
    opening = {"a": rng.uniform(0, 1, T)}
    for obs in (make_obs(("a", "b"), T, boxes=boxes, gripper_opening=opening),
                make_obs(("a", "b"), T, boxes=boxes, positions=pos, gripper_opening=opening)):
        nodes = [atom(p.name, *("a", "b")[: len(p.params)]) for p in PREDICATES.values() if not p.numeric]
        nodes += [cmp(Call(p.name, ("a", "b")[: len(p.params)]), "<", Num(0.1)) for p in PREDICATES.values()
                  if p.numeric]
        s = compute_signals(nodes, obs)
        assert len(s.values) == len(nodes)
        for key, v in s.values.items():
            assert v.shape == (T,) and v.dtype == np.float32, key
            assert np.isfinite(v).all() and (v >= -1).all() and (v <= 1).all(), key


def test_markdown_table_lists_every_predicate_with_defaults():
    md = predicate_table_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| predicate | params | options")
    for p in PREDICATES.values():
        row = next(line for line in lines if line.startswith(f"| `{p.name}`"))
        assert row.count(" | ") >= 5
        for k, v in p.options:
            assert f"{k}={v:g}" in row
    assert "0.10 m" in md and "1.5 × mean" in md and "x / (1 + |x|)" in md


def test_holding_3d_contact_with_open_gripper_is_not_holding():
    contact = np.array([1, 1, 1, 0], bool)
    opening = np.array([1.0, 0.4, 0.4, 0.4])
    obs = make_obs(
        ("g", "o"), 4, positions={"g": [0, 0, 0.08], "o": [0, 0, 0]},
        contacts={("g", "o"): contact}, gripper_opening={"g": opening},
    )
    closed = (0.8 - 0.4) / 0.8
    # frame 0 bumps with an open gripper; frame 3 is closed but 8 cm away and not in contact
    np.testing.assert_allclose(sig(atom("holding", "g", "o"), obs), [-1.0, closed, closed, soft(-0.6)], atol=1e-6)


def test_track_with_wrong_length_is_a_grounding_error():
    from ltlreward.errors import GroundingError

    obs = make_obs(("g",), 4, gripper_opening={"g": np.ones(3)}, source="state")
    with pytest.raises(GroundingError, match=r"gripper_opening\['g'\].*'state'.*3 frames.*4"):
        compute_signals([atom("gripper_open", "g")], obs)


def test_median_window_five_and_three_agree_with_numpy():
    x = np.random.default_rng(3).uniform(-1, 1, 40)
    for w in (3, 5):
        padded = np.pad(x, w // 2, mode="edge")
        ref = np.array([np.median(padded[i : i + w]) for i in range(40)])
        np.testing.assert_allclose(median_smooth(x, w), ref)


def test_all_predicates_in_range_with_masks_and_partial_visibility():
    rng = np.random.default_rng(4)
    T = 30
    xy = rng.uniform(10, 70, (2, T, 2))
    boxes = {e: np.concatenate([xy[i], xy[i] + 15], axis=1) for i, e in enumerate("ab")}
    boxes["a"][5:8] = np.nan
    obs = make_obs(("a", "b"), T, boxes=boxes, visibility={"b": rng.uniform(0, 1, T)})
    masks = np.zeros((2, T, 100, 100), bool)
    for i, e in enumerate("ab"):
        for t in range(T):
            if np.isfinite(boxes[e][t]).all():
                x0, y0, x1, y1 = boxes[e][t].astype(int)
                masks[i, t, y0:y1, x0:x1] = True
    obs.masks = masks
    nodes = [atom(p.name, *("a", "b")[: len(p.params)]) for p in PREDICATES.values()
             if not p.numeric and not p.name.startswith("gripper")]
    s = compute_signals([*nodes, cmp(Call("area", ("a",)), ">", Call("area", ("b",)))], obs, options=RAW)
    for key, v in s.values.items():
        assert np.isfinite(v).all() and (np.abs(v) <= 1).all(), key
        if "a" in s.support[key]:
            np.testing.assert_array_equal(v[5:8], -1.0, err_msg=key)  # a unseen → -1
