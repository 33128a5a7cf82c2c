"""The predicate library: turns `Observations` into per-atom robustness signals in [-1, 1].

`compute_signals(atoms, obs)` evaluates atoms (`Atom`, `Compare`, `Quoted` nodes of a formula) on one video
and returns `Signals` keyed by each node's canonical string, ready for the monitor. Semantics, defaults and
the squashing are documented in `library.py` and in `predicate_table_markdown()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..grounding.observations import Observations
from ..spec.ast import Atom, Compare, Quoted
from .catalog import PREDICATES, PredicateInfo, lookup, suggest
from .library import COMPARE_SCALE, PredicateOptions, compute_signals_impl, median_smooth, ramp, squash
from .table import predicate_table_markdown

__all__ = [
    "COMPARE_SCALE",
    "PREDICATES",
    "PredicateInfo",
    "PredicateOptions",
    "Signals",
    "compute_signals",
    "lookup",
    "median_smooth",
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
