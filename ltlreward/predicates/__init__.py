"""The predicate library: turns `Observations` into per-atom robustness signals in [-1, 1].

`compute_signals(atoms, obs)` evaluates atoms (`Atom`, `Compare`, `Quoted` nodes of a formula) on one video
and returns `Signals` keyed by each node's canonical string, ready for the monitor.

Where things live: library.py — every predicate and numeric function with its metadata in one `@predicate`
decorator (and its default thresholds); catalog.py — the registry and `PREDICATES` (name → PredicateInfo);
context.py — what a predicate reads (`Context`) and `PredicateOptions`; robustness.py — the squashing;
evaluate.py — checking, option resolution, gating and smoothing of each atom; table.py — the README table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..grounding.observations import Observations
from ..spec.ast import Atom, Compare, Quoted, TaskSpec
from . import library  # noqa: F401  (registers every predicate in the catalogue)
from .catalog import COMPARE_SCALE, PREDICATE_FUNCS, PREDICATES, PredicateInfo, lookup, predicate, suggest
from .context import Context, PredicateOptions
from .evaluate import compute_signals_impl
from .robustness import median_smooth, ramp, squash
from .table import predicate_table_markdown

__all__ = [
    "COMPARE_SCALE",
    "PREDICATES",
    "PREDICATE_FUNCS",
    "Context",
    "PredicateInfo",
    "PredicateOptions",
    "Signals",
    "compute_signals",
    "lookup",
    "median_smooth",
    "predicate",
    "predicate_table_markdown",
    "ramp",
    "squash",
    "suggest",
]


@dataclass
class Signals:
    """Per-atom robustness of one video: canonical atom string → (T,) float32 in [-1, 1], plus support, the
    space each atom was judged in, warnings, and the time base (`fps`, and its `clock`: "video" or
    "sidecar", the simulation rate) the signals are sampled at."""

    values: dict[str, np.ndarray]  # canonical atom string -> (T,) float32 robustness in [-1, 1]
    support: dict[str, tuple[str, ...]]  # atom -> entities that support it (in argument order)
    spaces: dict[str, str] = field(default_factory=dict)  # atom -> "3d" | "2.5d" | "image" | "signal"
    warnings: list[str] = field(default_factory=list)
    fps: float | None = None  # frames per second of the signals' time base (None: the video's)
    clock: str = "video"


def compute_signals(
    atoms: Sequence[Atom | Compare | Quoted],
    obs: Observations,
    *,
    grounder: str = "",
    options: PredicateOptions | None = None,
    spec: TaskSpec | None = None,
) -> Signals:
    """Robustness signal of every atom on one video's observations; raises CapabilityError for atoms the
    grounder cannot answer (the message names the atom, the grounder and what would answer it), and a located
    SpecError for a metre constant only the image could judge. `spec` gives entity kinds and atom locations."""
    ev = compute_signals_impl(atoms, obs, grounder, options or PredicateOptions(), spec)
    return Signals(ev.values, ev.support, ev.spaces, ev.warnings, float(obs.fps) if obs.fps else None, obs.clock)
