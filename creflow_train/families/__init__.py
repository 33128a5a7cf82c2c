"""Model families the trainer drives: one adapter per diffusers video pipeline, found through one registry.

    FAMILIES.get("wan")            # imports creflow_train.families.wan on first use, returns WanFamily
    load_family("build/tiny_ltx")  # detects the family from transformer/config.json's `_class_name`

`base` holds the adapter interface (`VideoFamily`, `ModelParts`, `TextCond`); `wan` and `ltx` the adapters,
registered lazily below ("module:attr" strings, so neither is imported until asked for). A new family is a
`VideoFamily` subclass in its own module plus one `FAMILIES.register` line here. Each adapter's
`part_classes[0]` (its diffusers transformer class) is what detection matches, so that fact lives once.
Within a family the checkpoint's layout (Wan2.1-I2V, Wan2.2-TI2V, two experts) is read by the adapter itself
from the transformer config and model_index.json (see wan.py); LTX-Video checkpoints do both text and image.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ltlreward import Registry

from ..errors import ConfigError
from .base import SUBFOLDERS, ModelParts, TextCond, VideoFamily, as_cond, check_subfolders, freeze

FAMILIES: Registry[type[VideoFamily]] = Registry("model family", error=ConfigError)
FAMILIES.register("wan", "creflow_train.families.wan:WanFamily",
                  meta={"doc": "Wan 2.x: WanTransformer3DModel + AutoencoderKLWan + UMT5"})
FAMILIES.register("ltx", "creflow_train.families.ltx:LtxFamily",
                  meta={"doc": "LTX-Video: LTXVideoTransformer3DModel + AutoencoderKLLTXVideo + T5"})


def family_class(name: str) -> type[VideoFamily]:
    """The adapter class of family `name`; ConfigError ("family: …") lists the registered ones."""
    try:
        return FAMILIES.get(name)
    except ConfigError as e:
        raise ConfigError(f"family: {e}") from None


def transformer_classes() -> dict[str, str]:
    """Diffusers transformer class name → family name, from each registered adapter's `part_classes`."""
    return {family_class(name).part_classes[0]: name for name in FAMILIES.names()}


def _supported() -> str:
    """'Class (family), …' for error messages."""
    return ", ".join(f"{c} ({f})" for c, f in transformer_classes().items())


def detect_family(model_dir: str | os.PathLike[str]) -> str:
    """Family name of a diffusers directory from transformer/config.json's `_class_name`."""
    root = os.fspath(model_dir)
    path = os.path.join(root, "transformer", "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            cls = json.load(f).get("_class_name")
    except FileNotFoundError as e:
        raise ConfigError(f"model: {root} has no transformer/config.json (expected a diffusers video "
                          f"checkpoint with {', '.join(s + '/' for s in SUBFOLDERS)})") from e
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"model: {path} is unreadable: {e}") from e
    known = transformer_classes()
    if cls not in known:
        raise ConfigError(f"model: {root} holds a {cls!r} transformer, which no family supports "
                          f"(supported: {_supported()}; or set family:)")
    return known[cls]


def family_of_parts(parts: ModelParts) -> str:
    """Family name of already loaded parts, from the transformer's class."""
    cls = type(parts.transformer).__name__
    known = transformer_classes()
    if cls not in known:
        raise ConfigError(f"family: cannot tell the family of a {cls} transformer (supported: {_supported()})")
    return known[cls]


def load_family(
    model_dir: str | os.PathLike[str], family: str = "auto", *, frame_rate: float = 25.0, dtype: Any = None,
    parts: ModelParts | None = None,
) -> VideoFamily:
    """Load (or wrap already loaded `parts`) as the adapter of `family`; "auto" detects it."""
    if family == "auto":
        family = family_of_parts(parts) if parts is not None else detect_family(model_dir)
    cls = family_class(family)
    return cls(parts if parts is not None else cls.load(model_dir, dtype), frame_rate=frame_rate)


__all__ = [
    "FAMILIES", "SUBFOLDERS", "ModelParts", "TextCond", "VideoFamily", "as_cond", "check_subfolders", "detect_family",
    "family_class", "family_of_parts", "freeze", "load_family", "transformer_classes",
]
