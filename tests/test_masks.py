"""Violation masks: box rasterisation, temporal dilation, weighting, mask-vs-box regions, stand-ins for vanished
objects, per-constraint coverage, saving."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from ltlreward import monitor, parse_spec
from ltlreward.grounding.observations import Observations
from ltlreward.masks import (
    Coverage,
    StandIn,
    ViolationEvidence,
    box_masks,
    dilate_frames,
    entity_regions,
    evidence_from_atoms,
    load_masks,
    save_masks,
    violation_mask,
    violation_masks,
)
from ltlreward.predicates import compute_signals
from ltlreward.spec import spec_atoms

T, H, W = 10, 8, 10
BOX_A = (1.0, 1.0, 4.0, 3.0)  # cols 1..3, rows 1..2
BOX_B = (3.0, 2.0, 7.0, 6.0)  # cols 3..6, rows 2..5 (overlaps A at col 3, row 2)


def obs(masks: np.ndarray | None = None) -> Observations:
    boxes = np.stack([np.tile(np.array(b, np.float32), (T, 1)) for b in (BOX_A, BOX_B)])
    boxes[1, 0] = np.nan  # b unseen at frame 0
    centers = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)
    return Observations(entities=("a", "b"), n_frames=T, height=H, width=W, fps=10.0, boxes=boxes,
                        centers=centers, visibility=np.ones((2, T), np.float32), masks=masks)


def onehot(*frames: int) -> np.ndarray:
    f = np.zeros(T, bool)
    f[list(frames)] = True
    return f


def region(box: tuple[float, float, float, float]) -> np.ndarray:
    m = np.zeros((H, W), np.float32)
    x0, y0, x1, y1 = (int(v) for v in box)
    m[y0:y1, x0:x1] = 1.0
    return m


def test_box_masks_pixel_centres_and_nan() -> None:
    m = box_masks(np.array([BOX_A, [np.nan] * 4], np.float32), H, W)
    assert m.shape == (2, H, W) and m.dtype == bool
    np.testing.assert_array_equal(m[0], region(BOX_A).astype(bool))
    assert not m[1].any()
    assert box_masks(np.zeros((3, 5, 4)), 4, 6).shape == (3, 5, 4, 6)  # any leading shape


def test_dilate_frames() -> None:
    x = np.zeros(10, bool)
    x[[0, 5]] = True
    assert np.flatnonzero(dilate_frames(x, 2)).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert np.flatnonzero(dilate_frames(x, 0)).tolist() == [0, 5]
    two = np.stack([x, np.roll(x, 4)])  # frames 4 and 9 in row 1
    assert np.flatnonzero(dilate_frames(two, 1)[1]).tolist() == [3, 4, 5, 8, 9]
    assert not dilate_frames(np.zeros(4, bool), 3).any()


def test_union_of_boxes_at_witnessed_frames_with_dilation_and_weights() -> None:
    ev = [
        ViolationEvidence("heavy", 2.0, {"a": onehot(4)}),
        ViolationEvidence("light", 1.0, {"b": onehot(6)}),
    ]
    m = violation_mask(ev, obs(), dilation=1, max_weight=4.0)
    assert m.shape == (T, H, W) and m.dtype == np.float32
    expected = np.zeros((T, H, W), np.float32)
    expected[3:6] = region(BOX_A) * 0.5  # 2 / 4
    expected[5:8] = np.maximum(expected[5:8], region(BOX_B) * 0.25)  # 1 / 4; frame 5 overlap keeps the max
    np.testing.assert_array_equal(m, expected)
    assert m[5, 2, 3] == 0.5 and m[5, 4, 4] == 0.25 and m[4, 4, 4] == 0.0


def test_default_normalisation_and_same_entity_in_two_constraints() -> None:
    ev = [
        ViolationEvidence("c1", 3.0, {"a": onehot(2)}),
        ViolationEvidence("c2", 1.0, {"a": onehot(2, 8), "zz": onehot(1)}),  # unknown entity ignored
    ]
    m = violation_mask(ev, obs(), dilation=0)
    assert m.max() == 1.0  # normalised by the largest given weight
    np.testing.assert_array_equal(m[2], region(BOX_A))
    np.testing.assert_allclose(m[8], region(BOX_A) / 3)
    assert not m[[0, 1, 3, 4, 5, 6, 7, 9]].any()


def test_zero_without_violations_and_an_unseen_entity_takes_its_next_seen_region() -> None:
    assert not violation_mask([], obs()).any()
    assert violation_mask([], obs()).shape == (T, H, W)
    m, cov = violation_masks([ViolationEvidence("c", 1.0, {"b": onehot(0)})], obs(), dilation=0)
    np.testing.assert_array_equal(m[0], region(BOX_B))  # b has no box at frame 0: its box at frame 1
    assert not m[1:].any()
    assert cov == [Coverage("c", 0.1, region(BOX_B).sum() / (T * H * W), (StandIn("b", "next seen", ((0, 0),)),))]


def vanishing(seen: np.ndarray) -> Observations:
    """One entity 'blk' whose box moves right one pixel a frame and is missing where `seen` is False."""
    boxes = np.array([[t % 6, 1, t % 6 + 3, 4] for t in range(T)], np.float32)[None]
    boxes[0, ~seen] = np.nan
    centers = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)
    return Observations(entities=("blk",), n_frames=T, height=H, width=W, fps=10.0, boxes=boxes, centers=centers,
                        visibility=seen[None].astype(np.float32))


def test_a_vanished_object_is_painted_with_its_last_seen_region() -> None:
    """G visible(blk) with the object missing in frames 3–5: the witness is 3–5, and the mask paints them (its
    box at frame 2), not only the dilated frames around them where it is seen."""
    seen = np.ones(T, bool)
    seen[3:6] = False
    o = vanishing(seen)
    spec = parse_spec('entity blk = "block"\nconstraint vis: G visible(blk)\n')
    sig = compute_signals(spec_atoms(spec), o)
    c = monitor(spec, {k: v[None] for k, v in sig.values.items()})["vis"]
    assert c.witness(0).frames == (3, 4, 5)
    ev = evidence_from_atoms("vis", 1.0, {k: m[0] for k, m in c.atom_masks.items()}, {"visible(blk)": ("blk",)})
    m, (cov,) = violation_masks([ev], o, dilation=0)
    last = np.zeros((H, W), np.float32)
    last[1:4, 2:5] = 1.0  # the box of frame 2
    for t in range(T):
        np.testing.assert_array_equal(m[t], last if 3 <= t <= 5 else 0.0)
    assert cov.stand_ins == (StandIn("blk", "last seen", ((3, 5),)),)
    assert cov.frame_fraction == 0.3
    m2 = violation_mask([ev], o, dilation=2)  # frames 1..7: seen ones keep their own box
    assert [bool(m2[t].any()) for t in range(T)] == [False] + [True] * 7 + [False] * 2
    np.testing.assert_array_equal(m2[6], region((0.0, 1.0, 3.0, 4.0)))  # frame 6: x from 0 (6 % 6)


def test_an_entity_never_seen_is_the_whole_frame_and_says_so() -> None:
    m, (cov,) = violation_masks([ViolationEvidence("c", 1.0, {"blk": onehot(2, 3)})], vanishing(np.zeros(T, bool)),
                                dilation=0)
    assert m[2].all() and m[3].all() and not m[[0, 1, 4]].any()
    assert cov.stand_ins == (StandIn("blk", "whole frame", ((2, 3),)),) and cov.pixel_fraction == 0.2
    assert cov.stand_ins[0].to_json() == {"entity": "blk", "region": "whole frame", "frames": [[2, 3]]}


def test_segmentation_masks_preferred_and_empty_ones_fall_back_to_boxes() -> None:
    seg = np.zeros((2, T, H, W), bool)
    seg[0, :, 0, 0] = True  # a's mask: one pixel
    seg[0, 7] = False  # empty at frame 7 → its box
    o = obs(seg)
    r = entity_regions(o, "a", np.array([3, 7]), (H, W))
    np.testing.assert_array_equal(r[0], seg[0, 3])
    np.testing.assert_array_equal(r[1], region(BOX_A).astype(bool))
    m = violation_mask([ViolationEvidence("c", 1.0, {"a": onehot(3)})], o, dilation=0)
    assert np.argwhere(m).tolist() == [[3, 0, 0]]


def test_output_size_rescales_boxes_and_masks() -> None:
    m = violation_mask([ViolationEvidence("c", 1.0, {"a": onehot(1)})], obs(), dilation=0, size=(16, 20))
    assert m.shape == (T, 16, 20)
    expected = np.zeros((16, 20), np.float32)
    expected[2:6, 2:8] = 1.0  # box doubled
    np.testing.assert_array_equal(m[1], expected)
    seg = np.zeros((2, T, H, W), bool)
    seg[0, 1, 1, 2] = True
    m2 = violation_mask([ViolationEvidence("c", 1.0, {"a": onehot(1)})], obs(seg), dilation=0, size=(16, 20))
    assert np.argwhere(m2[1]).tolist() == [[2, 4], [2, 5], [3, 4], [3, 5]]


def test_evidence_from_atoms_unions_frames_per_entity() -> None:
    ev = evidence_from_atoms("c", 2.0, {"near(a,b)": onehot(1), "lifted(a)": onehot(3)},
                             {"near(a,b)": ("a", "b"), "lifted(a)": ("a",)})
    assert ev.weight == 2.0
    assert np.flatnonzero(ev.entity_frames["a"]).tolist() == [1, 3]
    assert np.flatnonzero(ev.entity_frames["b"]).tolist() == [1]


def test_bad_frame_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="frames of 'a' have shape"):
        violation_mask([ViolationEvidence("c", 1.0, {"a": np.ones(3, bool)})], obs())


def test_save_and_load_masks(tmp_path: Path) -> None:
    m = violation_mask([ViolationEvidence("c", 1.0, {"a": onehot(4)})], obs())
    p = save_masks(tmp_path / "out", "clip_01", m, frame_indices=np.arange(T) * 2)
    assert p == tmp_path / "out" / "clip_01.npz"
    np.testing.assert_array_equal(load_masks(p), m)
    with np.load(p) as z:
        assert z["frame_indices"].tolist() == list(range(0, 2 * T, 2))
    with zipfile.ZipFile(p) as zf:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())


class VanishingGrounder:
    """The `vanishing` observations (block missing in frames 3–5) for any video of T frames."""

    name = "vanishing"
    provides = frozenset({"boxes", "centers", "visibility"})

    def ground(self, video, entities, *, quoted=(), sidecar=None) -> Observations:
        seen = np.ones(T, bool)
        seen[3:6] = False
        return vanishing(seen)


def test_record_localisation_per_violated_constraint() -> None:
    from ltlreward import RewardModel
    from ltlreward.result import validate_json

    spec = 'entity blk = "block"\nconstraint vis [weight=2]: G visible(blk)\nconstraint ok: F visible(blk)\n'
    video = np.zeros((T, H, W, 3), np.uint8)
    res = RewardModel(spec, grounder=VanishingGrounder()).score(video)
    rec = res.to_json()
    assert validate_json(rec) == []
    box2 = 9 / (H * W)  # the frame-2 box (3 × 3 pixels), at each of frames 1–7 (seen ones: their own 3 × 3)
    assert rec["localisation"] == [{
        "constraint": "vis", "witness_frames": 3, "frame_fraction": 0.3, "mask_frame_fraction": 0.7,
        "pixel_fraction": round(7 * box2 / T, 6),
        "stand_ins": [{"entity": "blk", "region": "last seen", "frames": [[3, 5]]}],
    }]
    bare = RewardModel(spec, grounder=VanishingGrounder(), masks=False).score(video).to_json()["localisation"]
    assert bare == [{"constraint": "vis", "witness_frames": 3, "frame_fraction": 0.3, "mask_frame_fraction": None,
                     "pixel_fraction": None, "stand_ins": []}]
