"""The PNG timeline of one scored video: what each constraint's value does over time, and the predicates.

One panel per constraint plots the value of its formula *evaluated from each frame on* (the monitor's trace):
its verdict is the value at frame 0, marked with a dot (green satisfied, red violated) and written in the
panel title, so the rest of the curve is context, drawn in a neutral colour — a satisfied `F φ` whose curve
dips below zero after φ happened is not half a failure. Frames of a violated constraint's witness are shaded
red. When predicate signals are given, a last panel plots each atom's robustness (its value per frame, > 0
holds). matplotlib draws it when importable ("auto"/"matplotlib"), else cv2 with ltlreward.drawing's text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .drawing import fit_text, put_text
from .raster import frame_runs

if TYPE_CHECKING:
    from .viz import ConstraintTrace

__all__ = ["render_timeline_png"]

CURVE = (70, 90, 120)  # the value curve and its fill (neutral)
OK = (30, 132, 73)
BAD = (192, 57, 43)
SHADE = (250, 214, 210)  # witness frames
VALUE_LABEL = "value from frame t on"


def render_timeline_png(
    traces: Sequence[ConstraintTrace],
    out_png: str | Path,
    *,
    fps: float,
    title: str = "",
    backend: str = "auto",
    atom_signals: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """PNG of each constraint's value from every frame on (verdict at frame 0, witness frames shaded), plus the
    predicates' robustness when `atom_signals` are given. matplotlib when importable, else cv2."""
    if backend not in ("auto", "matplotlib", "cv2"):
        raise ValueError(f"unknown plot backend {backend!r}; available: auto, matplotlib, cv2")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    traces, atoms = list(traces), dict(atom_signals or {})
    if backend in ("auto", "matplotlib"):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            if backend == "matplotlib":
                raise
        else:
            return _matplotlib(traces, atoms, out, fps, title)
    return _cv2_plot(traces, atoms, out, fps, title)


def _verdict(tr: ConstraintTrace) -> str:
    v0 = float(tr.robustness[0]) if len(tr.robustness) else float("nan")
    status = "satisfied" if tr.satisfied else "VIOLATED"
    weight = "" if tr.weight == 1 else f", weight {tr.weight:g}"
    return f"{'✓' if tr.satisfied else '✗'} {tr.name} — {status} (value at frame 0: {v0:+.2f}{weight})"


def _witness_frames(tr: ConstraintTrace) -> np.ndarray:
    T = len(tr.robustness)
    return tr.witness_frames[(tr.witness_frames >= 0) & (tr.witness_frames < T)] if not tr.satisfied else \
        np.zeros(0, np.int64)


def rgb(c: tuple[int, int, int]) -> tuple[float, ...]:
    """matplotlib's colour form of an RGB byte triple."""
    return tuple(v / 255 for v in c)


