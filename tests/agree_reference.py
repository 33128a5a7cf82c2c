"""The quadratic definitions of weighted AUROC and Spearman's ρ that ltlreward.agree.statistics used before
issue #18 (pairwise order matrices): the reference its rank-based versions are tested against, and the
"before" of benchmarks/agree_stats."""

from __future__ import annotations

import numpy as np


def auroc_pairwise(C: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """AUROC (B,) of scores s for labels y under weight rows C (B, n): P(s+ > s−) + ½ P(s+ = s−), O(P·N) per row."""
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


def ranks_pairwise(C: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rank (B, n) of each item within each weighted resample, ties averaged, from the (n, n) less/equal matrices."""
    v = np.asarray(v, np.float64)
    less = (v[None, :] < v[:, None]).astype(np.float64)  # less[i, j] = v_j < v_i
    eq = (v[None, :] == v[:, None]).astype(np.float64)
    return C @ less.T + (C @ eq.T + 1.0) / 2.0


def spearman_pairwise(C: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Spearman's ρ (B,) between x and z under weight rows C (B, n); ties get their average rank; O(n²) per row."""
    rx, rz = ranks_pairwise(C, x), ranks_pairwise(C, z)
    w = C / C.sum(1, keepdims=True)
    mx, mz = (w * rx).sum(1, keepdims=True), (w * rz).sum(1, keepdims=True)
    cov = (w * (rx - mx) * (rz - mz)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / np.sqrt((w * (rx - mx) ** 2).sum(1) * (w * (rz - mz) ** 2).sum(1))
