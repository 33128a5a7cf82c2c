"""The grounder protocol: a backend turns a video (+ the spec's entities) into `Observations`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .observations import Observations

if TYPE_CHECKING:
    from ..spec.ast import Entity
    from ..video import Video

# The Observations fields a grounder may fill; `Grounder.provides` is a subset of these. The predicate layer
# compares a predicate's needs with it to say what is missing (e.g. "holding needs gripper_opening").
OBSERVATION_FIELDS = (
    "centers",  # (E,T,2) pixel centres
    "boxes",  # (E,T,4) pixel boxes
    "visibility",  # (E,T) score
    "masks",  # (E,T,H,W) segmentation
    "positions",  # (E,T,3) world positions in metres
    "gripper_opening",  # per gripper entity (T,) in [0,1]
    "contacts",  # per entity pair (T,) bool
    "atoms",  # per quoted atom / named proposition (T,) probability
)


@runtime_checkable
class Grounder(Protocol):
    """What every backend implements. `provides` lists the Observations fields it can fill."""

    name: str
    provides: frozenset[str]

    def ground(
        self,
        video: Video,
        entities: Sequence[Entity],
        *,
        quoted: Sequence[str] = (),
        sidecar: str | Path | None = None,
    ) -> Observations:
        """Observe every entity (and quoted atom) in every frame of `video`."""
        ...


def sidecar_path_for(video_path: str | Path) -> Path:
    """The conventional sidecar of a video: `clip.mp4` → `clip.sidecar.json` in the same directory."""
    p = Path(video_path)
    return p.with_name(p.stem + ".sidecar.json")


def find_sidecar(video_path: str | Path | None) -> Path | None:
    """The sidecar next to `video_path` if that file exists, else None."""
    if video_path is None:
        return None
    p = sidecar_path_for(video_path)
    return p if p.is_file() else None
