"""Text on numpy RGB images for overlays and plots: any Unicode through Pillow's FreeType renderer (cv2's Hershey
fonts draw ASCII only), wrapped or shortened to a pixel width.

Each (text, size) is rendered once into an 8-bit coverage mask (cached) and alpha-blended into the image, so
a video's per-frame labels cost a blend, not a Pillow round trip of the whole canvas. The font is DejaVu Sans
(matplotlib's copy, or the system's), else Pillow's built-in scalable font; sizes are given as the cv2 font
scales the overlays were laid out with (`scale` ≈ cap height / 22 px).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["fit_text", "put_text", "text_width", "wrap_text"]

_SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)
_PX_PER_SCALE = 30  # font size in pixels per unit of cv2 font scale (matches the Hershey layout)


def _font_path() -> str | None:
    """DejaVu Sans: matplotlib's bundled copy (found without importing matplotlib), else a system copy."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        p = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if p.is_file():
            return str(p)
    return next((p for p in _SYSTEM_FONTS if Path(p).is_file()), None)


@functools.lru_cache(maxsize=16)
def _font(px: int):
    from PIL import ImageFont

    path = _font_path()
    return ImageFont.truetype(path, px) if path else ImageFont.load_default(px)


def _px(scale: float) -> int:
    return max(6, round(scale * _PX_PER_SCALE))


@functools.lru_cache(maxsize=8192)
def _glyphs(text: str, px: int) -> tuple[np.ndarray, int, int]:
    """(coverage mask (h, w) uint8, x offset, y offset from the baseline origin) of `text` at `px`."""
    from PIL import Image, ImageDraw

    font = _font(px)
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    w, h = max(1, right - left), max(1, bottom - top)
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((-left, -top), text, font=font, fill=255, anchor="ls")
    return np.asarray(img), int(left), int(top)


def text_width(text: str, scale: float) -> int:
    """Advance width of `text` in pixels at cv2 font scale `scale`."""
    return round(_font(_px(scale)).getlength(text))


def put_text(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    """Draw `text` into the RGB uint8 image (in place) with its baseline's left end at (x, y), clipped."""
    if not text:
        return
    a, left, top = _glyphs(text, _px(scale))
    x0, y0 = int(x) + left, int(y) + top
    h, w = a.shape
    H, W = img.shape[:2]
    ys, xs = max(0, -y0), max(0, -x0)
    ye, xe = min(h, H - y0), min(w, W - x0)
    if ye <= ys or xe <= xs:
        return
    region = img[y0 + ys : y0 + ye, x0 + xs : x0 + xe].astype(np.float32)
    alpha = a[ys:ye, xs:xe, None].astype(np.float32) / 255.0
    blend = region * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha
    img[y0 + ys : y0 + ye, x0 + xs : x0 + xe] = np.rint(blend).astype(np.uint8)


def fit_text(text: str, max_w: int, scale: float) -> str:
    """`text` shortened with '…' so it fits in `max_w` pixels (unchanged when it fits)."""
    if text_width(text, scale) <= max_w:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid] + "…", scale) <= max_w:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def wrap_text(text: str, max_w: int, scale: float, max_lines: int) -> list[str]:
    """`text` broken at spaces into lines of at most `max_w` pixels, at most `max_lines` (the last shortened)."""
    lines: list[str] = []
    cur = ""
    for word in text.split():
        trial = f"{cur} {word}" if cur else word
        if cur and text_width(trial, scale) > max_w:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    if cur or not lines:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return [fit_text(line, max_w, scale) for line in lines]
