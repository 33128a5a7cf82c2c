"""What sampling needs besides the policy, computed once per run: prompt (and image) conditioning, the negative
prompt, the solver's time grid and the guidance scale — shared by `creflow train` and `creflow sample`.

`images:` (image-to-video) is a list of one first-frame image per prompt, or a folder holding `<i>.png` for the
prompt at index i (0-based, the order of `prompts:`). Text uses `max_sequence_length` tokens (default: the
family's pipeline default, Wan 512, LTX 128); the grid is `VideoFamily.sigmas` (the checkpoint's scheduler
shift or dynamic shift unless `shift:` overrides it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    import torch

    from .config import TrainConfig
    from .families import TextCond, VideoFamily


@dataclass
class Sampling:
    """A run's sampling setup."""

    prompt_cond: TextCond  # one row per prompt (text, plus image conditioning for image-to-video)
    uncond: TextCond | None  # (1, L, D) negative-prompt text, None without guidance
    grid: torch.Tensor  # (steps + 1,) float32 solver times from 1 to 0
    guidance_scale: float

    @property
    def conditioning_frames(self) -> int:
        """Latent frames the image fixes (1 for image-to-video, else 0): no mask or loss term touches them."""
        return self.prompt_cond.conditioning_frames


def image_paths(images: list[str] | str, prompts: list[str]) -> list[Path]:
    """The first-frame image of each prompt; ConfigError names a missing file and its prompt."""
    if isinstance(images, str):
        folder = Path(images)
        if not folder.is_dir():
            raise ConfigError(f"images: {folder} is not a folder (give a folder of <prompt index>.png or a list)")
        paths = [folder / f"{i}.png" for i in range(len(prompts))]
    else:
        paths = [Path(p) for p in images]
    if len(paths) != len(prompts):
        raise ConfigError(f"images: {len(paths)} images for {len(prompts)} prompts")
    for i, p in enumerate(paths):
        if not p.is_file():
            raise ConfigError(f"images: {p} (the first frame of prompt {i}, {prompts[i]!r}) does not exist")
    return paths


def load_images(images: list[str] | str, prompts: list[str]) -> list[Any]:
    """One RGB PIL image per prompt (see `image_paths`); an unreadable file is a ConfigError naming it."""
    from PIL import Image, UnidentifiedImageError

    out = []
    for p in image_paths(images, prompts):
        try:
            with Image.open(p) as im:
                out.append(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as e:
            raise ConfigError(f"images: {p} is not a readable image: {e}") from e
    return out


def prepare_sampling(family: VideoFamily, cfg: TrainConfig, latent_shape: tuple[int, ...]) -> Sampling:
    """Encode the prompts (and images, and the negative prompt when guiding) and build the solver grid."""
    length = cfg.max_sequence_length or family.max_sequence_length
    cond = family.encode_prompts(cfg.prompts, length)
    if cfg.images is not None:
        cond = family.with_images(cond, load_images(cfg.images, cfg.prompts), cfg.num_frames, cfg.height,
                                  cfg.width)
    elif family.requires_images():
        raise ConfigError(f"images: the checkpoint {cfg.model} is image-to-video only; give one first frame "
                          "per prompt (a list, or a folder of <prompt index>.png)")
    uncond = family.encode_prompts([cfg.negative_prompt], length) if cfg.guidance_scale > 1 else None
    grid = family.sigmas(cfg.num_inference_steps, latent_shape, cfg.shift)
    return Sampling(cond, uncond, grid, float(cfg.guidance_scale))
