"""Group rollouts from a deterministic Euler flow solver (keeping each initial noise) and VAE decoding.

Rectified flow x_t = (1 − t)·x0 + t·ε with v = ε − x0: the solver integrates dx/dt = v from t = 1 (noise ε)
to t = 0 (the clean latent x0) on a fixed grid, so a rollout is a deterministic function of (ε, prompt).
The grid is the checkpoint scheduler's (`VideoFamily.sigmas`: its shift or dynamic shift, as the pipeline sets
it); each step is the scheduler's Euler step x ← x + (σ_{i+1} − σ_i)·v. With `guidance_scale` g > 1 the
velocity is the pipelines' classifier-free guidance v_u + g·(v_c − v_u), v_u from the negative prompt with the
same image conditioning; training regresses the conditional branch v_c alone (see the README). Rows that carry
an image keep their conditioning frame clean (`VideoFamily.fix_conditioning`) before the first and after every
step, as the image-to-video pipelines do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .families import TextCond
    from .policy import LoraPolicy


@dataclass
class Rollouts:
    """One step's samples: K per prompt, with the noise each started from and the decoded frames."""

    x0: torch.Tensor  # (B, C, T′, H′, W′) clean latents (normalised space)
    eps: torch.Tensor  # (B, C, T′, H′, W′) initial noise of each rollout
    cond: TextCond  # (B, L, D) text embeddings, (B, L) token mask and any image conditioning
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


def row_slices(n: int, size: int = 0) -> list[slice]:
    """Consecutive slices of at most `size` rows covering range(n) (size 0: one slice of all n rows)."""
    size = size if size > 0 else max(n, 1)
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def euler_sample(
    policy: LoraPolicy, eps: torch.Tensor, cond: TextCond | torch.Tensor, steps: int, shift: float = 1.0,
    which: str = "default", micro_batch: int = 0, *, grid: torch.Tensor | None = None,
    guidance_scale: float = 1.0, uncond: TextCond | None = None,
) -> torch.Tensor:
    """Integrate policy `which`'s velocity from t = 1 (x = ε) to t = 0 with Euler steps; no gradient.

    `grid` (steps + 1,) replaces `time_grid(steps, shift)`; `guidance_scale` > 1 guides with `uncond` (the
    negative prompt's text, one row or one per row). `micro_batch` > 0 integrates that many rows at a time
    (each row's path does not depend on the others).
    """
    import torch

    from .families import as_cond

    grid = (grid if grid is not None else time_grid(steps, shift)).to(eps.device)
    guided = guidance_scale > 1.0
    if guided and uncond is None:
        raise ValueError(f"guidance_scale {guidance_scale:g} needs the negative prompt's conditioning")
    cond = as_cond(cond)
    out = []
    with torch.no_grad():
        for rows in row_slices(eps.shape[0], micro_batch):
            x, c = eps[rows].clone(), cond[rows]
            u = c.with_text(_rows_of(uncond, len(c))) if guided else None
            x = _fix(policy, x, c)
            for i in range(len(grid) - 1):
                t = grid[i].expand(x.shape[0])
                v = policy.velocity(x, t, c, which)
                if u is not None:
                    v_u = policy.velocity(x, t, u, which)
                    v = v_u + guidance_scale * (v - v_u)
                x = _fix(policy, x + (grid[i + 1] - grid[i]) * v, c)  # dt < 0: from noise towards data
            out.append(x)
    return torch.cat(out) if out else eps.clone()


def _rows_of(text: TextCond, n: int) -> TextCond:
    """`text` as n rows: a single row repeated, or n rows as they are."""
    import torch

    if len(text) == n:
        return text
    if len(text) != 1:
        raise ValueError(f"negative conditioning has {len(text)} rows for {n}")
    return text[torch.zeros(n, dtype=torch.long)]


def _fix(policy: LoraPolicy, x: torch.Tensor, cond: TextCond) -> torch.Tensor:
    """x with the rows' conditioning frame restored (only rows that carry an image need the family)."""
    return x if cond.image is None else policy.family.fix_conditioning(x, cond)


def sample_groups(
    policy: LoraPolicy,
    prompts: Sequence[str],
    prompt_cond: TextCond,
    *,
    group_size: int,
    shape: tuple[int, int, int, int],
    steps: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    which: str = "default",
    rows: tuple[int, int] | None = None,
    micro_batch: int = 0,
    grid: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    uncond: TextCond | None = None,
) -> Rollouts:
    """K = group_size rollouts per prompt from fresh noise (drawn from `generator`), then decode them
    (with the policy's model family), `micro_batch` rows at a time when > 0.

    `grid`, `guidance_scale` and `uncond` (the negative prompt's text, one row) go to `euler_sample`.
    `rows=(lo, hi)` samples only those rows of the batch (a data-parallel rank's whole groups); the noise of the
    whole batch is still drawn, so the generator's stream and every row's noise do not depend on the split.
    """
    import torch

    p = len(prompts)
    lo, hi = rows if rows is not None else (0, p * group_size)
    groups = torch.arange(p).repeat_interleave(group_size)[lo:hi]
    cond = prompt_cond.repeat_interleave(group_size)[lo:hi]
    eps = torch.randn((p * group_size, *shape), generator=generator, dtype=torch.float32)[lo:hi]
    eps = eps.to(cond.embeds.device)
    x0 = euler_sample(policy, eps, cond, steps, shift, which, micro_batch, grid=grid,
                      guidance_scale=guidance_scale, uncond=uncond)
    videos = torch.cat([policy.family.decode(x0[r]) for r in row_slices(len(x0), micro_batch)])
    return Rollouts(x0=x0, eps=eps, cond=cond, groups=groups, prompts=[prompts[int(g)] for g in groups],
                    videos=videos)
