"""Pretraining of the toy flow model on a mix of successful and failed demonstrations (rectified flow)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..losses import rf_interpolate, rf_velocity
from .model import TinyVideoFlow, encode
from .world import WorldConfig, demonstrations


@dataclass(frozen=True)
class PretrainConfig:
    """Budget and optimiser of pretraining."""

    steps: int = 2000
    batch: int = 48
    lr: float = 2e-3
    seed: int = 0
    ch: int = 48


def pretrain(world: WorldConfig, cfg: PretrainConfig, log_every: int = 0) -> TinyVideoFlow:
    """Fit v(z_t, t | frame 0) ≈ ε − z0 on fresh demonstrations each step (cosine LR, AdamW, grad clip 1)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = TinyVideoFlow(world.frames, world.size, ch=cfg.ch)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    for step in range(cfg.steps):
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        video, _ = demonstrations(cfg.batch, world, gen)
        z = encode(video)
        cond, z0 = z[:, :, 0], z[:, :, 1:]
        eps = torch.randn(z0.shape, generator=gen)
        t = torch.sigmoid(torch.randn(cfg.batch, generator=gen))  # logit-normal timesteps
        v = model(rf_interpolate(z0, eps, t), t, cond)
        loss = (v - rf_velocity(z0, eps)).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if log_every and step % log_every == 0:
            print(f"pretrain step {step} loss {loss.item():.4f}", flush=True)
    model.eval()
    return model
