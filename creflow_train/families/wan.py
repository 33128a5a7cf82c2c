"""Wan family: WanTransformer3DModel + AutoencoderKLWan + UMT5 (diffusers `WanPipeline` layout).

Latents stay (B, C, T′, H′, W′) for the transformer; prompts are UMT5 embeddings zeroed past each prompt's
length (Wan's transformer takes no text mask); the VAE's latents_mean/std normalise the latent space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import TextCond, VideoFamily

if TYPE_CHECKING:
    import torch


class WanFamily(VideoFamily):
    """Adapter of a diffusers Wan text-to-video checkpoint."""

    name = "wan"
    part_classes = ("WanTransformer3DModel", "AutoencoderKLWan", "UMT5EncoderModel")

    @property
    def temporal(self) -> int:
        return int(self.parts.vae.config.scale_factor_temporal)

    @property
    def spatial(self) -> int:
        return int(self.parts.vae.config.scale_factor_spatial)

    @property
    def latent_channels(self) -> int:
        return int(self.parts.vae.config.z_dim)

    @property
    def patch(self) -> tuple[int, int]:
        pt, ph, _ = self.parts.transformer.config.patch_size
        return int(pt), int(ph)

    def encode_prompts(self, prompts: Sequence[str], max_length: int) -> TextCond:
        """UMT5 embeddings (P, max_length, D) with positions past each prompt's length zeroed (as Wan does)."""
        import torch

        tok = self.parts.tokenizer(list(prompts), padding="max_length", max_length=max_length, truncation=True,
                                   add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        enc = self.parts.text_encoder
        ids, mask = tok.input_ids.to(enc.device), tok.attention_mask.to(enc.device)
        with torch.no_grad():
            h = enc(ids, attention_mask=mask).last_hidden_state
        return TextCond(h * mask[..., None].to(h.dtype), mask.bool())

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """WanTransformer3DModel on (B, C, T′, H′, W′) latents (its native layout; the text mask is unused)."""
        t = self.parts.transformer
        return t(hidden_states=x.to(t.dtype), timestep=timestep, encoder_hidden_states=cond.embeds.to(t.dtype),
                 return_dict=False)[0]

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Undo latents_mean/std, decode with the Wan VAE and map [-1, 1] → [0, 1] as (B, T, C, H, W)."""
        import torch

        vae = self.parts.vae
        mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1).to(x0.device)
        std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1).to(x0.device)
        z = x0.to(torch.float32) * std + mean
        with torch.no_grad():
            video = vae.decode(z.to(vae.dtype), return_dict=False)[0]  # (B, 3, T, H, W) in [-1, 1]
        return ((video.float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4).contiguous()
