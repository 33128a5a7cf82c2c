"""Batched array kernels for LTLf over traces stored time-major, shape (T, B).

Time-major keeps every time step a contiguous row of B values, so a scan over time is a short Python
loop of whole-batch vector operations. Values live in [-1, 1] (robustness, float32) or {-1, +1} (Boolean,
int8); -1 and +1 are the identities of max and min, which is how a strong operator that runs past the
end yields -1 and a weak one +1.

Scans use √T blocking: a prefix scan within blocks (√T steps over (T/√T, B) slabs), one small scan of the
block totals, and one broadcast. Until/since use the "clamp" form f_t(x) = max(a_t, min(b_t, x))
(a = right operand, b = left operand); such maps compose, (a1, b1) ∘ (a2, b2) = (max(a1, min(b1, a2)),
min(b1, b2)), so suffix and sliding-window compositions are scans of the same shape.
"""

from __future__ import annotations

import math

import numpy as np

_SMALL_T = 48  # below this, numpy's accumulate is as fast as blocking


def shift_left(x: np.ndarray, k: int, fill) -> np.ndarray:
    """y[t] = x[t + k], `fill` past the end.                                      (T, B) -> (T, B)"""
    if k == 0:
        return x
    y = np.empty_like(x)
    n = max(0, x.shape[0] - k)
    y[:n] = x[k:]
    y[n:] = fill
    return y


def shift_right(x: np.ndarray, k: int, fill) -> np.ndarray:
    """y[t] = x[t - k], `fill` before frame 0.                                    (T, B) -> (T, B)"""
    if k == 0:
        return x
    y = np.empty_like(x)
    n = min(k, x.shape[0])
    y[:n] = fill
    y[n:] = x[: x.shape[0] - n]
    return y


