"""Grounding: from pixels (or simulator state) to per-entity, per-frame `Observations`.

Where things live: observations.py — the `Observations` contract and its on-disk format; base.py — the
`Grounder` protocol and the sidecar convention; registry.py — every backend by name with its metadata
(`GROUNDERS`, `GrounderInfo`, `get_grounder`, `auto`); backends/ — one module per backend (state.py from a
simulator sidecar, whose format is sidecar.py; color.py; models/ for the model grounders). Shared box / mask
raster helpers are `ltlreward.raster`.
"""

from .base import OBSERVATION_FIELDS, Grounder, find_sidecar, sidecar_path_for
from .observations import (
    OBS_FORMAT_VERSION,
    Observations,
    load_observations,
    save_observations,
)
from .registry import (
    GROUNDERS,
    GrounderInfo,
    available_grounders,
    describe_grounders,
    get_grounder,
    grounder_info,
    register_grounder,
    resolve_auto,
)

__all__ = [
    "GROUNDERS",
    "OBSERVATION_FIELDS",
    "OBS_FORMAT_VERSION",
    "Grounder",
    "GrounderInfo",
    "Observations",
    "available_grounders",
    "describe_grounders",
    "find_sidecar",
    "get_grounder",
    "grounder_info",
    "load_observations",
    "register_grounder",
    "resolve_auto",
    "save_observations",
    "sidecar_path_for",
]
