"""Batched array kernels for LTLf over (B, T) traces in forward time.

Values live in [-1, 1] (robustness, float32) or {-1, +1} (Boolean, int8); -1 and +1 are the identities of max
and min, which is how a strong operator that runs past the end yields -1 and a weak one +1.

Until/since use the "clamp" form f_t(x) = max(a_t, min(b_t, x)) (a = right operand, b = left operand):
such maps are closed under composition, (a1, b1) ∘ (a2, b2) = (max(a1, min(b1, a2)), min(b1, b2)), so
suffix and sliding-window compositions are associative scans computed blockwise with O(√T) or O(window)
Python steps, each a whole-batch array operation.
"""

from __future__ import annotations

import math

import numpy as np


def shift_left(x: np.ndarray, k: int, fill) -> np.ndarray:
    """y[:, t] = x[:, t + k], `fill` past the end.                              (B, T) -> (B, T)"""
    if k == 0:
        return x
    y = np.full_like(x, fill)
    if k < x.shape[1]:
        y[:, : x.shape[1] - k] = x[:, k:]
    return y


def shift_right(x: np.ndarray, k: int, fill) -> np.ndarray:
    """y[:, t] = x[:, t - k], `fill` before frame 0.                           (B, T) -> (B, T)"""
    if k == 0:
        return x
    y = np.full_like(x, fill)
    if k < x.shape[1]:
        y[:, k:] = x[:, : x.shape[1] - k]
    return y


def suffix_max(x: np.ndarray) -> np.ndarray:
    """y[:, t] = max(x[:, t:]).                                                 (B, T) -> (B, T)"""
    return np.maximum.accumulate(x[:, ::-1], axis=1)[:, ::-1]


def suffix_min(x: np.ndarray) -> np.ndarray:
    """y[:, t] = min(x[:, t:]).                                                 (B, T) -> (B, T)"""
    return np.minimum.accumulate(x[:, ::-1], axis=1)[:, ::-1]


