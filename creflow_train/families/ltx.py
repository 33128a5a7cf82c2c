"""LTX-Video family: LTXVideoTransformer3DModel + AutoencoderKLLTXVideo + T5 (diffusers `LTXPipeline` layout).

As in LTXPipeline: latents (B, C, T′, H′, W′) are packed into a token sequence (B, T′/pt·H′/p·W′/p, C·pt·p·p)
for the transformer and unpacked after it; the transformer also takes the text mask, the post-patch grid
size and the RoPE scale (VAE temporal factor / frame rate, spatial factor, spatial factor). The latent space
is normalised with the VAE's latents_mean/std buffers and `scaling_factor`; a VAE with timestep conditioning
decodes at `decode_timestep` (the pipeline's default 0, hence no decode noise).

Image conditioning as LTXImageToVideoPipeline: the first latent frame is the VAE encoding of the image (its
mode: deterministic, so a prompt's K rollouts share it; the pipeline samples the posterior), kept clean in every
forward and in the solver, with per-token timesteps t·(1 − mask) (0 on that frame). LTX's VAE decoder is not
causal, so the decoded first frames of a prompt's rollouts are close to, not equal to, each other. The solver
grid is the pipeline's: sigmas linspace(1, 1/N, N) through the scheduler with the dynamic shift mu of the latent size.
The conditioning latent is normalised with the VAE's scaling_factor, the inverse of `decode` (the pipeline
normalises with 1.0 but denormalises with scaling_factor; they agree for LTX-Video's released scaling_factor 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import TextCond, VideoFamily

if TYPE_CHECKING:
    import torch


def pack_latents(x: torch.Tensor, patch: int = 1, patch_t: int = 1) -> torch.Tensor:
    """(B, C, T, H, W) → (B, T/pt·H/p·W/p, C·pt·p·p) tokens, exactly as LTXPipeline._pack_latents."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // patch_t, patch_t, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 6, 1, 3, 5, 7).flatten(4, 7).flatten(1, 3)


