"""Agreement baselines (issue #18 item 12): the last-frame check looks at the task object the spec's end-state
atoms name, not the first non-gripper entity of the sidecar, and the VLM judge is skipped before any video
when no model is configured."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ltlreward.agree import BASELINES, LabelItem, agreement, goal_entities, last_frame_heuristic, task_object
from ltlreward.spec import parse_spec

# Meta-World-like: the sidecar lists the arm's `hand` first (not a gripper), then the puck and the goal
PUCK = """task "Put the puck at the goal"
entity hand = "robot hand"
entity obj = "red puck"
entity goal = "goal marker" : region
constraint near_first "the hand reaches the puck first": !moving(obj) U (dist(hand, obj) < 0.1m)
constraint at_goal [weight=2] "the puck ends within 7 cm of the goal": F G (dist(obj, goal) < 0.07m)
"""
REACH = """task "Reach the goal"
entity gripper = "gripper" : gripper
entity goal = "goal marker" : region
constraint at_goal "the gripper ends at the goal": F G (dist(gripper, goal) < 0.05m)
"""


def _episode(tmp_path, name, obj_final, hand_final=(0.3, 0.0, 0.2), T=12, video=True):
    """`name`.mp4 (flat grey) and its sidecar: hand, obj, goal (at the origin) and a gripper opening."""
    if video:
        from ltlreward.video import write_video

        write_video(tmp_path / f"{name}.mp4", np.full((T, 32, 32, 3), 90, np.uint8), 10)
    ramp = np.linspace(0, 1, T)[:, None]
    start = np.array([0.2, 0.1, 0.02])
    side = {"version": 1, "fps": 10, "n_frames": T,
            "entities": {"hand": {"position": (start + ramp * (np.array(hand_final) - start)).tolist()},
                         "obj": {"position": (start + ramp * (np.array(obj_final) - start)).tolist()},
                         "goal": {"position": [[0.0, 0.0, 0.02]] * T}},
            "grippers": {"gripper": {"opening": [0.5] * T}}}
    (tmp_path / f"{name}.sidecar.json").write_text(json.dumps(side))
    return str(tmp_path / f"{name}.mp4")


def test_goal_entities_are_the_entities_of_the_end_state_atoms():
    assert goal_entities(parse_spec(PUCK)) == ["obj", "goal"]
    assert goal_entities(parse_spec(REACH)) == ["gripper", "goal"]
    handover = parse_spec((__import__("pathlib").Path(__file__).parents[1] / "specs" / "handover.ltl").read_text())
    assert goal_entities(handover) == ["right", "bottle", "left"]


def test_last_frame_checks_the_task_object_not_the_first_sidecar_entity(tmp_path):
    from ltlreward.grounding.backends.state import load_sidecar

    video = _episode(tmp_path, "a", obj_final=(0.01, 0.0, 0.02), video=False)  # the puck ends 1 cm from the goal
    c = last_frame_heuristic(video, parse_spec(PUCK))
    assert (c.verdict, c.object, c.goal, c.how) == (True, "obj", "goal", "the spec's end-state atoms")
    assert c.score == pytest.approx(-0.01, abs=1e-12)
    # without a spec the old rule still applies, and it takes the hand (30 cm away in x, 18 cm up)
    old = last_frame_heuristic(video)
    assert (old.verdict, old.object) == (False, "hand")
    assert old.score == pytest.approx(-np.hypot(0.3, 0.18), abs=1e-12)
    # reach: the gripper is what must arrive; the sidecar's `gripper` is only an opening here, so the
    # spec's entity is not tracked and the fallback is used
    sc = load_sidecar(tmp_path / "a.sidecar.json")
    assert task_object(parse_spec(REACH), sc) == ("hand", "goal", "the first sidecar entity that is not a gripper")


def test_the_last_frame_baseline_agrees_with_labels_of_the_task_object(tmp_path):
    spec = tmp_path / "puck.ltl"
    spec.write_text(PUCK)
    finals = [((0.01, 0, 0.02), True), ((0.0, 0.02, 0.02), True), ((0.25, 0, 0.02), False), ((0.2, 0.1, 0.02), False)]
    items = [LabelItem(_episode(tmp_path, f"v{i}", f), label, task="puck", spec=str(spec))
             for i, (f, label) in enumerate(finals)]
    rep = agreement(items, grounder="state", baselines=["last_frame"], n_boot=0)
    last = rep.methods[1]
    assert last.confusion == {"tp": 2, "fp": 0, "fn": 0, "tn": 2}  # the hand (always 36 cm off) would give tp 0
    assert "last_frame: checked obj (the spec's end-state atoms) on 4 video(s)" in rep.notes


def test_vlm_baseline_is_skipped_before_any_video_when_no_model_is_configured(tmp_path, monkeypatch):
    from ltlreward.agree import baselines

    cfg = tmp_path / "ltlreward.toml"
    cfg.write_text(f'[models]\nvlm = "{tmp_path / "no_such_model"}"\n')
    monkeypatch.setenv("LTLREWARD_CONFIG", str(cfg))

    def never(*_a, **_k):
        raise AssertionError("the vlm baseline tried a video")

    monkeypatch.setattr(baselines, "score_with_specs", never)
    spec = tmp_path / "puck.ltl"
    spec.write_text(PUCK)
    items = [LabelItem(_episode(tmp_path, "v0", (0.0, 0.0, 0.02)), True, task="puck", spec=str(spec))]
    inp = baselines.BaselineInput(items, [it.video for it in items], [parse_spec(PUCK)], "state", n_boot=0)
    res = BASELINES.get("vlm")(inp)
    assert res.report.skipped.startswith("no vlm model is configured or found (GroundingError: model 'vlm': "
                                         f"directory {tmp_path / 'no_such_model'} not found")
    assert res.report.n == 0 and res.report.n_failed == 0
