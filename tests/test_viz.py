"""Overlay video and timeline plot: sizes and frame counts, timeline colours by robustness sign, witness
marks, playhead, mask blending exactly where the mask is on, entities keep their colour with a red ring when a
violation names them (the masks' evidence), the legend, Unicode text, wrapped titles, PNG outputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ltlreward.grounding.observations import Observations
from ltlreward.video import read_video
from ltlreward.viz import (
    BG,
    CURSOR,
    ENTITY_COLOURS,
    GREEN,
    MASK_ALPHA,
    RED,
    ROW_H,
    WITNESS,
    ConstraintTrace,
    OverlayRenderer,
    render_overlay,
    render_timeline_png,
)

T, H, W = 12, 32, 40


def scene() -> tuple[np.ndarray, dict[str, np.ndarray], list[ConstraintTrace]]:
    """Grey frames with a square mask for 'cube'; one violated constraint (frames 6..9) and one satisfied."""
    rng = np.random.default_rng(1)
    frames = rng.integers(60, 200, (T, H, W, 3), dtype=np.uint8)
    mask = np.zeros((T, H, W), bool)
    mask[:, 14:26, 18:34] = True
    r_bad = np.where(np.arange(T) < 6, 0.8, -0.8)
    r_bad[10:] = 0.5
    traces = [
        ConstraintTrace("no_drop", r_bad, False, 2.0, np.array([6, 7, 8, 9]),
                        entity_frames={"cube": (np.arange(T) >= 6) & (np.arange(T) <= 9)}),
        ConstraintTrace("reach", np.full(T, 0.9), True, 1.0, np.array([], np.int64)),
    ]
    return frames, {"cube": mask}, traces


def test_overlay_video_png_and_still(tmp_path: Path) -> None:
    frames, masks, traces = scene()
    out = render_overlay(
        frames,
        traces=traces,
        reward=0.25,
        out_video=tmp_path / "ov" / "clip.mp4",
        out_png=tmp_path / "ov" / "clip.png",
        out_still=tmp_path / "ov" / "clip_still.png",
        entity_masks=masks,
        atom_signals={"holding(gripper,cube)": np.linspace(-1, 1, T)},
        title="clip.mp4",
        fps=6.0,
    )
    assert out == tmp_path / "ov" / "clip.mp4"
    r = OverlayRenderer(frames, traces=traces, reward=0.25, entity_masks=masks, fps=6.0)
    v = read_video(out)
    assert v.n_frames == T and v.fps == pytest.approx(6.0)
    assert (v.height, v.width) == (r.canvas_h, r.canvas_w)
    assert r.display_hw[0] >= 448 and r.canvas_h % 2 == 0 and r.canvas_w % 2 == 0
    png = cv2.imread(str(tmp_path / "ov" / "clip.png"))
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 400
    still = cv2.imread(str(tmp_path / "ov" / "clip_still.png"))[..., ::-1]
    assert still.shape == (r.canvas_h, r.canvas_w, 3)
    assert r.still_frame() == 6  # first witnessed violation
    # the still equals the rendered overlay frame (no compression on PNG)
    full = OverlayRenderer(
        frames, traces=traces, reward=0.25, entity_masks=masks, title="clip.mp4", fps=6.0,
        atom_signals={"holding(gripper,cube)": np.linspace(-1, 1, T)},
    )
    np.testing.assert_array_equal(still, full.frame(6))


def _bar_pixel(r: OverlayRenderer, canvas: np.ndarray, row: int, frame: int) -> np.ndarray:
    x0, x1 = r.frame_x(frame)
    return canvas[r.row_y[row] + ROW_H // 2, (x0 + x1) // 2].astype(int)


def test_timeline_colours_follow_robustness_sign() -> None:
    frames, _, traces = scene()
    r = OverlayRenderer(frames, traces=traces, reward=0.0, fps=6.0)
    c = r.frame(0)
    bad = _bar_pixel(r, c, 0, 7)  # robustness -0.8
    good = _bar_pixel(r, c, 0, 3)  # +0.8
    sat = _bar_pixel(r, c, 1, 7)  # +0.9 in the satisfied row
    assert bad[0] > bad[1] + 100 and bad[0] > bad[2] + 100
    assert good[1] > good[0] + 100 and good[1] > good[2] + 50
    assert sat[1] > sat[0] + 100
    weak = _bar_pixel(r, c, 0, 11)  # +0.5: green but less intense than +0.8
    assert weak[1] - weak[0] < good[1] - good[0]


def test_witness_marks_and_playhead() -> None:
    frames, _, traces = scene()
    r = OverlayRenderer(frames, traces=traces, reward=0.0, fps=6.0)
    c = r.frame(2)
    y = r.row_y[0] + ROW_H + 2  # the witness underline band
    for f in range(T):
        x0, x1 = r.frame_x(f)
        expect = WITNESS if 6 <= f <= 9 else BG
        assert tuple(c[y, (x0 + x1) // 2]) == expect, f
    assert tuple(c[r.row_y[1] + ROW_H + 2, r.frame_x(7)[0] + 1]) == BG  # satisfied row: no marks
    # playhead box around frame 2 spans the rows; it is absent at frame 2 in another frame's canvas
    x0, x1 = r.frame_x(2)
    xm = (x0 + x1 - 1) // 2
    w = max(2, x1 - x0)
    xl = xm - w // 2 - 1
    assert tuple(c[r.row_y[1] + 5, xl]) == CURSOR
    other = r.frame(8)
    assert tuple(other[r.row_y[1] + 5, xl]) != CURSOR


def test_check_and_cross_icons() -> None:
    frames, _, traces = scene()
    r = OverlayRenderer(frames, traces=traces, reward=0.0, fps=6.0)
    c = r.frame(0).astype(int)
    icon = lambda row: c[r.row_y[row] : r.row_y[row] + ROW_H, 8:32].reshape(-1, 3)  # noqa: E731
    cross, check = icon(0), icon(1)
    assert ((cross[:, 0] > 180) & (cross[:, 1] < 120)).sum() > 10  # red strokes
    assert ((check[:, 1] > 150) & (check[:, 0] < 120)).sum() > 10  # green strokes
    assert ((cross[:, 1] > 150) & (cross[:, 0] < 120)).sum() == 0


def test_masks_blended_only_where_on() -> None:
    frames, masks, traces = scene()
    traces[0].witness_frames = np.array([], np.int64)  # no violation banner/border on the frame we sample
    traces[0].entity_frames = {}
    r = OverlayRenderer(frames, traces=traces, reward=0.0, entity_masks=masks, fps=6.0)
    t = 3
    c = r.frame(t)
    s = r.display_hw[0] // H
    assert r.display_hw == (H * s, W * s)
    oy = r.video_xy[1]
    colour = np.array(ENTITY_COLOURS[0], np.float64)
    # inside the mask (away from the outline): exact alpha blend of the upscaled source pixel
    for y, x in [(18, 22), (20, 30), (24, 20)]:
        got = c[oy + y * s + s // 2, x * s + s // 2].astype(np.float64)
        want = np.rint(frames[t, y, x] * (1 - MASK_ALPHA) + colour * MASK_ALPHA)
        np.testing.assert_array_equal(got, want)
    # outside: untouched source pixels
    for y, x in [(2, 2), (30, 5), (28, 38), (5, 36)]:
        np.testing.assert_array_equal(c[oy + y * s + s // 2, x * s + s // 2], frames[t, y, x])
    # the outline band is the entity colour
    assert tuple(c[oy + 14 * s, 25 * s]) == ENTITY_COLOURS[0]


def test_alerted_entity_keeps_its_colour_with_a_red_ring_at_witness_frames() -> None:
    frames, masks, traces = scene()
    r = OverlayRenderer(frames, traces=traces, reward=0.0, entity_masks=masks, fps=6.0)
    s = r.display_hw[0] // H
    oy = r.video_xy[1]
    k = max(2, r.display_hw[0] // 180)
    inside, outside = (oy + 26 * s - 1, 25 * s), (oy + 26 * s + k, 25 * s)  # the outline, and just below it
    assert tuple(r.frame(7)[inside]) == ENTITY_COLOURS[0]  # the entity keeps its colour during the violation
    assert tuple(r.frame(7)[outside]) == WITNESS  # and gets a red ring
    assert tuple(r.frame(3)[inside]) == ENTITY_COLOURS[0]
    assert tuple(r.frame(3)[outside]) != WITNESS


def test_boxes_drawn_and_nan_skipped() -> None:
    frames, _, traces = scene()
    boxes = np.tile(np.array([[4.0, 4.0, 20.0, 20.0]]), (T, 1))
    boxes[5] = np.nan
    r = OverlayRenderer(frames, traces=traces, reward=0.0, entity_boxes={"gripper": boxes}, fps=6.0)
    s = r.display_hw[0] // H
    oy = r.video_xy[1]
    y, x = oy + 12 * s, 4 * s  # left edge of the box, mid height
    assert tuple(r.frame(2)[y, x]) == ENTITY_COLOURS[0]
    assert tuple(r.frame(5)[y, x]) != ENTITY_COLOURS[0]


def test_large_video_is_downscaled_and_non_ascii_names_render() -> None:
    frames = np.zeros((2, 800, 600, 3), np.uint8)
    tr = [ConstraintTrace("größe ✓", np.array([0.5, -0.5]), False, 1.0, np.array([1]))]
    r = OverlayRenderer(frames, traces=tr, reward=-1.0, title="vidéo", fps=2.0)
    assert r.display_hw == (720, 540)
    assert r.frame(1).shape == (r.canvas_h, r.canvas_w, 3)


def test_unicode_is_drawn_not_replaced_by_question_marks() -> None:
    from ltlreward.drawing import put_text

    def ink(text: str) -> np.ndarray:
        img = np.zeros((40, 200, 3), np.uint8)
        put_text(img, text, 4, 28, (255, 255, 255), 0.6)
        return img[..., 0] > 0

    assert ink("größe").sum() > 0
    assert not np.array_equal(ink("größe"), ink("gr??e"))  # the umlaut and ß are glyphs of their own
    assert not np.array_equal(ink("é"), ink("e"))


def test_long_titles_wrap_onto_a_taller_header() -> None:
    frames, _, traces = scene()
    short = OverlayRenderer(frames, traces=traces, reward=0.0, title="clip", fps=6.0)
    long = OverlayRenderer(frames, traces=traces, reward=0.0, fps=6.0,
                           title="a rather long description of what this generated video was asked to show " * 3)
    assert len(short._title_lines) == 1 and len(long._title_lines) == 2
    assert long.header_h > short.header_h and long.video_xy[1] == long.header_h
    assert long._title_lines[-1].endswith("…")


def test_legend_explains_colours_and_marks() -> None:
    frames, masks, traces = scene()
    r = OverlayRenderer(frames, traces=traces, reward=0.0, entity_masks=masks, fps=6.0)
    legend = r.frame(0)[r.legend_y : r.legend_y + 24]
    colours = {tuple(p) for p in legend.reshape(-1, 3)}
    assert {GREEN, RED, WITNESS} <= colours  # the swatches
    assert r.legend_y + 24 <= r.canvas_h


def test_overlay_violation_marks_are_the_mask_evidence() -> None:
    """Two entities, one constraint: a fails at frames 3–4, b never becomes visible (F picks the deadline).
    Each entity is marked exactly where its own atom is witnessed, as in the masks (not every witnessed entity
    at every witness frame)."""
    from ltlreward import RewardModel
    from ltlreward.outputs import overlay_traces

    n = 8
    boxes = np.array([[[2, 2, 10, 10]] * n, [[20, 20, 30, 30]] * n], np.float32)
    vis = np.ones((2, n), np.float32)
    vis[0, 3:5] = 0.0
    vis[1] = 0.2

    class Two:
        name, provides = "two", frozenset({"boxes", "centers", "visibility"})

        def ground(self, video, entities, *, quoted=(), sidecar=None):
            ctr = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)
            return Observations(("a", "b"), n, 40, 40, 10.0, boxes, ctr, vis)

    spec = 'entity a = "a"\nentity b = "b"\nconstraint c: G visible(a) & F visible(b)\n'
    an = RewardModel(spec, grounder=Two(), mask_dilation=0, predicate_options={"smooth": 0}).analyze(
        np.zeros((n, 40, 40, 3), np.uint8))
    (tr,) = overlay_traces(an)
    r = OverlayRenderer(np.zeros((n, 40, 40, 3), np.uint8), traces=[tr], reward=an.result.reward,
                        entity_boxes={"a": boxes[0], "b": boxes[1]}, fps=10.0)
    assert np.flatnonzero(r._alert["a"]).tolist() == [3, 4]
    assert np.flatnonzero(r._alert["b"]).tolist() == [n - 1]
    assert tr.witness_frames.tolist() == [3, 4, n - 1]
    m = an.result.masks  # the same evidence paints the masks: a's box at 3–4, b's at the last frame
    for t in range(n):
        assert bool(m[t, 5, 5]) == (t in (3, 4)) and bool(m[t, 25, 25]) == (t == n - 1), t


def test_shape_mismatch_is_a_clear_error() -> None:
    frames, masks, traces = scene()
    bad = [ConstraintTrace("x", np.zeros(T + 1), True)]
    with pytest.raises(ValueError, match=r"constraint 'x': robustness has 13 values for 12 frames"):
        OverlayRenderer(frames, traces=bad, reward=0.0)
    with pytest.raises(ValueError, match=r"mask 'cube'"):
        OverlayRenderer(frames, traces=traces, reward=0.0, entity_masks={"cube": masks["cube"][:3]})


@pytest.mark.parametrize("backend", ["cv2", "matplotlib"])
def test_timeline_png_says_what_it_plots(tmp_path: Path, backend: str) -> None:
    """Witness shading only on the violated constraint's panel (the top one); the satisfied one, whose value
    is positive throughout, has no red at all; a predicates panel is drawn when signals are given."""
    if backend == "matplotlib":
        pytest.importorskip("matplotlib")
    from ltlreward.timeline import SHADE

    _, _, traces = scene()
    out = render_timeline_png(traces, tmp_path / "t.png", fps=6.0, title="clip", backend=backend)
    rgb = cv2.imread(str(out))[..., ::-1].astype(int)
    assert rgb.shape[1] >= 800
    shade = np.all(rgb == np.array(SHADE), axis=-1)
    rows = np.flatnonzero(shade.any(axis=1))
    assert shade.sum() > 500 and rows.max() < rgb.shape[0] // 2  # only in the violated (top) panel
    with_atoms = render_timeline_png(traces, tmp_path / "a.png", fps=6.0, backend=backend,
                                     atom_signals={"holding(gripper,cube)": np.linspace(-1, 1, T)})
    assert cv2.imread(str(with_atoms)).shape[0] > rgb.shape[0]  # one more panel


def test_timeline_png_cv2_shades_witness_frames(tmp_path: Path) -> None:
    tr = [ConstraintTrace("c", np.full(10, 0.5), False, 1.0, np.array([5]))]  # positive but witnessed
    out = render_timeline_png(tr, tmp_path / "w.png", fps=10.0, backend="cv2")
    rgb = cv2.imread(str(out))[..., ::-1].astype(int)
    from ltlreward.timeline import SHADE

    left, pw = 70, 1100 - 70 - 20
    row = rgb[14 + 24 + 5]
    shaded = np.all(row == np.array(SHADE), axis=-1)
    xs = np.flatnonzero(shaded[left : left + pw])
    assert len(xs) > 0 and xs.min() >= pw * 5 // 10 - 1 and xs.max() <= pw * 6 // 10 + 1


def test_unknown_plot_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="available: auto, matplotlib, cv2"):
        render_timeline_png([], tmp_path / "x.png", fps=1.0, backend="svg")
