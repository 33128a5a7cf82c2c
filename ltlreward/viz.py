"""Overlay videos and robustness timelines: what a person looks at to see why a video got its reward.

An overlay frame has a header (title, wrapped to two lines, frame/time, reward), the video upscaled with
translucent entity masks or boxes and name labels, each entity in its own colour at every frame; a side panel
with each constraint's value, the atom states (green true / red false) and each entity's state at that frame
(seen / hidden / VIOLATION); a timeline strip, one row per constraint: the value of its formula evaluated from
each frame on (green ≥ 0, red < 0, intensity = |value|; the verdict is the value at frame 0, the check or
cross on the left), its witness frames underlined in red, a playhead at the current frame; and a legend of
those colours and marks. An entity that a violated constraint's witness names at this frame (the same
per-entity evidence the masks are built from, `ViolationEvidence`) keeps its colour and gets a red outer ring
(box: a red frame around it) and a red "!" badge on its label. Text is drawn with Pillow (ltlreward.drawing),
so any Unicode name renders. The static parts are drawn once; per frame only the video, the panel values and
the playhead are drawn. The PNG timeline is ltlreward.timeline.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .drawing import fit_text, put_text, text_width, wrap_text
from .raster import mask_boxes, nearest_resize
from .timeline import render_timeline_png

__all__ = ["ConstraintTrace", "OverlayRenderer", "render_overlay", "render_timeline_png"]

# Colours are RGB (frames are RGB everywhere; converted to BGR only when cv2 writes a PNG).
BG = (22, 24, 29)
PANEL = (32, 35, 42)
BAR_BG = (52, 56, 66)
TEXT = (236, 238, 242)
MUTED = (140, 147, 160)
GREEN = (46, 204, 113)
RED = (235, 64, 52)
AMBER = (243, 156, 18)
WITNESS = (255, 45, 45)
CURSOR = (255, 255, 255)
ENTITY_COLOURS = (
    (52, 152, 219),  # blue
    (241, 196, 15),  # yellow
    (155, 89, 182),  # purple
    (26, 188, 156),  # teal
    (230, 126, 34),  # orange
    (236, 112, 160),  # pink
    (149, 165, 166),  # grey
    (120, 220, 255),  # sky
)

MIN_DISPLAY_H = 448  # upscale small videos to at least this height so text and masks are readable
MAX_DISPLAY_H = 720  # downscale large ones
MIN_CANVAS_W = 760
PANEL_W = 270
HEADER_H = 44  # one title line; a wrapped title makes the header taller (`header_h`)
TITLE_LINE_H = 20
LEGEND_H = 24
AXIS_H = 20
ROW_H = 20
ROW_GAP = 6
WITNESS_H = 4
LABEL_W = 210
PAD = 10
FONT_SCALE = 0.42
MASK_ALPHA = 0.4
CHUNK = 16  # frames composed per vectorised chunk


@dataclass
class ConstraintTrace:
    """One constraint's value over the video, as the overlay and plots draw it."""

    name: str
    robustness: np.ndarray  # (T,) float in [-1, 1]: the constraint formula's value evaluated from each frame
    satisfied: bool
    weight: float = 1.0
    witness_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted int frames
    # entity -> (T,) bool: frames at which the witness names it (ltlreward.masks.ViolationEvidence.entity_frames,
    # the masks' evidence): those entities are marked VIOLATION there
    entity_frames: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.robustness = np.asarray(self.robustness, dtype=np.float64).reshape(-1)
        self.witness_frames = np.unique(np.asarray(self.witness_frames, dtype=np.int64).reshape(-1))
        self.entity_frames = {e: np.asarray(f, dtype=bool).reshape(-1) for e, f in self.entity_frames.items()}


# ---------------------------------------------------------------------------------------------- helpers


def _cv2():  # lazy import keeps `import ltlreward` fast
    import cv2

    return cv2


def _text_w(text: str, scale: float = FONT_SCALE, thickness: int = 1) -> int:
    """Pixel width of `text` in the overlay font."""
    return text_width(text, scale)


def _fit(text: str, max_w: int, scale: float = FONT_SCALE, thickness: int = 1) -> str:
    """`text` shortened with '…' so it fits in `max_w` pixels."""
    return fit_text(text, max_w, scale)


