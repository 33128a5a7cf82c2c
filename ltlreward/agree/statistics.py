"""Agreement statistics: confusion-count metrics, AUROC and Spearman under bootstrap weights, and rater κ.

Every metric is computed for all bootstrap replicates at once: a replicate is a row of resampling counts
(B, n), every count-based metric (accuracy, balanced accuracy, F1, Cohen's κ, MCC) is a matrix product,
AUROC uses the pairwise order matrix of the items and Spearman the pairwise less/equal matrices (so ranks of
a resample are counts, ties averaged). `bootstrap_metrics` turns them into point estimates with percentile
95 % CIs. Inter-rater agreement: Cohen's κ for two raters, Fleiss' κ for more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .labels import LabelItem

METRICS = ("accuracy", "balanced_accuracy", "f1", "kappa", "mcc", "auroc", "spearman")


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


__all__ = ["METRICS", "Estimate", "all_metrics", "auroc_weighted", "bootstrap_metrics", "cohen_kappa",
           "confusion_counts", "count_metrics", "counts_matrix", "fleiss_kappa", "inter_rater", "spearman_weighted"]
