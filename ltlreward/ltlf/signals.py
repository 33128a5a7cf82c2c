"""Turn user signals (dict of arrays, or npz / csv / json files) into the monitor's prepared batch."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import MonitorError
from ..spec.ast import Compare, Num
from .core import CAtom
from .traces import Batch

SignalMap = Mapping[str, np.ndarray]


def _as_2d(key: str, x) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise MonitorError(f"signal {key!r} must be shaped (T,) or (B, T), got {a.shape}")
    if a.dtype.kind not in "biuf":
        raise MonitorError(f"signal {key!r} must be numeric or boolean, got dtype {a.dtype}")
    return a


def _comparison(node: Compare, signals: SignalMap, boolean: bool) -> tuple[np.ndarray, bool] | None:
    """Robustness of `f(...) < c` from the raw values of its numeric terms, when those are supplied.

    Returns ((B, T) values, whether every supplied term was 1-D) or None."""
    vals = []
    for t in (node.left, node.right):
        if isinstance(t, Num):
            vals.append(np.float64(t.value))
        elif t.canonical in signals:
            vals.append(_as_2d(t.canonical, signals[t.canonical]).astype(np.float64))
        else:
            return None
    l, r = vals
    cmp = node.op.info
    if boolean:
        arr = np.where(cmp.test(l, r), 1.0, -1.0)
    else:
        margin = (r - l) if cmp.upper else (l - r)
        scale = np.maximum(np.maximum(np.abs(l), np.abs(r)), 1e-9)
        arr = np.clip(margin / scale, -1.0, 1.0)
    terms = [t for t in (node.left, node.right) if not isinstance(t, Num)]
    one_d = arr.shape[0] == 1 and all(np.asarray(signals[t.canonical]).ndim == 1 for t in terms)
    return np.atleast_2d(arr), one_d


# atoms whose signal can be derived from other signals when not given: node type -> rule
_DERIVED = {Compare: _comparison}


def resolve_lengths(B: int, T: int, lengths=None, mask=None) -> np.ndarray:
    """Per-trace lengths from `lengths` (B,) or a prefix `mask` (B, T); default: all T."""
    if lengths is not None and mask is not None:
        raise MonitorError("pass either lengths or mask, not both")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.ndim == 1:
            m = m[None]
        if m.shape != (B, T):
            raise MonitorError(f"mask must be shaped {(B, T)}, got {m.shape}")
        lengths = m.sum(axis=1)
        if not np.array_equal(m, np.arange(T)[None, :] < lengths[:, None]):
            raise MonitorError("mask must mark a prefix of each trace (True then False)")
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    L = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if L.shape[0] == 1 and B > 1:
        L = np.repeat(L, B)
    if L.shape != (B,):
        raise MonitorError(f"lengths must have one entry per trace ({B}), got {L.shape[0]}")
    if (L < 0).any() or (L > T).any():
        raise MonitorError(f"lengths must lie in [0, {T}], got {L.min()}..{L.max()}")
    return L


def _gather(atoms: list[CAtom], signals: SignalMap, boolean: bool) -> tuple[dict[str, np.ndarray], bool]:
    """Each atom's (B or 1, T) raw signal, given or derived; (signals, every one was 1-D)."""
    needed: dict[str, np.ndarray] = {}
    missing: list[str] = []
    squeeze = True
    for a in atoms:
        derive = _DERIVED.get(type(a.source))
        if a.key in signals:
            needed[a.key] = _as_2d(a.key, signals[a.key])
            squeeze &= np.asarray(signals[a.key]).ndim == 1
        elif derive is not None and (got := derive(a.source, signals, boolean)) is not None:
            needed[a.key], one_d = got
            squeeze &= one_d
        else:
            missing.append(a.key)
    if missing:
        have = ", ".join(sorted(signals)) or "none"
        raise MonitorError(f"no signal for atom(s) {', '.join(missing)} (signals given: {have})")
    return needed, squeeze


def _batch_shape(needed: dict[str, np.ndarray], signals: SignalMap, lengths, squeeze: bool) -> tuple[int, int, bool]:
    """(B, T, squeeze) of the batch: from the needed signals, else any signal, else `lengths`."""
    if needed:
        shapes = {v.shape for v in needed.values()}
        T = max(s[1] for s in shapes)
        B = max(s[0] for s in shapes)
        for k, v in needed.items():
            if v.shape[1] != T or v.shape[0] not in (1, B):
                raise MonitorError(f"signal {k!r} has shape {v.shape}; all signals must share (B, T) = {(B, T)}")
        return B, T, squeeze
    if signals:  # no atom needed (constants only): the trace shape still comes from the signals
        first = next(iter(signals.values()))
        B, T = _as_2d("", first).shape
        return B, T, np.asarray(first).ndim == 1
    if lengths is not None:
        L0 = np.asarray(lengths).reshape(-1)
        return L0.shape[0], int(L0.max()) if L0.size else 0, np.asarray(lengths).ndim == 0
    return 1, 0, squeeze


