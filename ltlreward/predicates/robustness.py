"""The one squashing of predicate margins into robustness, and the median filter against flicker.

An atom's robustness is a signed margin (positive = holds) divided by a scale and clipped,
r = clip(margin / scale, -1, 1): r > 0 exactly when the thresholded predicate holds, |r| grows linearly with
the margin and saturates at one scale away. For quantities bounded in [0, 1] (visibility, gripper opening,
overlap fractions) `ramp` takes, on each side of the threshold, the distance to that end of the range as the
scale, so 0 maps to -1, the threshold to 0 and 1 to +1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["median_smooth", "ramp", "squash"]


def squash(margin: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """The one squashing: clip(margin / scale, -1, 1) (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(margin / scale, -1.0, 1.0)


def ramp(x: np.ndarray, thr: float) -> np.ndarray:
    """Margin of a [0, 1] quantity above `thr`, scaled by the distance to the range end on each side."""
    thr = min(max(float(thr), 1e-6), 1.0 - 1e-6)
    m = x - thr
    return np.clip(np.where(m >= 0, m / (1.0 - thr), m / thr), -1.0, 1.0)


def median_smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Median filter over time (edges repeated); an even window is rounded up to the next odd one."""
    if window <= 1 or x.shape[-1] < 2:
        return x
    w = window if window % 2 else window + 1
    h = w // 2
    padded = np.pad(x, (h, h), mode="edge")
    if w == 3:  # the default: median of three without sorting
        a, b, c = padded[:-2], padded[1:-1], padded[2:]
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, w), axis=-1)