def _matplotlib(traces, atoms, out: Path, fps: float, title: str) -> Path:
    """The timeline with matplotlib's object API (no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(traces) + (1 if atoms else 0)
    fig = Figure(figsize=(10, 0.6 + 1.35 * max(1, n)), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(1, n), 1, sharex=True, squeeze=False)[:, 0]
    for ax, tr in zip(axes, traces, strict=False):
        r = np.nan_to_num(tr.robustness, nan=0.0)
        t = np.arange(len(r)) / fps
        half = 0.5 / fps
        for a, b in frame_runs(_witness_frames(tr)):
            ax.axvspan(a / fps - half, b / fps + half, color=rgb(SHADE), lw=0, label="witness frames")
        ax.axhline(0.0, color="0.55", lw=0.8)
        ax.fill_between(t, 0, r, step="mid", color=rgb(CURVE), alpha=0.18, lw=0)
        ax.step(t, r, where="mid", color=rgb(CURVE), lw=1.3, label=VALUE_LABEL)
        ax.plot([0], [r[0]], "o", ms=7, color=rgb(OK if tr.satisfied else BAD), label="verdict (frame 0)")
        ax.set_ylim(-1.08, 1.08)
        ax.set_yticks([-1, 0, 1])
        ax.set_xlim(-half, max(len(r) - 0.5, 0.5) / fps)
        ax.set_title(_verdict(tr), loc="left", fontsize=10, color=rgb(OK if tr.satisfied else BAD), fontweight="bold")
        ax.grid(axis="x", alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        handles, labels = ax.get_legend_handles_labels()
        keep = dict(zip(labels, handles, strict=True))
        ax.legend(keep.values(), keep.keys(), loc="upper right", fontsize=7, frameon=False, ncols=3)
    if atoms:
        ax = axes[len(traces)]
        for key, v in atoms.items():
            ax.step(np.arange(len(v)) / fps, v, where="mid", lw=1.1, label=key)
        ax.axhline(0.0, color="0.55", lw=0.8)
        ax.set_ylim(-1.08, 1.08)
        ax.set_title("predicates — robustness per frame (> 0 holds)", loc="left", fontsize=10)
        ax.legend(loc="upper right", fontsize=7, frameon=False, ncols=2)
    if not n:
        axes[0].text(0.5, 0.5, "no constraints", ha="center", va="center", transform=axes[0].transAxes)
    axes[-1].set_xlabel("time (s)")
    if traces:
        fig.supylabel(f"constraints: {VALUE_LABEL}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left", wrap=True)
    fig.savefig(out, facecolor="white")
    return out


def _cv2_panel(img: np.ndarray, y0: int, ph: int, left: int, pw: int, series: list[tuple[np.ndarray, tuple]],
               shade: np.ndarray | None) -> None:
    """One plot panel: frame shading, curves over [-1, 1] with a zero line and ±1 labels."""
    import cv2

    T = max(len(v) for v, _ in series) if series else 1
    cols = np.arange(pw) * T // pw  # frame at each plot column
    panel = img[y0 : y0 + ph, left : left + pw]
    if shade is not None and shade.any():
        panel[:, shade[cols]] = SHADE
    yz = (ph - 1) / 2
    for v, colour in series:
        r = np.clip(np.nan_to_num(np.asarray(v, np.float64), nan=0.0), -1, 1)
        yv = yz - r[np.minimum(cols, len(r) - 1)] * yz
        pts = np.stack([left + np.arange(pw), y0 + np.rint(yv)], axis=1).astype(np.int32)
        cv2.polylines(img, [pts], False, colour, 1, cv2.LINE_AA)
    cv2.line(img, (left, y0 + round(yz)), (left + pw, y0 + round(yz)), (150, 150, 150), 1)
    cv2.rectangle(img, (left, y0), (left + pw - 1, y0 + ph - 1), (170, 170, 170), 1)
    for v, lab in ((1, "+1"), (0, "0"), (-1, "−1")):
        put_text(img, lab, left - 28, y0 + round(yz - v * yz) + 4, (80, 80, 80), 0.38)


def _cv2_plot(traces, atoms, out: Path, fps: float, title: str) -> Path:
    """The timeline drawn with cv2 and Pillow text (no matplotlib)."""
    import cv2

    W, left, right, panel_h, top = 1100, 70, 20, 120, (44 if title else 14)
    n = len(traces) + (1 if atoms else 0)
    H = top + max(1, n) * panel_h + 40
    img = np.full((H, W, 3), 255, np.uint8)
    if title:
        put_text(img, fit_text(title, W - 20, 0.6), 10, 28, (20, 20, 20), 0.6)
    pw, T = W - left - right, max([len(tr.robustness) for tr in traces] + [len(v) for v in atoms.values()] + [1])
    for i, tr in enumerate(traces):
        y0, ph = top + i * panel_h + 24, panel_h - 36
        hit = np.zeros(T, bool)
        hit[_witness_frames(tr)] = True
        _cv2_panel(img, y0, ph, left, pw, [(tr.robustness, CURVE)], hit)
        cv2.circle(img, (left + 3, y0 + round((ph - 1) / 2 * (1 - float(np.nan_to_num(tr.robustness[0]))))), 5,
                   OK if tr.satisfied else BAD, -1, cv2.LINE_AA)
        put_text(img, fit_text(_verdict(tr), pw, 0.5), left, y0 - 7, OK if tr.satisfied else BAD, 0.5)
    if atoms:
        y0, ph = top + len(traces) * panel_h + 24, panel_h - 36
        palette = ((52, 152, 219), (230, 126, 34), (155, 89, 182), (26, 188, 156), (236, 112, 160))
        series = [(v, palette[k % len(palette)]) for k, v in enumerate(atoms.values())]
        _cv2_panel(img, y0, ph, left, pw, series, None)
        names = "   ".join(atoms)
        put_text(img, fit_text(f"predicates (> 0 holds): {names}", pw, 0.45), left, y0 - 7, (40, 40, 40), 0.45)
    ya = top + max(1, n) * panel_h + 6
    put_text(img, f"time (s, {T} frames at {fps:g} fps) · curves: {VALUE_LABEL}; dot: verdict; shade: witness",
             left, ya + 14, (60, 60, 60), 0.4)
    if not cv2.imwrite(str(out), np.ascontiguousarray(img[..., ::-1])):
        raise OSError(f"{out}: could not write PNG")
    return out
