"""A dependency-light line plot (OpenCV) for the ablation curves: matplotlib is not required."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = [(200, 80, 30), (40, 160, 40), (30, 30, 200), (150, 40, 160), (0, 140, 200)]  # BGR


def line_plot(
    path: str | Path,
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] = (0.0, 1.0),
    size: tuple[int, int] = (720, 460),
) -> Path:
    """Write a PNG of named curves {name: (x, mean, std or None)} with a ±std band; returns the path."""
    import cv2

    w, h = size
    left, right, top, bottom = 70, 160, 40, 50
    img = np.full((h, w, 3), 255, np.uint8)
    xs = np.concatenate([c[0] for c in curves.values()]) if curves else np.array([0.0, 1.0])
    x0, x1 = float(xs.min()), float(max(xs.max(), xs.min() + 1))
    y0, y1 = ylim

    def px(x, y):
        u = left + (np.asarray(x, float) - x0) / (x1 - x0) * (w - left - right)
        v = h - bottom - (np.clip(np.asarray(y, float), y0, y1) - y0) / (y1 - y0) * (h - top - bottom)
        return np.stack([u, v], -1).round().astype(np.int32)

    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for k in range(6):
        yv = y0 + (y1 - y0) * k / 5
        p = px(x0, yv)
        cv2.line(img, (left, int(p[1])), (w - right, int(p[1])), (225, 225, 225), 1)
        cv2.putText(img, f"{yv:.2g}", (8, int(p[1]) + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(6):
        xv = x0 + (x1 - x0) * k / 5
        p = px(xv, y0)
        cv2.putText(img, f"{xv:.0f}", (int(p[0]) - 8, h - bottom + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (left, 25), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, ((w - right + left) // 2 - 40, h - 12), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (8, top - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (name, (x, m, s)) in enumerate(curves.items()):
        col = COLOURS[i % len(COLOURS)]
        if s is not None:
            band = np.concatenate([px(x, m + s), px(x, m - s)[::-1]])
            overlay = img.copy()
            cv2.fillPoly(overlay, [band], tuple(int(c * 0.3 + 255 * 0.7) for c in col))
            img = cv2.addWeighted(overlay, 0.5, img, 0.5, 0)
        cv2.polylines(img, [px(x, m)], False, col, 2, cv2.LINE_AA)
        ly = top + 20 + 22 * i
        cv2.line(img, (w - right + 10, ly), (w - right + 35, ly), col, 2)
        cv2.putText(img, name, (w - right + 40, ly + 4), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path
