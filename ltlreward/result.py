"""`RewardResult`: what scoring one video produced, and its versioned JSON form.

JSON schema (version `SCHEMA_VERSION` = 1), one object per video (`--json` prints it, `--out` appends it as
one JSONL line); `JSON_SCHEMA` below is the same thing as a JSON-Schema document:

    {
      "schema_version": 1,
      "video": "examples/handover_drop.mp4",     # resolved path, or "<memory:i>" for in-memory frames
      "reward": 0.6,                              # float in [0, 1]; null when scoring failed
      "reward_mode": "weighted_mean",
      "satisfied": false,                         # every constraint holds
      "constraints": [
        {"name": "no_drop", "satisfied": false, "robustness": -0.8, "weight": 2.0,
         "witness": {"frames": [20, 21],          # frames (after sampling) deciding the violation
                     "atoms": [{"atom": "lifted(bottle)", "frame": 20, "value": 0.9}, ...],
                     "entities": ["bottle", "left"]},     # witness is null when satisfied
         "spaces": {"lifted(bottle)": "3d", ...}}  # its atoms and the space each was judged in (see below)
      ],
      "n_frames": 45, "fps": 10.0, "height": 224, "width": 224,
      "frame_indices": [0, 1, ...],               # source frame of each scored frame
      "localisation": [                            # one entry per violated constraint (added in #14)
        {"constraint": "no_drop", "witness_frames": 2, "frame_fraction": 0.044,   # witness frames / n_frames
         "mask_frame_fraction": 0.13, "pixel_fraction": 0.006,  # its own mask (dilated); null without masks
         "stand_ins": [{"entity": "bottle", "region": "last seen", "frames": [[20, 21]]}]}  # unseen there
      ],
      "grounder": "state",                         # backend that actually grounded the video
      "spaces": {"dist(obj,goal)<0.05m": "2.5d"},  # per atom, the space it was judged in: "3d" (positions),
                                                  # "2.5d" (lifted from masks + camera), "image", or "signal"
                                                  # (quoted atoms and named propositions)
      "clock": {"fps": 20.0, "source": "video"},   # the rate seconds (speeds, `…s` windows) were counted in:
                                                  # "video" (its frame rate), or "sidecar" (the simulation rate)
      "warnings": [],                              # e.g. a metre constant judged in the image (--allow-2d)
      "grounder_reason": "sidecar beside the video: …/clip.sidecar.json",  # why "auto" chose it; null when
                                                  # the grounder was named by the user
      "timings": {"decode": 0.01, "ground": 0.002, "predicates": 0.003, "monitor": 0.001, "masks": 0.0},
      "error": null,                              # "VideoError: clip.mp4: ..." when scoring failed
      "fingerprint": "3f9c0e1a5b7d2c48"           # batch runs (ltlreward.batch.fingerprint): what made the
    }                                             # record — spec content, grounder + options, sampling, version

A failed video has `reward` null (NaN in Python), `satisfied` false, `constraints` [] and `error` set.
`spaces`, `clock` and `warnings` were added within version 1 (additive; readers must not require them).
Versioning: fields are only ever added within a version; renaming or removing one bumps `schema_version`.
`grounder_reason` and `fingerprint` were added within version 1 (additive, so `schema_version` stays 1: a
reader of version 1 ignores keys it does not know, and no field changed meaning). `fingerprint` is written by
the batch driver (`ltlreward score --out`, `score_videos`), not by `RewardModel.score`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ltlf import Witness

SCHEMA_VERSION = 1

_NUM = {"type": "number"}
_NULLABLE_NUM = {"type": ["number", "null"]}
_NULLABLE_FRACTION = {"type": ["number", "null"]}
_LOCALISATION = {
    "type": "object",
    "required": ["constraint", "witness_frames", "frame_fraction", "mask_frame_fraction", "pixel_fraction",
                 "stand_ins"],
    "properties": {
        "constraint": {"type": "string"},
        "witness_frames": {"type": "integer"},
        "frame_fraction": _NUM,
        "mask_frame_fraction": _NULLABLE_FRACTION,
        "pixel_fraction": _NULLABLE_FRACTION,
        "stand_ins": {"type": "array", "items": {
            "type": "object", "required": ["entity", "region", "frames"],
            "properties": {"entity": {"type": "string"}, "region": {"type": "string"},
                           "frames": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}}},
    },
}
_WITNESS = {
    "type": "object",
    "required": ["frames", "atoms", "entities"],
    "properties": {
        "frames": {"type": "array", "items": {"type": "integer"}},
        "atoms": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["atom", "frame", "value"],
                "properties": {"atom": {"type": "string"}, "frame": {"type": "integer"}, "value": _NUM},
            },
        },
        "entities": {"type": "array", "items": {"type": "string"}},
    },
}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ltlreward score result",
    "type": "object",
    "required": ["schema_version", "video", "reward", "satisfied", "constraints", "error"],
    "properties": {
        "schema_version": {"type": "integer", "const": SCHEMA_VERSION},
        "video": {"type": "string"},
        "reward": _NULLABLE_NUM,
        "reward_mode": {"type": "string"},
        "satisfied": {"type": "boolean"},
        "constraints": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "satisfied", "robustness", "weight", "witness"],
                "properties": {
                    "name": {"type": "string"},
                    "satisfied": {"type": "boolean"},
                    "robustness": _NUM,
                    "weight": _NUM,
                    "witness": {"anyOf": [{"type": "null"}, _WITNESS]},
                    "spaces": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
        },
        "n_frames": {"type": "integer"},
        "fps": _NULLABLE_NUM,
        "height": {"type": "integer"},
        "width": {"type": "integer"},
        "frame_indices": {"type": "array", "items": {"type": "integer"}},
        "localisation": {"type": "array", "items": _LOCALISATION},
        "grounder": {"type": "string"},
        "spaces": {"type": "object", "additionalProperties": {"type": "string"}},
        "clock": {"type": "object", "properties": {"fps": _NULLABLE_NUM, "source": {"type": "string"}}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "grounder_reason": {"type": ["string", "null"]},
        "timings": {"type": "object", "additionalProperties": _NUM},
        "error": {"type": ["string", "null"]},
        "fingerprint": {"type": "string"},
    },
}


@dataclass
class ConstraintOutcome:
    """One constraint on one video: verdict, robustness at frame 0, weight, witness and per-frame trace."""

    name: str
    satisfied: bool
    robustness: float
    weight: float
    witness: Witness | None = None
    trace: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (T,) value at each frame
    spaces: dict[str, str] = field(default_factory=dict)  # the constraint's atoms -> the space each was judged in

    def to_json(self) -> dict[str, Any]:
        """The constraint's JSON object (schema above)."""
        return {
            "name": self.name,
            "satisfied": bool(self.satisfied),
            "robustness": round(float(self.robustness), 6),
            "weight": float(self.weight),
            "witness": self.witness.to_dict() if self.witness is not None else None,
            "spaces": dict(self.spaces),
        }


