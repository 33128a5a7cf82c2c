"""The prompted tracker (`--grounder track`) on videos drawn with OpenCV: it follows a prompted block past and
across a same-coloured one, coasts through an occlusion and takes the block up again, keeps static entities
at their prompt, tracks back from a later prompt frame; `auto` picks it when a prompts file exists; the CLI
scores with it without importing torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ltlreward.errors import GroundingError
from ltlreward.grounding import get_grounder, resolve_auto
from ltlreward.grounding.prompts import parse_prompts
from ltlreward.spec.ast import Entity
from ltlreward.video import Video, VideoWriter

ROOT = Path(__file__).resolve().parents[1]
RED, GREY = (200, 30, 30), (128, 128, 128)
S = 12  # block side (px)


def background(h: int = 96, w: int = 128) -> np.ndarray:
    """A fixed textured table (seeded noise, blurred): uniform colour would give the template nothing."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 60, (h, w, 1), dtype=np.uint8).repeat(3, axis=2)
    return (cv2.GaussianBlur(noise, (5, 5), 0) + np.array([150, 130, 90], np.uint8)).astype(np.uint8)


def draw(tops: list[list[tuple[int, int]]], occluder: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Frames (T, H, W, 3) with a red S×S block at each top-left (x, y) of each frame, then the occluder."""
    frames = []
    for blocks in tops:
        f = background().copy()
        for x, y in blocks:
            cv2.rectangle(f, (x, y), (x + S - 1, y + S - 1), RED, -1)
        if occluder is not None:
            x0, y0, x1, y1 = occluder
            cv2.rectangle(f, (x0, y0), (x1 - 1, y1 - 1), GREY, -1)
        frames.append(f)
    return np.stack(frames)


def box(x: int, y: int) -> list[int]:
    return [x, y, x + S, y + S]


def ground(frames: np.ndarray, entities: dict, frame: int = 0, base_dir: Path | None = None, **options):
    names = tuple(entities)
    prompts = parse_prompts({"version": 1, "frame": frame, "entities": entities}, base_dir=base_dir)
    g = get_grounder("track", **options)
    return g.ground(Video(frames=frames, fps=10.0), [Entity(n, n) for n in names], prompts=prompts)


def inside(centre: np.ndarray, x: int, y: int) -> bool:
    """Whether a tracked centre lies on the block whose top-left is (x, y)."""
    return bool(x <= centre[0] <= x + S and y <= centre[1] <= y + S)


def test_follows_a_block_past_a_same_coloured_one():
    # a moves right along y = 30 and passes 3 px above b, which sits still
    path = [(6 + 4 * t, 30) for t in range(26)]
    still = (56, 45)
    obs = ground(draw([[p, still] for p in path]), {"a": {"box": box(*path[0])}, "b": {"box": box(*still)}})
    a, b = obs.index("a"), obs.index("b")
    for t, p in enumerate(path):
        assert inside(obs.centers[a, t], *p), (t, obs.centers[a, t], p)
        assert inside(obs.centers[b, t], *still), (t, obs.centers[b, t])
    assert (obs.visibility == 1.0).all()
    assert obs.masks[a, 10].sum() == S * S and obs.masks[a, 10, path[10][1] + 2, path[10][0] + 2]


def test_keeps_identity_when_two_same_coloured_blocks_cross():
    # a moves right, b moves down; they overlap around frame 12 and separate again
    T = 24
    a_path = [(10 + 4 * t, 40) for t in range(T)]
    b_path = [(58, -8 + 4 * t) for t in range(T)]
    b_path = [(x, max(y, 0)) for x, y in b_path]
    obs = ground(draw([[a, b] for a, b in zip(a_path, b_path, strict=True)]),
                 {"a": {"box": box(*a_path[0])}, "b": {"box": box(*b_path[0])}})
    a, b = obs.index("a"), obs.index("b")
    after = range(17, T)  # once they no longer overlap, each track is back on its own block
    assert all(inside(obs.centers[a, t], *a_path[t]) for t in after), obs.centers[a, 17:]
    assert all(inside(obs.centers[b, t], *b_path[t]) for t in after), obs.centers[b, 17:]


def test_coasts_through_an_occlusion_and_reacquires():
    path = [(6 + 4 * t, 40) for t in range(28)]
    occ = (50, 30, 86, 64)  # hides the block fully while its left edge is in [50, 74]
    obs = ground(draw([[p] for p in path], occluder=occ), {"a": {"box": box(*path[0])}})
    vis, c = obs.visibility[0], obs.centers[0]
    hidden = [t for t, (x, _) in enumerate(path) if x >= occ[0] and x + S <= occ[2]]
    assert hidden == list(range(11, 18))
    assert (vis[hidden] < 1).all() and (vis[hidden] > 0).all()  # coasting: seen as occluded, not lost
    assert np.all(np.diff(vis[hidden]) < 0)  # visibility decays while it stays hidden
    assert all(abs(c[t, 1] - 46) < 3 for t in hidden)  # and the box keeps moving along the path
    back = [t for t, (x, _) in enumerate(path) if x >= occ[2]]
    assert back and all(vis[t] == 1.0 and inside(c[t], *path[t]) for t in back), c[back]


def test_static_entities_keep_their_prompt_region():
    path = [(6 + 4 * t, 30) for t in range(10)]
    obs = ground(draw([[p] for p in path]), {"a": {"box": box(*path[0])},
                                             "zone": {"box": [90, 60, 120, 90], "static": True}})
    z = obs.index("zone")
    assert (obs.boxes[z] == np.array([90, 60, 120, 90], np.float32)).all() and (obs.visibility[z] == 1).all()
    assert (obs.masks[z].sum(axis=(1, 2)) == 30 * 30).all()
    assert obs.meta["static"] == ["zone"]


def test_a_later_prompt_frame_is_tracked_both_ways():
    path = [(6 + 4 * t, 30) for t in range(20)]
    obs = ground(draw([[p] for p in path]), {"a": {"box": box(*path[12])}}, frame=12)
    assert obs.meta["prompt_frame"] == 12
    assert all(inside(obs.centers[0, t], *path[t]) for t in range(20)), obs.centers[0]


def test_mask_and_points_prompts(tmp_path):
    path = [(6 + 4 * t, 30) for t in range(8)]
    frames = draw([[p] for p in path])
    obs = ground(frames, {"a": {"points": [[path[0][0] + 5, path[0][1] + 5]]}})  # one click on the block
    assert all(inside(obs.centers[0, t], *path[t]) for t in range(8)), obs.centers[0]
    np.testing.assert_array_equal(obs.boxes[0, 0], box(*path[0]))  # grabCut found the whole block
    m = np.zeros(frames.shape[1:3], np.uint8)
    m[path[0][1]:path[0][1] + S, path[0][0]:path[0][0] + S] = 255
    cv2.imwrite(str(tmp_path / "a.png"), m)
    obs = ground(frames, {"a": {"mask": "a.png"}}, base_dir=tmp_path)
    assert all(inside(obs.centers[0, t], *path[t]) for t in range(8)), obs.centers[0]


def test_unprompted_entities_are_an_error_or_unseen():
    frames = draw([[(6, 30)]] * 3)
    with pytest.raises(GroundingError, match=r"<prompts>: entities: no prompt for spec entity 'b'"):
        get_grounder("track").ground(Video(frames=frames, fps=10.0), [Entity("a", "a"), Entity("b", "b")],
                                     prompts=parse_prompts({"version": 1, "entities": {"a": {"box": box(6, 30)}}}))
    obs = get_grounder("track", unprompted="unseen").ground(
        Video(frames=frames, fps=10.0), [Entity("a", "a"), Entity("b", "b")],
        prompts=parse_prompts({"version": 1, "entities": {"a": {"box": box(6, 30)}}}))
    assert (obs.visibility[1] == 0).all() and np.isnan(obs.boxes[1]).all() and obs.meta["unprompted"] == ["b"]
    with pytest.raises(GroundingError, match=r"no prompts for this in-memory video"):
        get_grounder("track").ground(Video(frames=frames, fps=10.0), [Entity("a", "a")])
    with pytest.raises(GroundingError, match=r"bad options for grounder 'track': .*unexpected keyword argument 'sid'"):
        get_grounder("track", sid=3)
    with pytest.raises(GroundingError, match=r"track grounder: unknown parameter 'sid' \(parameters: side, "):
        get_grounder("track", params={"sid": 3})
    assert get_grounder("track", params={"side": 16}).params.side == 16


# ------------------------------------------------------------------------------------------ files and CLI
SPEC = '''task "push the block into the zone"
entity block = "red block"
entity zone = "zone" : region
constraint arrive "the block ends in the zone": F G inside(block, zone)
'''


@pytest.fixture
def clip(tmp_path) -> Path:
    """A 224×224 clip of a block pushed into a static zone, its spec and its prompts file beside it."""
    frames = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_NEAREST)
                       for f in draw([[(6 + 3 * t, 40)] for t in range(22)])])
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, fps=10) as w:
        w.write(frames)
    (tmp_path / "task.ltl").write_text(SPEC)
    b = [v * 224 / 128 for v in box(6, 40)]
    zone = [110, 60, 150, 110]
    (tmp_path / "clip.prompts.json").write_text(json.dumps(
        {"version": 1, "frame": 0, "entities": {"block": {"box": b}, "zone": {"box": zone, "static": True}}}))
    return path


def test_auto_picks_track_when_a_prompts_file_exists(clip, tmp_path):
    assert resolve_auto(clip) == "track"
    assert resolve_auto(tmp_path / "other.mp4") == "color"
    assert resolve_auto(tmp_path / "other.mp4", prompts=tmp_path / "clip.prompts.json") == "track"
    (tmp_path / "clip.sidecar.json").write_text("{}")
    assert resolve_auto(clip) == "state"  # a sidecar (simulator state) wins


def test_score_with_a_prompts_file_needs_no_torch(clip, tmp_path):
    code = f'''
import sys, json, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"{{name}} is blocked in this test")
sys.meta_path.insert(0, Block())
from ltlreward.cli import main
sys.argv = ["ltlreward", "score", {str(clip)!r}, "--spec", {str(tmp_path / "task.ltl")!r}, "--prompts",
            {str(tmp_path / "clip.prompts.json")!r}, "--json"]
try:
    main()
except SystemExit as e:
    assert e.code == 0, e.code
assert not any(m.split(".")[0] in ("torch", "transformers") for m in sys.modules)
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["grounder"] == "track" and rec["error"] is None
    assert rec["satisfied"] is True and rec["constraints"][0]["name"] == "arrive"


def test_prompts_for_a_grounder_without_them_is_an_error(clip, tmp_path):
    from ltlreward import RewardModel

    model = RewardModel(tmp_path / "task.ltl", grounder="color", prompts=tmp_path / "clip.prompts.json")
    r = model.score(clip)
    assert r.error == ("GroundingError: grounder 'color' takes no prompts; use the track grounder, a model grounder "
                       "or auto")
    bad = tmp_path / "bad.prompts.json"
    bad.write_text(json.dumps({"version": 1, "entities": {"blok": {"box": [1, 1, 5, 5]}}}))
    with pytest.raises(GroundingError, match=rf"{bad}: entities.blok: unknown entity 'blok'"):
        RewardModel(tmp_path / "task.ltl", prompts=bad)  # one file for every video: checked before any video


def test_per_video_prompts_in_the_trainer_call(clip, tmp_path):
    from ltlreward import RewardModel
    from ltlreward.video import read_video

    frames = read_video(clip).frames
    model = RewardModel(tmp_path / "task.ltl", fps=10)
    rewards, info = model(frames[None], metadata=[{"prompts": str(tmp_path / "clip.prompts.json")}])
    assert info["errors"] == [None] and info["results"][0].grounder == "track"
    assert rewards.tolist() == [1.0]


# a camera 2 m in front of the table (world y), looking along +y, 0.2 m above it: the table plane z = 0 is
# seen at image row 48 + 100 · 0.2 / 2 = 58 of a 128 × 96 image, one pixel spans 2 / 100 = 0.02 m there
TABLE_CAMERA = {"intrinsics": [[100, 0, 64], [0, 100, 48], [0, 0, 1]],
                "extrinsics": [[1, 0, 0, 0], [0, 0, -1, 0.2], [0, 1, 0, 2.0], [0, 0, 0, 1]], "width": 128, "height": 96}
METRE_SPEC = 'entity a = "a"\nentity b = "b"\nconstraint meet: F (dist(a, b) < 0.5m)\n'


def test_the_prompts_camera_and_support_plane_judge_metre_constants_in_2_5_d(tmp_path):
    """Blocks resting on the table (bottom edge on row 58): b stays at x = 90; a slides from x = 10 to 50 (centres
    40 px = 0.8 m apart at the end) in one clip and to 70 (0.4 m) in the other; only the second meets 0.5 m."""
    from ltlreward import RewardModel
    from ltlreward.predicates.lift import lift_all

    spec = tmp_path / "meet.ltl"
    spec.write_text(METRE_SPEC)
    y = 58 - S
    prompts = {"version": 1, "entities": {"a": {"box": box(10, y)}, "b": {"box": box(90, y)}},
               "camera": TABLE_CAMERA, "support": {"z": 0.0}}
    verdicts = {}
    for end in (50, 70):
        frames = draw([[(10 + (end - 10) * t // 9, y), (90, y)] for t in range(10)])
        r = RewardModel(spec, grounder="track").score(Video(frames=frames, fps=10.0), prompts=prompts)
        assert r.error is None, r.error
        assert r.spaces == {"dist(a,b)<0.5m": "2.5d"}
        verdicts[end] = r.satisfied
    assert verdicts == {50: False, 70: True}
    obs = get_grounder("track").ground(
        Video(frames=frames, fps=10.0), [Entity("a", "a"), Entity("b", "b")], prompts=parse_prompts(prompts))
    assert obs.camera is not None and obs.support_z == 0.0
    pos, _ = lift_all(obs.camera, np.asarray(obs.boxes, np.float64), obs.masks, [None, None], obs.support_z,
                      np.array([True, True]), np.array([False, False]), None)  # (E, T, 3) metres
    centres = (obs.boxes[:, :, 0] + obs.boxes[:, :, 2]) / 2  # (E, T) px
    np.testing.assert_allclose(pos[1, :, 0] - pos[0, :, 0], 0.02 * (centres[1] - centres[0]), atol=1e-9)
    assert abs(np.linalg.norm(pos[1, -1] - pos[0, -1]) - 0.4) <= 0.02 * 3  # the tracker's boxes within 3 px
    no_camera = {"version": 1, "entities": prompts["entities"]}
    r = RewardModel(spec, grounder="track").score(Video(frames=frames, fps=10.0), prompts=no_camera)
    assert r.error is not None and f"{spec}:3:" in r.error and "metres" in r.error
