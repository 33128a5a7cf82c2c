"""Reward–label agreement: score a labelled video set and measure how well the verdicts match the labels.

    items = load_labels(["labels.jsonl"])                          # simulator or human labels
    report = agreement(items, grounder="state")                    # specs from the labels / a map / one spec
    print(report.to_markdown())

Prediction = the spec's Boolean verdict (every constraint holds); score = the reward (for AUROC). Metrics —
accuracy, balanced accuracy, F1, Cohen's κ, MCC, AUROC and, for graded labels, Spearman's ρ — come with a
percentile bootstrap 95 % CI computed for all replicates at once: a replicate is a row of resampling counts
(B, n), every count-based metric is a matrix product, AUROC uses the pairwise order matrix of the items and
Spearman the pairwise less/equal matrices (so ranks of a resample are counts, ties averaged).

Baselines scored in the same run: `end_state` (the spec cut down to its end-state constraints `F G φ` with a
non-temporal φ — what is left without temporal structure), `last_frame` (a sidecar-only check at the last
frame: the object within `radius` of the goal entity, or, without a goal, the object risen by `rise` metres)
and `vlm` (one quoted question about the whole task answered by the `vlm` backend and required to hold at
the end; skipped with a note when no model is configured).

Labels: JSONL or CSV rows with `video` and `label` (or `success`), optional `rater`, `task`, `spec`,
`description` and a graded column. Several rows for one video with different raters are combined by majority
(ties count as failure) and inter-rater agreement (Cohen's κ for two raters, Fleiss' κ for more) is reported.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LtlRewardError

METRICS = ("accuracy", "balanced_accuracy", "f1", "kappa", "mcc", "auroc", "spearman")
BASELINES = ("end_state", "last_frame", "vlm")
_TRUE = {"1", "true", "yes", "y", "success", "succeeded", "pass", "passed", "t"}
_FALSE = {"0", "false", "no", "n", "failure", "fail", "failed", "f"}


class LabelError(LtlRewardError):
    """A labels file that cannot be used; the message names the file and line."""


# ------------------------------------------------------------------------------------------ labels
@dataclass
class LabelItem:
    """One labelled video (raters combined): path, Boolean label, optional task / spec / text / grade."""

    video: str
    label: bool
    task: str | None = None
    spec: str | None = None
    description: str | None = None
    graded: float | None = None
    ratings: dict[str, bool] = field(default_factory=dict)  # rater → label (empty for single-label files)
    source: str = ""  # "file:line" of its first row
    meta: dict[str, Any] = field(default_factory=dict)


def parse_label(value: Any, where: str) -> bool:
    """A Boolean label from bool / 0 / 1 / yes / no / success / failure …; LabelError otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise LabelError(f"{where}: label must be true/false, 1/0, yes/no or success/failure, got {value!r}")


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a JSONL or CSV file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise LabelError(f"{path}: labels file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LabelError(f"{path}: cannot read labels ({e})") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "video" not in reader.fieldnames:
            raise LabelError(f"{path}:1: a CSV labels file needs a header with 'video' and 'label' columns")
        for i, row in enumerate(reader, start=2):
            rows.append((i, {k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}))
        return rows
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise LabelError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise LabelError(f"{path}:{i}: expected a JSON object per line, got {type(obj).__name__}")
        rows.append((i, obj))
    return rows


def resolve_path(p: str, base: Path) -> Path | None:
    """An existing file for `p`: absolute, relative to the cwd, to `base`, or to one of base's parents."""
    q = Path(p).expanduser()
    if q.is_absolute():
        return q if q.exists() else None
    for root in (Path.cwd(), base, *base.resolve().parents):
        if (root / q).exists():
            return (root / q).resolve()
    return None


def load_labels(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                graded: str | None = None, check_videos: bool = True) -> list[LabelItem]:
    """Label items from JSONL / CSV files (see the module docstring); LabelError names file and line."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    by_video: dict[str, LabelItem] = {}
    rated: dict[str, set[str]] = defaultdict(set)
    for p in map(Path, paths):
        for line, row in _rows(p):
            where = f"{p}:{line}"
            video = row.get("video")
            if not isinstance(video, str) or not video:
                raise LabelError(f"{where}: missing 'video' (a path to the labelled video)")
            key = "label" if row.get("label") not in (None, "") else "success"
            if row.get(key) in (None, ""):
                raise LabelError(f"{where}: missing 'label' (or 'success') for {video}")
            label = parse_label(row[key], where)
            found = resolve_path(video, p.parent)
            if found is None and check_videos:
                raise LabelError(f"{where}: video {video!r} not found (relative paths are tried from the "
                                 f"working directory and from {p.parent})")
            vid = str(found) if found is not None else video
            rater = str(row.get("rater") or "")
            grade = None
            if graded is not None:
                if row.get(graded) in (None, ""):
                    raise LabelError(f"{where}: missing graded label column {graded!r}")
                try:
                    grade = float(row[graded])
                except (TypeError, ValueError):
                    raise LabelError(f"{where}: graded label {graded!r} must be a number, got "
                                     f"{row[graded]!r}") from None
            item = by_video.get(vid)
            if item is None:
                spec = row.get("spec") or None
                if spec:
                    sp = resolve_path(str(spec), p.parent)
                    spec = str(sp) if sp is not None else str(spec)
                meta = {k: row[k] for k in ("id", "suite", "failure_mode", "seed", "first_success_frame")
                        if k in row}
                item = LabelItem(vid, label, row.get("task") or None, spec, row.get("description") or None,
                                 grade, {}, where, meta)
                by_video[vid] = item
                if rater:
                    item.ratings[rater] = label
                    rated[vid].add(rater)
                continue
            if not rater or not item.ratings:
                raise LabelError(f"{where}: second label for {video} (first at {item.source}); give every "
                                 "row a 'rater' to combine several raters")
            if rater in rated[vid]:
                raise LabelError(f"{where}: rater {rater!r} labels {video} twice (first at {item.source})")
            item.ratings[rater] = label
            rated[vid].add(rater)
    if not by_video:
        raise LabelError(f"{', '.join(map(str, paths))}: no labelled videos")
    for item in by_video.values():
        if item.ratings:
            votes = np.array(list(item.ratings.values()), bool)
            item.label = bool(votes.mean() > 0.5)  # majority; a tie counts as failure
    return list(by_video.values())


# ------------------------------------------------------------------------------------------ metrics
def counts_matrix(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) resampling counts of a bootstrap with replacement, deterministic by seed."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = idx + n * np.arange(n_boot)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def confusion_counts(C: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
    """(tp, fp, fn, tn), each (B,), for weight rows C (B, n), labels y and predictions p (n,) bool."""
    y, p = np.asarray(y, bool), np.asarray(p, bool)
    return tuple(C @ m.astype(np.float64) for m in (y & p, ~y & p, y & ~p, ~y & ~p))


def count_metrics(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, balanced accuracy, F1, Cohen's κ and MCC from confusion counts (NaN where undefined)."""
    tp, fp, fn, tn = (np.asarray(x, np.float64) for x in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = (tp + tn) / n
        tpr = tp / (tp + fn)
        tnr = tn / (tn + fp)
        bal = (tpr + tnr) / 2
        f1 = 2 * tp / (2 * tp + fp + fn)
        pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        kappa = np.where(pe < 1, (acc - pe) / (1 - pe), np.nan)
        den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(den > 0, (tp * tn - fp * fn) / den, 0.0)
    return {"accuracy": acc, "balanced_accuracy": bal, "f1": f1, "kappa": kappa, "mcc": mcc}


def auroc_weighted(C: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUROC (B,) of scores s for labels y under weight rows C (B, n): P(s+ > s−) + ½ P(s+ = s−)."""
    y = np.asarray(y, bool)
    s = np.asarray(s, np.float64)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if pos.size == 0 or neg.size == 0:
        return np.full(C.shape[0], np.nan)
    sp, sn = s[pos][:, None], s[neg][None, :]
    M = (sp > sn) + 0.5 * (sp == sn)  # (P, N)
    Cp, Cn = C[:, pos], C[:, neg]
    num = np.einsum("bp,pn,bn->b", Cp, M, Cn)
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / (Cp.sum(1) * Cn.sum(1))


def spearman_weighted(C: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Spearman's ρ (B,) between x and z under weight rows C (B, n); ties get their average rank."""

    def ranks(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float64)
        less = (v[None, :] < v[:, None]).astype(np.float64)  # less[i, j] = v_j < v_i
        eq = (v[None, :] == v[:, None]).astype(np.float64)
        return C @ less.T + (C @ eq.T + 1.0) / 2.0  # rank of item i within each resample (B, n)

    rx, rz = ranks(x), ranks(z)
    w = C / C.sum(1, keepdims=True)
    mx, mz = (w * rx).sum(1, keepdims=True), (w * rz).sum(1, keepdims=True)
    cov = (w * (rx - mx) * (rz - mz)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / np.sqrt((w * (rx - mx) ** 2).sum(1) * (w * (rz - mz) ** 2).sum(1))


@dataclass
class Estimate:
    """A point estimate with its bootstrap 95 % CI (NaN where undefined)."""

    value: float
    lo: float
    hi: float

    def to_json(self) -> dict[str, float | None]:
        return {k: (None if not math.isfinite(v) else round(v, 4))
                for k, v in (("value", self.value), ("lo", self.lo), ("hi", self.hi))}

    def fmt(self) -> str:
        if not math.isfinite(self.value):
            return "–"
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return f"{self.value:.3f}"
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}]"


def all_metrics(C: np.ndarray, y: np.ndarray, pred: np.ndarray, score: np.ndarray | None,
                graded: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every metric (B,) for weight rows C: count metrics, AUROC (score) and Spearman (graded vs score)."""
    out = count_metrics(*confusion_counts(C, y, pred))
    s = np.asarray(score if score is not None else pred, np.float64)
    out["auroc"] = auroc_weighted(C, y, s)
    if graded is not None:
        out["spearman"] = spearman_weighted(C, np.asarray(graded, np.float64), s)
    return out


def bootstrap_metrics(y: Sequence[bool], pred: Sequence[bool], score: Sequence[float] | None = None,
                      graded: Sequence[float] | None = None, *, n_boot: int = 2000,
                      seed: int = 0) -> dict[str, Estimate]:
    """Point estimates and percentile bootstrap 95 % CIs of every metric (one vectorised pass)."""
    y = np.asarray(y, bool)
    n = y.size
    pred_a = np.asarray(pred, bool)
    score_a = None if score is None else np.asarray(score, np.float64)
    graded_a = None if graded is None else np.asarray(graded, np.float64)
    point = all_metrics(np.ones((1, n)), y, pred_a, score_a, graded_a)
    boot = all_metrics(counts_matrix(n, n_boot, seed), y, pred_a, score_a, graded_a) if n_boot > 0 else {}
    out = {}
    for k, v in point.items():
        b = boot.get(k)
        finite = b[np.isfinite(b)] if b is not None else np.zeros(0)
        lo, hi = (np.percentile(finite, [2.5, 97.5]) if finite.size >= max(10, n_boot // 10)
                  else (np.nan, np.nan))
        out[k] = Estimate(float(v[0]), float(lo), float(hi))
    return out


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Cohen's κ between two Boolean raters."""
    v = count_metrics(*confusion_counts(np.ones((1, len(a))), np.asarray(a, bool), np.asarray(b, bool)))
    return float(v["kappa"][0])


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' κ from an (items, categories) table of rating counts (items may have different rater counts)."""
    t = np.asarray(table, np.float64)
    n_i = t.sum(1)
    t = t[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if t.shape[0] == 0:
        return float("nan")
    P_i = ((t * t).sum(1) - n_i) / (n_i * (n_i - 1))
    p_j = t.sum(0) / t.sum()
    P_e = float((p_j**2).sum())
    return float("nan") if P_e >= 1 else float((P_i.mean() - P_e) / (1 - P_e))


def inter_rater(items: Sequence[LabelItem]) -> dict[str, Any] | None:
    """Agreement among human raters (None with fewer than two raters): κ and pairwise percent agreement."""
    raters = sorted({r for it in items for r in it.ratings})
    if len(raters) < 2:
        return None
    rated = [it for it in items if len(it.ratings) >= 2]
    table = np.array([[sum(not v for v in it.ratings.values()), sum(it.ratings.values())] for it in rated])
    out: dict[str, Any] = {"raters": raters, "n_items": len(rated),
                           "fleiss_kappa": round(fleiss_kappa(table), 4) if rated else None}
    pairs = {}
    for i, a in enumerate(raters):
        for b in raters[i + 1:]:
            both = [it for it in items if a in it.ratings and b in it.ratings]
            if both:
                la = [it.ratings[a] for it in both]
                lb = [it.ratings[b] for it in both]
                pairs[f"{a}|{b}"] = {"n": len(both), "cohen_kappa": round(cohen_kappa(la, lb), 4),
                                     "agreement": round(float(np.mean(np.equal(la, lb))), 4)}
    out["pairs"] = pairs
    if len(raters) == 2 and pairs:
        out["cohen_kappa"] = next(iter(pairs.values()))["cohen_kappa"]
    out["ties"] = sum(1 for it in rated if 2 * sum(it.ratings.values()) == len(it.ratings))
    return out


# ------------------------------------------------------------------------------------------ specs
def end_state_spec(spec: Any) -> Any | None:
    """The spec cut down to its end-state constraints (`F G φ`, φ without temporal operators), or None."""
    from .spec.ast import Binary, Unary

    temporal = {"X", "WX", "F", "G", "Y", "O", "H", "U", "R", "W", "M", "S"}

    def plain(f: Any) -> bool:
        if isinstance(f, Unary):
            return f.op not in temporal and plain(f.child)
        if isinstance(f, Binary):
            return f.op not in temporal and plain(f.left) and plain(f.right)
        return True

    keep = [c for c in spec.constraints
            if isinstance(c.formula, Unary) and c.formula.op == "F" and c.formula.interval is None
            and isinstance(c.formula.child, Unary) and c.formula.child.op == "G"
            and c.formula.child.interval is None and plain(c.formula.child.child)]
    if not keep:
        return None
    return replace(spec, constraints=tuple(keep), task=f"{spec.task} (end state only)")


def vlm_spec(task_text: str) -> Any:
    """A one-question spec for the VLM judge: the task, asked of the frames, must hold at the end."""
    from .spec import parse_spec

    q = task_text.replace('"', "'").strip().rstrip(".")
    return parse_spec(f'task "{q}"\nconstraint judged "a VLM judges the task done at the end":\n'
                      f'    F G "{q} has been done"\n')


def load_spec_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """A JSON object task → spec path (paths relative to the map's directory, the cwd or their parents)."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise LabelError(f"{p}: spec map not found") from None
    except json.JSONDecodeError as e:
        raise LabelError(f"{p}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise LabelError(f"{p}: expected a JSON object mapping task names to .ltl paths")
    out = {}
    for task, sp in raw.items():
        found = resolve_path(sp, p.parent)
        if found is None:
            raise LabelError(f"{p}: {task}: spec file {sp!r} not found")
        out[task] = str(found)
    return out


# ------------------------------------------------------------------------------------------ scoring
@dataclass
class Scored:
    """One video's verdict under one method: reward (NaN on failure), verdict, violated constraints."""

    video: str
    reward: float
    satisfied: bool
    error: str | None = None
    violated: list[dict[str, Any]] = field(default_factory=list)


def _from_record(rec: dict[str, Any]) -> Scored:
    reward = rec.get("reward")
    violated = []
    for c in rec.get("constraints", []):
        if not c.get("satisfied"):
            w = c.get("witness") or {}
            violated.append({"name": c["name"], "robustness": c.get("robustness"),
                             "frames": (w.get("frames") or [])[:12], "entities": w.get("entities") or []})
    return Scored(str(rec.get("video")), float("nan") if reward is None else float(reward),
                  bool(rec.get("satisfied")), rec.get("error"), violated)


def score_with_specs(videos: Sequence[str], specs: Sequence[Any], grounder: str, *, workers: int = 1,
                     model_options: Mapping[str, Any] | None = None) -> list[Scored]:
    """Score each video with its spec (path or TaskSpec) through ltlreward.batch; grouped per spec."""
    from .batch import score_videos

    groups: dict[Any, list[int]] = defaultdict(list)
    keys: dict[Any, Any] = {}
    for i, sp in enumerate(specs):
        k = sp if isinstance(sp, str) else ("spec object", id(sp))
        keys[k] = sp
        groups[k].append(i)
    out: list[Scored | None] = [None] * len(videos)
    for k, idx in groups.items():
        kwargs = {"spec": keys[k], "grounder": grounder, "masks": False, **dict(model_options or {})}
        summary = score_videos([videos[i] for i in idx], kwargs, workers=workers)
        by_video = {str(Path(r["video"]).resolve()) if not str(r["video"]).startswith("<") else r["video"]: r
                    for r in summary.scored}
        for i in idx:
            rec = by_video.get(str(Path(videos[i]).resolve()))
            out[i] = _from_record(rec) if rec else Scored(videos[i], float("nan"), False, "not scored")
    return [s for s in out if s is not None]


def last_frame_heuristic(video: str, *, radius: float = 0.05, rise: float = 0.05) -> tuple[bool, float]:
    """Sidecar-only check at the last frame: (verdict, score). Object–goal distance < radius when the sidecar
    has a `goal` entity (score −distance), else the object's rise since frame 0 > rise (score = rise).
    The object is the first entity that is neither a gripper nor the goal (a gripper when there is none)."""
    from .grounding.backends.state import load_sidecar
    from .grounding.base import find_sidecar

    path = find_sidecar(video)
    if path is None:
        raise LtlRewardError(f"{video}: no sidecar next to the video for the last-frame heuristic")
    sc = load_sidecar(path)
    names = [n for n in sc.entity_names if n in sc.positions]
    objects = [n for n in names if n not in sc.grippers and n != "goal"]
    obj = objects[0] if objects else next((n for n in names if n in sc.grippers), None)
    if obj is None:
        raise LtlRewardError(f"{path}: no entity with positions for the last-frame heuristic")
    p = sc.positions[obj]
    if "goal" in sc.positions:
        d = float(np.linalg.norm(p[-1] - sc.positions["goal"][-1]))
        return d < radius, -d
    r = float(p[-1, 2] - p[0, 2])
    return r > rise, r


# ------------------------------------------------------------------------------------------ report
@dataclass
class MethodReport:
    """Agreement of one method (the spec, or a baseline) with the labels."""

    name: str
    description: str
    n: int = 0
    n_failed: int = 0
    metrics: dict[str, Estimate] = field(default_factory=dict)
    confusion: dict[str, int] = field(default_factory=dict)
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_suite: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "n": self.n, "n_failed": self.n_failed,
                "skipped": self.skipped, "seconds": round(self.seconds, 2),
                "metrics": {k: v.to_json() for k, v in self.metrics.items()}, "confusion": self.confusion,
                "per_task": self.per_task,
                "per_suite": {s: {k: v.to_json() for k, v in m.items()} for s, m in self.per_suite.items()}}


@dataclass
class AgreementReport:
    """Everything `agreement` measured: per-method metrics, disagreements of the spec, rater agreement."""

    grounder: str
    n_items: int
    n_positive: int
    methods: list[MethodReport]
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    inter_rater: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Videos the main method could not score."""
        return self.methods[0].n_failed if self.methods else 0

    def to_json(self) -> dict[str, Any]:
        return {"grounder": self.grounder, "n_items": self.n_items, "n_positive": self.n_positive,
                "methods": [m.to_json() for m in self.methods], "disagreements": self.disagreements,
                "inter_rater": self.inter_rater, "notes": self.notes, "config": self.config}

    def to_markdown(self, metrics: Sequence[str] | None = None) -> str:
        """A Markdown table: one row per method (and per suite when there are several), CIs in brackets."""
        if metrics is None:
            metrics = ["balanced_accuracy", "auroc", "accuracy", "f1", "kappa", "mcc"]
            if any("spearman" in m.metrics for m in self.methods):
                metrics.append("spearman")
        head = "| method | suite | n | " + " | ".join(metrics) + " |"
        lines = [head, "|" + "---|" * (3 + len(metrics))]
        for m in self.methods:
            if m.skipped:
                lines.append(f"| {m.name} | – | – | " + " | ".join("skipped" for _ in metrics) + " |")
                continue
            rows = [("all", m.n, m.metrics)]
            if len(m.per_suite) > 1:
                rows += [(s, int(v["n"].value), v) for s, v in m.per_suite.items()]
            for suite, n, met in rows:
                cells = " | ".join(met[k].fmt() if k in met else "–" for k in metrics)
                lines.append(f"| {m.name} | {suite} | {n} | {cells} |")
        return "\n".join(lines)


def _task_table(items: Sequence[LabelItem], y: np.ndarray, pred: np.ndarray, ok: np.ndarray,
                n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    out = {}
    for task in sorted({it.task or "(none)" for it in items}):
        sel = np.array([(it.task or "(none)") == task for it in items]) & ok
        if not sel.any():
            continue
        est = bootstrap_metrics(y[sel], pred[sel], n_boot=n_boot, seed=seed)
        out[task] = {"n": int(sel.sum()), "positives": int(y[sel].sum()),
                     "accuracy": est["accuracy"].to_json(), "balanced_accuracy": est["balanced_accuracy"].to_json()}
    return out


def evaluate_method(name: str, description: str, items: Sequence[LabelItem], pred: Sequence[bool],
                    score: Sequence[float], ok: Sequence[bool], *, n_boot: int = 2000, seed: int = 0,
                    graded: bool = False) -> MethodReport:
    """Metrics of one method over the items it scored (`ok`), overall, per suite and per task."""
    y = np.array([it.label for it in items], bool)
    pred_a, score_a, ok_a = np.asarray(pred, bool), np.asarray(score, np.float64), np.asarray(ok, bool)
    rep = MethodReport(name, description, n=int(ok_a.sum()), n_failed=int((~ok_a).sum()))
    if not ok_a.any():
        rep.skipped = "no video could be scored"
        return rep
    g = np.array([it.graded for it in items], np.float64) if graded else None
    rep.metrics = bootstrap_metrics(y[ok_a], pred_a[ok_a], score_a[ok_a], None if g is None else g[ok_a],
                                    n_boot=n_boot, seed=seed)
    tp, fp, fn, tn = (int(v[0]) for v in confusion_counts(np.ones((1, int(ok_a.sum()))), y[ok_a], pred_a[ok_a]))
    rep.confusion = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    suites = sorted({str(it.meta.get("suite", "")) for it in items} - {""})
    for s in suites:
        sel = np.array([it.meta.get("suite") == s for it in items]) & ok_a
        if sel.any():
            est = bootstrap_metrics(y[sel], pred_a[sel], score_a[sel], n_boot=n_boot, seed=seed)
            est["n"] = Estimate(float(sel.sum()), math.nan, math.nan)
            rep.per_suite[s] = est
    rep.per_task = _task_table(items, y, pred_a, ok_a, n_boot, seed)
    return rep


# ------------------------------------------------------------------------------------------ driver
def assign_specs(items: Sequence[LabelItem], *, spec: str | None = None, spec_map: Mapping[str, str] | None = None,
                 from_descriptions: bool = False) -> tuple[list[Any], list[str]]:
    """Per item its spec (path or TaskSpec, None = unscored) and notes about items left without one."""
    notes: list[str] = []
    out: list[Any] = []
    compiled: dict[str, Any] = {}
    missing: Counter[str] = Counter()
    for it in items:
        if spec is not None:
            out.append(spec)
        elif spec_map is not None:
            sp = spec_map.get(it.task or "")
            out.append(sp)
            if sp is None:
                missing[it.task or "(no task)"] += 1
        elif from_descriptions:
            text = it.description or it.task
            if not text:
                out.append(None)
                missing["(no description)"] += 1
                continue
            if text not in compiled:
                from .nl import compile_text

                try:
                    compiled[text] = compile_text(text).spec
                except Exception as e:
                    compiled[text] = None
                    notes.append(f"could not compile {text!r}: {type(e).__name__}: {e}")
            out.append(compiled[text])
            if compiled[text] is None:
                missing["(description not compilable)"] += 1
        else:
            out.append(it.spec)
            if it.spec is None:
                missing[it.task or "(no task)"] += 1
    for task, n in sorted(missing.items()):
        notes.append(f"no spec for {task}: {n} video(s) not scored")
    return out, notes


def agreement(items: Sequence[LabelItem], *, grounder: str = "auto", spec: str | None = None,
              spec_map: Mapping[str, str] | None = None, from_descriptions: bool = False,
              baselines: Sequence[str] = BASELINES, workers: int = 1, n_boot: int = 2000, seed: int = 0,
              graded: bool = False, overlay_dir: str | os.PathLike[str] | None = None,
              max_disagreements: int = 50, model_options: Mapping[str, Any] | None = None,
              progress: Callable[[str], None] | None = None) -> AgreementReport:
    """Score `items` with the spec(s) and the baselines and measure agreement with their labels."""
    say = progress or (lambda _msg: None)
    specs, notes = assign_specs(items, spec=spec, spec_map=spec_map, from_descriptions=from_descriptions)
    keep = [i for i, s in enumerate(specs) if s is not None]
    if not keep:
        raise LabelError("no labelled video has a spec: pass --spec, --spec-map, --from-descriptions or put a "
                         "'spec' field in the labels")
    items = [items[i] for i in keep]
    specs = [specs[i] for i in keep]
    videos = [it.video for it in items]
    from .reward import load_task_spec

    parsed: dict[Any, Any] = {}
    for s in specs:
        key = s if isinstance(s, str) else id(s)
        if key not in parsed:
            parsed[key] = load_task_spec(s)
    spec_objs = [parsed[s if isinstance(s, str) else id(s)] for s in specs]
    methods: list[MethodReport] = []

    say(f"scoring {len(videos)} videos with the spec ({grounder})")
    t0 = time.perf_counter()
    main = score_with_specs(videos, specs, grounder, workers=workers, model_options=model_options)
    ok = [s.error is None for s in main]
    rep = evaluate_method("spec", f"full spec, {grounder} grounding", items, [s.satisfied for s in main],
                          [s.reward for s in main], ok, n_boot=n_boot, seed=seed, graded=graded)
    rep.seconds = time.perf_counter() - t0
    methods.append(rep)
    errors = Counter(s.error.split(":")[0] for s in main if s.error)
    for e, n in errors.items():
        notes.append(f"spec: {n} video(s) failed with {e} (first: "
                     f"{next(s.error for s in main if s.error and s.error.startswith(e))})")

    disagreements = []
    for it, s in zip(items, main, strict=True):
        if s.error is None and s.satisfied != it.label:
            disagreements.append({"video": it.video, "task": it.task, "label": it.label, "predicted": s.satisfied,
                                  "reward": round(s.reward, 4), "failure_mode": it.meta.get("failure_mode"),
                                  "violated": s.violated, "overlay": None})
    disagreements = disagreements[:max_disagreements]
    if overlay_dir is not None and disagreements:
        from .batch import VideoScorer

        say(f"writing {len(disagreements)} overlay(s) to {overlay_dir}")
        by_video = {it.video: sp for it, sp in zip(items, specs, strict=True)}
        for d in disagreements:
            try:
                sc = VideoScorer({"spec": by_video[d["video"]], "grounder": grounder, "masks": False,
                                  **dict(model_options or {})}, overlay_dir=os.fspath(overlay_dir))
                d["overlay"] = sc(d["video"]).get("overlay")
            except Exception as e:  # an overlay that cannot be drawn never hides the disagreement
                d["overlay_error"] = f"{type(e).__name__}: {e}"

    for b in baselines:
        t0 = time.perf_counter()
        if b == "end_state":
            cut = [end_state_spec(sp) for sp in spec_objs]
            cache: dict[int, Any] = {}
            cut_specs = [cache.setdefault(id(sp), c) for sp, c in zip(spec_objs, cut, strict=True)]
            have = [i for i, c in enumerate(cut_specs) if c is not None]
            say(f"baseline end_state: {len(have)} videos")
            res = score_with_specs([videos[i] for i in have], [cut_specs[i] for i in have], grounder,
                                   workers=workers, model_options=model_options) if have else []
            pred, score, okb = [False] * len(items), [math.nan] * len(items), [False] * len(items)
            for i, s in zip(have, res, strict=True):
                pred[i], score[i], okb[i] = s.satisfied, s.reward, s.error is None
            m = evaluate_method("end_state", f"end-state constraints only (F G φ), {grounder} grounding", items,
                                pred, score, okb, n_boot=n_boot, seed=seed, graded=graded)
            if len(have) < len(items):
                notes.append(f"end_state: {len(items) - len(have)} video(s) whose spec has no F G φ constraint "
                             "were left out")
        elif b == "last_frame":
            say("baseline last_frame")
            pred, score, okb = [], [], []
            first_err = None
            for v in videos:
                try:
                    p, s = last_frame_heuristic(v)
                    pred.append(p), score.append(s), okb.append(True)
                except Exception as e:
                    first_err = first_err or f"{type(e).__name__}: {e}"
                    pred.append(False), score.append(math.nan), okb.append(False)
            m = evaluate_method("last_frame", "sidecar last frame: object within 5 cm of the goal (or risen 5 cm)",
                                items, pred, score, okb, n_boot=n_boot, seed=seed, graded=graded)
            if first_err and not any(okb):
                m.skipped = f"no sidecars: {first_err}"
        elif b == "vlm":
            m = _vlm_baseline(items, videos, workers, n_boot, seed, graded, say)
        else:
            raise ValueError(f"unknown baseline {b!r}; choose from {', '.join(BASELINES)}")
        m.seconds = time.perf_counter() - t0
        if m.skipped:
            notes.append(f"{b}: skipped — {m.skipped}")
        methods.append(m)

    y = np.array([it.label for it in items], bool)
    raters = inter_rater(items)
    if raters is not None:  # ours beside theirs: Cohen's κ of the spec's verdicts against each rater
        raters["spec_vs_rater"] = {}
        for r in raters["raters"]:
            both = [(s.satisfied, it.ratings[r]) for it, s in zip(items, main, strict=True)
                    if r in it.ratings and s.error is None]
            if both:
                a, b = zip(*both, strict=True)
                raters["spec_vs_rater"][r] = {"n": len(both), "cohen_kappa": round(cohen_kappa(a, b), 4)}
    return AgreementReport(grounder=grounder, n_items=len(items), n_positive=int(y.sum()), methods=methods,
                           disagreements=disagreements, inter_rater=raters, notes=notes,
                           config={"n_boot": n_boot, "seed": seed, "workers": workers,
                                   "baselines": list(baselines)})


def _vlm_baseline(items: Sequence[LabelItem], videos: Sequence[str], workers: int, n_boot: int, seed: int,
                  graded: bool, say: Callable[[str], None]) -> MethodReport:
    """Whole-task yes/no VLM judge via the `vlm` backend; skipped with the reason when it is unavailable."""
    desc = "VLM judge: 'has the task been done?' asked per frame, required to hold at the end"
    try:
        from .grounding import get_grounder

        get_grounder("vlm")
    except Exception as e:
        return MethodReport("vlm", desc, skipped=f"the vlm backend is not configured ({type(e).__name__}: {e})")
    specs_by_text: dict[str, Any] = {}
    specs = []
    for it in items:
        text = _task_sentence(it)
        if text not in specs_by_text:
            specs_by_text[text] = vlm_spec(text)
        specs.append(specs_by_text[text])
    say(f"baseline vlm: {len(videos)} videos")
    res = score_with_specs(videos, specs, "vlm", workers=1)
    ok = [s.error is None for s in res]
    if not any(ok):
        first = next((s.error for s in res if s.error), "unknown error")
        return MethodReport("vlm", desc, n_failed=len(res), skipped=f"the vlm backend failed: {first}")
    return evaluate_method("vlm", desc, items, [s.satisfied for s in res], [s.reward for s in res], ok,
                           n_boot=n_boot, seed=seed, graded=graded)


def _task_sentence(it: LabelItem) -> str:
    """The task in words for the VLM: the spec's task line when there is a spec file, else the task name."""
    if it.spec:
        try:
            from .reward import load_task_spec

            t = load_task_spec(it.spec).task
            if t:
                return t
        except Exception:
            pass
    return (it.task or "the task").replace("_", " ")


__all__ = ["BASELINES", "METRICS", "AgreementReport", "Estimate", "LabelError", "LabelItem", "MethodReport",
           "Scored", "agreement", "all_metrics", "assign_specs", "auroc_weighted", "bootstrap_metrics",
           "cohen_kappa", "confusion_counts", "count_metrics", "counts_matrix", "end_state_spec",
           "evaluate_method", "fleiss_kappa", "inter_rater", "last_frame_heuristic", "load_labels",
           "load_spec_map", "parse_label", "resolve_path", "score_with_specs", "spearman_weighted", "vlm_spec"]