def _encode(k: str, v: np.ndarray, boolean: bool, T: int, B: int) -> np.ndarray:
    """One (B or 1, T) signal as the monitor's (T, B) trace: ±1 int8 (Boolean) or float32 clipped to [-1, 1]."""
    if boolean:
        x = (v.T > 0).view(np.int8) * np.int8(2) - np.int8(1)  # ±1, branch-free
    elif v.dtype == bool:
        x = v.T.astype(np.float32) * 2 - 1
    else:
        x = v.T.astype(np.float32)
        if np.isnan(x).any():
            raise MonitorError(f"signal {k!r} contains NaN")
        np.clip(x, -1.0, 1.0, out=x)
    if x.shape != (T, B):  # a (T,) signal shared by a batch
        x = np.broadcast_to(x, (T, B)).copy()
    return x


def prepare(
    atoms: Iterable[CAtom],
    signals: SignalMap,
    *,
    boolean: bool,
    lengths=None,
    mask=None,
) -> tuple[Batch, bool]:
    """Stack the needed atom signals into a Batch. Returns (batch, squeeze) where squeeze means 1-D input."""
    needed, squeeze = _gather(list({a.key: a for a in atoms}.values()), signals, boolean)
    B, T, squeeze = _batch_shape(needed, signals, lengths, squeeze)
    L = resolve_lengths(B, T, lengths, mask)
    if T == 0:  # evaluate empty traces at a single past-the-end position
        T = 1
        needed = {k: np.zeros((v.shape[0], 1), v.dtype) for k, v in needed.items()}
    valid = np.arange(T)[:, None] < L[None, :]  # (T, B), time-major like every trace inside the monitor
    ragged = bool((L < T).any())
    dtype = np.dtype(np.int8) if boolean else np.dtype(np.float32)
    prepared: dict[str, np.ndarray] = {}
    for k, v in needed.items():
        x = _encode(k, v, boolean, T, B)
        if ragged:
            x[~valid] = -1
        prepared[k] = x
    return Batch(prepared, L, valid, dtype, ragged), squeeze


# ------------------------------------------------------------------------------------------ files
def load_signals(path: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray | None, float | None]:
    """Read signals from .npz / .csv / .json. Returns (signals, lengths or None, fps or None).

    - npz: one array per atom key (T,) or (B, T); optional `__lengths__` and `__fps__` arrays.
    - csv: a header row of atom keys (one column per atom, one row per frame); optional `frame` column.
    - json: {"fps": 10, "signals": {"key": [..] or [[..], ..]}, "lengths": [..]} or a flat {"key": [..]}.
    """
    p = Path(path)
    if not p.exists():
        raise MonitorError(f"{p}: no such signals file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            lengths = data.pop("__lengths__", None)
            fps = data.pop("__fps__", None)
            return data, lengths, (float(fps) if fps is not None else None)
        if suffix == ".csv":
            with p.open(newline="") as fh:
                rows = list(csv.reader(fh))
            if not rows:
                raise MonitorError(f"{p}: empty csv")
            header, body = rows[0], rows[1:]
            cols = {h: i for i, h in enumerate(header) if h.strip() and h.strip() != "frame"}
            out = {}
            for h, i in cols.items():
                try:
                    out[h.strip()] = np.array([_csv_value(r[i]) for r in body], dtype=np.float64)
                except (IndexError, ValueError) as exc:
                    raise MonitorError(f"{p}: column {h!r}: {exc}") from None
            return out, None, None
        if suffix == ".json":
            obj = json.loads(p.read_text())
            if not isinstance(obj, dict):
                raise MonitorError(f"{p}: expected a JSON object")
            sig = obj.get("signals", obj if "signals" not in obj else None)
            if not isinstance(sig, dict):
                raise MonitorError(f"{p}: 'signals' must be an object mapping atom keys to arrays")
            sig = {k: v for k, v in sig.items() if k not in ("fps", "lengths")}
            out = {k: np.asarray(v, dtype=np.float64) for k, v in sig.items()}
            lengths = np.asarray(obj["lengths"]) if "lengths" in obj else None
            fps = float(obj["fps"]) if "fps" in obj else None
            return out, lengths, fps
    except MonitorError:
        raise
    except Exception as exc:  # a malformed file of any kind is one clear error naming it
        raise MonitorError(f"{p}: cannot read signals: {exc}") from None
    raise MonitorError(f"{p}: unknown signals format {suffix!r} (use .npz, .csv or .json)")


def _csv_value(s: str) -> float:
    t = s.strip().lower()
    if t in ("true", "t", "yes"):
        return 1.0
    if t in ("false", "f", "no"):
        return -1.0
    return float(t)