def _r6(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


@dataclass(frozen=True)
class Localisation:
    """How one violated constraint localises its failure: the witness's share of the frames and, when masks
    were built, the share of frames and pixels its own mask covers and the stand-ins for unseen entities."""

    constraint: str
    witness_frames: int
    frame_fraction: float  # witness frames / n_frames
    mask_frame_fraction: float | None = None  # frames its mask covers (dilated) / n_frames
    pixel_fraction: float | None = None  # its mask's pixels / (n_frames · H · W)
    stand_ins: tuple[Any, ...] = ()  # ltlreward.masks.StandIn

    def to_json(self) -> dict[str, Any]:
        """The entry's JSON object (schema above)."""
        return {"constraint": self.constraint, "witness_frames": int(self.witness_frames),
                "frame_fraction": _r6(self.frame_fraction), "mask_frame_fraction": _r6(self.mask_frame_fraction),
                "pixel_fraction": _r6(self.pixel_fraction), "stand_ins": [s.to_json() for s in self.stand_ins]}


@dataclass
class RewardResult:
    """Scoring of one video: reward, per-constraint outcomes, timings per stage, or the error that stopped it.

    `masks` (T,H,W) float32 violation mask and `frame_indices` are kept in memory only (masks not in JSON).
    """

    video: str
    reward: float
    satisfied: bool
    constraints: list[ConstraintOutcome] = field(default_factory=list)
    n_frames: int = 0
    fps: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    grounder: str = ""
    error: str | None = None
    reward_mode: str = "weighted_mean"
    height: int = 0
    width: int = 0
    frame_indices: np.ndarray | None = None
    masks: np.ndarray | None = field(default=None, repr=False)
    localisation: list[Localisation] = field(default_factory=list)
    spaces: dict[str, str] = field(default_factory=dict)  # atom -> "3d" | "2.5d" | "image" | "signal"
    clock: dict[str, Any] = field(default_factory=dict)  # {"fps": rate seconds are counted in, "source": …}
    warnings: list[str] = field(default_factory=list)
    grounder_reason: str | None = None  # why an "auto" grounder chose `grounder`

    @property
    def ok(self) -> bool:
        """True when the video was scored (no error)."""
        return self.error is None

    @property
    def violated(self) -> list[ConstraintOutcome]:
        """The constraints that do not hold."""
        return [c for c in self.constraints if not c.satisfied]

    def constraint(self, name: str) -> ConstraintOutcome:
        """The outcome of constraint `name` (KeyError listing the names otherwise)."""
        for c in self.constraints:
            if c.name == name:
                return c
        raise KeyError(f"no constraint {name!r}; constraints: {', '.join(c.name for c in self.constraints)}")

    @classmethod
    def failed(cls, video: str, error: BaseException | str, *, grounder: str = "", reward_mode: str = "",
               timings: dict[str, float] | None = None, grounder_reason: str | None = None) -> RewardResult:
        """A result recording that `video` could not be scored (reward NaN, error text set)."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return cls(video=video, reward=math.nan, satisfied=False, grounder=grounder, error=text,
                   reward_mode=reward_mode or "weighted_mean", timings=dict(timings or {}),
                   grounder_reason=grounder_reason)

    def to_json(self) -> dict[str, Any]:
        """The versioned JSON object of this result (schema in the module docstring / `JSON_SCHEMA`)."""
        reward = None if not math.isfinite(self.reward) else round(float(self.reward), 6)
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "video": self.video,
            "reward": reward,
            "reward_mode": self.reward_mode,
            "satisfied": bool(self.satisfied),
            "constraints": [c.to_json() for c in self.constraints],
            "n_frames": int(self.n_frames),
            "fps": None if self.fps is None else round(float(self.fps), 6),
            "height": int(self.height),
            "width": int(self.width),
            "frame_indices": [] if self.frame_indices is None else [int(i) for i in self.frame_indices],
            "localisation": [loc.to_json() for loc in self.localisation],
            "grounder": self.grounder,
            "spaces": dict(self.spaces),
            "clock": {k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in self.clock.items()},
            "warnings": list(self.warnings),
            "grounder_reason": self.grounder_reason,
            "timings": {k: round(float(v), 6) for k, v in self.timings.items()},
            "error": self.error,
        }
        return out


# ------------------------------------------------------------------------------------------ validation
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate_json(obj: Any, schema: dict[str, Any] | None = None, path: str = "$") -> list[str]:
    """Errors of `obj` against `schema` (default `JSON_SCHEMA`), '<json path>: <problem>' each; [] if valid.

    Covers the subset of JSON Schema that `JSON_SCHEMA` uses (type, const, required, properties, items,
    additionalProperties, anyOf), so results can be checked without the jsonschema package.
    """
    schema = JSON_SCHEMA if schema is None else schema
    errors: list[str] = []
    if "anyOf" in schema:
        if all(validate_json(obj, s, path) for s in schema["anyOf"]):
            errors.append(f"{path}: matches none of the allowed forms")
        return errors
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(obj, t) for t in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(obj).__name__}"]
    if "const" in schema and obj != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}, got {obj!r}")
    if isinstance(obj, dict):
        errors += [f"{path}: missing key {k!r}" for k in schema.get("required", ()) if k not in obj]
        props = schema.get("properties", {})
        for k, v in obj.items():
            if k in props:
                errors += validate_json(v, props[k], f"{path}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate_json(v, schema["additionalProperties"], f"{path}.{k}")
    if isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            errors += validate_json(v, schema["items"], f"{path}[{i}]")
    return errors


__all__ = ["JSON_SCHEMA", "SCHEMA_VERSION", "ConstraintOutcome", "Localisation", "RewardResult", "validate_json"]
