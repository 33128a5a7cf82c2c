"""Multi-process `creflow train` (accelerate launch / torchrun): whole groups per rank, one global update.

Every rank holds the full model and LoRA policy (data parallel). A step's P prompts (groups of K rollouts)
are split into contiguous blocks of P/W whole groups per rank, so a group is never split. Each rank draws the
noise and training times of the *global* batch from the shared, identically seeded generator and keeps its
slice, so the union of the ranks' rollouts is exactly what one process with the same global batch samples.
Rewards are all-gathered and the group advantages (including the batch-global std) are computed on the
global reward vector, exactly as in one process. `creflow_objective` divides each rank's rows by the global
row counts N (policy rows, reflow rows), and each rank backpropagates W × its loss; averaging the gradients
over ranks (DDP's all-reduce semantics) then gives exactly the single-process gradient, and the summed
losses and diagnostics are the single process's. Rank 0 alone writes checkpoints (followed by a barrier)
and logs.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

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
        if cfg.device.startswith("cuda") and ":" not in cfg.device:  # one GPU per local rank
            cfg.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        super().__init__(cfg, parts=parts, reward_model=reward_model)
        # NCCL only moves CUDA tensors; gloo moves CPU tensors
        self.comm_device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    # --------------------------------------------------------------- collectives
    def _rows(self) -> tuple[int, int]:
        return shard_rows(self.cfg.prompts_per_step, self.cfg.group_size, self.rank, self.world)

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

    def _sum_terms(self, terms: dict[str, float]) -> dict[str, float]:
        """Sum the ranks' additive diagnostics key by key (a rank without rows for a term contributes 0)."""
        import torch.distributed as dist

        every: list[dict[str, float]] = [{} for _ in range(self.world)]
        dist.all_gather_object(every, terms)
        return {k: sum(t.get(k, 0.0) for t in every) for k in sorted(set().union(*every))}

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

    def run(self, *, resume: bool = True, log: Any = None, warn: Any = None) -> list[StepResult]:
        """Train to cfg.steps on every rank (narration from rank 0 only); all ranks agree on the resume point."""
        import torch.distributed as dist

        dist.barrier()  # no rank looks for checkpoints while another may still be writing one
        if log and self.rank == 0:
            groups = self.cfg.prompts_per_step // self.world
            log(f"data parallel over {self.world} ranks: {groups} group(s) of {self.cfg.group_size} per rank")
        quiet = lambda msg: None  # noqa: E731 - ranks other than 0 keep checkpoint warnings to themselves
        out = super().run(resume=resume, log=log if self.rank == 0 else None, warn=warn if self.rank == 0 else quiet)
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
