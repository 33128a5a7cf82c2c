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
from dataclasses import dataclass

import numpy as np

from ..grounding.observations import Observations
from ..spec.ast import Atom, Compare, Quoted
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
    """Per-atom robustness of one video: canonical atom string → (T,) float32 in [-1, 1], plus support."""

    values: dict[str, np.ndarray]  # canonical atom string -> (T,) float32 robustness in [-1, 1]
    support: dict[str, tuple[str, ...]]  # atom -> entities that support it (in argument order)


def compute_signals(
    atoms: Sequence[Atom | Compare | Quoted],
    obs: Observations,
    *,
    grounder: str = "",
    options: PredicateOptions | None = None,
) -> Signals:
    """Robustness signal of every atom on one video's observations; raises CapabilityError for atoms the
    grounder cannot answer (the message names the atom, the grounder and what would answer it)."""
    values, support = compute_signals_impl(atoms, obs, grounder, options or PredicateOptions())
    return Signals(values, support)
