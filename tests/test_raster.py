"""The raster helpers every grounder, the masks and the overlays share: exact values on small grids."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ltlreward.raster import box_bands, box_centers, box_masks, frame_runs, mask_boxes, nearest_index, nearest_resize


def test_box_bands_outer_and_is_box_masks():
    boxes = np.array([[1.0, 1.0, 4.0, 3.0], [2.6, 0.0, 3.4, 9.0], [np.nan] * 4], np.float32)
    rows, cols = box_bands(boxes, 6, 7)
    assert rows.shape == (3, 6) and cols.shape == (3, 7)
    np.testing.assert_array_equal(rows[:, :, None] & cols[:, None, :], box_masks(boxes, 6, 7))
    assert rows[0].tolist() == [False, True, True, False, False, False]  # centres 1.5, 2.5 in [1, 3]
    assert not box_masks(boxes, 6, 7)[1].any()  # no pixel centre (x + 0.5) in [2.6, 3.4]


def test_mask_boxes_are_exclusive_extents_and_nan_when_empty():
    m = np.zeros((3, 5, 6), bool)
    m[0, 1:3, 2:5] = True
    m[2, 4, 0] = True
    b = mask_boxes(m)
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b[0], [2, 1, 5, 3])
    assert np.isnan(b[1]).all()
    np.testing.assert_array_equal(b[2], [0, 4, 1, 5])
    np.testing.assert_array_equal(mask_boxes(m[:1], (2.0, 0.5))[0], [4, 0.5, 10, 1.5])
    # a box's raster has that box as its extent
    np.testing.assert_array_equal(mask_boxes(box_masks(b[[0, 2]], 5, 6)), b[[0, 2]])


def test_box_centers_keep_dtype_and_nan():
    b = np.array([[0, 0, 4, 2], [np.nan] * 4], np.float32)
    c = box_centers(b)
    assert c.dtype == np.float32 and c[0].tolist() == [2.0, 1.0] and np.isnan(c[1]).all()


def test_nearest_resize_matches_exact_floor_indices():
    rng = np.random.default_rng(0)
    for (h, w), (H, W) in (((5, 7), (11, 3)), ((224, 224), (150, 170)), ((3, 4), (3, 4)), ((8, 8), (448, 448))):
        a = rng.integers(0, 255, (2, h, w, 3), dtype=np.uint8)
        ref_y = [int(Fraction(i * h, H)) for i in range(H)]
        ref_x = [int(Fraction(j * w, W)) for j in range(W)]
        assert nearest_index(H, h).tolist() == ref_y
        np.testing.assert_array_equal(nearest_resize(a, H, W), a[:, ref_y][:, :, ref_x])
        np.testing.assert_array_equal(nearest_resize(a[..., 0] > 127, H, W), a[:, ref_y][:, :, ref_x, 0] > 127)
    same = np.zeros((1, 3, 4), bool)
    assert nearest_resize(same, 3, 4) is same


def test_frame_runs():
    assert frame_runs(np.array([2, 3, 4, 9, 11, 12])) == [(2, 4), (9, 9), (11, 12)]
    assert frame_runs(np.array([], np.int64)) == [] and frame_runs(np.array([5])) == [(5, 5)]
    assert frame_runs([0, 1]) == [(0, 1)]
