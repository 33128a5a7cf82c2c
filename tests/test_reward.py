"""RewardModel / RewardResult: exact rewards per mode, witnesses, masks, batching, trainer API, JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ltlreward.grounding.observations import Observations
from ltlreward.result import JSON_SCHEMA, SCHEMA_VERSION, RewardResult, validate_json
from ltlreward.reward import STAGES, RewardModel, aggregate, load_task_spec

ROOT = Path(__file__).resolve().parents[1]

SPEC = """task "toy"
entity a = "red ball"
constraint keep "p always holds": G p
constraint bad [weight=3] "q always holds": G q
constraint once "s happens": F s
constraint hidden [weight=2] "the ball is never seen": G !visible(a)
reward {mode}
"""
H = W = 16
BOX = (2.0, 3.0, 6.0, 7.0)  # x0, y0, x1, y1: pixel centres x 2.5..5.5, y 3.5..6.5 → cols 2..5, rows 3..6


def _track(kind: int, T: int) -> dict:
    """Per-video ground truth. kind 0: keep ✓ (ρ .8), bad ✗ (-.6), once ✓ (.9), hidden ✗ (ball seen 10–12).
    kind 1: everything holds. kind 2: like 0 but shorter is fine (T given)."""
    p = np.full(T, 0.9, np.float32)
    q = np.full(T, 0.2 if kind != 1 else 0.9, np.float32)
    s = np.full(T, 0.1, np.float32)
    s[3:6] = 0.95
    vis = np.zeros(T, np.float32)
    boxes = np.tile(np.array(BOX, np.float32), (T, 1))  # located in every frame, visible only in 10–12
    if kind != 1:
        vis[10:13] = 1.0
    return {"p": p, "q": q, "s": s, "vis": vis, "boxes": boxes}


class FakeGrounder:
    """Observations scripted per video; the video's kind is the value of pixel (0, 0, red) in frame 0."""

    name = "fake"
    provides = frozenset({"boxes", "centers", "visibility", "atoms"})

    def ground(self, video, entities: Sequence, *, quoted=(), sidecar=None) -> Observations:
        T = video.n_frames
        tr = _track(int(video.frames[0, 0, 0, 0]), T)
        boxes = tr["boxes"][None]
        centers = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)
        return Observations(
            entities=tuple(e.name for e in entities), n_frames=T, height=video.height, width=video.width,
            fps=video.fps, boxes=boxes, centers=centers, visibility=tr["vis"][None],
            atoms={"p": tr["p"], "q": tr["q"], "s": tr["s"]}, source="fake",
        )


def model(mode: str = "weighted_mean", **kw) -> RewardModel:
    return RewardModel(SPEC.format(mode=mode), grounder=FakeGrounder(), **kw)


def frames(kind: int, T: int = 16) -> np.ndarray:
    f = np.zeros((T, H, W, 3), np.uint8)
    f[:, 0, 0, 0] = kind
    return f


EXPECTED_RHO = [0.8, -0.6, 0.9, -1.0]  # keep, bad, once, hidden on a kind-0 video
WEIGHTS = [1.0, 3.0, 1.0, 2.0]


