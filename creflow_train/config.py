"""YAML configuration of `creflow train`: one dataclass, validated so every error names the offending key."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .families import FAMILIES
from .losses import LOSS_KEYS, LOSS_MODES, LossConfig

NULLABLE = ("loss.reflow_close_diff", "shift", "max_sequence_length", "images")  # keys whose YAML value may be null
OPTIONAL_TYPE = {"shift": 1.0, "max_sequence_length": 1}  # nullable keys (default None): a value of this type
MIXED_PRECISION = ("no", "bf16")
WEIGHT_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # `dtype:` → torch dtype name
TEXT_ENCODER_AFTER = ("offload", "free", "keep")
DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass
class TrainConfig:
    """Everything one `creflow train` run needs (paths, sampling, LoRA, losses, optimiser, logging).

    The objective is `loss`, the same `LossConfig` `creflow toy` trains with (YAML: a `loss:` mapping of its
    fields, or just the mode, `loss: creflow`); its defaults are the toy's validated settings. What differs
    from the toy is said where it is set: lr 3e-4 and LoRA r32/α64 (DiffusionNFT's LoRA defaults; the toy
    fine-tunes a 0.17 M-parameter model fully at 1e-4), and sampling with θ_old (both do).
    `failure_reward` is the reward of a rollout ltlreward could not score (0, the lowest in-range reward; see
    the README for DanceGRPO's −1 and why not here); such a rollout is a negative whose mask is the whole video.

    Sampling as the pipelines do: `shift` null reads the checkpoint's scheduler (shift, dynamic shift; a number
    forces a static shift), `max_sequence_length` null is the family's (Wan 512, LTX 128), `guidance_scale` > 1
    guides with `negative_prompt` (default 1: no guidance, DiffusionNFT's default; WanPipeline uses 5, LTX 3).
    `images` (image-to-video): one first-frame image per prompt, or a folder of `<prompt index>.png`.

    Memory and speed: `micro_batch` = N > 0 runs every transformer forward (rollout sampling, VAE decoding and
    the loss pass) N rows at a time, accumulating gradients so the update equals the whole-batch one (0 = all
    rows at once). `mixed_precision: bf16` runs transformer forwards under bf16 autocast while the LoRA
    weights, their gradients and AdamW's state stay float32 ("no" = float32 throughout). `dtype: bf16 | fp16`
    loads the transformer's and text encoder's weights in that dtype (half their memory; the LoRA weights stay
    float32), `gradient_checkpointing` keeps only each block's input for the backward pass, the text encoder is
    offloaded to the CPU (or freed) once the prompts are encoded, and `vae_tiling` / `vae_slicing` are the VAE's
    diffusers switches. Decoding already runs `micro_batch` rows at a time.
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
    shift: float | None = None  # None: the checkpoint scheduler's shift / dynamic shift; s: a static shift s
    max_sequence_length: int | None = None  # text tokens; None: the family's pipeline default (Wan 512, LTX 128)
    guidance_scale: float = 1.0  # > 1: classifier-free guidance when sampling (training: conditional branch)
    negative_prompt: str = ""  # the unconditional branch's prompt (the pipelines' default "")
    images: list[str] | str | None = None  # image-to-video: one first frame per prompt, or a folder of <i>.png
    fps: float = 16.0  # frame rate of the videos: the reward's time base and LTX's RoPE time scale
    grounder: str = "color"
    family: str = "auto"  # auto (from transformer/config.json's _class_name) | wan | ltx
    device: str = "cpu"  # torch device of the transformer, VAE and text encoder ("cuda", "cuda:1", …)
    sample_with: str = "old"  # policy the solver samples with: "old" (θ_old, as DiffusionNFT) or "default" (θ)
    lora_rank: int = 32
    lora_alpha: float = 64.0
    lora_targets: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))
    loss: LossConfig = field(default_factory=LossConfig)
    mask_dilate: int = 1
    failure_reward: float = 0.0  # reward of a rollout that could not be scored (RewardModel's failure_reward)
    decay_flat: int = 0
    decay_uprate: float = 0.001
    decay_cap: float = 0.5
    lr: float = 3e-4
    weight_decay: float = 1e-4
    adam_eps: float = 1e-8  # AdamW ε (DiffusionNFT's train.adam_epsilon)
    grad_clip: float = 1.0
    checkpoint_every: int = 10
    keep_checkpoints: int = 2
    tensorboard: bool = True
    micro_batch: int = 0  # rows per transformer forward/backward (0 = the whole batch at once)
    mixed_precision: str = "no"  # no | bf16 (autocast forwards; LoRA and optimiser stay float32)
    dtype: str = "fp32"  # fp32 | bf16 | fp16: weights of the transformer and text encoder as loaded (VAE: fp32)
    gradient_checkpointing: bool = False  # recompute each transformer block in the backward pass
    text_encoder_after: str = "offload"  # offload (to the CPU) | free | keep, once the prompts are encoded
    vae_tiling: bool = False  # decode in overlapping spatial tiles (diffusers enable_tiling)
    vae_slicing: bool = False  # decode one video of a micro-batch at a time (diffusers enable_slicing)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first key whose value is out of range."""
        if not self.prompts or not all(isinstance(p, str) and p for p in self.prompts):
            raise ConfigError("prompts: need a non-empty list of non-empty strings")
        positive = ("steps", "prompts_per_step", "num_frames", "height", "width", "num_inference_steps",
                    "max_sequence_length", "lora_rank", "checkpoint_every", "keep_checkpoints")
        for key in positive:
            if getattr(self, key) is not None and int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.group_size < 2:
            raise ConfigError(f"group_size: need >= 2 rollouts per prompt, got {self.group_size}")
        if not self.guidance_scale >= 1.0:
            raise ConfigError(f"guidance_scale: must be >= 1 (1 = no guidance), got {self.guidance_scale}")
        if isinstance(self.images, list) and len(self.images) != len(self.prompts):
            raise ConfigError(f"images: {len(self.images)} images for {len(self.prompts)} prompts (need one per "
                              "prompt, or a folder of <prompt index>.png)")
        for key in ("lr", "grad_clip", "lora_alpha", "shift", "fps", "adam_eps"):
            if getattr(self, key) is not None and not float(getattr(self, key)) > 0:
                raise ConfigError(f"{key}: must be > 0, got {getattr(self, key)}")
        non_negative = ("weight_decay", "decay_uprate", "mask_dilate", "decay_flat", "micro_batch")
        for key in non_negative:
            if float(getattr(self, key)) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.decay_cap < 1.0:
            raise ConfigError(f"decay_cap: must be in [0, 1), got {self.decay_cap}")
        choices = {"sample_with": ("default", "old"), "family": ("auto", *FAMILIES.names()),
                   "mixed_precision": MIXED_PRECISION, "dtype": tuple(WEIGHT_DTYPES),
                   "text_encoder_after": TEXT_ENCODER_AFTER}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of: {', '.join(allowed)}")
        if not self.lora_targets:
            raise ConfigError("lora_targets: need at least one module name")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for logging the run's config next to its checkpoints; `loss` is a nested dict)."""
        return asdict(self)


