"""Group rollouts from a deterministic Euler flow solver (keeping each initial noise) and VAE decoding.

Rectified flow x_t = (1 − t)·x0 + t·ε with v = ε − x0: the solver integrates dx/dt = v from t = 1 (noise ε)
to t = 0 (the clean latent x0) on a fixed grid, so a rollout is a deterministic function of (ε, prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .policy import LoraPolicy


@dataclass
class Rollouts:
    """One step's samples: K per prompt, with the noise each started from and the decoded frames."""

    x0: torch.Tensor  # (B, C, T′, H′, W′) clean latents (normalised space)
    eps: torch.Tensor  # (B, C, T′, H′, W′) initial noise of each rollout
    cond: torch.Tensor  # (B, L, D) text embeddings
    groups: torch.Tensor  # (B,) long prompt index within the step
    prompts: list[str]  # (B,) the prompt of each rollout
    videos: torch.Tensor  # (B, T, C, H, W) float in [0, 1]


def time_grid(steps: int, shift: float = 1.0) -> torch.Tensor:
    """Solver times from 1 to 0 (steps + 1 points), optionally shifted t' = s·t / (1 + (s − 1)·t)."""
    import torch

    if steps < 1 or shift <= 0:
        raise ValueError(f"need steps >= 1 and shift > 0, got {steps}, {shift}")
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return (shift * t / (1 + (shift - 1) * t)).to(torch.float32)


def latent_shape(vae: Any, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(C, T′, H′, W′) latent shape of a Wan VAE for a (num_frames, height, width) video."""
    from .masks import latent_frames

    st, ss = int(vae.config.scale_factor_temporal), int(vae.config.scale_factor_spatial)
    if height % ss or width % ss:
        raise ValueError(f"height and width must be multiples of the VAE's spatial factor {ss}")
    return int(vae.config.z_dim), latent_frames(num_frames, st), height // ss, width // ss


def encode_prompts(
    tokenizer: Any, text_encoder: Any, prompts: Sequence[str], max_length: int
) -> torch.Tensor:
    """UMT5 embeddings (P, max_length, D) with positions past each prompt's length zeroed (as Wan does)."""
    import torch

    tok = tokenizer(list(prompts), padding="max_length", max_length=max_length, truncation=True,
                    add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    ids, mask = tok.input_ids.to(text_encoder.device), tok.attention_mask.to(text_encoder.device)
    with torch.no_grad():
        h = text_encoder(ids, attention_mask=mask).last_hidden_state
    return h * mask[..., None].to(h.dtype)


def euler_sample(
    policy: LoraPolicy, eps: torch.Tensor, cond: torch.Tensor, steps: int, shift: float = 1.0,
    which: str = "default",
) -> torch.Tensor:
    """Integrate policy `which`'s velocity from t = 1 (x = ε) to t = 0 with Euler steps; no gradient."""
    import torch

    grid = time_grid(steps, shift).to(eps.device)
    x = eps.clone()
    with torch.no_grad():
        for i in range(steps):
            t = grid[i].expand(x.shape[0])
            v = policy.velocity(x, t, cond, which)
            x = x + (grid[i + 1] - grid[i]) * v  # dt < 0: x moves from noise towards data
    return x


def decode_latents(vae: Any, x0: torch.Tensor) -> torch.Tensor:
    """Normalised latents → frames (B, T, C, H, W) in [0, 1] through the Wan VAE (undoing mean/std)."""
    import torch

    cfg = vae.config
    mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
    std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
    z = x0.to(torch.float32) * std.to(x0.device) + mean.to(x0.device)
    with torch.no_grad():
        video = vae.decode(z.to(vae.dtype), return_dict=False)[0]  # (B, 3, T, H, W) in [-1, 1]
    return ((video.float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4).contiguous()


def sample_groups(
    policy: LoraPolicy,
    vae: Any,
    prompts: Sequence[str],
    prompt_embeds: torch.Tensor,
    *,
    group_size: int,
    shape: tuple[int, int, int, int],
    steps: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    which: str = "default",
    rows: tuple[int, int] | None = None,
) -> Rollouts:
    """K = group_size rollouts per prompt from fresh noise (drawn from `generator`), then decode them.

    `rows=(lo, hi)` samples only those rows of the batch (a data-parallel rank's whole groups); the noise of the
    whole batch is still drawn, so the generator's stream and every row's noise do not depend on the split.
    """
    import torch

    p = len(prompts)
    lo, hi = rows if rows is not None else (0, p * group_size)
    groups = torch.arange(p).repeat_interleave(group_size)[lo:hi]
    cond = prompt_embeds.repeat_interleave(group_size, dim=0)[lo:hi]
    eps = torch.randn((p * group_size, *shape), generator=generator, dtype=torch.float32)[lo:hi].to(cond.device)
    x0 = euler_sample(policy, eps, cond, steps, shift, which)
    videos = decode_latents(vae, x0)
    return Rollouts(x0=x0, eps=eps, cond=cond, groups=groups, prompts=[prompts[int(g)] for g in groups],
                    videos=videos)