# ------------------------------------------------------------------------------------------ aggregation
def test_aggregate_exact_values_per_mode() -> None:
    sat = np.array([[True, False, True], [True, True, True]])
    rho = np.array([[0.5, -0.2, 1.0], [0.2, 0.4, 0.6]])
    w = np.array([1.0, 2.0, 1.0])
    assert aggregate("weighted_mean", sat, rho, w) == pytest.approx([0.5, 1.0])
    assert aggregate("all", sat, rho, w) == pytest.approx([0.0, 1.0])
    expected = [(0.75 + 0.8 + 1.0) / 4, (0.6 + 1.4 + 0.8) / 4]
    assert aggregate("mean_robustness", sat, rho, w) == pytest.approx(expected)
    assert aggregate("min_robustness", sat, rho, w) == pytest.approx([0.4, 0.6])
    assert aggregate("all", np.ones((3, 0), bool), np.zeros((3, 0)), np.zeros(0)).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown reward mode 'best'"):
        aggregate("best", sat, rho, w)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("weighted_mean", 2 / 7),
        ("all", 0.0),
        ("mean_robustness", (0.9 * 1 + 0.2 * 3 + 0.95 * 1 + 0.0 * 2) / 7),
        ("min_robustness", 0.0),
    ],
)
def test_score_reward_per_mode(mode: str, expected: float) -> None:
    r = model(mode).score(frames(0))
    assert r.error is None
    assert r.reward == pytest.approx(expected, abs=1e-6)
    assert r.reward_mode == mode
    assert [c.robustness for c in r.constraints] == pytest.approx(EXPECTED_RHO, abs=1e-6)
    assert [c.satisfied for c in r.constraints] == [True, False, True, False]
    assert [c.weight for c in r.constraints] == WEIGHTS
    assert r.satisfied is False


def test_result_witnesses_traces_and_timings() -> None:
    r = model().score(frames(0))
    keep, bad, once, hidden = r.constraints
    assert keep.witness is None and once.witness is None
    assert hidden.witness.frames == (10, 11, 12)
    assert hidden.witness.entities == ("a",)
    assert {a.atom for a in hidden.witness.atoms} == {"visible(a)"}
    assert bad.witness.frames == tuple(range(16)) and bad.witness.entities == ()
    assert hidden.trace.shape == (16,) and hidden.trace[12] == pytest.approx(-1.0)
    assert set(r.timings) == set(STAGES) and all(v >= 0 for v in r.timings.values())
    assert (r.n_frames, r.height, r.width, r.grounder, r.video) == (16, H, W, "fake", "<memory:0>")
    assert r.frame_indices.tolist() == list(range(16))


def test_violation_mask_of_a_scored_video() -> None:
    r = model().score(frames(0))
    m = r.masks
    assert m.shape == (16, H, W) and m.dtype == np.float32
    expected = np.zeros_like(m)
    expected[8:15, 3:7, 2:6] = 2 / 3  # witnessed 10–12, dilated by 2; hidden's weight 2 / spec max weight 3
    np.testing.assert_allclose(m, expected, atol=1e-7)
    assert not model().score(frames(1)).masks.any()  # everything holds → all-zero mask
    assert model(masks=False).score(frames(0)).masks is None


def test_sampling_options_apply_to_in_memory_frames() -> None:
    r = model(stride=2, max_frames=5).score(frames(0))
    assert r.n_frames == 5 and r.frame_indices.tolist() == [0, 2, 4, 6, 8]


# ------------------------------------------------------------------------------------------ batches
def test_score_batch_ragged_matches_single_scores() -> None:
    m = model("mean_robustness")
    vids = [frames(0, 16), frames(1, 12), frames(0, 14)]
    batch = m.score_batch(vids)
    for v, rb in zip(vids, batch, strict=True):
        rs = m.score(v)
        assert rb.reward == pytest.approx(rs.reward, abs=1e-7)
        assert rb.n_frames == len(v)
        for cb, cs in zip(rb.constraints, rs.constraints, strict=True):
            assert cb.satisfied == cs.satisfied and cb.robustness == pytest.approx(cs.robustness)
            np.testing.assert_allclose(cb.trace, cs.trace)
            assert (cb.witness is None) == (cs.witness is None)
            if cb.witness is not None:
                assert cb.witness.frames == cs.witness.frames
        np.testing.assert_array_equal(rb.masks, rs.masks)
    assert batch[1].reward == pytest.approx((0.9 + 0.9 * 3 + 0.95 + 1.0 * 2) / 7, abs=1e-6)


