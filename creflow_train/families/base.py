"""The adapter base of a model family: loaded parts, prompt conditioning and the `VideoFamily` interface.

A family owns everything that differs between pipelines: loading its parts from a diffusers-layout directory
(transformer/ vae/ text_encoder/ tokenizer/), the VAE's compression and latent shape, prompt encoding, the
transformer call (its latent layout, timestep and conditioning inputs) and VAE decoding. The trainer, rollouts
and LoRA policy only see (B, C, T′, H′, W′) latents, `TextCond` prompts and (B, T, C, H, W) frames in [0, 1].
The concrete families (wan.py, ltx.py) import this module; the registry lives in the package's __init__.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

SUBFOLDERS = ("transformer", "vae", "text_encoder", "tokenizer")


@dataclass
class ModelParts:
    """The pieces of a diffusers text-to-video checkpoint the trainer uses."""

    transformer: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any


@dataclass
class TextCond:
    """Prompt conditioning of a batch: embeddings (B, L, D) and the token mask (B, L), True at real tokens."""

    embeds: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.embeds.shape[0])

    def __getitem__(self, rows: Any) -> TextCond:
        """The rows `rows` (slice, index list or index tensor) of both tensors."""
        import torch

        if isinstance(rows, torch.Tensor):
            rows = rows.to(self.embeds.device)
        return TextCond(self.embeds[rows], self.mask[rows])

    def repeat_interleave(self, k: int) -> TextCond:
        """Each row repeated k times in place (a prompt's group of K rollouts)."""
        return TextCond(self.embeds.repeat_interleave(k, dim=0), self.mask.repeat_interleave(k, dim=0))

    def to(self, device: Any) -> TextCond:
        """Both tensors on `device`."""
        return TextCond(self.embeds.to(device), self.mask.to(device))


def as_cond(cond: TextCond | torch.Tensor) -> TextCond:
    """A TextCond as is; a bare (B, L, D) embedding tensor gets an all-true mask."""
    import torch

    if isinstance(cond, TextCond):
        return cond
    return TextCond(cond, torch.ones(cond.shape[:2], dtype=torch.bool, device=cond.device))


class VideoFamily:
    """Adapter of one loaded checkpoint: latent shape, prompt encoding, transformer call and VAE decode."""

    name: ClassVar[str]
    # (diffusers transformer class, diffusers VAE class, transformers text-encoder class) of the checkpoint
    part_classes: ClassVar[tuple[str, str, str]]

    def __init__(self, parts: ModelParts, frame_rate: float = 25.0) -> None:
        """Wrap loaded parts; `frame_rate` is the videos' fps (LTX scales its RoPE time axis by it)."""
        self.parts = parts
        self.frame_rate = float(frame_rate)

    # -------------------------------------------------------------- per family
    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], dtype: Any = None) -> ModelParts:
        """Load transformer/ (in `dtype`), vae/ (float32), text_encoder/ and tokenizer/ from a diffusers-layout
        directory of this family, frozen and in eval mode."""
        import diffusers
        import torch
        import transformers

        root = check_subfolders(model_dir, cls.name)
        dtype = dtype or torch.float32
        t_cls, v_cls, e_cls = cls.part_classes
        transformer = getattr(diffusers, t_cls).from_pretrained(root, subfolder="transformer", torch_dtype=dtype)
        vae = getattr(diffusers, v_cls).from_pretrained(root, subfolder="vae", torch_dtype=torch.float32)
        text_encoder = getattr(transformers, e_cls).from_pretrained(root, subfolder="text_encoder", dtype=dtype)
        tokenizer = transformers.AutoTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
        freeze(transformer, vae, text_encoder)
        return ModelParts(transformer, vae, text_encoder, tokenizer)

    @property
    def temporal(self) -> int:
        """VAE temporal compression: T′ = 1 + (T − 1) // temporal (causal first frame)."""
        raise NotImplementedError

    @property
    def spatial(self) -> int:
        """VAE spatial compression: H′ = H // spatial, W′ = W // spatial."""
        raise NotImplementedError

    @property
    def latent_channels(self) -> int:
        """Channels C of the latents the transformer denoises."""
        raise NotImplementedError

    @property
    def patch(self) -> tuple[int, int]:
        """Transformer patch sizes (temporal, spatial) that T′ and H′, W′ must be multiples of."""
        raise NotImplementedError

    def encode_prompts(self, prompts: Sequence[str], max_length: int) -> TextCond:
        """Text conditioning (P, max_length, D) of the prompts, as the family's pipeline computes it."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Raw transformer output for latents x (B, C, T′, H′, W′) at timestep (B,) = t·1000, same shape as x."""
        raise NotImplementedError

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Normalised clean latents (B, C, T′, H′, W′) → frames (B, T, C, H, W) float in [0, 1] on the CPU."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared
    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T′, H′, W′) for a (num_frames, height, width) video; ConfigError names a size the model can't take."""
        st, ss = self.temporal, self.spatial
        pt, ps = self.patch
        if (num_frames - 1) % st:
            raise ConfigError(f"num_frames: {self.name} needs 1 + {st}·k frames, got {num_frames}")
        for key, size in (("height", height), ("width", width)):
            if size % (ss * ps):
                raise ConfigError(f"{key}: {self.name} needs a multiple of {ss * ps} (VAE {ss} × patch {ps}), "
                                  f"got {size}")
        tl = 1 + (num_frames - 1) // st
        if tl % pt:
            raise ConfigError(f"num_frames: {tl} latent frames are not a multiple of the temporal patch {pt}")
        return self.latent_channels, tl, height // ss, width // ss

    def to(self, device: Any) -> VideoFamily:
        """Move transformer, VAE and text encoder to `device`."""
        for m in (self.parts.transformer, self.parts.vae, self.parts.text_encoder):
            if m is not None:  # the trainer frees the text encoder after encoding (text_encoder_after: free)
                m.to(device)
        return self


def freeze(*modules: Any) -> None:
    """No gradients and eval mode for every module (the base model never trains)."""
    for m in modules:
        m.requires_grad_(False)
        m.eval()


def check_subfolders(model_dir: str | os.PathLike[str], family: str) -> str:
    """The directory as a string, after checking it has transformer/, vae/, text_encoder/ and tokenizer/."""
    root = os.fspath(model_dir)
    for sub in SUBFOLDERS:
        if not os.path.isdir(os.path.join(root, sub)):
            raise ConfigError(f"model: {root} is missing subfolder {sub}/ (expected a diffusers {family} checkpoint)")
    return root
