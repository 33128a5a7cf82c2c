"""YAML configuration of `creflow train`: one dataclass, validated so every error names the offending key."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .families import FAMILIES

LOSS_MODES = ("nft", "credit-nft", "reflow", "creflow")
MIXED_PRECISION = ("no", "bf16")
DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass
class TrainConfig:
    """Everything one `creflow train` run needs (paths, sampling, LoRA, losses, optimiser, logging).

    Memory and speed: `micro_batch` = N > 0 runs every transformer forward (rollout sampling, VAE decoding and
    the loss pass) N rows at a time, accumulating gradients so the update equals the whole-batch one (0 = all
    rows at once). `mixed_precision: bf16` runs transformer forwards under bf16 autocast while the LoRA
    weights, their gradients and AdamW's state stay float32 ("no" = float32 throughout).
    """

    model: str  # diffusers directory: transformer/, vae/, text_encoder/, tokenizer/ (Wan or LTX-Video)
    spec: str  # task spec (.ltl) scored by ltlreward.RewardModel
    prompts: list[str]
    output_dir: str
    steps: int = 100
    seed: int = 0
    prompts_per_step: int = 1
    group_size: int = 8  # K rollouts per prompt
    num_frames: int = 17
    height: int = 256
    width: int = 256
    num_inference_steps: int = 10
    shift: float = 1.0  # time shift of the solver grid: t' = s·t / (1 + (s − 1)·t)
    max_sequence_length: int = 64
    fps: float = 16.0  # frame rate of the videos: the reward's time base and LTX's RoPE time scale
    grounder: str = "color"
    family: str = "auto"  # auto (from transformer/config.json's _class_name) | wan | ltx
    device: str = "cpu"  # torch device of the transformer, VAE and text encoder ("cuda", "cuda:1", …)
    sample_with: str = "default"  # policy the solver samples with: "default" (θ) or "old" (θ_old)
    lora_rank: int = 32
    lora_alpha: float = 64.0
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    loss: str = "creflow"  # nft | credit-nft | reflow | creflow
    beta: float = 1.0
    adv_clip: float = 5.0
    adv_std: str = "global"
    adaptive: bool = True
    mask_floor: float = 0.0
    mask_norm: str = "mask"
    mask_dilate: int = 1
    reflow_weight: float = 1.0
    kl_weight: float = 1e-4
    anchor_outside: float = 1.0  # credit-nft/creflow: weight of the anchor to the reference outside the masks
    decay_flat: int = 0
    decay_uprate: float = 0.001
    decay_cap: float = 0.5
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    tensorboard: bool = True
    micro_batch: int = 0  # rows per transformer forward/backward (0 = the whole batch at once)
    mixed_precision: str = "no"  # no | bf16 (autocast forwards; LoRA and optimiser stay float32)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first key whose value is out of range."""
        if not self.prompts or not all(isinstance(p, str) and p for p in self.prompts):
            raise ConfigError("prompts: need a non-empty list of non-empty strings")
        positive = ("steps", "prompts_per_step", "num_frames", "height", "width", "num_inference_steps",
                    "max_sequence_length", "lora_rank", "checkpoint_every", "keep_checkpoints")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.group_size < 2:
            raise ConfigError(f"group_size: need >= 2 rollouts per prompt, got {self.group_size}")
        for key in ("lr", "beta", "adv_clip", "grad_clip", "lora_alpha", "shift", "fps"):
            if not float(getattr(self, key)) > 0:
                raise ConfigError(f"{key}: must be > 0, got {getattr(self, key)}")
        non_negative = ("kl_weight", "anchor_outside", "reflow_weight", "weight_decay", "decay_uprate", "mask_dilate",
                        "decay_flat", "micro_batch")
        for key in non_negative:
            if float(getattr(self, key)) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.mask_floor <= 1.0:
            raise ConfigError(f"mask_floor: must be in [0, 1], got {self.mask_floor}")
        if not 0.0 <= self.decay_cap < 1.0:
            raise ConfigError(f"decay_cap: must be in [0, 1), got {self.decay_cap}")
        choices = {"loss": LOSS_MODES, "mask_norm": ("mask", "numel"), "adv_std": ("global", "group"),
                   "sample_with": ("default", "old"), "family": ("auto", *FAMILIES.names()),
                   "mixed_precision": MIXED_PRECISION}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of: {', '.join(allowed)}")
        if not self.lora_targets:
            raise ConfigError("lora_targets: need at least one module name")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for logging the run's config next to its checkpoints)."""
        return asdict(self)


def config_from_dict(data: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> TrainConfig:
    """Build and validate a TrainConfig; unknown or missing keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping of keys to values, got {type(data).__name__}")
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (known: {', '.join(known)})")
    missing = [k for k in ("model", "spec", "prompts", "output_dir") if k not in data]
    if missing:
        raise ConfigError(f"{missing[0]}: required key is missing")
    defaults = TrainConfig(model="", spec="", prompts=["x"], output_dir="")
    values: dict[str, Any] = {}
    for key, raw in data.items():
        ref = getattr(defaults, key)
        if key == "prompts" or key == "lora_targets":
            if isinstance(raw, str) or not isinstance(raw, list):
                raise ConfigError(f"{key}: must be a list of strings, got {raw!r}")
            values[key] = [str(x) for x in raw]
        elif isinstance(ref, bool):
            if not isinstance(raw, bool):
                raise ConfigError(f"{key}: must be true or false, got {raw!r}")
            values[key] = raw
        elif isinstance(ref, int):
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ConfigError(f"{key}: must be an integer, got {raw!r}")
            values[key] = raw
        elif isinstance(ref, float):
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ConfigError(f"{key}: must be a number, got {raw!r}")
            values[key] = float(raw)
        else:
            if not isinstance(raw, str):
                raise ConfigError(f"{key}: must be a string, got {raw!r}")
            values[key] = raw
    if base_dir is not None:  # relative paths are relative to the config file
        for key in ("model", "spec", "output_dir"):
            p = Path(values[key]).expanduser()
            values[key] = os.path.normpath(p if p.is_absolute() else Path(base_dir) / p)
    return TrainConfig(**values).validate()


def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Read a YAML config file; relative paths inside it resolve against the file's directory."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    return config_from_dict(data or {}, base_dir=p.resolve().parent)
