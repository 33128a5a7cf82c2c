"""A tiny image-to-video rectified-flow model for the toy world, and its "VAE" (an exact 2×2 pixel unshuffle).

The latent of a video (B, T, 3, H, W) in [0, 1] is pixel_unshuffle(2·x − 1): (B, 12, T, H/2, W/2), so latent
cells cover 2×2 pixels (spatial compression 2, temporal 1) and masks map through
`creflow_train.masks.pixel_to_latent_mask(temporal=1, spatial=2)`. The model predicts the velocity of the
frames after the prompt frame, conditioned on that frame and t; (2+1)-D residual blocks with FiLM.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PATCH = 2


def encode(video: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] → latent (B, 12, T, H/2, W/2) in [−1, 1]."""
    b, t = video.shape[:2]
    z = F.pixel_unshuffle(video.flatten(0, 1) * 2 - 1, PATCH)  # (B·T, 12, h, w)
    return z.unflatten(0, (b, t)).transpose(1, 2).contiguous()


def decode(latent: torch.Tensor) -> torch.Tensor:
    """Latent (B, 12, T, h, w) → video (B, T, 3, H, W) clamped to [0, 1]."""
    b, _, t = latent.shape[:3]
    x = F.pixel_shuffle(latent.transpose(1, 2).flatten(0, 1), PATCH)
    return ((x.unflatten(0, (b, t)) + 1) / 2).clamp(0, 1)


def _time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of t ∈ [0, 1] (B,) → (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
    ang = 1000.0 * t[:, None].float() * freqs[None] / 10.0
    return torch.cat([ang.sin(), ang.cos()], dim=1)


class Block(nn.Module):
    """(2+1)-D residual block: FiLM(t) → spatial 3×3 conv (dilated) → temporal 3 conv."""

    def __init__(self, ch: int, emb: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.film = nn.Linear(emb, 2 * ch)
        self.spatial = nn.Conv3d(ch, ch, (1, 3, 3), padding=(0, dilation, dilation), dilation=(1, dilation, dilation))
        self.temporal = nn.Conv3d(ch, ch, (3, 1, 1), padding=(1, 0, 0))
        nn.init.zeros_(self.temporal.weight)
        nn.init.zeros_(self.temporal.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb)[:, :, None, None, None].chunk(2, dim=1)
        h = self.norm(x) * (1 + scale) + shift
        h = self.spatial(F.silu(h))
        h = self.temporal(F.silu(h))
        return x + h


class Attention(nn.Module):
    """Pre-norm multi-head self-attention among the h·w cells of each frame (moves objects across it)."""

    def __init__(self, ch: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        tok = self.norm(x).permute(0, 2, 3, 4, 1).reshape(b * t, h * w, c)  # (B·T, N, C)
        q, k, v = self.qkv(tok).unflatten(-1, (3, self.heads, c // self.heads)).permute(2, 0, 3, 1, 4)
        out = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))  # (B·T, N, C)
        return x + out.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)


class TinyVideoFlow(nn.Module):
    """Velocity model v(z_t, t | prompt frame) on latents (B, 12, T−1, h, w)."""

    def __init__(self, frames: int = 8, size: int = 16, ch: int = 48, depth: int = 4, emb: int = 64) -> None:
        super().__init__()
        self.frames, self.size = frames, size
        lat = 3 * PATCH * PATCH
        h = size // PATCH
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, h), indexing="ij")
        ft = torch.linspace(-1, 1, frames - 1)
        coords = torch.stack([
            ys[None].expand(frames - 1, h, h), xs[None].expand(frames - 1, h, h),
            ft[:, None, None].expand(frames - 1, h, h),
        ])
        self.register_buffer("coords", coords, persistent=False)  # (3, T−1, h, w)
        self.inp = nn.Conv3d(2 * lat + 3, ch, 1)
        self.emb = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.emb_dim = emb
        self.blocks = nn.ModuleList(Block(ch, emb, d) for d in [1, 2, 1, 2, 1, 2][:depth])
        self.attn = nn.ModuleDict({str(i): Attention(ch) for i in range(0, depth, 2)})
        self.out = nn.Conv3d(ch, lat, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """z_t (B, 12, T−1, h, w), t (B,), cond = latent prompt frame (B, 12, h, w) → velocity like z_t."""
        b, _, tf = z_t.shape[:3]
        c = cond[:, :, None].expand(-1, -1, tf, -1, -1)
        x = torch.cat([z_t, c, self.coords[None, :, :tf].expand(b, -1, -1, -1, -1)], dim=1)
        x = self.inp(x)
        e = self.emb(_time_embedding(t, self.emb_dim))
        for i, blk in enumerate(self.blocks):
            x = blk(x, e)
            if str(i) in self.attn:
                x = self.attn[str(i)](x)
        return self.out(F.silu(x))


@torch.no_grad()
def sample(model: nn.Module, cond: torch.Tensor, noise: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Deterministic Euler solve of dz/dt = v from t = 1 (noise) to t = 0; returns clean latents z0."""
    z = noise
    ts = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        t = ts[i].expand(z.shape[0])
        z = z + (ts[i + 1] - ts[i]) * model(z, t, cond)
    return z


def full_video(cond_latent: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
    """Prompt frame + generated frames → video (B, T, 3, H, W) in [0, 1]."""
    return decode(torch.cat([cond_latent[:, :, None], z0], dim=2))
