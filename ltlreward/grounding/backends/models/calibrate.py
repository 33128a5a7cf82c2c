"""Calibration of VLM yes-probabilities: Platt (logistic on the logit) or isotonic (pool-adjacent-violators)
maps fitted from labelled frames, stored as JSON beside the model config and applied per question key."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import GroundingError

CALIBRATION_FORMAT = "ltlreward.vlm_calibration"
METHODS = ("platt", "isotonic")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class CalibrationMap:
    """One monotone map p → p': Platt (a, b) or isotonic knots (x increasing, y non-decreasing)."""

    kind: str
    a: float = 1.0
    b: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, same shape as `p`."""
        p = np.asarray(p, np.float64)
        if self.kind == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))
        return np.interp(p, self.x, self.y)

    def to_json(self) -> dict:
        if self.kind == "platt":
            return {"kind": "platt", "a": self.a, "b": self.b}
        return {"kind": "isotonic", "x": list(self.x), "y": list(self.y)}

    @staticmethod
    def from_json(d: dict, where: str) -> CalibrationMap:
        kind = d.get("kind") if isinstance(d, dict) else None
        try:
            if kind == "platt":
                return CalibrationMap("platt", a=float(d["a"]), b=float(d["b"]))
            if kind == "isotonic":
                x, y = tuple(float(v) for v in d["x"]), tuple(float(v) for v in d["y"])
                if len(x) != len(y) or not x or np.any(np.diff(x) < 0):
                    raise ValueError("x and y must be equally long, non-empty, x increasing")
                return CalibrationMap("isotonic", x=x, y=y)
        except (KeyError, TypeError, ValueError) as e:
            raise GroundingError(f"{where}: bad {kind} map ({e})") from None
        raise GroundingError(f"{where}: unknown calibration kind {kind!r}; known: {', '.join(METHODS)}")


def fit_platt(p: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> CalibrationMap:
    """Logistic regression of labels `y` on logit(p) (Newton's method, small L2 on the slope)."""
    z = _logit(np.asarray(p, np.float64))
    y = np.asarray(y, np.float64)
    X = np.stack([z, np.ones_like(z)], axis=1)
    w = np.array([1.0, 0.0])
    reg = np.diag([l2, 0.0])
    for _ in range(iters):
        q = 1.0 / (1.0 + np.exp(-(X @ w)))
        g = X.T @ (q - y) + reg @ (w - np.array([1.0, 0.0]))
        Hm = X.T @ (X * (q * (1 - q))[:, None]) + reg + 1e-9 * np.eye(2)
        step = np.linalg.solve(Hm, g)
        w = w - step
        if np.abs(step).max() < 1e-10:
            break
    return CalibrationMap("platt", a=float(w[0]), b=float(w[1]))


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> CalibrationMap:
    """Non-decreasing least-squares fit of `y` on `p` by pool-adjacent-violators. Knots at each block's lowest
    and highest p, so every training point maps to its block's mean (linear between blocks)."""
    order = np.argsort(p, kind="stable")
    ps, ys = np.asarray(p, np.float64)[order], np.asarray(y, np.float64)[order]
    blocks: list[list[float]] = []  # [mean label, weight, lowest p, highest p]
    for pi, yi in zip(ps, ys, strict=True):
        blocks.append([yi, 1.0, pi, pi])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (v1, w1, lo, _), (v2, w2, _, hi) = blocks[-2], blocks[-1]
            blocks[-2:] = [[(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, lo, hi]]
    xs = [0.0] + [x for b in blocks for x in (b[2], b[3])] + [1.0]
    vs = [blocks[0][0]] + [b[0] for b in blocks for _ in range(2)] + [blocks[-1][0]]
    x, idx = np.unique(np.asarray(xs), return_index=True)  # first occurrence: a shared knot keeps the lower block
    return CalibrationMap("isotonic", x=tuple(x.tolist()), y=tuple(np.asarray(vs)[idx].tolist()))


@dataclass
class Calibration:
    """Maps per question key (quoted atom text or predicate name), with "*" as the fallback."""

    maps: dict[str, CalibrationMap] = field(default_factory=dict)
    model: str = ""
    method: str = ""
    report: dict = field(default_factory=dict)

    def apply(self, key: str, p: np.ndarray) -> np.ndarray:
        """Calibrated p for question `key` (unchanged when neither `key` nor "*" has a map)."""
        m = self.maps.get(key) or self.maps.get("*")
        return np.asarray(p, np.float32) if m is None else m(p).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Write as JSON (format CALIBRATION_FORMAT, version 1)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"format": CALIBRATION_FORMAT, "version": 1, "model": self.model,
                                 "method": self.method, "maps": {k: m.to_json() for k, m in self.maps.items()},
                                 "report": self.report}, indent=1) + "\n")
        return p

    @staticmethod
    def load(path: str | Path) -> Calibration:
        """Read a calibration JSON written by `save` (GroundingError naming the file if it is bad)."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise GroundingError(f"{p}: cannot read calibration ({e})") from None
        if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
            raise GroundingError(f"{p}: not an ltlreward VLM calibration file")
        maps = {str(k): CalibrationMap.from_json(v, f"{p}: maps.{k}") for k, v in (d.get("maps") or {}).items()}
        return Calibration(maps, str(d.get("model", "")), str(d.get("method", "")), dict(d.get("report") or {}))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of probabilities against 0/1 labels."""
    return float(np.mean((np.asarray(p, np.float64) - np.asarray(y, np.float64)) ** 2))