def unpack_latents(
    tokens: torch.Tensor, frames: int, height: int, width: int, patch: int = 1, patch_t: int = 1
) -> torch.Tensor:
    """Inverse of `pack_latents`; frames/height/width are the post-patch grid sizes."""
    b = tokens.shape[0]
    x = tokens.reshape(b, frames, height, width, -1, patch_t, patch, patch)
    return x.permute(0, 4, 1, 5, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(2, 3)


class LtxFamily(VideoFamily):
    """Adapter of a diffusers LTX-Video checkpoint (text-to-video, or image-to-video with `images:`)."""

    name = "ltx"
    part_classes = ("LTXVideoTransformer3DModel", "AutoencoderKLLTXVideo", "T5EncoderModel")
    max_sequence_length = 128
    guidance_scale = 3.0
    replaces_first_frame = True
    decode_timestep = 0.0  # LTXPipeline's default (decode_noise_scale defaults to it: no noise at 0)

    @property
    def temporal(self) -> int:
        return int(self.parts.vae.temporal_compression_ratio)

    @property
    def spatial(self) -> int:
        return int(self.parts.vae.spatial_compression_ratio)

    @property
    def latent_channels(self) -> int:
        return int(self.parts.vae.config.latent_channels)

    @property
    def patch(self) -> tuple[int, int]:
        cfg = self.parts.transformer.config
        return int(cfg.patch_size_t), int(cfg.patch_size)

    def encode_prompts(self, prompts: Sequence[str], max_length: int) -> TextCond:
        """T5 embeddings (P, max_length, D) and the token mask; as LTXPipeline, T5 sees the padded ids unmasked
        and the mask goes to the transformer's cross-attention instead."""
        import torch

        tok = self.parts.tokenizer(list(prompts), padding="max_length", max_length=max_length, truncation=True,
                                   add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        enc = self.parts.text_encoder
        with torch.no_grad():
            h = enc(tok.input_ids.to(enc.device))[0]
        return TextCond(h, tok.attention_mask.to(enc.device).bool())

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Pack (B, C, T′, H′, W′) into tokens, run LTXVideoTransformer3DModel, unpack to the latent shape."""
        t = self.parts.transformer
        pt, p = self.patch
        frames, height, width = x.shape[2] // pt, x.shape[3] // p, x.shape[4] // p
        if cond.image is not None:  # LTXImageToVideoPipeline: clean first frame at t = 0
            x = self.fix_conditioning(x, cond)
            timestep = self._token_timesteps(x, timestep, cond.conditioning_frames)
        out = t(hidden_states=pack_latents(x.to(t.dtype), p, pt), encoder_hidden_states=cond.embeds.to(t.dtype),
                timestep=timestep, encoder_attention_mask=cond.mask, num_frames=frames, height=height, width=width,
                rope_interpolation_scale=(self.temporal / self.frame_rate, self.spatial, self.spatial),
                return_dict=False)[0]
        return unpack_latents(out, frames, height, width, p, pt)

    def _token_timesteps(self, x: torch.Tensor, timestep: torch.Tensor, fixed: int) -> torch.Tensor:
        """(B, tokens) timesteps t·(1 − conditioning mask), the mask packed like the latents (1 on the first
        `fixed` latent frames)."""
        import torch

        pt, p = self.patch
        mask = torch.zeros((1, 1, *x.shape[2:]), dtype=torch.float32, device=x.device)
        mask[:, :, :fixed] = 1.0
        packed = pack_latents(mask, p, pt)[..., 0]  # (1, tokens): a token is conditioning iff its frame is
        return timestep.to(torch.float32)[:, None] * (1 - packed)

    def sigmas(self, steps: int, latent_shape: Sequence[int], shift: float | None = None) -> torch.Tensor:
        """LTXPipeline's grid: sigmas linspace(1, 1/N, N) with mu = calculate_shift(T′·H′·W′), then 0."""
        import numpy as np
        import torch

        sched = self.scheduler(shift)
        c = sched.config
        seq = int(np.prod(latent_shape[1:]))
        slope = (c.max_shift - c.base_shift) / (c.max_image_seq_len - c.base_image_seq_len)
        mu = seq * slope + c.base_shift - slope * c.base_image_seq_len
        sched.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
        return sched.sigmas.to(torch.float32)

    def encode_images(
        self, images: Sequence[Any], num_frames: int, height: int, width: int
    ) -> tuple[torch.Tensor, None]:
        """The images' normalised VAE latents (P, C, 1, H′, W′): (mode − latents_mean)·scaling_factor / latents_std."""
        import torch

        vae = self.parts.vae
        pix = self.preprocess_images(images, height, width)[:, :, None]  # (P, 3, 1, H, W) in [−1, 1]
        with torch.no_grad():
            z = vae.encode(pix.to(vae.device, vae.dtype)).latent_dist.mode().to(torch.float32)
        mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(z.device, torch.float32)
        std = vae.latents_std.view(1, -1, 1, 1, 1).to(z.device, torch.float32)
        return (z - mean) * float(vae.config.scaling_factor) / std, None

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Denormalise (x·std / scaling_factor + mean), decode with the LTX VAE, [-1, 1] → [0, 1] as (B, T, C, H, W)."""
        import torch

        vae = self.parts.vae
        mean = vae.latents_mean.view(1, -1, 1, 1, 1).to(x0.device, torch.float32)
        std = vae.latents_std.view(1, -1, 1, 1, 1).to(x0.device, torch.float32)
        z = x0.to(torch.float32) * std / float(vae.config.scaling_factor) + mean
        temb = None
        if vae.config.timestep_conditioning:
            temb = torch.full((z.shape[0],), self.decode_timestep, device=z.device, dtype=vae.dtype)
        with torch.no_grad():
            video = vae.decode(z.to(vae.dtype), temb, return_dict=False)[0]  # (B, 3, T, H, W) in [-1, 1]
        return ((video.float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4).contiguous()