def scan(x: np.ndarray, op: np.ufunc, reverse: bool = False) -> np.ndarray:
    """Inclusive prefix (or, reversed, suffix) `op` over time.                     (T, B) -> (T, B)"""
    T = x.shape[0]
    if T <= _SMALL_T:
        return op.accumulate(x[::-1], axis=0)[::-1] if reverse else op.accumulate(x, axis=0)
    K = math.isqrt(T)
    nb = -(-T // K)
    Z = np.empty((nb * K, *x.shape[1:]), dtype=x.dtype)
    Z[:T] = x[::-1] if reverse else x
    Z[T:] = Z[T - 1]  # padding repeats the last value: never changes an earlier prefix
    Z3 = Z.reshape(nb, K, *x.shape[1:])  # (nb, K, B)
    for i in range(1, K):
        op(Z3[:, i], Z3[:, i - 1], out=Z3[:, i])
    carry = op.accumulate(Z3[:, K - 1], axis=0)  # (nb, B) totals of blocks 0..k
    op(Z3[1:], carry[:-1, None], out=Z3[1:])
    out = Z[:T]
    return out[::-1] if reverse else out


def suffix_max(x: np.ndarray) -> np.ndarray:
    """y[t] = max(x[t:]).                                                          (T, B) -> (T, B)"""
    return scan(x, np.maximum, reverse=True)


def suffix_min(x: np.ndarray) -> np.ndarray:
    """y[t] = min(x[t:]).                                                          (T, B) -> (T, B)"""
    return scan(x, np.minimum, reverse=True)


def sliding(x: np.ndarray, w: int, op: np.ufunc) -> np.ndarray:
    """y[i] = op over x[i : i + w] for i in 0..N-w (van Herk / Gil–Werman, O(N)).      (N, B) -> (N-w+1, B)"""
    N = x.shape[0]
    if w <= 1:
        return x.copy()
    nb = -(-N // w)
    xp = np.empty((nb * w, *x.shape[1:]), dtype=x.dtype)
    xp[:N] = x
    xp[N:] = x[-1]  # never read by a window inside [0, N)
    blocks = xp.reshape(nb, w, *x.shape[1:])
    pre = blocks.copy()  # op from block start to i
    suf = blocks.copy()  # op from i to block end
    for i in range(1, w):
        op(pre[:, i], pre[:, i - 1], out=pre[:, i])
        op(suf[:, w - 1 - i], suf[:, w - i], out=suf[:, w - 1 - i])
    pre = pre.reshape(nb * w, *x.shape[1:])
    suf = suf.reshape(nb * w, *x.shape[1:])
    M = N - w + 1
    return op(suf[:M], pre[w - 1 : w - 1 + M])


_DIRECT_W = 16  # windows up to this width: w in-place ops beat the 2w slab steps of Gil–Werman


def _window(xp: np.ndarray, w: int, T: int, op: np.ufunc) -> np.ndarray:
    """y[i] = op over xp[i : i + w] for i < T (xp holds at least T + w - 1 rows)."""
    if w > _DIRECT_W:
        return sliding(xp[: T + w - 1], w, op)[:T]
    out = xp[:T].copy()
    for j in range(1, w):
        op(out, xp[j : j + T], out=out)
    return out


def future_window(x: np.ndarray, lo: int, hi: int, op: np.ufunc, fill) -> np.ndarray:
    """y[t] = op over x[t+lo .. t+hi], `fill` past the end.                         (T, B) -> (T, B)"""
    T = x.shape[0]
    xp = np.empty((T + hi, *x.shape[1:]), dtype=x.dtype)
    xp[:T] = x
    xp[T:] = fill
    return _window(xp[lo:], hi - lo + 1, T, op)


def past_window(x: np.ndarray, lo: int, hi: int, op: np.ufunc, fill) -> np.ndarray:
    """y[t] = op over x[t-hi .. t-lo], `fill` before frame 0.                       (T, B) -> (T, B)"""
    T = x.shape[0]
    xp = np.empty((T + hi, *x.shape[1:]), dtype=x.dtype)  # hi fills, then x
    xp[:hi] = fill
    xp[hi:] = x
    return _window(xp, hi - lo + 1, T, op)


# ------------------------------------------------------------------------------- clamp compositions
def _compose(a1, b1, a2, b2):
    """(a1,b1) ∘ (a2,b2) in the clamp monoid."""
    return np.maximum(a1, np.minimum(b1, a2)), np.minimum(b1, b2)


def _clamp_blocks(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(a, b) padded with the clamp identity (a = -1, b = +1) to whole blocks of k: (nb, k, …) each, and nb."""
    n = a.shape[0]
    nb = -(-n // k)
    one = np.ones((), dtype=a.dtype)
    A = np.full((nb * k, *a.shape[1:]), -one, dtype=a.dtype)
    Bm = np.full((nb * k, *a.shape[1:]), one, dtype=a.dtype)
    A[:n] = a
    Bm[:n] = b
    return A.reshape(nb, k, *a.shape[1:]), Bm.reshape(nb, k, *a.shape[1:]), nb


def until_scan(a: np.ndarray, b: np.ndarray, init) -> np.ndarray:
    """ρ[t] = max(a_t, min(b_t, ρ[t+1])), ρ[T] = init.                               (T, B) x2 -> (T, B)

    Positions meant to be past the end must hold the identity (a = -1, b = +1).
    """
    T = a.shape[0]
    if T == 0:
        return a.copy()
    K = max(1, math.isqrt(T))
    A, Bm, nb = _clamp_blocks(a, b, K)
    for i in range(K - 2, -1, -1):  # suffix compositions within each block
        A[:, i], Bm[:, i] = _compose(A[:, i], Bm[:, i], A[:, i + 1], Bm[:, i + 1])
    starts = np.empty((nb + 1, *a.shape[1:]), dtype=a.dtype)  # ρ at each block start; row nb = init
    starts[nb] = init
    for k in range(nb - 1, -1, -1):
        starts[k] = np.maximum(A[k, 0], np.minimum(Bm[k, 0], starts[k + 1]))
    out = np.maximum(A, np.minimum(Bm, starts[1:, None]))  # (nb, K, B)
    return out.reshape(nb * K, *a.shape[1:])[:T]


def since_scan(a: np.ndarray, b: np.ndarray, init) -> np.ndarray:
    """ρ[t] = max(a_t, min(b_t, ρ[t-1])), ρ[-1] = init (the past mirror of `until_scan`)."""
    return until_scan(a[::-1], b[::-1], init)[::-1]


def until_window(a: np.ndarray, b: np.ndarray, w: int) -> np.ndarray:
    """ρ[t] = (f_t ∘ … ∘ f_{t+w-1})(-1): bounded until over the next w positions.     (N, B) -> (N-w+1, B)

    Gil–Werman for the clamp monoid: window = suffix-of-block ∘ prefix-of-next-block, O(w) steps.
    """
    N = a.shape[0]
    one = np.ones((), dtype=a.dtype)
    A, Bm, nb = _clamp_blocks(a, b, w)
    SA, SB = A.copy(), Bm.copy()  # suffix compositions f_i ∘ … ∘ f_blockend
    for i in range(w - 2, -1, -1):
        SA[:, i], SB[:, i] = _compose(SA[:, i], SB[:, i], SA[:, i + 1], SB[:, i + 1])
    PA, PB = A.copy(), Bm.copy()  # prefix compositions (f_blockstart ∘ … ∘ f_j), applied to -1 below
    for j in range(1, w):
        PA[:, j], PB[:, j] = _compose(PA[:, j - 1], PB[:, j - 1], A[:, j], Bm[:, j])
    SA = SA.reshape(nb * w, *a.shape[1:])
    SB = SB.reshape(nb * w, *a.shape[1:])
    PA = PA.reshape(nb * w, *a.shape[1:])
    M = N - w + 1
    idx = np.arange(M)
    tail = PA[np.minimum(idx + w - 1, nb * w - 1)]  # P_{i+w-1}(-1) = PA (values are ≥ -1)
    tail[idx % w == 0] = -one  # a window starting a block is that block's suffix alone
    return np.maximum(SA[:M], np.minimum(SB[:M], tail))


def bounded_until(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """ρ[t] = max_{j∈[lo,hi]} min(a_{t+j}, min b[t..t+j-1]) with past-end identities.   (T, B) -> (T, B)

    Exact split: min(min b[t..t+lo-1], bounded until over [t+lo, t+hi]).
    """
    T = a.shape[0]
    one = np.ones((), dtype=a.dtype)
    N = T + hi
    ap = np.full((N, *a.shape[1:]), -one, dtype=a.dtype)
    bp = np.full((N, *a.shape[1:]), one, dtype=a.dtype)
    ap[:T] = a
    bp[:T] = b
    core = until_window(ap[lo:], bp[lo:], hi - lo + 1)[:T]
    if lo == 0:
        return core
    prefix = future_window(b, 0, lo - 1, np.minimum, one)
    return np.minimum(prefix, core)


# ------------------------------------------------------------------------------- min-plus compositions
def minplus_scan(a: np.ndarray, b: np.ndarray, init) -> np.ndarray:
    """c[t] = min(a_t, b_t + c[t+1]), c[T] = init (float, +inf allowed).            (T, B) x2 -> (T, B)

    The maps f_t(x) = min(a_t, b_t + x) compose, (a1, b1) ∘ (a2, b2) = (min(a1, b1 + a2), b1 + b2), with the
    identity (a = +inf, b = 0); the same √T blocking as `until_scan`. The witness costs of until/since
    chains are such recurrences (ltlreward/ltlf/witness.py).
    """
    T = a.shape[0]
    if T == 0:
        return a.copy()
    K = max(1, math.isqrt(T))
    n = a.shape[0]
    nb = -(-n // K)
    dt = np.result_type(a, b)
    A = np.full((nb * K, *a.shape[1:]), np.inf, dtype=dt)
    Bm = np.zeros((nb * K, *a.shape[1:]), dtype=dt)
    A[:n] = a
    Bm[:n] = b
    A = A.reshape(nb, K, *a.shape[1:])
    Bm = Bm.reshape(nb, K, *a.shape[1:])
    for i in range(K - 2, -1, -1):  # suffix compositions within each block
        np.minimum(A[:, i], Bm[:, i] + A[:, i + 1], out=A[:, i])
        Bm[:, i] += Bm[:, i + 1]
    starts = np.empty((nb + 1, *a.shape[1:]), dtype=dt)  # c at each block start; row nb = init
    starts[nb] = init
    for k in range(nb - 1, -1, -1):
        starts[k] = np.minimum(A[k, 0], Bm[k, 0] + starts[k + 1])
    out = np.minimum(A, Bm + starts[1:, None])  # (nb, K, B)
    return out.reshape(nb * K, *a.shape[1:])[:T]