def sliding(x: np.ndarray, w: int, op: np.ufunc) -> np.ndarray:
    """y[:, i] = op.reduce(x[:, i:i + w]) for i in 0..N-w (van Herk / Gil–Werman, O(N)).  (B, N) -> (B, N-w+1)"""
    B, N = x.shape
    if w <= 1:
        return x.copy()
    nb = -(-N // w)
    xp = np.empty((B, nb * w), dtype=x.dtype)
    xp[:, :N] = x
    xp[:, N:] = x[:, -1:]  # never read by a window inside [0, N)
    blocks = xp.reshape(B, nb, w)
    pre = op.accumulate(blocks, axis=2).reshape(B, -1)  # max from block start to i
    suf = op.accumulate(blocks[:, :, ::-1], axis=2)[:, :, ::-1].reshape(B, -1)  # max from i to block end
    M = N - w + 1
    return op(suf[:, :M], pre[:, w - 1 : w - 1 + M])


def future_window(x: np.ndarray, lo: int, hi: int, op: np.ufunc, fill) -> np.ndarray:
    """y[:, t] = op over x[:, t+lo .. t+hi], `fill` past the end.                 (B, T) -> (B, T)"""
    B, T = x.shape
    xp = np.full((B, T + hi), fill, dtype=x.dtype)  # (B, T+hi)
    xp[:, :T] = x
    return sliding(xp[:, lo:], hi - lo + 1, op)[:, :T]


def past_window(x: np.ndarray, lo: int, hi: int, op: np.ufunc, fill) -> np.ndarray:
    """y[:, t] = op over x[:, t-hi .. t-lo], `fill` before frame 0.               (B, T) -> (B, T)"""
    B, T = x.shape
    xp = np.full((B, T + hi), fill, dtype=x.dtype)  # (B, hi+T): hi fills, then x
    xp[:, hi:] = x
    return sliding(xp[:, : T + hi - lo], hi - lo + 1, op)[:, :T]


# ------------------------------------------------------------------------------- clamp compositions
def _compose(a1, b1, a2, b2):
    """(a1,b1) ∘ (a2,b2) in the clamp monoid."""
    return np.maximum(a1, np.minimum(b1, a2)), np.minimum(b1, b2)


def until_scan(a: np.ndarray, b: np.ndarray, init) -> np.ndarray:
    """ρ[:, t] = max(a_t, min(b_t, ρ[:, t+1])), ρ[:, T] = init.                   (B, T) x2 -> (B, T)

    Positions meant to be past the end must hold the identity (a = -1, b = +1). Blocked: √T steps within
    blocks over (B, T/√T) slabs, then T/√T steps across blocks over (B,) vectors, then one broadcast.
    """
    B, T = a.shape
    if T == 0:
        return a.copy()
    K = max(1, math.isqrt(T))
    nb = -(-T // K)
    one = np.ones((), dtype=a.dtype)
    A = np.full((nb * K, B), -one, dtype=a.dtype)  # time-major so each step reads a contiguous slab
    Bm = np.full((nb * K, B), one, dtype=a.dtype)
    A[:T] = a.T
    Bm[:T] = b.T
    A = A.reshape(nb, K, B).transpose(1, 0, 2).copy()  # (K, nb, B)
    Bm = Bm.reshape(nb, K, B).transpose(1, 0, 2).copy()
    for i in range(K - 2, -1, -1):  # suffix compositions within each block
        A[i], Bm[i] = _compose(A[i], Bm[i], A[i + 1], Bm[i + 1])
    starts = np.empty((nb + 1, B), dtype=a.dtype)  # ρ at each block start; row nb = init
    starts[nb] = init
    for k in range(nb - 1, -1, -1):
        starts[k] = np.maximum(A[0, k], np.minimum(Bm[0, k], starts[k + 1]))
    out = np.maximum(A, np.minimum(Bm, starts[1:][None]))  # (K, nb, B)
    return out.transpose(1, 0, 2).reshape(nb * K, B)[:T].T.copy()


def since_scan(a: np.ndarray, b: np.ndarray, init) -> np.ndarray:
    """ρ[:, t] = max(a_t, min(b_t, ρ[:, t-1])), ρ[:, -1] = init (the past mirror of `until_scan`)."""
    return until_scan(a[:, ::-1], b[:, ::-1], init)[:, ::-1]


def until_window(a: np.ndarray, b: np.ndarray, w: int) -> np.ndarray:
    """ρ[:, t] = (f_t ∘ … ∘ f_{t+w-1})(-1): bounded until over the next w positions.   (B, N) -> (B, N-w+1)

    Gil–Werman for the clamp monoid: window = suffix-of-block ∘ prefix-of-next-block, O(w) steps.
    """
    B, N = a.shape
    one = np.ones((), dtype=a.dtype)
    nb = -(-N // w)
    A = np.full((nb * w, B), -one, dtype=a.dtype)
    Bm = np.full((nb * w, B), one, dtype=a.dtype)
    A[:N] = a.T
    Bm[:N] = b.T
    A = A.reshape(nb, w, B).transpose(1, 0, 2)  # (w, nb, B)
    Bm = Bm.reshape(nb, w, B).transpose(1, 0, 2)
    SA, SB = A.copy(), Bm.copy()  # suffix compositions f_i ∘ … ∘ f_blockend
    for i in range(w - 2, -1, -1):
        SA[i], SB[i] = _compose(SA[i], SB[i], SA[i + 1], SB[i + 1])
    PA = A.copy()  # prefix compositions applied to -1: (f_blockstart ∘ … ∘ f_j)(-1)
    PB = Bm.copy()
    for j in range(1, w):
        PA[j], PB[j] = _compose(PA[j - 1], PB[j - 1], A[j], Bm[j])
    SA = SA.transpose(1, 0, 2).reshape(nb * w, B)
    SB = SB.transpose(1, 0, 2).reshape(nb * w, B)
    PA = PA.transpose(1, 0, 2).reshape(nb * w, B)
    M = N - w + 1
    idx = np.arange(M)
    tail = np.where((idx % w == 0)[:, None], -one, PA[np.minimum(idx + w - 1, nb * w - 1)])  # P_{i+w-1}(-1)
    out = np.maximum(SA[:M], np.minimum(SB[:M], tail))
    return out.T.copy()


def bounded_until(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """ρ[:, t] = max_{j∈[lo,hi]} min(a_{t+j}, min b[t..t+j-1]) with past-end identities.   (B, T) -> (B, T)

    Exact split: min(min b[t..t+lo-1], bounded-until over [t+lo, t+hi]).
    """
    B, T = a.shape
    one = np.ones((), dtype=a.dtype)
    N = T + hi
    ap = np.full((B, N), -one, dtype=a.dtype)
    bp = np.full((B, N), one, dtype=a.dtype)
    ap[:, :T] = a
    bp[:, :T] = b
    core = until_window(ap[:, lo:], bp[:, lo:], hi - lo + 1)[:, :T]
    if lo == 0:
        return core
    prefix = future_window(b, 0, lo - 1, np.minimum, one)
    return np.minimum(prefix, core)
