"""`state` backend: sidecar validation (first bad field with its JSON path), projection, frame alignment."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from ltlreward.errors import GroundingError
from ltlreward.grounding.backends.state import StateGrounder, load_sidecar
from ltlreward.spec.ast import Entity
from ltlreward.video import Video, read_video

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
N = 12
# A camera that looks along world +y from (0, -1, 0.3): world x → image right, world z → image up.
K = [[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]]
EXT = [[1.0, 0, 0, 0], [0, 0, -1, 0.3], [0, 1, 0, 1.0], [0, 0, 0, 1]]


def _sidecar() -> dict:
    xs = np.linspace(-0.2, 0.2, N)
    return {
        "version": 1,
        "fps": 10,
        "n_frames": N,
        "camera": {"intrinsics": K, "extrinsics": EXT, "width": 100, "height": 80},
        "entities": {
            "bottle": {"position": [[float(x), 0.0, 0.1] for x in xs], "size": [0.2, 0.0, 0.2]},
            "left": {"position": [[-0.3, 0.0, 0.2]] * N, "box": [[10, 10, 20, 30]] * N},
        },
        "grippers": {"left": {"opening": [1.0] * 6 + [0.3] * 6}},
        "contacts": [["left", "bottle", [0] * 7 + [1] * 5]],
        "atoms": {"cap on": [0.0] * 6 + [1.0] * 6},
    }


ENTS = (Entity("bottle", "red bottle"), Entity("left", "left gripper", "gripper"))


def _write(tmp_path: Path, data: dict, name: str = "clip.sidecar.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def _video(T: int = N, H: int = 80, W: int = 100, **kw) -> Video:
    return Video(np.zeros((T, H, W, 3), np.uint8), fps=10.0, **kw)


def test_projection_matches_hand_computed_pixels(tmp_path):
    obs = StateGrounder().ground(_video(), ENTS, sidecar=_write(tmp_path, _sidecar()))
    # frame 0: bottle at world (-0.2, 0, 0.1) → camera (-0.2, 0.2, 1.0) → pixel (50 - 20, 40 + 20)
    np.testing.assert_allclose(obs.centers[0, 0], [30.0, 60.0], atol=1e-4)
    # its 0.2 × 0.2 size spans x ± 0.1 and z 0 … 0.2 → box (20, 50, 40, 70)
    np.testing.assert_allclose(obs.boxes[0, 0], [20.0, 50.0, 40.0, 70.0], atol=1e-4)
    # last frame: x = 0.2 → u = 70
    np.testing.assert_allclose(obs.centers[0, -1], [70.0, 60.0], atol=1e-4)
    # the gripper's centre is its projected position, its box the given one
    np.testing.assert_allclose(obs.centers[1, 0], [20.0, 50.0], atol=1e-4)
    np.testing.assert_allclose(obs.boxes[1, 3], [10, 10, 20, 30])
    np.testing.assert_allclose(obs.positions[0, 0], [-0.2, 0.0, 0.1], atol=1e-6)
    assert obs.visibility.min() == 1.0
    np.testing.assert_array_equal(obs.contacts[("bottle", "left")], [0] * 7 + [1] * 5)
    np.testing.assert_allclose(obs.gripper_opening["left"], [1.0] * 6 + [0.3] * 6, atol=1e-6)
    assert obs.source == "state" and obs.n_frames == N and obs.fps == 10.0
    assert obs.meta["provides"] == ["atoms", "boxes", "centers", "contacts", "gripper_opening", "positions",
                                    "visibility"]


def test_points_outside_the_image_or_behind_the_camera_are_not_visible(tmp_path):
    data = _sidecar()
    data["entities"]["bottle"]["position"][0] = [5.0, 0.0, 0.1]  # far right: u = 550
    data["entities"]["bottle"]["position"][1] = [0.0, -2.0, 0.1]  # behind the camera
    obs = StateGrounder().ground(_video(), ENTS, sidecar=_write(tmp_path, data))
    assert obs.visibility[0, 0] == 0 and obs.visibility[0, 1] == 0 and obs.visibility[0, 2] == 1
    assert np.isnan(obs.centers[0, 1]).all()


def test_subsampled_video_takes_the_matching_rows(tmp_path):
    path = _write(tmp_path, _sidecar())
    full = StateGrounder().ground(_video(), ENTS, sidecar=path)
    idx = np.array([0, 3, 6, 9])
    sub = StateGrounder().ground(_video(4, frame_indices=idx, n_source_frames=N, source_fps=10.0), ENTS,
                                 sidecar=path)
    np.testing.assert_array_equal(sub.centers, full.centers[:, idx])
    np.testing.assert_array_equal(sub.contacts[("bottle", "left")], full.contacts[("bottle", "left")][idx])
    assert sub.meta["frame_indices"] == [0, 3, 6, 9]


def test_subsampled_example_file_stays_aligned():
    path = EXAMPLES / "handover_success.mp4"
    ents = (Entity("bottle", "red bottle"), Entity("left", "l", "gripper"), Entity("right", "r", "gripper"))
    full = StateGrounder().ground(read_video(path), ents)
    sub_video = read_video(path, stride=3)
    sub = StateGrounder().ground(sub_video, ents)
    np.testing.assert_array_equal(sub.centers, full.centers[:, sub_video.frame_indices])
    np.testing.assert_array_equal(sub.gripper_opening["left"], full.gripper_opening["left"][::3])


def test_resized_video_scales_pixels(tmp_path):
    path = _write(tmp_path, _sidecar())
    obs = StateGrounder().ground(_video(H=40, W=50), ENTS, sidecar=path)
    np.testing.assert_allclose(obs.centers[0, 0], [15.0, 30.0], atol=1e-4)
    np.testing.assert_allclose(obs.boxes[1, 0], [5, 5, 10, 15])
    assert (obs.height, obs.width) == (40, 50)


def test_frame_count_mismatch_is_reported(tmp_path):
    path = _write(tmp_path, _sidecar())
    with pytest.raises(GroundingError, match=r"clip\.sidecar\.json: n_frames: the sidecar has 12 frames but "
                                             r"the video has 11"):
        StateGrounder().ground(_video(11), ENTS, sidecar=path)


def test_missing_spec_entity_is_named(tmp_path):
    path = _write(tmp_path, _sidecar())
    with pytest.raises(GroundingError, match=r"entities: no entry for spec entity 'cup' \(the sidecar has: "
                                             r"bottle, left\)"):
        StateGrounder().ground(_video(), (*ENTS, Entity("cup", "blue cup")), sidecar=path)


def test_no_sidecar_anywhere(tmp_path):
    with pytest.raises(GroundingError, match=r"no sidecar given and none found next to .*a\.mp4"):
        StateGrounder().ground(_video(path=str(tmp_path / "a.mp4")), ENTS)


def test_sidecar_found_next_to_video_and_without_video(tmp_path):
    _write(tmp_path, _sidecar(), "clip.sidecar.json")
    obs = StateGrounder().ground(_video(path=str(tmp_path / "clip.mp4")), ENTS)
    assert obs.meta["sidecar"].endswith("clip.sidecar.json")
    alone = StateGrounder(sidecar=tmp_path / "clip.sidecar.json").ground(None, ENTS)
    assert (alone.n_frames, alone.height, alone.width) == (N, 80, 100)
    np.testing.assert_array_equal(alone.centers, obs.centers)


def _mutate(path: str, value):
    data = _sidecar()
    *head, last = path
    node = data
    for k in head:
        node = node[k]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


BAD = [
    (("entities", "bottle", "position"), [[0.0, 0.0, 0.1]] * 11,
     "entities.bottle.position: expected 12 rows of 3 numbers, got 11"),
    (("entities", "bottle", "position"), [[0.0, 0.0, 0.1]] * 3 + [[0.0, 0.1]] + [[0.0, 0.0, 0.1]] * 8,
     r"entities.bottle.position\[3\]: expected 3 numbers, got 2 numbers"),
    (("entities", "bottle", "position"), [[0.0, 0.0, 0.1]] + [[0.0, 0.0, "x"]] + [[0.0, 0.0, 0.1]] * 10,
     r"entities.bottle.position\[1\]\[2\]: expected a number, got string 'x'"),
    (("entities", "bottle", "position"), "nope", "entities.bottle.position: expected 12 rows of 3 numbers, got "
     "string 'nope'"),
    (("entities", "left", "box"), [[10, 10, 20, 30]] * 5 + [[20, 10, 10, 30]] + [[10, 10, 20, 30]] * 6,
     r"entities.left.box\[5\]: expected x0 <= x1 and y0 <= y1"),
    (("entities", "left", "visible"), [1] * 11, "entities.left.visible: expected a list of 12 numbers, got 11"),
    (("entities", "bottle", "colour"), "red", "entities.bottle.colour: unknown field"),
    (("grippers", "left", "opening"), [1.0] * 4 + [1.5] + [1.0] * 7,
     r"grippers.left.opening\[4\]: expected a number in \[0, 1\], got 1.5"),
    (("contacts",), [["left", "cup", [0] * N]], r"contacts\[0\]\[1\]: unknown entity 'cup'"),
    (("contacts",), [["left", "bottle"]], r"contacts\[0\]: expected \[entity_a, entity_b, \[0/1 × 12\]\]"),
    (("atoms", "cap on"), [0.5] * 12 + [0.5], "atoms.cap on: expected a list of 12 numbers, got 13"),
    (("camera", "intrinsics"), [[100, 0, 50], [0, 100, 40], [0, 1, 1]], r"camera.intrinsics\[2\]: expected "
     r"\[0, 0, 1\]"),
    (("camera", "width"), KeyError, "camera.width: missing required field"),
    (("fps",), KeyError, "fps: missing required field"),
    (("fps",), -3, "fps: expected a positive number, got -3"),
    (("n_frames",), 12.5, "n_frames: expected an integer, got 12.5"),
    (("version",), 2, "version: unsupported sidecar version 2 \\(expected 1\\)"),
    (("typo",), 1, "typo: unknown field"),
]


@pytest.mark.parametrize(("where", "value", "message"), BAD, ids=[".".join(b[0]) for b in BAD])
def test_validation_reports_first_offending_field(tmp_path, where, value, message):
    path = _write(tmp_path, _mutate(where, value))
    with pytest.raises(GroundingError, match=r"^" + str(path).replace(".", r"\.") + ": " + message):
        load_sidecar(path)


def test_first_offending_field_wins(tmp_path):
    data = _mutate(("entities", "bottle", "position"), [[0, 0, 0]] * 11)
    data["grippers"]["left"]["opening"] = [2.0] * N  # a later problem is not the one reported
    with pytest.raises(GroundingError, match=r"entities\.bottle\.position: expected 12 rows"):
        load_sidecar(_write(tmp_path, data))


def test_invalid_json_is_located(tmp_path):
    p = tmp_path / "bad.sidecar.json"
    p.write_text('{"version": 1,\n  "fps": }')
    with pytest.raises(GroundingError, match=r"bad\.sidecar\.json:2:10: not valid JSON"):
        load_sidecar(p)


def test_masks_from_npz_and_boxes_for_the_rest(tmp_path):
    data = _sidecar()
    m = np.zeros((N, 80, 100), bool)
    m[:, 50:70, 20:40] = True
    np.savez_compressed(tmp_path / "masks.npz", bottle=m)
    data["arrays"] = "masks.npz"
    data["entities"]["bottle"]["mask"] = "bottle"
    obs = StateGrounder().ground(_video(), ENTS, sidecar=_write(tmp_path, data))
    np.testing.assert_array_equal(obs.masks[0], m)
    assert obs.masks[1, 0, 10:30, 10:20].all() and obs.masks[1, 0].sum() == 200  # box (10,10,20,30)
    data["entities"]["bottle"]["mask"] = "nope"
    with pytest.raises(GroundingError, match=r"entities.bottle.mask: no array 'nope' in masks.npz \(has: bottle\)"):
        load_sidecar(_write(tmp_path, data))


def test_quoted_atoms(tmp_path):
    path = _write(tmp_path, _sidecar())
    obs = StateGrounder().ground(_video(), ENTS, quoted=['"cap on"'], sidecar=path)
    np.testing.assert_array_equal(obs.atoms['"cap on"'], [0.0] * 6 + [1.0] * 6)
    with pytest.raises(GroundingError, match=r"atoms: no signal for the quoted atom 'the drawer is open' "
                                             r"\(atoms: cap on\)"):
        StateGrounder().ground(_video(), ENTS, quoted=["the drawer is open"], sidecar=path)


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.sidecar.json")))
def test_shipped_sidecars_validate(name):
    sc = load_sidecar(EXAMPLES / name)
    assert sc.camera is not None and sc.n_frames in (36, 45)


def test_handover_success_sidecar_tells_the_story():
    sc = load_sidecar(EXAMPLES / "handover_success.sidecar.json")
    left, right = sc.contacts[("bottle", "left")], sc.contacts[("bottle", "right")]
    assert left[:10].sum() == 0 and left[15] and not left[-1]
    assert right[-1] and (left & right).any()  # an exchange, then the right arm alone
    assert sc.grippers["left"][-1] == 1.0 and sc.grippers["right"][-1] < 0.5


def test_sidecar_objects_are_not_mutated(tmp_path):
    data = _sidecar()
    before = copy.deepcopy(data)
    StateGrounder().ground(_video(), ENTS, sidecar=_write(tmp_path, data))
    assert data == before


def test_documented_minimal_example_is_valid(tmp_path):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "sidecar.md").read_text()
    block = doc.split("## Minimal complete example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    path = _write(tmp_path, json.loads(block))
    ents = (Entity("bottle", "red bottle"), Entity("left", "left gripper", "gripper"))
    obs = StateGrounder().ground(None, ents, sidecar=path)
    np.testing.assert_allclose(obs.centers[0, 0], [112.0, 134.5], atol=1e-4)  # v = 112 + 300 * 0.15 / 2
    np.testing.assert_array_equal(obs.contacts[("bottle", "left")], [False, True, True])
