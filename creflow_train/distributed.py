"""Multi-process `creflow train` (accelerate launch / torchrun): whole groups per rank, one global update.

Every rank holds the full model and LoRA policy (data parallel). A step's P prompts (groups of K rollouts)
are split into contiguous blocks of P/W whole groups per rank, so a group is never split. Each rank draws the
noise and training times of the *global* batch from the shared, identically seeded generator and keeps its
slice, so the union of the ranks' rollouts is exactly what one process with the same global batch samples.
Rewards are all-gathered and the group advantages (including the batch-global std) are computed on the
global reward vector, exactly as in one process. Each loss term is a mean over a global count N (valid
samples, reflow targets), so rank r's term is rescaled by W·n_r/N before backward; the gradients are then
averaged over ranks (DDP's all-reduce semantics), which makes the averaged gradient equal the single-process
gradient. Rank 0 alone writes checkpoints (followed by a barrier) and logs.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ConfigError, TrainConfig
from .trainer import StepResult, Trainer

if TYPE_CHECKING:
    from pathlib import Path

    import torch


def env_world_size() -> int:
    """WORLD_SIZE set by `accelerate launch` / torchrun (1 when run as a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_process_group(backend: str | None = None) -> tuple[int, int]:
    """Join the default process group from the launcher's env (gloo on CPU, nccl on CUDA); (rank, world)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def shard_rows(prompts_per_step: int, group_size: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [lo, hi) of the global batch that `rank` samples: P/W whole groups of K, in rank order."""
    if prompts_per_step % world:
        raise ConfigError(f"prompts_per_step: {prompts_per_step} groups per step cannot be split into whole "
                          f"groups over {world} ranks (make it a multiple of {world})")
    n_local = prompts_per_step // world * group_size
    return rank * n_local, (rank + 1) * n_local


class DistributedTrainer(Trainer):
    """`Trainer` whose steps are sharded over the ranks of an initialised torch.distributed process group."""

    def __init__(self, cfg: TrainConfig, *, parts: Any = None, reward_model: Any = None) -> None:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("DistributedTrainer needs an initialised process group (see init_process_group)")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.rows = shard_rows(cfg.prompts_per_step, cfg.group_size, self.rank, self.world)
        if cfg.device.startswith("cuda") and ":" not in cfg.device:  # one GPU per local rank
            cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        super().__init__(cfg, parts=parts, reward_model=reward_model)
        # NCCL only moves CUDA tensors; gloo moves CPU tensors
        self.comm_device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    # --------------------------------------------------------------- collectives
    def _gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate equally sized per-rank tensors in rank order (dim 0)."""
        import torch
        import torch.distributed as dist

        x = x.to(self.comm_device).contiguous()
        parts = [torch.empty_like(x) for _ in range(self.world)]
        dist.all_gather(parts, x)
        return torch.cat(parts).cpu()

    def _sum(self, values: list[float]) -> list[float]:
        """Sum a few float64 scalars over ranks."""
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(t)
        return t.cpu().tolist()

    def _average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Average the LoRA gradients over ranks in one flat bucket (what DDP's reducer does)."""
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).to(self.comm_device, torch.float32) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.device, p.dtype)
            offset += n

    # ------------------------------------------------------------------ one step
    def train_step(self) -> StepResult:
        """One global step: local whole-group rollouts, global advantages, rescaled loss, averaged gradient."""
        import torch

        from .advantages import aggregate_group_masks, group_advantages
        from .losses import (
            corrective_reflow_loss,
            corrective_targets,
            credit_nft_loss,
            kl_anchor_loss,
            nft_loss,
            old_policy_decay,
            rf_interpolate,
        )
        from .rollout import Rollouts, decode_latents, euler_sample

        cfg, t0 = self.cfg, time.perf_counter()
        n_prompts, k, w = len(cfg.prompts), cfg.group_size, self.world
        idx = [(self.step * cfg.prompts_per_step + i) % n_prompts for i in range(cfg.prompts_per_step)]
        (lo, hi), n_global = self.rows, cfg.prompts_per_step * k
        n_local = hi - lo
        # the global batch's noise from the shared generator (same draw as one process), then this rank's rows
        eps_all = torch.randn((n_global, *self.shape), generator=self.generator, dtype=torch.float32)
        groups_all = torch.arange(cfg.prompts_per_step).repeat_interleave(k)
        cond_all = self.prompt_embeds[idx].repeat_interleave(k, dim=0)
        cond, groups = cond_all[lo:hi], groups_all[lo:hi]
        eps = eps_all[lo:hi].to(cond.device)
        x0 = euler_sample(self.policy, eps, cond, cfg.num_inference_steps, cfg.shift, cfg.sample_with)
        ro = Rollouts(x0=x0, eps=eps, cond=cond, groups=groups,
                      prompts=[cfg.prompts[idx[int(g)]] for g in groups], videos=decode_latents(self.parts.vae, x0))
        rewards, info = self.reward_model(ro.videos)
        rewards_t = torch.as_tensor(np.asarray(rewards, np.float32))
        satisfied = torch.as_tensor(np.asarray(info.get("all_satisfied", np.zeros(n_local, bool)), bool))
        rewards_all = self._gather(rewards_t)
        satisfied_all = self._gather(satisfied.to(torch.uint8)).to(torch.bool)
        adv = group_advantages(rewards_all, groups_all, std=cfg.adv_std)  # identical on every rank
        result = StepResult(step=self.step + 1, skipped=None, reward_mean=float(rewards_all.mean()),
                            satisfied_frac=float(satisfied_all.float().mean()), n_valid=adv.n_valid)
        t_draw = self._times(n_global)[lo:hi]  # global draws, so the stream matches one process
        t_reflow = self._times(n_global)[lo:hi]
        if not torch.isfinite(rewards_all).all():
            return self._finish(result, "non-finite reward", t0)
        if adv.n_valid == 0:
            return self._finish(result, "no advantage: every group's rewards are equal", t0)
        valid, a_local = adv.valid[lo:hi], adv.advantages[lo:hi]
        masks = aggregate_group_masks(self._latent_masks(info, n_local), groups, ~satisfied)
        sel = torch.nonzero(valid, as_tuple=False).flatten()
        dev = ro.x0.device
        x0, eps, cond = ro.x0[sel.to(dev)], ro.eps[sel.to(dev)], ro.cond[sel.to(dev)]
        m, a, t = (v[sel].to(dev, x0.dtype) for v in (masks, a_local, t_draw))
        reflow = cfg.loss in ("reflow", "creflow") and cfg.reflow_weight > 0
        ct = corrective_targets(x0, m, groups[sel].to(dev), a > 0) if reflow else None
        n_ct_local = len(ct) if ct is not None else 0
        n_valid_all, n_ct_all = self._sum([float(len(sel)), float(n_ct_local)])
        params = self.policy.trainable_parameters()
        terms: dict[str, float] = {}
        loss: Any = None  # stays None on a rank without valid samples (it still joins the all-reduce)
        if len(sel):
            x_t = rf_interpolate(x0, eps, t)
            v_theta = self.policy.velocity(x_t, t, cond, "default")
            v_old = self.policy.velocity(x_t, t, cond, "old")
            common = {"beta": cfg.beta, "clip": cfg.adv_clip, "adaptive": cfg.adaptive}
            if cfg.loss in ("credit-nft", "creflow"):
                main, terms = credit_nft_loss(v_theta, v_old, x0, eps, t, a, m, mask_floor=cfg.mask_floor,
                                              mask_norm=cfg.mask_norm, **common)
            else:
                main, terms = nft_loss(v_theta, v_old, x0, eps, t, a, **common)
            share = w * len(sel) / n_valid_all  # local mean → this rank's share of the global mean, × W
            loss = main * share
            if cfg.kl_weight > 0:
                v_ref = self.policy.velocity(x_t, t, cond, "ref")
                kl, kl_terms = kl_anchor_loss(v_theta, v_ref, cfg.kl_weight)
                loss, terms = loss + kl * share, {**terms, **kl_terms}
            if ct is not None and n_ct_local:
                eps_neg, tr = eps[ct.index], t_reflow[sel].to(dev, x0.dtype)[ct.index]
                v_r = self.policy.velocity(rf_interpolate(ct.x0_star, eps_neg, tr), tr, cond[ct.index])
                rl, r_terms = corrective_reflow_loss(v_r, ct.x0_star, eps_neg, ct.mask, mask_floor=cfg.mask_floor)
                loss = loss + cfg.reflow_weight * rl * (w * n_ct_local / n_ct_all)
                terms = {**terms, **r_terms}
        local = float(loss.detach()) if loss is not None else 0.0
        (global_loss,) = self._sum([local / w])  # the single-process loss value
        terms["loss"] = global_loss
        result.terms = terms
        self.optimizer.zero_grad(set_to_none=True)
        if not np.isfinite(global_loss):  # every rank sees the same sum, so every rank skips together
            return self._finish(result, "non-finite loss", t0)
        if loss is not None:
            loss.backward()
        self._average_gradients(params)
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        terms["grad_norm"] = float(gnorm)
        if not torch.isfinite(gnorm):
            self.optimizer.zero_grad(set_to_none=True)
            return self._finish(result, "non-finite gradient", t0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        decay = old_policy_decay(self.step + 1, flat=cfg.decay_flat, uprate=cfg.decay_uprate, cap=cfg.decay_cap)
        self.policy.sync_old(decay)
        terms["old_decay"] = decay
        return self._finish(result, None, t0)

    # ------------------------------------------------------- rank-0 side effects
    def _finish(self, result: StepResult, skipped: str | None, t0: float) -> StepResult:
        """Advance the step on every rank; only rank 0 writes the JSONL log and tensorboard."""
        if self.rank == 0:
            return super()._finish(result, skipped, t0)
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        result.step, result.skipped, result.seconds = self.step, skipped, time.perf_counter() - t0
        return result

    def _tensorboard(self) -> Any:
        """Tensorboard only on rank 0."""
        return super()._tensorboard() if self.rank == 0 else None

    def save_checkpoint(self) -> Path:
        """Rank 0 writes the checkpoint (the state is identical on every rank); all ranks wait for it."""
        import torch.distributed as dist

        path = self.ckpt_dir / f"checkpoint-{self.step:07d}.pt"
        if self.rank == 0:
            path = super().save_checkpoint()
        dist.barrier()
        return path

    def _truncate_log(self, step: int) -> None:
        """Only rank 0 owns the log."""
        if self.rank == 0:
            super()._truncate_log(step)

    def run(self, *, resume: bool = True, log: Any = None) -> list[StepResult]:
        """Train to cfg.steps on every rank (narration from rank 0 only); all ranks agree on the resume point."""
        import torch.distributed as dist

        dist.barrier()  # no rank looks for checkpoints while another may still be writing one
        if log and self.rank == 0:
            groups = self.cfg.prompts_per_step // self.world
            log(f"data parallel over {self.world} ranks: {groups} group(s) of {self.cfg.group_size} per rank")
        out = super().run(resume=resume, log=log if self.rank == 0 else None)
        dist.barrier()
        return out


def make_trainer(cfg: TrainConfig) -> Trainer:
    """A plain `Trainer` for one process, a `DistributedTrainer` when launched with WORLD_SIZE > 1."""
    if env_world_size() > 1:
        init_process_group()
        return DistributedTrainer(cfg)
    return Trainer(cfg)


def shutdown() -> None:
    """Leave the process group if this process joined one (end of a launched run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
