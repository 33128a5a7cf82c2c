"""Model grounders end to end on tiny random-initialised models saved like real checkpoints: the user's
loading path (config file → directories → transformers classes), shapes, identity, re-detection, caching,
VLM yes/no probabilities, calibration, composition and error paths. Random weights give meaningless boxes,
so the assertions are about the pipeline, not accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ltlreward.errors import GroundingError
from ltlreward.grounding import available_grounders, get_grounder
from ltlreward.grounding.backends.models import calibrate as cal
from ltlreward.grounding.backends.models.config import load_config, parse_model_flags
from ltlreward.grounding.backends.models.gdino_sam2 import mask_boxes
from ltlreward.grounding.backends.models.loading import select_device
from ltlreward.grounding.backends.models.tiny import build_all
from ltlreward.spec.ast import Entity, Quoted
from ltlreward.video import read_video

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENTS = (Entity("block", "red block"), Entity("gripper", "gripper", "gripper"), Entity("plate", "yellow plate", "surface"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """Directory with every tiny model and an ltlreward.toml pointing at them (cpu, one thread)."""
    root = tmp_path_factory.mktemp("tiny_models")
    build_all(root)
    return root


@pytest.fixture(scope="module")
def video():
    return read_video(EXAMPLES / "pick_place_success.mp4", max_frames=6, size=64)


def _cfg(tiny: Path) -> str:
    return str(tiny / "ltlreward.toml")


# ---------------------------------------------------------------------------------------------- config
def test_config_file_sections_relative_dirs_and_overrides(tmp_path, tiny):
    (tmp_path / "m").mkdir()
    f = tmp_path / "ltlreward.toml"
    f.write_text('[models]\nsam2 = "./m"\nvlm = "org/some-vlm"\nallow_download = true\n'
                 '[runtime]\ndevice = "cpu"\nvlm_batch = 3\n[detect]\nbox_threshold = 0.5\nevery = 4\n'
                 '[vlm]\nstride = 2\ncalibration = "cal.json"\n[vlm.questions]\ngripper_open = "Is the {g} open?"\n'
                 '[cache]\ndir = "/tmp/x"\n')
    c = load_config(f, detect_every=2)
    assert c.models["sam2"] == str(tmp_path / "m")
    assert c.models["vlm"] == "org/some-vlm" and c.models["grounding_dino"] == "IDEA-Research/grounding-dino-tiny"
    assert (c.allow_download, c.device, c.vlm_batch, c.box_threshold, c.detect_every, c.vlm_stride) == (
        True, "cpu", 3, 0.5, 2, 2)
    assert c.vlm_calibration == str((tmp_path / "cal.json").resolve()) and c.cache_dir == "/tmp/x"
    assert c.questions == {"gripper_open": "Is the {g} open?"}  # the file's table is the whole set
    f.write_text("[detect]\nevry = 4\n")
    with pytest.raises(GroundingError, match=r"unknown key detect\.evry"):
        load_config(f)
    f.write_text("[runtime]\nvlm_batch = 'x'\n")
    with pytest.raises(GroundingError, match=r"runtime\.vlm_batch must be a int"):
        load_config(f)
    assert parse_model_flags(["sam2=/a", "vlm=org/x"]) == {"sam2": "/a", "vlm": "org/x"}
    with pytest.raises(GroundingError, match="unknown role 'sam'"):
        parse_model_flags(["sam=/a"])


def test_registry_lists_model_backends():
    names = available_grounders()
    for n in ("gdino-sam2", "owlv2", "sam3", "vlm", "gdino-sam2+vlm", "owlv2+vlm", "sam3+vlm"):
        assert n in names


# ---------------------------------------------------------------------------------------------- errors
def test_missing_model_dir_names_model_place_and_fix(video, tiny):
    g = get_grounder("gdino-sam2", config=_cfg(tiny), models={"sam2": str(tiny / "nowhere")}, cache_dir="")
    with pytest.raises(GroundingError) as e:
        g.ground(video, ENTS)
    msg = str(e.value)
    assert "'sam2'" in msg and str(tiny / "nowhere") in msg and "ltlreward.toml" in msg and "--model sam2=" in msg


def test_hub_id_not_in_cache_is_a_clear_error(video, tiny):
    g = get_grounder("vlm", config=_cfg(tiny), models={"vlm": "nobody-xyz/not-a-model-xyz"}, cache_dir="")
    with pytest.raises(GroundingError) as e:
        g.ground(video, ENTS, quoted=["x"])
    msg = str(e.value)
    assert "nobody-xyz/not-a-model-xyz" in msg and "Hugging Face cache" in msg and "allow_download" in msg


def test_wrong_model_class_is_rejected(video, tiny):
    g = get_grounder("gdino-sam2", config=_cfg(tiny), models={"grounding_dino": str(tiny / "owlv2")}, cache_dir="")
    with pytest.raises(GroundingError, match=r"'owlv2' model .*needs GroundingDinoForObjectDetection"):
        g.ground(video, ENTS)


def test_cuda_request_falls_back_to_cpu_float32(video, tiny):
    import torch

    if torch.cuda.is_available():
        pytest.skip("machine has CUDA")
    dev, dt, note = select_device("cuda", "bfloat16")
    assert (dev.type, dt) == ("cpu", torch.float32) and "CUDA is not available" in note
    assert select_device("auto")[:2] == (torch.device("cpu"), torch.float32)
    with pytest.raises(GroundingError, match="unknown device"):
        select_device("tpu")
    obs = get_grounder("vlm", config=_cfg(tiny), device="cuda", cache_dir="").ground(video, ENTS, quoted=["x"])
    assert "CUDA is not available" in obs.meta["device_note"] and obs.atoms["x"].shape == (video.n_frames,)


# ---------------------------------------------------------------------------------------------- geometry
def _check_geometry(obs, video, names):
    E, T, H, W = len(names), video.n_frames, video.height, video.width
    assert obs.entities == names and obs.n_frames == T and (obs.height, obs.width) == (H, W)
    assert obs.boxes.shape == (E, T, 4) and obs.centers.shape == (E, T, 2) and obs.visibility.shape == (E, T)
    assert obs.masks.shape == (E, T, H, W) and obs.masks.dtype == bool
    seen = obs.masks.any(axis=(2, 3))
    assert np.all((obs.visibility > 0) == seen) and np.all((obs.visibility >= 0) & (obs.visibility <= 1))
    np.testing.assert_array_equal(obs.boxes, mask_boxes(obs.masks))  # boxes are the masks' extents
    np.testing.assert_allclose(obs.centers, (obs.boxes[..., :2] + obs.boxes[..., 2:]) / 2)
    assert np.isnan(obs.boxes[~seen]).all()


def test_gdino_sam2_end_to_end_and_redetection(video, tiny):
    g = get_grounder("gdino-sam2", config=_cfg(tiny), box_threshold=0.0, detect_every=3, lost_score=float("inf"),
                     cache_dir="")
    obs = g.ground(video, ENTS)
    _check_geometry(obs, video, ("block", "gripper", "plate"))
    assert obs.source == "gdino-sam2" and obs.meta["keyframes"] == [0, 3]
    # every track counts as lost (lost_score = inf) → every keyframe re-detects and re-prompts every entity
    assert obs.meta["prompted_frames"] == {"block": [0, 3], "gripper": [0, 3], "plate": [0, 3]}
    assert g.stats.per_model == {"grounding_dino": 1, "sam2": 6}
    # with no score limit a track is lost only when its mask is empty: re-prompted at frame 3 exactly when
    # its mask at frame 2 was empty
    g2 = get_grounder("gdino-sam2", config=_cfg(tiny), box_threshold=0.0, detect_every=3,
                      lost_score=float("-inf"), cache_dir="")
    o2 = g2.ground(video, ENTS)
    assert o2.meta["prompted_frames"] == {n: [0] + ([3] if not o2.masks[i, 2].any() else [])
                                          for i, n in enumerate(o2.entities)}


def test_nothing_detected_means_unseen_and_no_tracking(video, tiny):
    g = get_grounder("gdino-sam2", config=_cfg(tiny), box_threshold=1.01, cache_dir="")
    obs = g.ground(video, ENTS)
    assert not obs.masks.any() and (obs.visibility == 0).all() and np.isnan(obs.boxes).all()
    assert g.stats.per_model == {"grounding_dino": 1}  # SAM2 never runs without a prompt


def test_owlv2_identity_rows_follow_entities(video, tiny):
    opts = dict(config=_cfg(tiny), box_threshold=0.0, lost_score=float("-inf"), cache_dir="")
    both = get_grounder("owlv2", **opts).ground(video, ENTS[:2])
    alone = get_grounder("owlv2", **opts).ground(video, ENTS[:1])
    _check_geometry(both, video, ("block", "gripper"))
    # OWLv2 queries are independent and SAM2 tracks each object id separately: the block's row is the
    # same whether or not the gripper is tracked beside it
    assert np.mean(both.masks[0] == alone.masks[0]) > 0.999
    np.testing.assert_allclose(both.visibility[0], alone.visibility[0], atol=1e-4)


def test_entities_sharing_a_prompt_start_on_different_detections(video, tiny):
    from ltlreward.grounding.backends.models.gdino_sam2 import iou

    ents = [Entity("left", "red block"), Entity("right", "red block")]
    obs = get_grounder("owlv2", config=_cfg(tiny), box_threshold=0.0, cache_dir="").ground(video, ents)
    a, b = (np.array(obs.meta["prompt_boxes"][n][0]) for n in ("left", "right"))
    assert obs.meta["prompted_frames"]["left"][0] == obs.meta["prompted_frames"]["right"][0] == 0
    assert iou(a, b) <= 0.5  # the second entity may not take the first one's detection


def test_cache_hit_costs_no_model_calls_and_survives_renaming(video, tiny, tmp_path):
    g = get_grounder("gdino-sam2", config=_cfg(tiny), box_threshold=0.0, cache_dir=str(tmp_path / "c"))
    first = g.ground(video, ENTS)
    calls = g.stats.calls
    again = g.ground(video, ENTS)
    assert g.stats.calls == calls and again.meta["cache"] == "hit" and first.meta["cache"] == "miss"
    np.testing.assert_array_equal(again.masks, first.masks)
    np.testing.assert_array_equal(again.boxes, first.boxes)
    renamed = [Entity("cube", "red block"), Entity("hand", "gripper", "gripper"), Entity("dish", "yellow plate")]
    hit = get_grounder("gdino-sam2", config=_cfg(tiny), box_threshold=0.0, cache_dir=str(tmp_path / "c"))
    out = hit.ground(video, renamed)
    assert hit.stats.calls == 0 and out.entities == ("cube", "hand", "dish")
    np.testing.assert_array_equal(out.visibility, first.visibility)
    g.ground(video, [*ENTS, Entity("bowl", "blue bowl")])  # a new prompt is a miss
    assert g.stats.calls > calls


def test_sam3_text_prompted_tracking_gives_distinct_objects_to_shared_prompts(video, tiny, tmp_path):
    ents = [*ENTS[:2], Entity("block2", "red block")]
    g = get_grounder("sam3", config=_cfg(tiny), cache_dir=str(tmp_path / "c"))
    obs = g.ground(video, ents)
    _check_geometry(obs, video, ("block", "gripper", "block2"))
    assert g.stats.per_model == {"sam3": video.n_frames}  # one propagation step per frame
    ids = np.array([obs.meta["object_ids"][n] for n in obs.entities])  # (E, T) SAM3 object per row
    np.testing.assert_array_equal(ids >= 0, obs.visibility > 0)
    both = (ids[0] >= 0) & (ids[2] >= 0)
    assert both.any() and np.all(ids[0][both] != ids[2][both])  # the two red blocks are different objects
    calls = g.stats.calls
    again = g.ground(video, ents)
    assert g.stats.calls == calls and again.meta["cache"] == "hit"


# ---------------------------------------------------------------------------------------------- entity prompts
def _prompts(frame: int = 0):
    from ltlreward.grounding.prompts import parse_prompts

    # the video is 64 px; a box, a click and a static region
    return parse_prompts({"version": 1, "frame": frame, "entities": {
        "block": {"box": [10, 20, 30, 40]}, "gripper": {"points": [[40, 12], [44, 16]]},
        "plate": {"box": [4, 44, 60, 62], "static": True}}})


def test_prompted_sam2_skips_the_detector(video, tiny, tmp_path):
    g = get_grounder("gdino-sam2", config=_cfg(tiny), cache_dir=str(tmp_path / "c"))
    obs = g.ground(video, ENTS, prompts=_prompts())
    _check_geometry(obs, video, ("block", "gripper", "plate"))
    assert g._detector is None and g.stats.per_model == {"sam2": video.n_frames}  # no detection at all
    assert obs.meta["prompt_frame"] == 0 and obs.meta["static"] == ["plate"] and obs.meta["entity_prompts"] == "<prompts>"
    assert (obs.boxes[2] == np.array([4, 44, 60, 62], np.float32)).all() and (obs.visibility[2] == 1).all()
    later = get_grounder("gdino-sam2", config=_cfg(tiny), cache_dir="").ground(video, ENTS, prompts=_prompts(frame=2))
    assert later.meta["prompt_frame"] == 2 and (later.visibility[:2, :2] == 0).all()  # SAM2 propagates forward
    calls = g.stats.calls
    assert g.ground(video, ENTS, prompts=_prompts()).meta["cache"] == "hit" and g.stats.calls == calls
    g.ground(video, ENTS, prompts=_prompts(frame=1))  # other prompts: a miss
    assert g.stats.calls > calls
    with pytest.raises(GroundingError, match=r"<prompts>: entities: no prompt for spec entity 'bowl'"):
        g.ground(video, [*ENTS, Entity("bowl", "bowl")], prompts=_prompts())


def test_prompted_composite_and_sam3(video, tiny):
    from ltlreward.grounding.backends.models.sam3 import _follow

    g = get_grounder("gdino-sam2+vlm", config=_cfg(tiny), cache_dir="")
    obs = g.ground(video, ENTS, prompts=_prompts())
    assert g.parts[0]._detector is None and obs.meta["parts"]["gdino-sam2"]["static"] == ["plate"]
    s3 = get_grounder("sam3", config=_cfg(tiny), cache_dir="").ground(video, ENTS, prompts=_prompts())
    assert s3.meta["static"] == ["plate"] and (s3.boxes[2] == np.array([4, 44, 60, 62], np.float32)).all()
    # with prompts an entity takes the object of its text prompt that overlaps its last box most, not the
    # best-scoring one
    cur = np.array([-1])
    keep, switched = _follow(cur, [7, 8], np.array([True, True]), np.array([0.9, 0.2]), np.array([0, 0]),
                             np.array([0]), near=np.array([[0.1, 0.6]]))
    assert keep == [(0, 1)] and cur.tolist() == [8] and switched == [0]
    cur = np.array([-1])
    keep, _ = _follow(cur, [7, 8], np.array([True, True]), np.array([0.9, 0.2]), np.array([0, 0]), np.array([0]))
    assert keep == [(0, 0)] and cur.tolist() == [7]


# ---------------------------------------------------------------------------------------------- vlm
def test_vlm_atoms_gripper_opening_stride_and_softmax(video, tiny):
    import torch

    g = get_grounder("vlm", config=_cfg(tiny), vlm_stride=2, vlm_batch=1, cache_dir="")
    obs = g.ground(video, ENTS, quoted=["the drawer is open"])
    T = video.n_frames
    assert set(obs.atoms) == {"the drawer is open"} and set(obs.gripper_opening) == {"gripper"}
    assert obs.meta["asked_frames"] == [0, 2, 4, 5]
    assert g.stats.calls == 4 * 2  # (asked frames) × (one atom + one gripper question), one pair per call
    p = obs.atoms["the drawer is open"]
    assert p.shape == (T,) and p.dtype == np.float32 and ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(p[[1, 3]], (p[[0, 2]] + p[[2, 4]]) / 2, rtol=1e-6)  # interpolated frames
    assert np.isnan(obs.boxes).all() and (obs.visibility == 0).all() and obs.meta["provides"] == [
        "atoms", "gripper_opening"]
    # p = softmax over the yes/no logits of the next token, from the model's own forward
    _, q = g.question_for("the drawer is open")
    inputs = g.prompter.batch(*g.prompter.images(video.frames[:1], g.device), np.array([0]), [q], g.device, g.dtype)
    with torch.inference_mode():
        last = g._model(**inputs).logits[0, -1].float()
    two = torch.stack([torch.logsumexp(last[g.yes_ids], 0), torch.logsumexp(last[g.no_ids], 0)])
    assert abs(float(torch.softmax(two, 0)[0]) - float(p[0])) < 1e-5
    # gripper_closed is asked, so the opening is 1 − p(closed)
    kq = g.question_for(None, "gripper_closed", "gripper")[1]
    assert abs(float(obs.gripper_opening["gripper"][0]) - (1 - float(g.ask(video.frames, [0], [kq])[0]))) < 1e-5


def test_qwen_pixels_match_the_image_processor(video, tiny):
    g = get_grounder("vlm", config=_cfg(tiny), cache_dir="")
    g._load()
    frames = np.random.default_rng(0).integers(0, 255, (2, 56, 84, 3), dtype=np.uint8)  # no resize needed
    pix, grid = g.prompter.images(frames)
    ref = g.prompter.image_processor(images=list(frames), return_tensors="pt")
    assert grid.tolist() == ref["image_grid_thw"].tolist() == [[1, 4, 6]] * 2
    np.testing.assert_allclose(pix.reshape(-1, pix.shape[-1]).numpy(), ref["pixel_values"].numpy(), atol=1e-5)


def test_vlm_other_families_go_through_their_processor(video, tmp_path):
    import torch

    from ltlreward.grounding.backends.models.tiny import build_idefics3

    d = build_idefics3(tmp_path / "idefics3")
    g = get_grounder("vlm", models={"vlm": str(d)}, device="cpu", cpu_threads=1, cache_dir="", questions={})
    obs = g.ground(video, ENTS, quoted=["the drawer is open"])
    p = obs.atoms["the drawer is open"]
    assert type(g.prompter).__name__ == "_ProcessorPrompter" and p.shape == (video.n_frames,)
    _, q = g.question_for("the drawer is open")
    inputs = g.prompter.batch(*g.prompter.images(video.frames[2:3]), np.array([0]), [q], g.device, g.dtype)
    with torch.inference_mode():
        last = g._model(**inputs).logits[0, -1].float()
    two = torch.stack([torch.logsumexp(last[g.yes_ids], 0), torch.logsumexp(last[g.no_ids], 0)])
    assert abs(float(torch.softmax(two, 0)[0]) - float(p[2])) < 1e-5


def test_vlm_cache_is_per_question(video, tiny, tmp_path):
    g = get_grounder("vlm", config=_cfg(tiny), vlm_stride=3, vlm_batch=1, cache_dir=str(tmp_path / "c"),
                     questions={})  # quoted atoms only
    a = g.ground(video, ENTS, quoted=["the drawer is open"])
    n = g.stats.calls
    assert n == 3  # frames 0, 3, 5
    b = g.ground(video, ENTS, quoted=["the drawer is open", "the lid is closed"])
    assert g.stats.calls == n + 3 and b.meta["cache_hits"] == 1  # only the new question runs
    np.testing.assert_array_equal(a.atoms["the drawer is open"], b.atoms["the drawer is open"])


def test_predicates_read_vlm_observations(video, tiny):
    from ltlreward.predicates import compute_signals
    from ltlreward.spec.ast import Atom, Call

    obs = get_grounder("vlm", config=_cfg(tiny), cache_dir="").ground(video, ENTS, quoted=["the drawer is open"])
    sig = compute_signals([Quoted("the drawer is open"), Atom(Call("gripper_closed", ("gripper",)))], obs,
                          grounder="vlm")
    r = sig.values['"the drawer is open"']
    assert r.shape == (video.n_frames,) and np.all(np.sign(r) == np.sign(2 * obs.atoms["the drawer is open"] - 1))


# ---------------------------------------------------------------------------------------------- calibration
def test_platt_and_isotonic_fits():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 4000)
    p = 1 / (1 + np.exp(-z))
    y = rng.random(4000) < 1 / (1 + np.exp(-(2.0 * z - 0.5)))
    m = cal.fit_platt(p, y)
    assert abs(m.a - 2.0) < 0.2 and abs(m.b + 0.5) < 0.15
    iso = cal.fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    np.testing.assert_allclose(iso(np.array([0.1, 0.25, 0.4])), [0.0, 0.5, 1.0])
    assert np.all(np.diff(iso(np.linspace(0, 1, 50))) >= 0)


def test_calibration_file_round_trip_and_applied_by_vlm(video, tiny, tmp_path):
    c = cal.Calibration({"*": cal.CalibrationMap("platt", a=0.0, b=0.0),
                         "the drawer is open": cal.CalibrationMap("isotonic", x=(0.0, 1.0), y=(0.2, 0.2))})
    path = c.save(tmp_path / "cal.json")
    back = cal.Calibration.load(path)
    assert back.maps == c.maps
    obs = get_grounder("vlm", config=_cfg(tiny), vlm_calibration=str(path), cache_dir="").ground(
        video, ENTS, quoted=["the drawer is open"])
    np.testing.assert_allclose(obs.atoms["the drawer is open"], 0.2)  # its own map
    np.testing.assert_allclose(obs.gripper_opening["gripper"], 0.5)  # the "*" map: a = 0 → 0.5
    (tmp_path / "bad.json").write_text('{"format": "nope"}')
    with pytest.raises(GroundingError, match="not an ltlreward VLM calibration"):
        cal.Calibration.load(tmp_path / "bad.json")


def test_calibrate_from_labelled_frames(tiny, tmp_path):
    labels = tmp_path / "labels.jsonl"
    vid = str(EXAMPLES / "pick_place_success.mp4")
    rows = [{"video": vid, "frame": f, "atom": "the drawer is open", "label": f % 2 == 0} for f in range(6)]
    rows += [{"video": vid, "frame": f, "predicate": "gripper_closed", "entity": "gripper", "label": f > 2}
             for f in range(6)]
    labels.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    g = get_grounder("vlm", config=_cfg(tiny), cache_dir="")
    out = cal.calibrate(labels, g, method="isotonic", out=tmp_path / "c.json", min_per_key=6,
                        video_options={"size": 64})
    assert out.report["n"] == 12 and out.report["keys"] == {"gripper_closed": 6, "the drawer is open": 6}
    assert set(out.maps) == {"*", "gripper_closed", "the drawer is open"}
    assert out.report["brier_after"] <= out.report["brier_before"] + 1e-12
    assert cal.Calibration.load(tmp_path / "c.json").maps == out.maps
    assert g.stats.calls == 2  # 12 (frame, question) pairs in batches of 8


# ---------------------------------------------------------------------------------------------- composite
def test_composite_merges_geometry_and_vlm(video, tiny):
    g = get_grounder("gdino-sam2+vlm", config=_cfg(tiny), box_threshold=0.0, cache_dir="")
    obs = g.ground(video, ENTS, quoted=["the drawer is open"])
    assert obs.source == "gdino-sam2+vlm" and g.provides >= {"masks", "atoms", "gripper_opening"}
    assert obs.masks.shape == (3, video.n_frames, video.height, video.width)
    assert set(obs.atoms) == {"the drawer is open"} and set(obs.gripper_opening) == {"gripper"}
    assert obs.meta["sources"]["masks"] == "gdino-sam2" and obs.meta["sources"]["atoms"] == "vlm"
    assert set(obs.meta["parts"]) == {"gdino-sam2", "vlm"}
    with pytest.raises(GroundingError, match="unknown option"):
        get_grounder("gdino-sam2+vlm", config=_cfg(tiny), nonsense=1)