def test_call_uint8_and_float_layouts_agree() -> None:
    m = model()
    u8 = np.stack([frames(0), frames(1)])  # (B, T, H, W, 3)
    rewards, info = m(u8, prompts=["a", "b"])
    assert rewards.dtype == np.float32 and rewards.shape == (2,)
    assert rewards.tolist() == pytest.approx([2 / 7, 1.0], abs=1e-6)
    fl = np.moveaxis(u8.astype(np.float32) / 255.0, -1, 2)  # (B, T, C, H, W) in [0, 1]
    rewards_f, _ = m(fl)
    np.testing.assert_array_equal(rewards, rewards_f)
    assert info["constraint_names"] == ["keep", "bad", "once", "hidden"]
    assert info["satisfied"]["hidden"].tolist() == [False, True]
    assert info["robustness"]["bad"] == pytest.approx([-0.6, 0.8], abs=1e-6)
    assert info["all_satisfied"].tolist() == [False, True]
    assert [mk.shape for mk in info["masks"]] == [(16, H, W)] * 2
    assert info["masks"][0].max() == pytest.approx(2 / 3) and not info["masks"][1].any()
    assert info["errors"] == [None, None] and len(info["results"]) == 2


def test_call_torch_float_tensor() -> None:
    torch = pytest.importorskip("torch")
    m = model()
    u8 = np.stack([frames(1), frames(0)])
    t = torch.from_numpy(np.moveaxis(u8, -1, 2).copy()).float() / 255.0  # (B, T, C, H, W)
    rewards, info = m(t)
    assert rewards.tolist() == pytest.approx([1.0, 2 / 7], abs=1e-6)
    assert info["satisfied"]["keep"].tolist() == [True, True]


def test_failed_videos_are_recorded_and_the_rest_scored(tmp_path: Path) -> None:
    m = model(failure_reward=-1.0)
    missing = tmp_path / "missing.mp4"
    rewards, info = m([frames(1), np.zeros((0, H, W, 3), np.uint8), missing])
    assert rewards.tolist() == pytest.approx([1.0, -1.0, -1.0])
    assert info["errors"][0] is None
    assert "zero frames" in info["errors"][1]
    assert info["errors"][2].startswith("VideoError") and "missing.mp4" in info["errors"][2]
    failed = info["results"][2]
    assert math.isnan(failed.reward) and not failed.ok and failed.video == str(missing.resolve())
    assert info["masks"][1] is None and np.isnan(info["robustness"]["keep"][1])
    assert info["satisfied"]["keep"].tolist() == [True, False, False]


def test_metadata_sidecars_reach_the_grounder() -> None:
    seen = []

    class Spy(FakeGrounder):
        def ground(self, video, entities, *, quoted=(), sidecar=None):
            seen.append(sidecar)
            return super().ground(video, entities, quoted=quoted, sidecar=sidecar)

    m = RewardModel(SPEC.format(mode="all"), grounder=Spy(), sidecar="default.json")
    m([frames(1), frames(1)], metadata=[{"sidecar": "one.json"}, {}])
    assert seen == ["one.json", "default.json"]


def test_spec_inputs(tmp_path: Path) -> None:
    text = SPEC.format(mode="all")
    p = tmp_path / "toy.ltl"
    p.write_text(text)
    assert load_task_spec(str(p)).path == str(p)
    assert load_task_spec(p).reward == "all"
    assert load_task_spec(text).constraints[1].weight == 3.0
    from ltlreward.errors import SpecError

    with pytest.raises(SpecError, match="no such spec file"):
        load_task_spec(str(tmp_path / "nope.ltl"))


# ------------------------------------------------------------------------------------------ JSON
def test_json_schema_of_scored_and_failed_results() -> None:
    r = model().score(frames(0))
    obj = json.loads(json.dumps(r.to_json()))
    assert validate_json(obj) == []
    assert obj["schema_version"] == SCHEMA_VERSION == JSON_SCHEMA["properties"]["schema_version"]["const"]
    assert set(obj) >= {"video", "reward", "satisfied", "constraints", "schema_version", "error"}
    hidden = obj["constraints"][3]
    assert set(hidden) == {"name", "satisfied", "robustness", "weight", "witness", "spaces"}
    assert set(hidden["spaces"].values()) <= {"3d", "2.5d", "image", "signal"} and hidden["spaces"]
    assert hidden["witness"]["frames"] == [10, 11, 12] and hidden["witness"]["entities"] == ["a"]
    assert obj["constraints"][0]["witness"] is None
    assert obj["reward"] == pytest.approx(2 / 7, abs=1e-6) and obj["timings"].keys() == set(STAGES)

    bad = RewardResult.failed("/x/clip.mp4", ValueError("boom")).to_json()
    assert validate_json(bad) == []
    assert (bad["reward"], bad["satisfied"], bad["constraints"], bad["error"]) == (
        None, False, [], "ValueError: boom")


