"""Model-grounder configuration: which weights each role uses, device/dtype, batch sizes, thresholds and the
observations cache, read from a small `ltlreward.toml` (tomllib) and overridable by keyword options.

```toml
[models]                      # role = local directory, or a hub id already in the Hugging Face cache
grounding_dino = "IDEA-Research/grounding-dino-tiny"
sam2 = "/models/sam2.1-hiera-small"
vlm = "Qwen/Qwen2.5-VL-3B-Instruct"
allow_download = false        # true: fetch missing hub ids (otherwise local files only)

[runtime]
device = "auto"               # auto (cuda if present, else cpu) | cpu | cuda | cuda:1
dtype = "auto"                # auto (cuda → bfloat16, cpu → float32) | float32 | bfloat16 | float16
detector_batch = 8            # keyframes per detector call
vlm_batch = 8                 # (frame, question) pairs per VLM call
cpu_threads = 0               # torch threads on cpu (0 = default; 1 is fastest on busy shared machines)

[cache]
dir = "~/.cache/ltlreward/observations"   # "" disables the observations cache

[detect]
box_threshold = 0.3           # detector score to start / restart a track
every = 8                     # keyframe stride for (re-)detection
lost_score = 0.0              # SAM2/SAM3 object-score logit below which a track counts as lost

[vlm]
stride = 1                    # ask every n-th frame; frames between are interpolated
calibration = "calibration.json"   # maps fitted by `ltlreward calibrate` (relative to this file)
[vlm.questions]               # the predicates answered by questions ({g} = the entity's prompt); this table
                              # replaces the default set, an empty table asks none
gripper_closed = "Is the {g} closed?"
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomllib

from ....errors import GroundingError

CONFIG_ENV = "LTLREWARD_CONFIG"
CONFIG_NAME = "ltlreward.toml"

# Default weights per role (used only when they are already in the local Hugging Face cache, unless downloads
# are allowed). Small public checkpoints of the classes each backend loads.
DEFAULT_MODELS: dict[str, str] = {
    "grounding_dino": "IDEA-Research/grounding-dino-tiny",
    "owlv2": "google/owlv2-base-patch16-ensemble",
    "sam2": "facebook/sam2.1-hiera-tiny",
    "sam3": "facebook/sam3",
    "vlm": "Qwen/Qwen2.5-VL-3B-Instruct",
}
ROLES = tuple(DEFAULT_MODELS)

# Predicates the VLM answers when asked (question templates; {g}/{a} = the entity's prompt).
DEFAULT_QUESTIONS: dict[str, str] = {
    "gripper_closed": "Is the {g} closed?",
}


@dataclass(frozen=True)
class ModelsConfig:
    """Everything the model grounders read from configuration (one frozen value)."""

    models: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    allow_download: bool = False
    device: str = "auto"
    dtype: str = "auto"
    detector_batch: int = 8
    vlm_batch: int = 8
    cpu_threads: int = 0  # torch intra-op threads on cpu (0 = torch's default)
    cache_dir: str = ""  # "" = no observations cache
    box_threshold: float = 0.3
    detect_every: int = 8
    lost_score: float = 0.0
    vlm_stride: int = 1
    vlm_calibration: str = ""  # path of a calibration JSON ("" = none)
    questions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_QUESTIONS))
    source: str = ""  # the file it was read from ("" = defaults)

    def model(self, role: str) -> str:
        """The configured source (directory or hub id) of `role`."""
        if role not in self.models:
            raise GroundingError(f"no model configured for role {role!r}; roles: {', '.join(sorted(self.models))}")
        return self.models[role]


_SECTIONS: dict[str, dict[str, str]] = {  # toml section → key → ModelsConfig field
    "runtime": {"device": "device", "dtype": "dtype", "detector_batch": "detector_batch", "vlm_batch": "vlm_batch",
                "cpu_threads": "cpu_threads"},
    "cache": {"dir": "cache_dir"},
    "detect": {"box_threshold": "box_threshold", "every": "detect_every", "lost_score": "lost_score"},
    "vlm": {"stride": "vlm_stride", "calibration": "vlm_calibration"},
}


def find_config(explicit: str | Path | None = None) -> Path | None:
    """The config file to read: `explicit`, else $LTLREWARD_CONFIG, else ./ltlreward.toml, else
    ~/.config/ltlreward/ltlreward.toml; None when there is none (defaults apply)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise GroundingError(f"{p}: model config file not found")
        return p
    env = os.environ.get(CONFIG_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise GroundingError(f"{p}: model config file not found (from ${CONFIG_ENV})")
        return p
    for p in (Path.cwd() / CONFIG_NAME, Path.home() / ".config" / "ltlreward" / CONFIG_NAME):
        if p.is_file():
            return p
    return None


def _check_type(path: Path, where: str, value: Any, typ: type) -> Any:
    ok = isinstance(value, typ) and not (typ in (int, float) and isinstance(value, bool))
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise GroundingError(f"{path}: {where} must be a {typ.__name__}, got {value!r}")
    return value


def load_config(path: str | Path | None = None, **overrides: Any) -> ModelsConfig:
    """Read the config (see `find_config`) and apply keyword overrides (ModelsConfig field names; `models`
    merges role by role, `questions` replaces). Relative model directories and calibration paths resolve
    against the file."""
    cfg = ModelsConfig()
    p = find_config(path)
    if p is not None:
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise GroundingError(f"{p}: not a valid TOML config ({e})") from None
        known = {"models", "vlm", *_SECTIONS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GroundingError(f"{p}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {"source": str(p)}
        types = {f.name: f.type for f in fields(ModelsConfig)}
        models = dict(DEFAULT_MODELS)
        for role, src in (data.get("models") or {}).items():
            if role == "allow_download":
                values["allow_download"] = _check_type(p, "models.allow_download", src, bool)
                continue
            src = _check_type(p, f"models.{role}", src, str)
            local = (p.parent / Path(src).expanduser()) if not Path(src).expanduser().is_absolute() else Path(src)
            models[role] = str(local) if (src.startswith((".", "/", "~")) or local.is_dir()) else src
        values["models"] = models
        for section, keys in _SECTIONS.items():
            sec = data.get(section) or {}
            for key, value in sec.items():
                if key == "questions" and section == "vlm":
                    values["questions"] = {str(k): _check_type(p, f"vlm.questions.{k}", v, str)
                                           for k, v in value.items()}
                    continue
                if key not in keys:
                    raise GroundingError(f"{p}: unknown key {section}.{key}; known: {', '.join(sorted(keys))}")
                name = keys[key]
                typ = {"int": int, "float": float, "str": str, "bool": bool}[str(types[name])]
                values[name] = _check_type(p, f"{section}.{key}", value, typ)
        if values.get("vlm_calibration"):
            values["vlm_calibration"] = str((p.parent / Path(values["vlm_calibration"]).expanduser()).resolve())
        cfg = replace(cfg, **values)
    return apply_overrides(cfg, **overrides)


def apply_overrides(cfg: ModelsConfig, **overrides: Any) -> ModelsConfig:
    """`cfg` with keyword overrides applied (None values ignored; `models` merged role by role)."""
    names = {f.name for f in fields(ModelsConfig)}
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in names:
            raise GroundingError(f"unknown model option {key!r}; known: {', '.join(sorted(names - {'source'}))}")
        if key == "models":
            value = {**cfg.models, **dict(value)}
        if key == "questions":  # the full set of asked predicates ({} = ask none)
            value = dict(value)
        values[key] = value
    out = replace(cfg, **values)
    if out.cpu_threads < 0:
        raise GroundingError(f"model option cpu_threads must be >= 0, got {out.cpu_threads!r}")
    for name in ("detector_batch", "vlm_batch", "detect_every", "vlm_stride"):
        if getattr(out, name) < 1:
            raise GroundingError(f"model option {name} must be >= 1, got {getattr(out, name)!r}")
    return out


def parse_model_flags(flags: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`--model role=source` flags → {role: source}; errors name the bad flag and the known roles."""
    out: dict[str, str] = {}
    for flag in flags:
        role, sep, src = flag.partition("=")
        if not sep or not role or not src:
            raise GroundingError(f"--model {flag!r}: expected ROLE=PATH_OR_HUB_ID (roles: {', '.join(ROLES)})")
        if role not in ROLES:
            raise GroundingError(f"--model {flag!r}: unknown role {role!r}; roles: {', '.join(ROLES)}")
        out[role] = src
    return out