def _put(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float = FONT_SCALE,
         thickness: int = 1) -> None:
    """Anti-aliased Unicode text with its baseline at (x, y)."""
    put_text(img, text, x, y, colour, scale)


def _draw_check(img: np.ndarray, x: int, y: int, size: int, ok: bool) -> None:
    """A check mark (green) or a cross (red) in the size×size box at (x, y) — drawn, not a glyph."""
    cv2 = _cv2()
    if ok:
        pts = np.array([[x + 1, y + size * 0.55], [x + size * 0.4, y + size - 1], [x + size - 1, y + 1]])
        cv2.polylines(img, [pts.round().astype(np.int32)], False, GREEN, 2, cv2.LINE_AA)
    else:
        cv2.line(img, (x + 2, y + 2), (x + size - 2, y + size - 2), RED, 2, cv2.LINE_AA)
        cv2.line(img, (x + size - 2, y + 2), (x + 2, y + size - 2), RED, 2, cv2.LINE_AA)


def _signed_colours(values: np.ndarray, bg: tuple[int, int, int] = BAR_BG) -> np.ndarray:
    """(…,) robustness in [-1,1] → (…,3) uint8: green for ≥ 0, red below, blended from `bg` by |value|
    (at least 25% so the sign stays visible); NaN → `bg`."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    v = np.clip(np.where(finite, v, 0.0), -1.0, 1.0)
    alpha = np.where(finite, 0.25 + 0.75 * np.abs(v), 0.0)[..., None]
    hue = np.where((v >= 0)[..., None], np.array(GREEN, np.float64), np.array(RED, np.float64))
    out = np.array(bg, np.float64) * (1.0 - alpha) + hue * alpha
    return np.rint(out).astype(np.uint8)


def _edges(masks: np.ndarray, k: int) -> np.ndarray:
    """Boundary band, `k` pixels wide, of (N,H,W) bool masks (mask minus its erosion by k)."""
    inner = masks.copy()
    inner[:, :k] = False
    inner[:, -k:] = False
    inner[:, :, :k] = False
    inner[:, :, -k:] = False
    inner[:, k:] &= masks[:, :-k]
    inner[:, :-k] &= masks[:, k:]
    inner[:, :, k:] &= masks[:, :, :-k]
    inner[:, :, :-k] &= masks[:, :, k:]
    return masks & ~inner


def _grow(masks: np.ndarray, k: int) -> np.ndarray:
    """(N,H,W) bool masks dilated by a (2k+1)² square."""
    if k <= 0:
        return masks.copy()
    cv2 = _cv2()
    kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
    return np.stack([cv2.dilate(m.view(np.uint8), kernel).view(bool) for m in masks])


def _tick_step(duration: float, max_ticks: int = 10) -> float:
    """A round tick spacing in seconds giving at most `max_ticks` ticks over `duration`."""
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if duration / step <= max_ticks:
            return float(step)
    return float(10 ** math.ceil(math.log10(max(duration, 1.0) / max_ticks)))


def _fmt_seconds(s: float) -> str:
    """Tick label: '2s', '0.5s'."""
    return f"{s:g}s"


# ---------------------------------------------------------------------------------------------- renderer


class OverlayRenderer:
    """Composes overlay frames for one video; `frame(t)` returns one, `write(path)` streams all to an mp4.

    Geometry (canvas pixels) is public so tests and callers can locate things: `video_xy`, `display_hw`,
    `timeline_y0`, `row_y[i]` (top of constraint i's bar), `frame_x(t)` (bar column span of frame t).
    """

    def __init__(
        self,
        frames: np.ndarray,
        *,
        traces: Sequence[ConstraintTrace],
        reward: float,
        entity_masks: Mapping[str, np.ndarray] | None = None,
        entity_boxes: Mapping[str, np.ndarray] | None = None,
        atom_signals: Mapping[str, np.ndarray] | None = None,
        title: str = "",
        fps: float = 8.0,
    ) -> None:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"frames must be uint8 (T,H,W,3) with T >= 1, got {frames.dtype} {frames.shape}")
        self.frames = frames
        self.T, self.H, self.W = frames.shape[:3]
        self.fps = float(fps)
        self.traces = list(traces)
        self.reward = float(reward)
        self.title = title
        chk = self._check
        self.masks = {k: chk(np.asarray(v, bool), k, "mask", 3) for k, v in (entity_masks or {}).items()}
        self.boxes = {k: chk(np.asarray(v, float), k, "box", 2) for k, v in (entity_boxes or {}).items()}
        self.atoms = {k: chk(np.asarray(v, float), k, "atom", 1) for k, v in (atom_signals or {}).items()}
        for tr in self.traces:
            if tr.robustness.shape != (self.T,):
                raise ValueError(
                    f"constraint {tr.name!r}: robustness has {tr.robustness.shape[0]} values "
                    f"for {self.T} frames"
                )
        names = list(dict.fromkeys([*self.masks, *self.boxes]))
        self.entity_colour = {n: ENTITY_COLOURS[i % len(ENTITY_COLOURS)] for i, n in enumerate(names)}
        self._visible = {n: self._visibility(n) for n in names}  # name -> (T,) bool
        self._alert = self._alerts(names)  # name -> (T,) bool: witnessed entity of a violated constraint
        self._layout()
        self._label_boxes = self._entity_label_anchor(names)  # name -> (T,4) display xyxy, NaN unseen
        self._template = self._static_canvas()

    # -- validation and per-entity precomputation -------------------------------------------------------

    def _check(self, arr: np.ndarray, name: str, kind: str, ndim: int) -> np.ndarray:
        """Validate the leading (T) dimension of a per-frame input."""
        if arr.ndim != ndim or arr.shape[0] != self.T or (kind == "box" and arr.shape[1] != 4):
            want = {"mask": "(T,H,W)", "box": "(T,4)", "atom": "(T,)"}[kind]
            raise ValueError(f"{kind} {name!r}: expected {want} with T={self.T}, got {arr.shape}")
        return arr

    def _visibility(self, name: str) -> np.ndarray:
        """(T,) bool: the entity has a non-empty mask or a finite box at that frame."""
        vis = np.zeros(self.T, bool)
        if name in self.masks:
            vis |= self.masks[name].any(axis=(1, 2))
        if name in self.boxes:
            vis |= np.isfinite(self.boxes[name]).all(axis=1)
        return vis

    def _alerts(self, names: list[str]) -> dict[str, np.ndarray]:
        """Per entity, the frames where a violated constraint's witness names it (its `entity_frames`)."""
        alert = {n: np.zeros(self.T, bool) for n in names}
        for tr in self.traces:
            if tr.satisfied:
                continue
            for n, f in tr.entity_frames.items():
                if n in alert:
                    if f.shape != (self.T,):
                        raise ValueError(f"constraint {tr.name!r}: frames of {n!r} have shape {f.shape}, "
                                         f"expected ({self.T},)")
                    alert[n] |= f
        return alert

    def _entity_label_anchor(self, names: list[str]) -> dict[str, np.ndarray]:
        """(T,4) display-space bounding box per entity (box if given, else the mask's extent)."""
        sy, sx = self.Hd / self.H, self.Wd / self.W
        out = {}
        for n in names:
            if n in self.boxes:
                b = self.boxes[n].copy()
            else:
                b = mask_boxes(self.masks[n]).astype(np.float64)  # (T, 4) the mask's extent, NaN when empty
            out[n] = b * np.array([sx, sy, sx, sy])
        return out

    # -- layout and static drawing -----------------------------------------------------------------------

    def _layout(self) -> None:
        """Canvas geometry: header, video + side panel, timeline."""
        if self.H < MIN_DISPLAY_H:
            s = math.ceil(MIN_DISPLAY_H / self.H)
            self.Hd, self.Wd = self.H * s, self.W * s
        elif self.H > MAX_DISPLAY_H:
            self.Hd, self.Wd = MAX_DISPLAY_H, max(2, round(self.W * MAX_DISPLAY_H / self.H))
        else:
            self.Hd, self.Wd = self.H, self.W
        self.panel_w = max(PANEL_W, MIN_CANVAS_W - self.Wd)
        self.canvas_w = self.Wd + self.panel_w
        self.canvas_w += self.canvas_w % 2
        self._header_layout()
        self.video_xy = (0, self.header_h)
        self.display_hw = (self.Hd, self.Wd)
        self.timeline_y0 = self.header_h + self.Hd
        n = max(1, len(self.traces))
        rows0 = self.timeline_y0 + AXIS_H + PAD // 2
        self.row_y = [rows0 + i * (ROW_H + ROW_GAP) for i in range(len(self.traces))]
        self.legend_y = rows0 + n * (ROW_H + ROW_GAP)
        self.timeline_h = AXIS_H + PAD // 2 + n * (ROW_H + ROW_GAP) + LEGEND_H + PAD
        self.canvas_h = self.timeline_y0 + self.timeline_h
        self.canvas_h += self.canvas_h % 2
        self.bar_x0, self.bar_x1 = LABEL_W, self.canvas_w - PAD  # bar columns [bar_x0, bar_x1)

    def _header_layout(self) -> None:
        """The header's right block (clock, count, reward pill) and the title wrapped into what is left."""
        n_ok = sum(tr.satisfied for tr in self.traces)
        self._pill = f"reward {self.reward:+.3f}"
        self._count = f"{n_ok}/{len(self.traces)} satisfied"
        pw = _text_w(self._pill, 0.55) + 16
        right = pw + 12 + _text_w(self._count) + 12 + _text_w("frame 0000/0000   000.00s")
        title_w = max(40, self.canvas_w - right - 3 * PAD)
        self._title_lines = wrap_text(self.title or "ltlreward", title_w, 0.6, 2)
        self.header_h = max(HEADER_H, 2 * 12 + TITLE_LINE_H * len(self._title_lines))
        self.header_h += self.header_h % 2

    def frame_x(self, t: int) -> tuple[int, int]:
        """Canvas column span [x0, x1) of frame t in the timeline bars."""
        bw = self.bar_x1 - self.bar_x0
        x0 = self.bar_x0 + (t * bw) // self.T
        x1 = self.bar_x0 + ((t + 1) * bw) // self.T
        return x0, max(x1, x0 + 1)

    def _static_canvas(self) -> np.ndarray:
        """Everything that does not change between frames."""
        cv2 = _cv2()
        c = np.empty((self.canvas_h, self.canvas_w, 3), np.uint8)
        c[:] = BG
        hh = self.header_h
        c[:hh] = PANEL
        c[hh : self.timeline_y0, self.Wd :] = PANEL
        # header: title (left, up to two lines), reward pill and satisfied count (right); frame/time per frame
        n_ok = sum(tr.satisfied for tr in self.traces)
        n = len(self.traces)
        pill_col = GREEN if n_ok == n else (RED if n_ok == 0 else AMBER)
        pw = _text_w(self._pill, 0.55) + 16
        px1 = self.canvas_w - PAD
        cv2.rectangle(c, (px1 - pw, hh // 2 - 13), (px1, hh // 2 + 13), pill_col, -1, cv2.LINE_AA)
        _put(c, self._pill, px1 - pw + 8, hh // 2 + 6, BG, 0.55, 1)
        cw = _text_w(self._count)
        _put(c, self._count, px1 - pw - 12 - cw, hh // 2 + 5, MUTED)
        self._clock_x1 = px1 - pw - 24 - cw  # frame/time text ends here
        y = hh // 2 + 7 - (len(self._title_lines) - 1) * TITLE_LINE_H // 2
        for line in self._title_lines:
            _put(c, line, PAD, y, TEXT, 0.6, 1)
            y += TITLE_LINE_H
        self._draw_timeline(c)
        self._draw_legend(c)
        self._panel_rows = self._panel_static(c)
        return c

    def _draw_timeline(self, c: np.ndarray) -> None:
        """Axis ticks, one robustness bar per constraint, witness underlines, names with check/cross."""
        cv2 = _cv2()
        y0 = self.timeline_y0
        bw = self.bar_x1 - self.bar_x0
        cols = np.arange(bw) * self.T // bw  # frame shown at each bar column
        duration = self.T / self.fps
        step = _tick_step(duration)
        for k in range(int(duration / step + 1e-9) + 1):
            x = self.bar_x0 + round(k * step * self.fps * bw / self.T)
            if x >= self.bar_x1:
                break
            cv2.line(c, (x, y0 + AXIS_H - 5), (x, y0 + AXIS_H), MUTED, 1)
            _put(c, _fmt_seconds(k * step), x + 2, y0 + AXIS_H - 6, MUTED, 0.36)
        _put(c, "constraints", PAD, y0 + AXIS_H - 6, MUTED, 0.38)
        for i, tr in enumerate(self.traces):
            ry = self.row_y[i]
            strip = _signed_colours(tr.robustness)[cols]  # (bw, 3)
            c[ry : ry + ROW_H, self.bar_x0 : self.bar_x1] = strip[None]
            wf = tr.witness_frames[(tr.witness_frames >= 0) & (tr.witness_frames < self.T)]
            if len(wf):
                hit = np.zeros(self.T, bool)
                hit[wf] = True
                wy = ry + ROW_H + 1
                band = c[wy : wy + WITNESS_H, self.bar_x0 : self.bar_x1]
                band[:, hit[cols]] = WITNESS
            _draw_check(c, PAD, ry + 3, ROW_H - 6, tr.satisfied)
            weight = "" if tr.weight == 1 else f"x{tr.weight:g}"
            ww = _text_w(weight, 0.36) if weight else 0
            name = _fit(tr.name, LABEL_W - PAD - 24 - ww - 12)
            _put(c, name, PAD + 22, ry + ROW_H - 6, TEXT if tr.satisfied else (255, 170, 160))
            if weight:
                _put(c, weight, LABEL_W - 8 - ww, ry + ROW_H - 6, MUTED, 0.36)
        if not self.traces:
            _put(c, "no constraints", self.bar_x0, y0 + AXIS_H + ROW_H, MUTED)

    def _draw_legend(self, c: np.ndarray) -> None:
        """What the timeline's colours and marks and the video's violation marks mean."""
        cv2 = _cv2()
        y = self.legend_y + LEGEND_H // 2 + 4
        x = PAD
        items = (("fill", GREEN, "holds from here on"), ("fill", RED, "fails from here on"),
                 ("under", WITNESS, "witness frames"), ("ring", ENTITY_COLOURS[0], "entity in a violation now"),
                 ("cursor", CURSOR, "now"))
        for kind, colour, label in items:
            if kind == "fill":
                cv2.rectangle(c, (x, y - 10), (x + 14, y + 1), colour, -1)
            elif kind == "under":
                cv2.rectangle(c, (x, y - 2), (x + 14, y - 2 + WITNESS_H), colour, -1)
            elif kind == "ring":
                cv2.rectangle(c, (x - 2, y - 12), (x + 16, y + 3), WITNESS, 2)
                cv2.rectangle(c, (x + 2, y - 8), (x + 12, y - 1), colour, 2)
            else:
                cv2.rectangle(c, (x + 4, y - 11), (x + 10, y + 2), colour, 1)
            _put(c, label, x + 20, y, MUTED, 0.36)
            x += 20 + _text_w(label, 0.36) + 16

    def _panel_static(self, c: np.ndarray) -> list[tuple[str, str, int, object]]:
        """Section captions and row names of the side panel; returns the per-frame rows to fill in:
        (kind, key, baseline y, extra)."""
        x0 = self.Wd + PAD
        y = self.header_h + PAD + 10
        y_max = self.timeline_y0 - PAD
        name_w = self.panel_w - 2 * PAD - 22 - 62
        rows: list[tuple[str, str, int, object]] = []
        sections = [
            ("constraint values", [("c", str(i), tr.name) for i, tr in enumerate(self.traces)]),
            ("entities", [("e", k, k) for k in self.entity_colour]),
            ("predicates", [("a", k, k) for k in self.atoms]),
        ]
        for caption, items in sections:
            if not items:
                continue
            if y + 2 * 18 > y_max:
                break
            _put(c, caption.upper(), x0, y, MUTED, 0.36)
            y += 18
            for j, (kind, key, label) in enumerate(items):
                if y + 18 > y_max and j < len(items) - 1:
                    _put(c, f"+{len(items) - j} more", x0 + 22, y, MUTED, 0.38)
                    y += 18
                    break
                _put(c, _fit(label, name_w), x0 + 22, y, TEXT)
                if kind == "e":
                    cv2 = _cv2()
                    cv2.rectangle(c, (x0 + 2, y - 10), (x0 + 14, y + 1), self.entity_colour[key], -1)
                rows.append((kind, key, y, None))
                y += 18
            y += 8
        return rows

    # -- per frame -----------------------------------------------------------------------------------------

    def _video_chunk(self, t0: int, t1: int) -> np.ndarray:
        """Display-size video frames t0..t1-1 with entity masks blended and outlined (vectorised)."""
        cv2 = _cv2()
        f = self.frames[t0:t1]
        if self.Hd >= self.H:
            out = nearest_resize(f, self.Hd, self.Wd).copy()
        else:
            out = np.stack([cv2.resize(x, (self.Wd, self.Hd), interpolation=cv2.INTER_AREA) for x in f])
        edge_k = max(2, self.Hd // 180)
        for name, m in self.masks.items():
            md = nearest_resize(m[t0:t1], self.Hd, self.Wd)  # (n,Hd,Wd) bool
            colour = np.array(self.entity_colour[name], np.float32)
            out[md] = np.rint(out[md] * (1.0 - MASK_ALPHA) + colour * MASK_ALPHA).astype(np.uint8)
            out[_edges(md, edge_k)] = self.entity_colour[name]  # the entity keeps its colour
            alert = self._alert[name][t0:t1]
            if alert.any():  # a red ring just outside the outline marks the violation
                grown = _grow(md[alert], 2 * edge_k)
                ring = out[alert]
                ring[grown & ~_grow(md[alert], edge_k // 2)] = WITNESS
                out[alert] = ring
        return out

    def _decorate_video(self, v: np.ndarray, t: int) -> None:
        """Boxes, entity labels and the violation banner on one display frame (in place)."""
        cv2 = _cv2()
        for name, colour in self.entity_colour.items():
            b = self._label_boxes[name][t]
            if not np.isfinite(b).all():
                continue
            alert = bool(self._alert[name][t])
            x0, y0, x1, y1 = (round(z) for z in b)
            if name in self.boxes and name not in self.masks:
                cv2.rectangle(v, (x0, y0), (x1 - 1, y1 - 1), colour, 2, cv2.LINE_AA)
                if alert:  # the entity keeps its colour; a red frame around the box marks the violation
                    cv2.rectangle(v, (x0 - 4, y0 - 4), (x1 + 3, y1 + 3), WITNESS, 2, cv2.LINE_AA)
            tw = _text_w(name, 0.45)
            badge = (_text_w("!", 0.45) + 8) if alert else 0
            lx = int(np.clip(x0, 0, max(0, self.Wd - tw - 8 - badge)))
            ly = y0 - 22 if y0 - 22 >= 0 else min(y1 + 6, self.Hd - 18)
            cv2.rectangle(v, (lx, ly), (lx + tw + 8, ly + 17), colour, -1)
            lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
            _put(v, name, lx + 4, ly + 13, (10, 10, 10) if lum > 140 else (250, 250, 250), 0.45)
            if alert:
                cv2.rectangle(v, (lx + tw + 8, ly), (lx + tw + 8 + badge, ly + 17), WITNESS, -1)
                _put(v, "!", lx + tw + 12, ly + 13, (255, 255, 255), 0.45)
        violated = [
            tr.name for tr in self.traces if not tr.satisfied and np.any(tr.witness_frames == t)
        ]
        if violated:
            cv2.rectangle(v, (1, 1), (self.Wd - 2, self.Hd - 2), WITNESS, 3)
            text = _fit("violation: " + ", ".join(violated), self.Wd - 24, 0.5, 1)
            y = self.Hd - 12
            band = v[y - 18 : y + 7, 3 : self.Wd - 3]
            band[:] = (band.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the text
            _put(v, text, 10, y, (255, 200, 195), 0.5, 1)

    def _draw_dynamic(self, c: np.ndarray, t: int) -> None:
        """Frame/time in the header, panel values and the playhead."""
        cv2 = _cv2()
        clock = f"frame {t + 1}/{self.T}   {t / self.fps:.2f}s"
        _put(c, clock, self._clock_x1 - _text_w(clock), self.header_h // 2 + 5, TEXT)
        x0 = self.Wd + PAD
        xv = self.canvas_w - PAD - 48
        for kind, key, y, _ in self._panel_rows:
            if kind == "e":
                vis = bool(self._visible[key][t])
                alert = bool(self._alert[key][t])
                text = "VIOLATION" if alert else ("seen" if vis else "hidden")
                col = WITNESS if alert else (TEXT if vis else MUTED)
                _put(c, text, self.canvas_w - PAD - _text_w(text, 0.38), y, col, 0.38)
                continue
            value = self.traces[int(key)].robustness[t] if kind == "c" else self.atoms[key][t]
            if not np.isfinite(value):
                _put(c, "  n/a", xv, y, MUTED)
                continue
            col = tuple(int(z) for z in _signed_colours(np.array(value), PANEL))
            on = GREEN if value >= 0 else RED
            if kind == "c":
                cv2.circle(c, (x0 + 8, y - 5), 6, on, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(c, (x0 + 2, y - 11), (x0 + 14, y + 1), on, -1)
            _put(c, f"{value:+.2f}", xv, y, col if abs(value) > 0.2 else TEXT)
        # playhead: highlight the frame's column across all rows, with a marker on the axis
        if self.traces:
            px0, px1 = self.frame_x(t)
            xm = (px0 + px1 - 1) // 2
            top = self.row_y[0] - 3
            bot = self.row_y[-1] + ROW_H + WITNESS_H + 3
            w = max(2, px1 - px0)
            cv2.rectangle(c, (xm - w // 2 - 1, top), (xm - w // 2 + w, bot), CURSOR, 1)
            tri = np.array([[xm - 5, top - 7], [xm + 5, top - 7], [xm, top - 1]], np.int32)
            cv2.fillConvexPoly(c, tri, CURSOR, cv2.LINE_AA)

    def frame(self, t: int) -> np.ndarray:
        """The overlay frame for video frame t, (canvas_h, canvas_w, 3) uint8 RGB."""
        if not 0 <= t < self.T:
            raise IndexError(f"frame {t} out of range for {self.T} frames")
        return self._compose(t, self._video_chunk(t, t + 1)[0])

    def _compose(self, t: int, video: np.ndarray) -> np.ndarray:
        """Canvas for frame t given its display-size (already masked) video frame."""
        c = self._template.copy()
        v = c[self.header_h : self.header_h + self.Hd, : self.Wd]
        v[:] = video
        self._decorate_video(v, t)
        self._draw_dynamic(c, t)
        return c

    def frames_iter(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (t, overlay frame) for every frame, composing the video part in vectorised chunks."""
        for t0 in range(0, self.T, CHUNK):
            t1 = min(self.T, t0 + CHUNK)
            chunk = self._video_chunk(t0, t1)
            for t in range(t0, t1):
                yield t, self._compose(t, chunk[t - t0])

    def write(self, out_video: str | Path, *, crf: int = 23) -> Path:
        """Stream all overlay frames to an H.264 mp4 at the video's fps."""
        from .video import VideoWriter

        writer = VideoWriter(out_video, self.fps, crf=crf)
        for _, canvas in self.frames_iter():
            writer.write(canvas)
        return writer.close()

    def still_frame(self) -> int:
        """The most telling frame: the first witnessed violation, else the middle frame."""
        for tr in self.traces:
            if not tr.satisfied and len(tr.witness_frames):
                return int(np.clip(tr.witness_frames[0], 0, self.T - 1))
        return self.T // 2


def _save_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB image as PNG (cv2 wants BGR)."""
    cv2 = _cv2()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"{path}: could not write PNG")
    return path


def render_overlay(
    frames: np.ndarray,
    *,
    traces: Sequence[ConstraintTrace],
    reward: float,
    out_video: str | Path,
    out_png: str | Path | None = None,
    entity_masks: Mapping[str, np.ndarray] | None = None,
    entity_boxes: Mapping[str, np.ndarray] | None = None,
    atom_signals: Mapping[str, np.ndarray] | None = None,
    title: str = "",
    fps: float = 8.0,
    out_still: str | Path | None = None,
) -> Path:
    """Write the overlay mp4 (masks, predicate states, constraint timeline with playhead) for one video;
    optionally the robustness timeline plot (`out_png`) and one overlay frame as a PNG (`out_still`, the
    first violation or the middle frame). Returns the mp4 path."""
    r = OverlayRenderer(
        frames,
        traces=traces,
        reward=reward,
        entity_masks=entity_masks,
        entity_boxes=entity_boxes,
        atom_signals=atom_signals,
        title=title,
        fps=fps,
    )
    path = r.write(out_video)
    if out_png is not None:
        render_timeline_png(traces, out_png, fps=fps, title=title, atom_signals=atom_signals)
    if out_still is not None:
        _save_png(Path(out_still), r.frame(r.still_frame()))
    return path
