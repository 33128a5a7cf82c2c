"""The simulator-labelled benchmark generator: camera maths, labels, sidecars, and a tiny rendered episode."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.simlabel.common import (  # noqa: E402
    Episode,
    gl_camera_to_sidecar,
    label_record,
    project,
    sidecar_dict,
    write_episode,
)
from ltlreward.grounding.backends.state import Camera, parse_sidecar  # noqa: E402


def _episode(success, T=6) -> Episode:
    cam = gl_camera_to_sidecar(np.array([0.0, -1.0, 0.5]), np.array([0.0, 1.0, 0.0]), np.array([0, 0, 1.0]),
                               0.01, 0.01 * np.tan(np.radians(22.5)), 64, 64)
    t = np.linspace(0, 1, T)[:, None]
    return Episode(
        suite="toy", task="toy_push", failure_mode="none", seed=3, fps=10.0,
        frames=np.zeros((T, 64, 64, 3), np.uint8),
        positions={"obj": np.hstack([t * 0.1, np.zeros((T, 1)), np.full((T, 1), 0.5)]),
                   "goal": np.tile([0.1, 0.0, 0.5], (T, 1)), "gripper": np.tile([0.0, 0.0, 0.6], (T, 1))},
        sizes={"obj": (0.04, 0.04, 0.04)}, openings={"gripper": np.linspace(1, 0.3, T)},
        contacts={("gripper", "obj"): np.array([0, 0, 1, 1, 1, 0], bool)[:T]},
        success=np.asarray(success, bool), camera=cam, description="toy")


def test_camera_projection_is_right_side_up_and_centred():
    # camera 1 m behind the origin along −y, looking along +y with z up, 45° vertical field of view
    cam = gl_camera_to_sidecar(np.array([0.0, -1.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]),
                               0.01, 0.01 * np.tan(np.radians(22.5)), 224, 224)
    uv = project(cam, np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.1]]))
    f = 112 / np.tan(np.radians(22.5))
    assert uv[0] == pytest.approx([112, 112])
    assert uv[1] == pytest.approx([112 + 0.1 * f, 112])  # +x is to the right
    assert uv[2] == pytest.approx([112, 112 - 0.1 * f])  # up is up (smaller row)
    c = Camera(np.array(cam["intrinsics"]), np.array(cam["extrinsics"]), 224, 224)
    assert c.project(np.array([0.1, 0.0, 0.0])) == pytest.approx(uv[1], abs=1e-3)  # same as the grounder


def test_label_record_from_the_simulator_success_series():
    rec = label_record(_episode([0, 0, 1, 1, 0, 0]), "toy_0001", "videos/toy_0001.mp4", "specs/x.ltl")
    assert (rec["success"], rec["success_any"], rec["first_success_frame"]) == (False, True, 2)
    assert rec["success_fraction"] == pytest.approx(2 / 6, abs=1e-4)
    rec = label_record(_episode([0, 0, 0, 0, 1, 1]), "toy_0002", "v.mp4", None)
    assert (rec["success"], rec["first_success_frame"], rec["seed"], rec["failure_mode"]) == (True, 4, 3, "none")


def test_sidecar_is_valid_for_the_state_grounder():
    raw = sidecar_dict(_episode([0] * 6))
    sc = parse_sidecar(json.loads(json.dumps(raw)), "toy.sidecar.json")
    assert sc.n_frames == 6 and set(sc.entity_names) == {"obj", "goal", "gripper"}
    assert sc.contacts[("gripper", "obj")].tolist() == [False, False, True, True, True, False]
    assert sc.grippers["gripper"][0] == 1.0 and sc.camera.width == 64


def test_write_episode_files(tmp_path):
    rec = write_episode(_episode([0, 1, 1, 1, 1, 1]), tmp_path, "toy_0003", spec="specs/x.ltl")
    assert rec["video"] == "videos/toy_0003.mp4" and rec["success"] is True
    assert (tmp_path / "videos" / "toy_0003.mp4").stat().st_size > 0
    from ltlreward.grounding.backends.state import load_sidecar

    assert load_sidecar(tmp_path / "videos" / "toy_0003.sidecar.json").n_frames == 6


def _rendering() -> tuple[bool, str]:
    if importlib.util.find_spec("mujoco") is None or importlib.util.find_spec("metaworld") is None:
        return False, "mujoco / metaworld not installed (pip install 'ltlreward[sim]')"
    from benchmarks.simlabel.render import rendering_available

    ok, why = rendering_available()
    return ok, f"MuJoCo offscreen rendering unavailable: {why}"


@pytest.mark.slow
def test_metaworld_episode_smoke_is_deterministic(tmp_path):
    ok, why = _rendering()
    if not ok:
        pytest.skip(why)
    from benchmarks.simlabel.generate import generate
    from benchmarks.simlabel.metaworld_tasks import run_episode

    a = run_episode("mw_reach", 5, mode="none", horizon=16)
    b = run_episode("mw_reach", 5, mode="none", horizon=16)
    assert a.frames.shape == (4, 224, 224, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames) and np.allclose(a.positions["goal"], b.positions["goal"])
    assert a.frames.std() > 5  # something was drawn
    # labels are the simulator's: success ⇔ the gripper is within 5 cm of the goal (reach-v3's own check)
    d = np.linalg.norm(a.positions["gripper"] - a.positions["goal"], axis=1)
    assert np.array_equal(a.success, d <= 0.05 + 1e-3) or np.array_equal(a.success, d <= 0.05 - 1e-3)
    man = generate(["mw_reach"], 1, tmp_path, seed=0, workers=1, progress=False)
    assert man["n_items"] == 1 and not man["errors"]
    rec = json.loads((tmp_path / "labels.jsonl").read_text())
    assert rec["task"] == "mw_reach" and rec["spec"] == "specs/metaworld_reach.ltl"
    assert (tmp_path / rec["video"]).exists()


def test_segmenter_maps_geoms_and_sites_to_entity_masks():
    from benchmarks.simlabel.common import GEOM, SITE, Segmenter

    seg = Segmenter.build(5, 3, {"obj": {1, 2}, "gripper": {4}}, {"goal": {0}})
    assert seg.names == ("obj", "gripper", "goal")
    buf = np.array([[[1, GEOM], [4, GEOM], [0, SITE]],
                    [[-1, -1], [0, GEOM], [2, GEOM]]], np.int32)  # (H=2, W=3, 2): object id, object type
    lab = seg(buf)
    assert lab.tolist() == [[0, 1, 2], [-1, -1, 0]]  # geom 0 belongs to nobody; site 0 is the goal
    masks = seg.masks([lab, np.full((2, 3), -1)])
    assert masks["obj"].shape == (2, 2, 3) and masks["obj"][0].tolist() == [[True, False, False], [False, False, True]]
    assert not masks["goal"][1].any()


def test_write_episode_with_ground_truth_masks(tmp_path):
    ep = _episode([0, 1, 1, 1, 1, 1])
    m = np.zeros((6, 64, 64), bool)
    m[:3, 10:20, 10:20] = True
    ep.masks = {"obj": m, "goal": np.zeros_like(m)}
    rec = write_episode(ep, tmp_path, "toy_0004")
    assert rec["natural"] is True and rec["visible_fraction"] == {"obj": 0.5, "goal": 0.0}
    side = json.loads((tmp_path / "videos" / "toy_0004.sidecar.json").read_text())
    assert side["meta"]["segmentation"] == "toy_0004.seg.npz"
    with np.load(tmp_path / "videos" / "toy_0004.seg.npz") as z:
        assert np.array_equal(z["obj"], m)


def test_natural_render_keeps_colours_and_masks_follow_the_scene():
    ok, why = _rendering()
    if not ok:
        pytest.skip(why)
    from benchmarks.simlabel.metaworld_tasks import run_episode

    rep = run_episode("mw_push", 1, mode="none", horizon=8)
    nat = run_episode("mw_push", 1, mode="none", horizon=8, natural=True)
    assert rep.masks is None and set(nat.masks) == {"gripper", "arm", "obj", "goal"}
    assert np.allclose(rep.positions["obj"], nat.positions["obj"])  # same episode, only the look differs
    assert not np.array_equal(rep.frames, nat.frames)
    for name, m in nat.masks.items():
        assert m.shape == nat.frames.shape[:3] and m.any(axis=(1, 2)).all(), name
    # the projected object centre is the centre of its ground-truth mask (the camera is the mono average of
    # the two eye cameras; the left eye alone was ipd/2 = 3.4 cm off, 9 px at this distance)
    from benchmarks.simlabel.common import project

    u, v = np.round(project(nat.camera, nat.positions["obj"][-1])).astype(int)
    ys, xs = np.nonzero(nat.masks["obj"][-1])
    assert abs(xs.mean() - u) < 2 and abs(ys.mean() - v) < 2  # within the disc of a 4 cm puck
