"""The one squashing of predicate margins into robustness, and the median filter against flicker.

An atom's robustness is a signed margin (positive = holds) over a scale, squashed smoothly into (-1, 1):
x = margin / scale, r = x / (1 + |x|). So r > 0 exactly when the thresholded predicate holds, r ≈ x near the
threshold (the slope there is 1 / scale, as a linear ramp's), r = ±0.5 one scale away and ±0.9 nine scales
away, and r never saturates: a margin of two scales ranks above one of one scale, so the nearest miss of a
witness is a real nearest miss (a clip at ±1 made every far miss tie). The softsign keeps 10⁶ scales apart in
float32. For quantities bounded in [0, 1] (visibility, gripper opening, overlap fractions) `ramp` is linear
on each side of the threshold, with the distance to that end of the range as the scale, so 0 maps to -1, the
threshold to 0 and 1 to +1: it is graded over the whole range already and reaches ±1 only at its ends.
"""

from __future__ import annotations

import numpy as np

__all__ = ["median_smooth", "ramp", "squash"]


def squash(margin: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """The one squashing: x / (1 + |x|) with x = margin / scale, in (-1, 1) (NaN stays NaN; ±inf → ±1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.asarray(margin, dtype=np.float64) / scale
        return np.where(np.isinf(x), np.sign(x), x / (1.0 + np.abs(x)))


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
