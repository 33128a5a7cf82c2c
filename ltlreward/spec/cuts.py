"""Cuts of a spec to a fragment of the language, read off the operator table (used by `agree`'s baselines)."""

from __future__ import annotations

from dataclasses import replace

from .ast import Constraint, Formula, TaskSpec
from .ops import Op
from .walk import is_temporal


def end_state_body(f: Formula) -> Formula | None:
    """φ when `f` is `F G φ` (both unbounded) with φ free of temporal operators, else None."""
    outer = f.info
    if outer is None or outer.op != Op.EVENTUALLY or f.interval is not None:
        return None
    (inner_f,) = f.children()
    inner = inner_f.info
    if inner is None or inner.op != Op.ALWAYS or inner_f.interval is not None:
        return None
    (body,) = inner_f.children()
    return None if is_temporal(body) else body


def is_end_state(c: Constraint) -> bool:
    """Whether the constraint only asks for an end state: `F G φ` with a non-temporal φ."""
    return end_state_body(c.formula) is not None


def end_state_spec(spec: TaskSpec) -> TaskSpec | None:
    """The spec cut down to its end-state constraints (what is left without temporal structure), or None."""
    keep = tuple(c for c in spec.constraints if is_end_state(c))
    if not keep:
        return None
    return replace(spec, constraints=keep, task=f"{spec.task} (end state only)")