def fit_calibration(probs: dict[str, np.ndarray], labels: dict[str, np.ndarray], method: str = "platt",
                    min_per_key: int = 20, model: str = "") -> Calibration:
    """Maps from raw probabilities and 0/1 labels per key: a key with at least `min_per_key` labels of both
    classes gets its own map; "*" is fitted on everything. The report holds Brier scores before/after."""
    if method not in METHODS:
        raise GroundingError(f"unknown calibration method {method!r}; use {' or '.join(METHODS)}")
    fit = fit_platt if method == "platt" else fit_isotonic
    keys = sorted(probs)
    if not keys:
        raise GroundingError("calibration needs labelled frames; got none")
    all_p = np.concatenate([np.asarray(probs[k], np.float64) for k in keys])
    all_y = np.concatenate([np.asarray(labels[k], np.float64) for k in keys])
    if len(np.unique(all_y)) < 2:
        raise GroundingError("calibration needs both positive and negative labels")
    maps = {"*": fit(all_p, all_y)}
    for k in keys:
        y = np.asarray(labels[k], np.float64)
        if len(y) >= min_per_key and 0 < y.sum() < len(y):
            maps[k] = fit(np.asarray(probs[k], np.float64), y)
    cal = Calibration(maps, model, method)
    after = np.concatenate([cal.apply(k, probs[k]) for k in keys])
    cal.report = {"n": len(all_y), "positives": int(all_y.sum()), "brier_before": brier(all_p, all_y),
                  "brier_after": brier(after, all_y), "keys": {k: len(labels[k]) for k in keys}}
    return cal


def read_labels(path: str | Path) -> list[dict]:
    """Labelled frames, one JSON object a line: {"video", "frame", "atom" (quoted text) or "predicate" +
    "entity" (prompt), "label" (true/false or 1/0)}."""
    p = Path(path)
    rows = []
    try:
        lines = p.read_text().splitlines()
    except OSError as e:
        raise GroundingError(f"{p}: cannot read labels ({e})") from None
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError as e:
            raise GroundingError(f"{p}:{i}: not JSON ({e})") from None
        if not isinstance(d, dict) or "video" not in d or "frame" not in d or "label" not in d:
            raise GroundingError(f"{p}:{i}: need keys video, frame, label and atom (or predicate + entity)")
        if "atom" not in d and not ("predicate" in d and "entity" in d):
            raise GroundingError(f"{p}:{i}: need atom (quoted text) or predicate + entity")
        video = Path(d["video"])
        d["video"] = str(video if video.is_absolute() else p.parent / video)
        d["label"] = float(bool(d["label"]))
        rows.append(d)
    return rows


def calibrate(labels_path: str | Path, grounder: Any, method: str = "platt", out: str | Path | None = None,
              min_per_key: int = 20, video_options: dict[str, Any] | None = None) -> Calibration:
    """Fit and (if `out`) save a calibration for a VLM grounder from a labels JSONL: the VLM answers only the
    labelled frames, raw (uncalibrated) probabilities are paired with the labels per question key."""
    from ....video import read_video

    rows = read_labels(labels_path)
    by_video: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_video[r["video"]].append(r)
    probs: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, list[float]] = defaultdict(list)
    for path, items in by_video.items():
        video = read_video(path, **(video_options or {}))
        frames = np.array([int(r["frame"]) for r in items])
        if frames.min() < 0 or frames.max() >= video.n_frames:
            raise GroundingError(f"{labels_path}: frame index out of range for {path} ({video.n_frames} frames)")
        questions: list[tuple[str, str]] = []  # (key, question)
        for r in items:
            questions.append(grounder.question_for(r.get("atom"), r.get("predicate"), r.get("entity")))
        raw = grounder.ask(video.frames, frames, [q for _, q in questions])
        for r, (key, _), p in zip(items, questions, raw, strict=True):
            probs[key].append(float(p))
            labels[key].append(r["label"])
    cal = fit_calibration({k: np.array(v) for k, v in probs.items()}, {k: np.array(v) for k, v in labels.items()},
                          method, min_per_key, model=grounder.model_identity())
    if out is not None:
        cal.save(out)
    return cal


def apply_maps(cal: Calibration | None, key: str, p: Sequence[float] | np.ndarray) -> np.ndarray:
    """`cal.apply(key, p)`, or p itself without a calibration."""
    return np.asarray(p, np.float32) if cal is None else cal.apply(key, p)
