"""`color` backend: colour resolution, exact boxes on synthetic clips, tracking through occlusion, identity,
and agreement with the state ground truth on the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ltlreward.errors import GroundingError
from ltlreward.grounding.backends.color import (
    COLOR_RANGES,
    ColorGrounder,
    entity_hsv_range,
    gripper_opening_from_mask,
)
from ltlreward.grounding.backends.state import StateGrounder
from ltlreward.spec.ast import Entity
from ltlreward.video import Video, read_video

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HANDOVER = (Entity("bottle", "red bottle"), Entity("left", "left gripper", "gripper", (("color", "blue"),)),
            Entity("right", "right gripper", "gripper", (("color", "green"),)))
PICK = (Entity("block", "red block"), Entity("gripper", "gripper", "gripper", (("color", "blue"),)),
        Entity("plate", "yellow plate", "surface"))
RED, BLUE, GRAY = (220, 30, 40), (40, 90, 220), (150, 150, 150)


def _clip(T=10, H=64, W=80) -> np.ndarray:
    return np.full((T, H, W, 3), 235, np.uint8)


# --------------------------------------------------------------------------------------- colour resolution
def test_colour_from_hint_hsv_or_prompt():
    assert entity_hsv_range(Entity("b", "red bottle")) == COLOR_RANGES["red"]
    assert entity_hsv_range(Entity("b", "a Blue block")) == COLOR_RANGES["blue"]
    assert entity_hsv_range(Entity("b", "bottle", hints=(("color", "grey"),))) == COLOR_RANGES["gray"]
    hsv = (0.0, 120.0, 70.0, 10.0, 255.0, 255.0)
    assert entity_hsv_range(Entity("b", "red bottle", hints=(("hsv", hsv),))) == (0, 120, 70, 10, 255, 255)
    # the hint beats the prompt's colour word
    assert entity_hsv_range(Entity("b", "red bottle", hints=(("color", "green"),))) == COLOR_RANGES["green"]


def test_no_colour_says_how_to_add_one():
    with pytest.raises(GroundingError, match=r"entity 'left' \('left gripper'\) has no colour .* add color=<name> or "
                                             r"hsv=\(h_lo,s_lo,v_lo,h_hi,s_hi,v_hi\)"):
        ColorGrounder().ground(Video(_clip(), fps=10), [Entity("left", "left gripper", "gripper")])


def test_bad_hints():
    with pytest.raises(GroundingError, match=r"unknown color='chartreuse'; known colours: black, blue"):
        entity_hsv_range(Entity("b", "x", hints=(("color", "chartreuse"),)))
    with pytest.raises(GroundingError, match=r"hsv= hint must be 6 numbers"):
        entity_hsv_range(Entity("b", "x", hints=(("hsv", (0.0, 1.0, 2.0)),)))
    with pytest.raises(GroundingError, match=r"hsv= hint must be 6 numbers .* got \(0, 0, 0, 200, 255, 255\)"):
        entity_hsv_range(Entity("b", "x", hints=(("hsv", (0, 0, 0, 200, 255, 255)),)))


# --------------------------------------------------------------------------------------- synthetic clips
@pytest.mark.parametrize("downsample", [1, 2])
def test_exact_boxes_masks_and_wrapping_red(downsample):
    frames = _clip()
    for t in range(10):
        frames[t, 10:30, 5 + 3 * t: 21 + 3 * t] = RED  # a 16 × 20 red box moving right by 3 px per frame
        frames[t, 40:50, 60:70] = BLUE
    ents = [Entity("r", "thing", hints=(("hsv", (170, 90, 60, 10, 255, 255)),)), Entity("b", "blue cube")]
    obs = ColorGrounder(downsample=downsample).ground(Video(frames, fps=10), ents)
    x0 = 5 + 3 * np.arange(10)
    np.testing.assert_allclose(obs.boxes[0], np.stack([x0, 10 + 0 * x0, x0 + 16, 30 + 0 * x0], 1), atol=0.01)
    np.testing.assert_allclose(obs.centers[0, :, 0], x0 + 8, atol=0.01)
    np.testing.assert_allclose(obs.boxes[1], [[60, 40, 70, 50]] * 10, atol=0.01)
    assert obs.visibility.min() == 1.0
    assert obs.masks[0, 4].sum() == 320 and obs.masks[0, 4, 10:30, 17:33].all()
    assert obs.masks[1].sum() == 1000
    assert obs.source == "color" and obs.entities == ("r", "b") and obs.fps == 10


def test_occlusion_coasts_with_decaying_visibility_and_ignores_a_distractor():
    frames = _clip(T=14)
    for t in range(14):
        frames[t, 20:36, 10 + 4 * t: 26 + 4 * t] = RED  # moves 4 px per frame
    frames[6:9, 14:42, 30:70] = GRAY  # an occluder hides it in frames 6, 7, 8
    frames[6:9, 50:62, 2:14] = RED  # …while another red thing shows up elsewhere
    obs = ColorGrounder(downsample=1).ground(Video(frames, fps=10), [Entity("obj", "red box")])
    vis = obs.visibility[0]
    assert vis[5] == 1 and vis[9] == 1
    assert 0 < vis[8] < vis[7] < vis[6] < 1  # decays while coasting
    truth_x = 18 + 4 * np.arange(14)
    seen = vis == 1
    np.testing.assert_allclose(obs.centers[0, seen, 0], truth_x[seen], atol=0.01)
    np.testing.assert_allclose(obs.centers[0, ~seen, 0], truth_x[~seen], atol=3)  # coasts on its (damped) velocity
    np.testing.assert_allclose(obs.centers[0, :, 1], 28, atol=0.01)
    assert not obs.masks[0, 6:9].any()  # nothing of it is visible then
    assert obs.masks[0, 9].sum() == 256


def test_long_occlusion_loses_the_track_then_reacquires():
    frames = _clip(T=16)
    frames[:, 20:30, 20:30] = RED
    frames[3:13] = 235  # gone for 10 frames
    obs = ColorGrounder(downsample=1, coast_frames=3).ground(Video(frames, fps=10), [Entity("o", "red o")])
    np.testing.assert_array_equal(obs.visibility[0] > 0, [1, 1, 1, 1, 1, 1] + [0] * 7 + [1, 1, 1])
    assert np.isnan(obs.centers[0, 6:13]).all()
    np.testing.assert_allclose(obs.centers[0, 13], [25, 25])


def test_two_same_colour_entities_keep_their_identities():
    frames = _clip(T=12, W=100)
    for t in range(12):
        frames[t, 10:22, 5 + 2 * t: 17 + 2 * t] = RED  # a: 12 × 12, moving right
        frames[t, 40:56, 80 - 2 * t: 96 - 2 * t] = RED  # b: 16 × 16 (larger), moving left
    ents = [Entity("big", "red big"), Entity("small", "red small")]
    obs = ColorGrounder(downsample=1).ground(Video(frames, fps=10), ents)
    np.testing.assert_allclose(obs.centers[0, :, 0], 88 - 2 * np.arange(12), atol=0.01)  # the larger first
    np.testing.assert_allclose(obs.centers[1, :, 0], 11 + 2 * np.arange(12), atol=0.01)
    assert not (obs.masks[0] & obs.masks[1]).any()


# --------------------------------------------------------------------------------------- shipped examples
def _inside(boxes: np.ndarray, W: int, H: int) -> np.ndarray:
    return (boxes[..., 0] >= 1) & (boxes[..., 1] >= 1) & (boxes[..., 2] <= W - 1) & (boxes[..., 3] <= H - 1)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.mp4")))
def test_tracks_the_examples_within_a_few_pixels_of_ground_truth(name):
    video = read_video(EXAMPLES / f"{name}.mp4")
    ents = HANDOVER if name.startswith("handover") else PICK
    truth = StateGrounder().ground(video, ents)
    obs = ColorGrounder().ground(video, ents)
    assert obs.visibility.min() == 1.0  # nothing is ever lost
    check = _inside(truth.boxes, video.width, video.height)  # boxes cut by the frame edge differ, as they should
    assert check.mean() > 0.9
    err = np.hypot(*(obs.centers - truth.centers).transpose(2, 0, 1))
    assert np.nanmax(np.where(check, err, 0)) < 4.5, np.round(err, 1)
    assert np.nanmean(err[check]) < 2.5


def test_labels_file_lists_every_example():
    rows = [json.loads(line) for line in (EXAMPLES / "labels.jsonl").read_text().splitlines()]
    assert sorted(r["video"] for r in rows) == sorted(f"examples/{p.name}" for p in EXAMPLES.glob("*.mp4"))
    assert {r["success"] for r in rows} == {True, False}
    assert all(set(r) >= {"video", "task", "success", "description"} for r in rows)


# --------------------------------------------------------------------------------------- gripper opening
def _u_gripper(gap: int, vertical: bool = True) -> np.ndarray:
    """A U-shaped mask: a 40 × 6 palm with two 6 × 20 fingers `gap` pixels apart (fingers pointing down)."""
    m = np.zeros((64, 64), bool)
    m[10:16, 12:52] = True  # palm, 40 wide
    c = 32
    m[16:36, c - gap // 2 - 6: c - gap // 2] = True
    m[16:36, c + gap - gap // 2: c + gap - gap // 2 + 6] = True
    return m if vertical else m.T


@pytest.mark.parametrize("vertical", [True, False])
def test_opening_from_a_u_shaped_mask(vertical):
    # widest gap = palm 40 − two 6-px fingers = 28 px
    for gap, expected in ((28, 1.0), (14, 0.5), (7, 0.25)):
        assert gripper_opening_from_mask(_u_gripper(gap, vertical)) == pytest.approx(expected, abs=0.04)
    assert gripper_opening_from_mask(_u_gripper(0, vertical)) == 0.0  # fingers together: a solid blob
    assert np.isnan(gripper_opening_from_mask(np.zeros((8, 8), bool)))


def test_opening_only_for_grippers_that_show_fingers():
    frames = _clip(T=4, H=64, W=64)
    frames[:, _u_gripper(28)] = BLUE
    frames[:, 50:60, 5:15] = RED
    ents = [Entity("g", "blue gripper", "gripper"), Entity("o", "red cube")]
    obs = ColorGrounder().ground(Video(frames, fps=10), ents)
    assert set(obs.gripper_opening) == {"g"}
    np.testing.assert_allclose(obs.gripper_opening["g"], 1.0, atol=0.04)
    solid = _clip(T=4, H=64, W=64)
    solid[:, 10:36, 12:52] = BLUE  # no visible fingers → its opening is not observable
    obs = ColorGrounder().ground(Video(solid, fps=10), ents[:1])
    assert obs.gripper_opening == {} and "gripper_opening" not in obs.meta["provides"]


@pytest.mark.parametrize("name", ["handover_success", "handover_drop", "pick_place_success"])
def test_gripper_openings_on_the_examples_match_the_sidecar(name):
    video = read_video(EXAMPLES / f"{name}.mp4")
    ents = HANDOVER if name.startswith("handover") else PICK
    truth = StateGrounder().ground(video, ents)
    obs = ColorGrounder(masks=False).ground(video, ents)
    assert set(obs.gripper_opening) == set(truth.gripper_opening)
    for g, op in truth.gripper_opening.items():
        np.testing.assert_allclose(obs.gripper_opening[g], op, atol=0.1)


def test_track_state_predicts_coasts_and_drops():
    from ltlreward.grounding.backends.color import _merge_fragments, _Track

    boxes = [[10.0, 10.0, 20.0, 20.0], [12.0, 10.0, 22.0, 20.0], [60.0, 60.0, 70.0, 70.0], [40.0, 10.0, 50.0, 20.0]]
    areas = [100.0, 100.0, 100.0, 400.0]
    tr = _Track(gate=3.0, coast_frames=2, decay=0.7)
    assert tr.pick([], boxes, areas) is None and tr.coast() is None  # nothing to follow yet
    assert tr.pick([2, 3], boxes, areas) == 3  # (re)acquire: the largest blob
    tr = _Track(gate=3.0, coast_frames=2, decay=0.7)
    np.testing.assert_array_equal(tr.hit(boxes[0], 100.0), boxes[0])
    assert (tr.center, tr.vel, tr.size) == ((15.0, 15.0), (0.0, 0.0), 10.0)
    # 2 px away, same size: taken; 70 px away: beyond the gate 3 · 10 + 8; 4× the area 30 px away: rejected
    assert tr.pick([2, 1, 3], boxes, areas) == 1 and tr.pick([2, 3], boxes, areas) is None
    tr.hit(boxes[1], 100.0)
    assert tr.vel == (1.0, 0.0) and tr.center == (17.0, 15.0)  # velocity halfway to the 2 px step
    box, vis = tr.coast()
    np.testing.assert_array_equal(box, [13.0, 10.0, 23.0, 20.0])
    assert vis == pytest.approx(0.7) and tr.vel == (0.8, 0.0)
    box, vis = tr.coast()
    np.testing.assert_allclose(box, [13.8, 10.0, 23.8, 20.0], rtol=0, atol=1e-5)
    assert vis == pytest.approx(0.49)
    assert tr.coast() is None and tr.center is None and tr.missed == 0  # coasted coast_frames: dropped
    group, merged = _merge_fragments(0, [0, 1, 2], [[10, 10, 20, 20], [22, 10, 25, 20], [60, 60, 70, 70]], 4.0)
    assert group == [0, 1] and merged == [10, 10, 25, 20]