def config_from_dict(data: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> TrainConfig:
    """Build and validate a TrainConfig; unknown or missing keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"config must be a mapping of keys to values, got {type(data).__name__}")
    known = {f.name for f in fields(TrainConfig)}
    moved = sorted(set(data) & set(LOSS_KEYS) - known)
    if moved:
        raise ConfigError(f"{moved[0]}: belongs under loss: (e.g. loss: {{mode: creflow, {moved[0]}: …}})")
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    missing = [k for k in ("model", "spec", "prompts", "output_dir") if k not in data]
    if missing:
        raise ConfigError(f"{missing[0]}: required key is missing")
    defaults = TrainConfig(model="", spec="", prompts=["x"], output_dir="")
    values = {key: _coerce(key, raw, getattr(defaults, key)) for key, raw in data.items() if key != "loss"}
    if "loss" in data:
        values["loss"] = _loss_config(data["loss"])
    if base_dir is not None:  # relative paths are relative to the config file
        for key in ("model", "spec", "output_dir"):
            values[key] = _resolve(values[key], base_dir)
        if isinstance(values.get("images"), str):
            values["images"] = _resolve(values["images"], base_dir)
        elif isinstance(values.get("images"), list):
            values["images"] = [_resolve(v, base_dir) for v in values["images"]]
    return TrainConfig(**values).validate()


def _resolve(path: str, base_dir: str | os.PathLike[str]) -> str:
    """`path` (~ expanded) relative to `base_dir` unless absolute."""
    p = Path(path).expanduser()
    return os.path.normpath(p if p.is_absolute() else Path(base_dir) / p)


def _coerce(key: str, raw: Any, ref: Any) -> Any:
    """`raw` as the type of the default `ref` (lists of strings, bool, int, float, str; None where allowed)."""
    if key in ("prompts", "lora_targets"):
        if isinstance(raw, str) or not isinstance(raw, list):
            raise ConfigError(f"{key}: must be a list of strings, got {raw!r}")
        return [str(x) for x in raw]
    if raw is None and key in NULLABLE:
        return None
    if key == "images":
        if isinstance(raw, list) and all(isinstance(x, str) and x for x in raw):
            return list(raw)
        if isinstance(raw, str) and raw:
            return raw
        raise ConfigError(f"images: must be a folder or a list of image paths (one per prompt), got {raw!r}")
    ref = OPTIONAL_TYPE.get(key, ref)
    if isinstance(ref, bool):
        if not isinstance(raw, bool):
            raise ConfigError(f"{key}: must be true or false, got {raw!r}")
        return raw
    if isinstance(ref, int):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ConfigError(f"{key}: must be an integer, got {raw!r}")
        return raw
    if isinstance(ref, float):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ConfigError(f"{key}: must be a number, got {raw!r}")
        if not math.isfinite(raw):  # YAML's .nan / .inf would slip through every range check below
            raise ConfigError(f"{key}: must be a finite number, got {raw!r}")
        return float(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{key}: must be a string, got {raw!r}")
    return raw


def _loss_config(raw: Any) -> LossConfig:
    """The `loss:` entry: a mode name or a mapping of LossConfig fields; errors name `loss.<key>`."""
    if isinstance(raw, str):
        raw = {"mode": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"loss: must be a mode ({', '.join(LOSS_MODES)}) or a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(LOSS_KEYS))
    if unknown:
        raise ConfigError(f"loss.{unknown[0]}: unknown key (known: {', '.join(LOSS_KEYS)})")
    ref = LossConfig()
    values = {k: _coerce(f"loss.{k}", v, getattr(ref, k)) for k, v in raw.items()}
    try:
        return LossConfig(**values)
    except ValueError as e:
        raise ConfigError(f"loss.{e}") from None


def load_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Read a YAML config file; relative paths inside it resolve against the file's directory."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    return config_from_dict(data or {}, base_dir=p.resolve().parent)
