"""LTLf monitoring over batches of traces (Boolean, robustness, witnesses); `ltlreward.monitor` is its `monitor()`.

    evaluate(formula, signals, semantics="boolean"|"robustness", fps=None, lengths=None) -> value at frame 0
    monitor(spec, signals, fps=None, lengths=None) -> MonitorResult

`signals` maps canonical atom strings to (T,) or (B, T) arrays. Robustness signals are read in [-1, 1]
(clipped); Boolean semantics reads value > 0 as true. `lengths` (B,) or a prefix `mask` (B, T) lets a batch
of ragged traces go through one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MonitorError
from ..spec.ast import Formula, TaskSpec
from .core import CAtom, Node, atom_nodes, clamp_windows, lower, topo
from .signals import SignalMap, load_signals, prepare
from .traces import evaluate_nodes
from .witness import witness_masks

SEMANTICS = ("boolean", "robustness")


@dataclass(frozen=True)
class AtomInstance:
    """One atom at one frame inside a witness, with its value there."""

    atom: str
    frame: int
    value: float


@dataclass(frozen=True)
class Witness:
    """Why a constraint failed on one trace: the deciding atom instances, their frames and entities."""

    frames: tuple[int, ...]
    atoms: tuple[AtomInstance, ...]
    entities: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "frames": list(self.frames),
            "atoms": [{"atom": a.atom, "frame": a.frame, "value": round(a.value, 6)} for a in self.atoms],
            "entities": list(self.entities),
        }


@dataclass
class ConstraintResult:
    """One constraint over a batch: verdicts, robustness, the per-frame trace and witness masks."""

    name: str
    weight: float
    satisfied: np.ndarray  # (B,) bool
    robustness: np.ndarray  # (B,) float: value at frame 0 (±1 in Boolean semantics)
    trace: np.ndarray  # (B, T) value of the constraint formula at every frame
    atom_masks: dict[str, np.ndarray] = field(default_factory=dict)  # atom key -> (B, T) bool witness points
    atom_values: dict[str, np.ndarray] = field(default_factory=dict)  # atom key -> (B, T) values
    atom_entities: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def witness_frames(self) -> np.ndarray:
        """(B, T) bool: frames that appear in the witness."""
        out = np.zeros(self.trace.shape, dtype=bool)
        for m in self.atom_masks.values():
            out |= m
        return out

    def witness(self, b: int = 0) -> Witness | None:
        """The witness of trace `b`, or None when the constraint holds there."""
        if bool(self.satisfied[b]):
            return None
        inst: list[AtomInstance] = []
        for key, m in self.atom_masks.items():
            for f in np.flatnonzero(m[b]):
                inst.append(AtomInstance(key, int(f), float(self.atom_values[key][b, f])))
        inst.sort(key=lambda a: (a.frame, a.atom))
        ents: list[str] = []
        for a in inst:
            for e in self.atom_entities.get(a.atom, ()):
                if e not in ents:
                    ents.append(e)
        return Witness(tuple(sorted({a.frame for a in inst})), tuple(inst), tuple(ents))


@dataclass
class MonitorResult:
    """Per-constraint results of monitoring one spec over a batch of B traces."""

    constraints: list[ConstraintResult]
    lengths: np.ndarray  # (B,)
    semantics: str

    def __getitem__(self, name: str) -> ConstraintResult:
        for c in self.constraints:
            if c.name == name:
                return c
        raise KeyError(f"no constraint {name!r}; constraints: {', '.join(c.name for c in self.constraints)}")

    def __iter__(self):
        return iter(self.constraints)

    def __len__(self) -> int:
        return len(self.constraints)

    @property
    def batch_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def satisfied(self) -> np.ndarray:
        """(B, C) bool verdicts."""
        if not self.constraints:
            return np.ones((self.batch_size, 0), bool)
        return np.stack([c.satisfied for c in self.constraints], axis=1)

    @property
    def robustness(self) -> np.ndarray:
        """(B, C) robustness at frame 0."""
        if not self.constraints:
            return np.zeros((self.batch_size, 0), np.float32)
        return np.stack([c.robustness for c in self.constraints], axis=1)

    @property
    def all_satisfied(self) -> np.ndarray:
        """(B,) bool: every constraint holds."""
        return self.satisfied.all(axis=1)


def _check_semantics(semantics: str) -> bool:
    if semantics not in SEMANTICS:
        raise MonitorError(f"unknown semantics {semantics!r}; choose one of: {', '.join(SEMANTICS)}")
    return semantics == "boolean"


def _entities_of(node: CAtom, known: set[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for c in node.source.calls():
        for a in c.identifiers:
            if (known is None or a in known) and a not in out:
                out.append(a)
    return tuple(out)


def _value_at_0(trace: np.ndarray) -> np.ndarray:
    """(T, B) trace -> (B,) value at frame 0 (prepare() guarantees T ≥ 1)."""
    return trace[0]


def evaluate(
    formula: Formula | str,
    signals: SignalMap,
    semantics: str = "boolean",
    fps: float | None = None,
    *,
    lengths=None,
    mask=None,
) -> np.ndarray:
    """Value of `formula` at frame 0: (B,) for (B, T) signals, a 0-d array for (T,) signals.

    Boolean semantics returns bool; robustness returns float32 in [-1, 1].
    """
    if isinstance(formula, str):
        from ..spec.parser import parse_formula

        formula = parse_formula(formula)
    boolean = _check_semantics(semantics)
    root = lower(formula, fps)
    atoms = atom_nodes(topo([root]))
    batch, squeeze = prepare(atoms, signals, boolean=boolean, lengths=lengths, mask=mask)
    (root,) = clamp_windows([root], batch.shape[0])
    vals = evaluate_nodes(topo([root]), batch)
    v = _value_at_0(vals[root])
    out = (v > 0) if boolean else v.astype(np.float32)
    return out[0] if squeeze and out.shape[0] == 1 else out


def monitor(
    spec: TaskSpec,
    signals: SignalMap,
    fps: float | None = None,
    *,
    semantics: str = "robustness",
    lengths=None,
    mask=None,
    witnesses: bool = True,
) -> MonitorResult:
    """Monitor every constraint of `spec` over a batch; witnesses for each violated (constraint, trace)."""
    boolean = _check_semantics(semantics)
    roots = [lower(c.formula, fps) for c in spec.constraints]
    atoms = atom_nodes(topo(roots))
    batch, _ = prepare(atoms, signals, boolean=boolean, lengths=lengths, mask=mask)
    roots = clamp_windows(roots, batch.shape[0])
    vals = evaluate_nodes(topo(roots), batch)
    known = set(spec.entity_names) or None
    results: list[ConstraintResult] = []
    memos: dict = {}  # witness costs and choices, shared by the constraints violated on the same traces
    for c, root in zip(spec.constraints, roots, strict=False):
        trace = vals[root]
        v0 = _value_at_0(trace)
        sat = v0 > 0
        cr = ConstraintResult(c.name, float(c.weight), sat, v0.astype(np.float32), trace.T)
        if witnesses and not sat.all():
            order = topo([root])
            masks = witness_masks(order, vals, batch, ~sat, memos)
            for node, m in masks.items():
                cr.atom_masks[node.key] = m.T
                cr.atom_values[node.key] = vals[node].T
                cr.atom_entities[node.key] = _entities_of(node, known)
        results.append(cr)
    return MonitorResult(results, batch.lengths, semantics)


__all__ = [
    "AtomInstance",
    "ConstraintResult",
    "MonitorResult",
    "Node",
    "Witness",
    "evaluate",
    "load_signals",
    "monitor",
]
