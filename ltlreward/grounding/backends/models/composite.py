"""Composite grounders (`gdino-sam2+vlm`, `owlv2+vlm`, `sam3+vlm`): a geometry backend gives masks,
boxes, centres and visibility, the VLM adds atoms and gripper openings; the merged Observations let the
predicate layer take each predicate from whichever part observed the field it reads."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ....errors import GroundingError
from ...observations import Observations
from .config import ModelsConfig
from .gdino_sam2 import GdinoSam2Grounder, Owlv2Sam2Grounder, make_config
from .sam3 import Sam3Grounder
from .vlm import VLMGrounder

if TYPE_CHECKING:
    from ....spec.ast import Entity
    from ....video import Video

_DICT_FIELDS = ("gripper_opening", "contacts", "atoms")


def merge_observations(parts: Sequence[Observations], name: str) -> Observations:
    """One Observations from several of the same video: per-entity arrays from the first part, dict fields
    (gripper_opening, contacts, atoms) from every part (the first part to provide a key keeps it)."""
    if not parts:
        raise GroundingError("merge_observations: nothing to merge")
    base = parts[0]
    for o in parts[1:]:
        if (o.n_frames, o.height, o.width) != (base.n_frames, base.height, base.width) or o.entities != base.entities:
            raise GroundingError(f"{name}: parts disagree on frames/size/entities ({o.source} vs {base.source})")
    merged: dict[str, dict] = {f: {} for f in _DICT_FIELDS}
    sources: dict[str, str] = {f: base.source for f in ("boxes", "centers", "visibility", "masks")
                               if f in base.meta.get("provides", []) or f == "visibility"}
    for o in parts:
        for f in _DICT_FIELDS:
            for k, v in getattr(o, f).items():
                if k not in merged[f]:
                    merged[f][k] = v
                    sources.setdefault(f, o.source)
    provides = sorted(set().union(*(set(o.meta.get("provides", [])) for o in parts)))
    meta = {"provides": provides, "sources": sources, "parts": {o.source: o.meta for o in parts}}
    return Observations(entities=base.entities, n_frames=base.n_frames, height=base.height, width=base.width,
                        fps=base.fps, boxes=base.boxes, centers=base.centers, visibility=base.visibility,
                        masks=base.masks, positions=base.positions, gripper_opening=merged["gripper_opening"],
                        contacts=merged["contacts"], atoms=merged["atoms"], source=name, meta=meta)


def _accepted(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in options.items() if k in params}


class CompositeGrounder:
    """Runs its parts on the same video and merges what they saw."""

    name = "composite"
    part_classes: tuple[type, ...] = ()

    def __init__(self, config: str | Path | ModelsConfig | None = None, **options: Any) -> None:
        names = {p for cls in self.part_classes for p in inspect.signature(cls.__init__).parameters}
        unknown = sorted(set(options) - names)
        if unknown:
            raise GroundingError(f"grounder {self.name!r}: unknown option(s) {', '.join(unknown)}")
        cfg = make_config(config) if not isinstance(config, ModelsConfig) else config
        self.parts = [cls(cfg, **_accepted(cls, options)) for cls in self.part_classes]
        self.provides = frozenset().union(*(p.provides for p in self.parts))

    def ground(self, video: Video, entities: Sequence[Entity], *, quoted: Sequence[str] = (),
               sidecar: str | Path | None = None, prompts: Any = None) -> Observations:
        """Every part's observations of `video`, merged (entity prompts go to the parts that take them)."""
        from ...registry import takes_prompts

        return merge_observations([p.ground(video, entities, quoted=quoted, sidecar=sidecar,
                                            **({"prompts": prompts} if prompts is not None and takes_prompts(p)
                                               else {}))
                                   for p in self.parts], self.name)


class GdinoSam2VlmGrounder(CompositeGrounder):
    """Grounding DINO + SAM2 geometry with VLM atoms and gripper openings."""

    name = "gdino-sam2+vlm"
    part_classes = (GdinoSam2Grounder, VLMGrounder)


class Owlv2VlmGrounder(CompositeGrounder):
    """OWLv2 + SAM2 geometry with VLM atoms and gripper openings."""

    name = "owlv2+vlm"
    part_classes = (Owlv2Sam2Grounder, VLMGrounder)


class Sam3VlmGrounder(CompositeGrounder):
    """SAM3 text-prompted tracking with VLM atoms and gripper openings."""

    name = "sam3+vlm"
    part_classes = (Sam3Grounder, VLMGrounder)
