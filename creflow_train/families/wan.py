"""Wan family: WanTransformer3DModel + AutoencoderKLWan + UMT5 (diffusers `WanPipeline` / `WanImageToVideoPipeline`).

Latents stay (B, C, T′, H′, W′) for the transformer; prompts are UMT5 embeddings zeroed past each prompt's
length (Wan's transformer takes no text mask); the VAE's latents_mean/std normalise the latent space. Three
layouts are told apart from the checkpoint, each conditioned as its diffusers pipeline does:

- text-to-video (Wan2.1-T2V, Wan2.2-A14B-T2V): the latents alone, one timestep per row;
- `i2v` (Wan2.1-I2V, transformer in_channels = 2z + 4): the latents concatenated with a 4-channel first-frame
  mask and the VAE encoding of [image, 0, …, 0], plus CLIP image tokens (`encoder_hidden_states_image`);
- `ti2v` (Wan2.2-TI2V-5B, model_index.json `expand_timesteps`): per-token timesteps; with an image the first
  latent frame is the encoded image at t = 0 in every forward and in the solver.

Two experts (Wan2.2-A14B: transformer_2/ and model_index.json `boundary_ratio`): rows whose timestep is at or
above boundary_ratio·1000 go to `transformer` (high noise), the others to `transformer_2`, as the pipelines do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import TextCond, VideoFamily

if TYPE_CHECKING:
    import torch


class WanFamily(VideoFamily):
    """Adapter of a diffusers Wan checkpoint (text-to-video, Wan2.1-I2V or Wan2.2-TI2V layout)."""

    name = "wan"
    part_classes = ("WanTransformer3DModel", "AutoencoderKLWan", "UMT5EncoderModel")
    max_sequence_length = 512
    guidance_scale = 5.0

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

    @property
    def layout(self) -> str:
        """"i2v" (in_channels = 2z + 4), "ti2v" (expand_timesteps) or "t2v", read from the checkpoint."""
        if int(self.parts.transformer.config.in_channels) == 2 * self.latent_channels + 4:
            return "i2v"
        return "ti2v" if (self.parts.pipeline_config or {}).get("expand_timesteps") else "t2v"

    @property
    def replaces_first_frame(self) -> bool:  # type: ignore[override]
        return self.layout == "ti2v"

    @property
    def boundary(self) -> float | None:
        """Timestep (t·1000 units) below which transformer_2 denoises, or None with one expert."""
        ratio = (self.parts.pipeline_config or {}).get("boundary_ratio")
        if ratio is None or self.parts.transformer_2 is None:
            return None
        return float(ratio) * int((self.parts.scheduler_config or {}).get("num_train_timesteps", 1000))

    def requires_images(self) -> bool:
        return self.layout == "i2v"

    def encode_prompts(self, prompts: Sequence[str], max_length: int) -> TextCond:
        """UMT5 embeddings (P, max_length, D) with positions past each prompt's length zeroed, of the prompts
        cleaned as the Wan pipelines clean them (ftfy, HTML unescape, whitespace)."""
        import torch
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        tok = self.parts.tokenizer([prompt_clean(p) for p in prompts], padding="max_length", max_length=max_length,
                                   truncation=True, add_special_tokens=True, return_attention_mask=True,
                                   return_tensors="pt")
        enc = self.parts.text_encoder
        ids, mask = tok.input_ids.to(enc.device), tok.attention_mask.to(enc.device)
        with torch.no_grad():
            h = enc(ids, attention_mask=mask).last_hidden_state
        return TextCond(h * mask[..., None].to(h.dtype), mask.bool())

    def encode_images(
        self, images: Sequence[Any], num_frames: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As WanImageToVideoPipeline.prepare_latents / encode_image: `ti2v` → the image's normalised latent
        (P, z, 1, H′, W′); `i2v` → [first-frame mask (4 channels), latent of [image, 0 × (T − 1)]]
        (P, 4 + z, T′, H′, W′) and the CLIP vision tokens (second-to-last hidden state)."""
        import torch

        layout = self.layout
        if layout == "t2v":
            raise ConfigError("images: this Wan checkpoint is text-to-video (transformer in_channels "
                              f"{self.parts.transformer.config.in_channels}, no expand_timesteps in model_index.json)")
        pix = self.preprocess_images(images, height, width)[:, :, None]  # (P, 3, 1, H, W)
        if layout == "i2v":
            pix = torch.cat([pix, pix.new_zeros(pix.shape[0], 3, num_frames - 1, height, width)], dim=2)
        z = self._normalise(self._encode(pix))
        if layout == "ti2v":
            return z, None
        mask = torch.zeros((z.shape[0], self.temporal, *z.shape[2:]), dtype=z.dtype, device=z.device)
        mask[:, :, 0] = 1.0  # the pipeline's first-frame mask, folded into `temporal` channels per latent frame
        return torch.cat([mask, z], dim=1), self._clip(images)

    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        """VAE mode (the pipeline's sample_mode="argmax") of a (P, 3, T, H, W) video in [−1, 1], float32."""
        import torch

        vae = self.parts.vae
        with torch.no_grad():
            return vae.encode(video.to(vae.device, vae.dtype)).latent_dist.mode().to(torch.float32)

    def _normalise(self, z: torch.Tensor) -> torch.Tensor:
        """(z − latents_mean) · (1 / latents_std), as the pipelines normalise."""
        import torch

        cfg = self.parts.vae.config
        mean = torch.tensor(cfg.latents_mean, dtype=z.dtype).view(1, -1, 1, 1, 1).to(z.device)
        inv_std = 1.0 / torch.tensor(cfg.latents_std, dtype=z.dtype).view(1, -1, 1, 1, 1).to(z.device)
        return (z - mean) * inv_std

    def _clip(self, images: Sequence[Any]) -> torch.Tensor | None:
        """CLIP vision tokens (P, L, D) of the images when the transformer takes them (image_dim set)."""
        import torch

        if self.parts.transformer.config.image_dim is None:
            return None
        enc, proc = self.parts.image_encoder, self.parts.image_processor
        if enc is None or proc is None:
            raise ConfigError("model: this Wan2.1-I2V checkpoint needs image_encoder/ and image_processor/")
        px = proc(images=list(images), return_tensors="pt").to(enc.device)
        with torch.no_grad():
            return enc(**px, output_hidden_states=True).hidden_states[-2].to(torch.float32)

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """The transformer on (B, C, T′, H′, W′) latents at timestep (B,) = t·1000, conditioned by the layout;
        with two experts each row goes to the expert of its timestep."""
        import torch

        boundary = self.boundary
        if boundary is None:
            return self._call(self.parts.transformer, x, timestep, cond)
        high = timestep >= boundary
        if bool(high.all()) or not bool(high.any()):
            expert = self.parts.transformer if bool(high.all()) else self.parts.transformer_2
            return self._call(expert, x, timestep, cond)
        hi, lo = torch.nonzero(high).flatten(), torch.nonzero(~high).flatten()
        out_hi = self._call(self.parts.transformer, x[hi], timestep[hi], cond[hi])
        out_lo = self._call(self.parts.transformer_2, x[lo], timestep[lo], cond[lo])
        out = out_hi.new_empty((x.shape[0], *out_hi.shape[1:]))
        return out.index_copy(0, hi, out_hi).index_copy(0, lo, out_lo)

    def _call(self, t: Any, x: torch.Tensor, timestep: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """One expert's forward with the layout's inputs (see the module docstring)."""
        layout = self.layout
        if layout == "i2v":
            if cond.image is None:
                raise ValueError("a Wan2.1-I2V transformer needs image conditioning (config images:)")
            x = _cat_channels(x, cond.image.to(x.dtype))
        elif layout == "ti2v":
            x = self.fix_conditioning(x, cond)
            timestep = self._token_timesteps(x, timestep, cond.conditioning_frames)
        image_embeds = cond.image_embeds.to(t.dtype) if cond.image_embeds is not None else None
        return t(hidden_states=x.to(t.dtype), timestep=timestep, encoder_hidden_states=cond.embeds.to(t.dtype),
                 encoder_hidden_states_image=image_embeds, return_dict=False)[0]

    def _token_timesteps(self, x: torch.Tensor, timestep: torch.Tensor, fixed: int) -> torch.Tensor:
        """(B, T′·H′/p·W′/p) per-token timesteps, 0 on the first `fixed` latent frames (WanPipeline's
        expand_timesteps: mask[:, ::p, ::p] · t)."""
        import torch

        _, ph, pw = self.parts.transformer.config.patch_size
        mask = torch.ones(x.shape[2], x.shape[3] // ph, x.shape[4] // pw, dtype=torch.float32, device=x.device)
        mask[:fixed] = 0
        return mask.flatten()[None] * timestep.to(torch.float32)[:, None]

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


def _cat_channels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Concatenate along the channel axis (dim 1)."""
    import torch

    return torch.cat([a, b], dim=1)
