"""Agreement statistics: confusion-count metrics, AUROC and Spearman under bootstrap weights, and rater κ.

Every metric is computed for all bootstrap replicates at once: a replicate is a row of resampling counts
(B, n), every count-based metric (accuracy, balanced accuracy, F1, Cohen's κ, MCC) is a matrix product,
and AUROC and Spearman are rank-based: one sort of the values, then per replicate the weight of each distinct
value and the weight below it (cumulative sums), so a resample's ranks are counts, ties averaged — O(n log n +
B·n) where the pairwise order matrices were O(B·n²) (benchmarks/agree_stats). `bootstrap_metrics` turns them
into point estimates with percentile 95 % CIs. Inter-rater agreement: Cohen's κ for two raters, Fleiss' κ for more.
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


def _group_weights(C: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct non-NaN value of v (ascending): the weight of its items under each row of C (B, G) and
    the weight strictly below it (B, G), and each item's group (n,), -1 for NaN (which equals nothing).
    One sort, then O(B·n): the counts a pairwise less/equal matrix would give, without the (n, n) matrix."""
    v = np.asarray(v, np.float64)
    ok = ~np.isnan(v)
    uniq, g_ok = np.unique(v[ok], return_inverse=True)
    group = np.full(v.shape[0], -1)
    group[ok] = g_ok
    if uniq.size == 0:
        empty = np.zeros((C.shape[0], 0))
        return empty, empty, group
    order = np.argsort(g_ok, kind="stable")
    starts = np.searchsorted(g_ok[order], np.arange(uniq.size))
    W = np.add.reduceat(C[:, ok][:, order], starts, axis=1)  # (B, G)
    return W, np.cumsum(W, axis=1) - W, group  # integer weights (bootstrap counts): both exact in float64


def auroc_weighted(C: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUROC (B,) of scores s for labels y under weight rows C (B, n): P(s+ > s−) + ½ P(s+ = s−) (a NaN
    score ties and beats nothing). Rank-based, O(n log n + B·n): each positive's weight times the negative
    weight below its score plus half the negative weight at its score."""
    y = np.asarray(y, bool)
    s = np.asarray(s, np.float64)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    if pos.size == 0 or neg.size == 0:
        return np.full(C.shape[0], np.nan)
    Wn, below_n, group = _group_weights(C * ~y, s)  # negatives' weights per score value (B, G)
    pos_ok = pos[group[pos] >= 0]
    gp = group[pos_ok]
    num = (C[:, pos_ok] * (below_n[:, gp] + 0.5 * Wn[:, gp])).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / (C[:, pos].sum(1) * C[:, neg].sum(1))


def weighted_ranks(C: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rank (B, n) of each item of v within each resample C (B, n), ties averaged: the weight below its value
    plus (the weight at its value + 1) / 2 (a NaN item ranks ½ and counts for no other). O(n log n + B·n)."""
    W, below, group = _group_weights(C, v)
    if W.shape[1] == 0:
        return np.full(C.shape, 0.5)
    per_group = below + (W + 1.0) / 2.0  # (B, G)
    ranks = np.take(per_group, np.maximum(group, 0), axis=1)  # (B, n), C order: row sums add in the same order
    if (group < 0).any():
        ranks[:, group < 0] = 0.5
    return ranks


def spearman_weighted(C: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Spearman's ρ (B,) between x and z under weight rows C (B, n); ties get their average rank."""
    rx, rz = weighted_ranks(C, x), weighted_ranks(C, z)
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
           "confusion_counts", "count_metrics", "counts_matrix", "fleiss_kappa", "inter_rater", "spearman_weighted",
           "weighted_ranks"]
