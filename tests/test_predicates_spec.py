"""Predicates end to end: the handover spec of SPEC_LANGUAGE.md on scripted 3-D / 2-D handovers and drops."""

from __future__ import annotations

import numpy as np
import pytest

from ltlreward.grounding.observations import Observations
from ltlreward.predicates import compute_signals
from ltlreward.spec.parser import parse_spec
from ltlreward.spec.walk import spec_atoms

monitor_mod = pytest.importorskip("ltlreward.ltlf")

HANDOVER = """
task "Hand the bottle from the left arm to the right arm"
entity bottle = "red bottle"
entity left   = "left gripper"  : gripper
entity right  = "right gripper" : gripper
let held(o) := holding(left, o) | holding(right, o)
constraint grasp_first: !touching(right, bottle) U holding(left, bottle)
constraint exchange: F (holding(left, bottle) & holding(right, bottle))
constraint finish: F G (holding(right, bottle) & !holding(left, bottle))
constraint no_drop [weight=2]: G (lifted(bottle) -> held(bottle))
"""

T = 60
FPS = 10.0


def track(keys: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """(T, 3) piecewise-linear path through {frame: (x, y, z)} keyframes."""
    f = np.array(sorted(keys))
    v = np.array([keys[k] for k in f], float)
    t = np.arange(T)
    return np.stack([np.interp(t, f, v[:, i]) for i in range(3)], axis=1)


def steps(keys: dict[int, float]) -> np.ndarray:
    """(T,) opening that jumps to each value at its frame."""
    out = np.empty(T)
    for k in sorted(keys):
        out[k:] = keys[k]
    return out


def scene(drop: bool) -> dict[str, np.ndarray]:
    """Left grasps and lifts the bottle, right takes it (or, with drop, left lets go before right arrives)."""
    if drop:
        bottle = track({0: (0, 0, 0), 15: (0, 0, 0), 25: (0, 0, 0.2), 28: (0.1, 0, 0.2), 31: (0.1, 0, 0),
                        59: (0.1, 0, 0)})
        left_open = steps({0: 1.0, 12: 0.4, 28: 1.0})
    else:
        bottle = track({0: (0, 0, 0), 15: (0, 0, 0), 25: (0, 0, 0.2), 30: (0.1, 0, 0.2), 59: (0.1, 0, 0.2)})
        left_open = steps({0: 1.0, 12: 0.4, 40: 1.0})
    left = bottle + np.array([-0.02, 0, 0])
    left[:10] = track({0: (-0.3, 0, 0.1), 10: (-0.02, 0, 0)})[:10]
    release = 28 if drop else 40
    left[release:] = track({release: tuple(left[release]), 59: (-0.3, 0, 0.3)})[release:]
    right = track({0: (0.4, 0, 0.2), 30: (0.12, 0, 0.2), 59: (0.12, 0, 0.2)})
    right_open = steps({0: 1.0, 33: 0.4})
    return {"bottle": bottle, "left": left, "right": right, "left_open": left_open, "right_open": right_open}


def obs_3d(s: dict[str, np.ndarray]) -> Observations:
    ents = ("bottle", "left", "right")
    pos = np.stack([s[e] for e in ents]).astype(np.float32)
    nan = np.full((3, T, 4), np.nan, np.float32)
    return Observations(
        ents, T, 240, 320, FPS, nan, nan[..., :2], np.ones((3, T), np.float32), positions=pos,
        gripper_opening={"left": s["left_open"], "right": s["right_open"]}, source="state",
    )


def obs_2d(s: dict[str, np.ndarray], with_opening: bool) -> Observations:
    """Project the scene orthographically (x → column, z → row, 1 m = 400 px) with 24×40 px bottle and
    20×20 px gripper boxes."""
    ents = ("bottle", "left", "right")
    half = {"bottle": (12, 20), "left": (10, 10), "right": (10, 10)}
    boxes = []
    for e in ents:
        cx, cy = 160 + 400 * s[e][:, 0], 200 - 400 * s[e][:, 2]
        hx, hy = half[e]
        boxes.append(np.stack([cx - hx, cy - hy, cx + hx, cy + hy], axis=1))
    boxes = np.stack(boxes).astype(np.float32)
    centers = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], axis=-1)
    opening = {"left": s["left_open"], "right": s["right_open"]} if with_opening else {}
    return Observations(ents, T, 240, 320, FPS, boxes, centers, np.ones((3, T), np.float32),
                        gripper_opening=opening, source="color")


def verdicts(obs: Observations) -> dict[str, bool]:
    spec = parse_spec(HANDOVER)
    sig = compute_signals(spec_atoms(spec), obs)
    res = monitor_mod.monitor(spec, sig.values, fps=FPS)
    return {c.name: bool(c.satisfied[0]) if np.ndim(c.satisfied) else bool(c.satisfied) for c in res}


def test_handover_3d_success_and_drop():
    good = verdicts(obs_3d(scene(drop=False)))
    assert good == dict.fromkeys(("grasp_first", "exchange", "finish", "no_drop"), True)
    bad = verdicts(obs_3d(scene(drop=True)))
    assert bad == {"grasp_first": True, "exchange": False, "finish": False, "no_drop": False}


def test_handover_2d_with_observed_opening():
    assert all(verdicts(obs_2d(scene(drop=False), with_opening=True)).values())
    bad = verdicts(obs_2d(scene(drop=True), with_opening=True))
    assert bad == {"grasp_first": True, "exchange": False, "finish": False, "no_drop": False}


def test_handover_2d_colour_tracking_without_opening():
    assert all(verdicts(obs_2d(scene(drop=False), with_opening=False)).values())
    bad = verdicts(obs_2d(scene(drop=True), with_opening=False))
    assert bad == {"grasp_first": True, "exchange": False, "finish": False, "no_drop": False}


def test_signals_cover_every_atom_of_the_spec():
    spec = parse_spec(HANDOVER)
    atoms = spec_atoms(spec)
    sig = compute_signals(atoms, obs_3d(scene(drop=False)))
    assert set(sig.values) == {a.canonical for a in atoms}
    assert sig.support["holding(left,bottle)"] == ("left", "bottle")
