"""What the batch driver (ltlreward.batch) hands an engine, and what an engine promises back.

An engine maps videos to records and nothing else: `run(todo, finish)` scores every `Job` and calls
`finish(record)` once per job, in this process, as each video ends — a failed video included (its record has
`error` set). Resume, the results file and the summary stay with the driver. Engines: `LocalEngine`
(ltlreward.local_engine: this process or a process pool) and `RayEngine` (ltlreward.ray_engine).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Finish = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """One video to score: `key` its resolved path (the record's "video", the resume key), `path` as given."""

    key: str
    path: str


class Engine(Protocol):
    """Scores the videos of a batch; see the module docstring."""

    def run(self, todo: Sequence[Job], finish: Finish) -> None:
        """Score every job, calling `finish(record)` once per job as each video ends."""
        ...


__all__ = ["Engine", "Finish", "Job"]
