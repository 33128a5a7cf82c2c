"""Grounding: from pixels (or simulator state) to per-entity, per-frame `Observations`."""

from ltlreward.grounding.base import OBSERVATION_FIELDS, Grounder, find_sidecar, sidecar_path_for
from ltlreward.grounding.observations import (
    OBS_FORMAT_VERSION,
    Observations,
    load_observations,
    save_observations,
)
from ltlreward.grounding.registry import available_grounders, get_grounder, register_grounder, resolve_auto

__all__ = [
    "OBSERVATION_FIELDS",
    "OBS_FORMAT_VERSION",
    "Grounder",
    "Observations",
    "available_grounders",
    "find_sidecar",
    "get_grounder",
    "load_observations",
    "register_grounder",
    "resolve_auto",
    "save_observations",
    "sidecar_path_for",
]