def test_validate_json_reports_problems() -> None:
    obj = model().score(frames(0)).to_json()
    del obj["video"]
    obj["reward"] = "high"
    obj["constraints"][3]["witness"]["frames"] = ["ten"]
    errors = validate_json(obj)
    assert "$: missing key 'video'" in errors
    assert "$.reward: expected number or null, got str" in errors
    assert "$.constraints[3].witness: matches none of the allowed forms" in errors


# ------------------------------------------------------------------------------------------ examples
EXAMPLES = ROOT / "examples"
EXPECTED_VIOLATION = {  # the constraint each failure example was made to break (examples/labels.jsonl)
    "handover_drop": "exchange",  # let go before the right arm took it: never held by both
    "handover_no_release": "finish",  # the left arm never lets go
    "handover_wrong_order": "grasp_first",  # the right arm grabs first
    "pick_place_drop": "no_drop",  # the block falls while lifted
    "pick_place_miss": "placed",  # put down beside the plate
}


@pytest.mark.parametrize("spec_name", ["handover", "pick_place"])
def test_end_to_end_on_shipped_examples_with_state_grounder(spec_name: str) -> None:
    spec = ROOT / "specs" / f"{spec_name}.ltl"
    if not spec.is_file() or not (EXAMPLES / "labels.jsonl").is_file():
        pytest.skip("shipped examples / specs not present")
    labels = [json.loads(x) for x in (EXAMPLES / "labels.jsonl").read_text().splitlines() if x.strip()]
    labels = [lb for lb in labels if lb["spec"] == f"specs/{spec_name}.ltl"]
    m = RewardModel(spec, grounder="state")
    results = m.score_batch([ROOT / lb["video"] for lb in labels])
    for lb, r in zip(labels, results, strict=True):
        stem = Path(lb["video"]).stem
        assert r.error is None, r.error
        assert r.grounder == "state"
        if lb["success"]:
            assert r.satisfied and r.reward == 1.0 and not r.masks.any(), stem
            continue
        assert not r.satisfied and r.reward < 1.0, stem
        bad = r.constraint(EXPECTED_VIOLATION[stem])
        assert not bad.satisfied and bad.robustness < 0, stem
        assert bad.witness is not None and bad.witness.frames and bad.witness.entities, stem
        assert r.masks.max() > 0, stem


def test_explicit_sidecar_and_auto_grounder(tmp_path: Path) -> None:
    spec = ROOT / "specs" / "pick_place.ltl"
    src = EXAMPLES / "pick_place_success.mp4"
    if not spec.is_file() or not src.is_file():
        pytest.skip("shipped examples / specs not present")
    clip = tmp_path / "clip.mp4"  # no sidecar beside it
    clip.write_bytes(src.read_bytes())
    sidecar = EXAMPLES / "pick_place_success.sidecar.json"
    r = RewardModel(spec).score(clip, sidecar=sidecar)
    assert (r.grounder, r.reward, r.error) == ("state", 1.0, None)
    assert RewardModel(spec, sidecar=sidecar).score(clip).grounder == "state"
    assert RewardModel(spec, grounder="state").score(clip).error.startswith("GroundingError")


def test_grounder_argument_must_be_a_name_or_backend() -> None:
    with pytest.raises(TypeError, match="grounder must be a backend name"):
        RewardModel(SPEC.format(mode="all"), grounder=42)
    assert model().grounder_name == "fake"
