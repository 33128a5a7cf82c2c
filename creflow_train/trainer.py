"""The CreFlow trainer: rollouts → ltlreward scores → advantages + latent masks → `creflow_objective` → AdamW.

One `train_step` samples K rollouts for each of the step's prompts with the deterministic Euler solver (from
θ_old by default, as DiffusionNFT), decodes and scores them in process with `ltlreward.RewardModel`, turns
the violation masks into latent masks (a violating rollout with an empty mask gets its witness frames' whole
extent), and minimises `losses.creflow_objective` under `cfg.loss` — the objective `creflow toy` trains
with — on the LoRA parameters; then θ_old follows θ by EMA. The NFT/KL/anchor rows are built from fresh
forward-process noise drawn from the trainer's generator (DiffusionNFT; resume stays exact), the reflow rows
from each negative's own rollout noise (reflow corrects the sampler's coupling). Steps with a non-finite loss
or gradient are skipped and reported. With `micro_batch` the forwards run a few rows at a time and the loss
pass accumulates gradients chunk by chunk (the objective divides every chunk by the whole batch's row count),
which gives the whole-batch gradient.
Sampling follows the model's pipeline (creflow_train.conditioning): the checkpoint scheduler's shifted grid, the
family's text length, classifier-free guidance with a negative prompt (the loss trains the conditional branch),
and image-to-video conditioning; training times are drawn from the same grid, and with an image the
conditioning latent frame is zeroed in every mask and sliced out of every loss tensor (`skip_frames`).
Checkpoints hold the LoRA tensors, optimiser, step and every RNG state, so resuming is exact. The model
family (Wan or LTX-Video, see creflow_train.families) is detected from the model directory; the loop is family-agnostic.
"""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import WEIGHT_DTYPES, TrainConfig
from .errors import CheckpointError

if TYPE_CHECKING:
    import torch

    from .advantages import Advantages
    from .families import ModelParts
    from .losses import CorrectiveTargets
    from .rollout import Rollouts

CHECKPOINT_GLOB = "checkpoint-*.pt"
CHECKPOINT_KEYS = ("step", "lora", "optimizer", "rng")  # what `save_checkpoint` writes and resuming needs


@dataclass
class StepResult:
    """What one training step did (also written as one JSONL line)."""

    step: int  # the step counter after this step
    skipped: str | None  # reason the update was skipped, None if the optimiser stepped
    terms: dict[str, float] = field(default_factory=dict)  # detached loss terms and diagnostics
    reward_mean: float = float("nan")
    satisfied_frac: float = float("nan")
    n_valid: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSONL record (non-finite floats become null)."""
        def clean(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"step": self.step, "skipped": self.skipped, "reward_mean": clean(self.reward_mean),
                "satisfied_frac": clean(self.satisfied_frac), "n_valid": self.n_valid,
                "seconds": round(self.seconds, 4), **{k: clean(v) for k, v in self.terms.items()}}


@dataclass
class _Scored:
    """One step's rollouts with their scores: this rank's rows, the global rewards/advantages and draws."""

    ro: Rollouts
    info: dict[str, Any]
    satisfied: torch.Tensor  # (n_local,) bool
    rewards_all: torch.Tensor  # (N,) float32, every rank's rewards in rank order
    satisfied_all: torch.Tensor  # (N,) bool
    adv: Advantages  # over the global batch
    t_draw: torch.Tensor  # (n_local,) NFT training times
    t_reflow: torch.Tensor  # (n_local,) reflow training times
    eps_fwd: torch.Tensor  # (n_local, C, T′, H′, W′) fresh forward-process noise of the NFT rows
    reflow_rows: torch.Tensor  # (n_local,) bool: the negatives that get a reflow row (whole-batch selection)


class Trainer:
    """Holds the model parts, LoRA policy, reward model, optimiser and RNG; `run` trains to cfg.steps."""

    def __init__(self, cfg: TrainConfig, *, parts: ModelParts | None = None, reward_model: Any = None) -> None:
        import torch

        from .families import load_family
        from .policy import LoraPolicy

        self.cfg = cfg
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.family = load_family(cfg.model, cfg.family, frame_rate=cfg.fps, parts=parts,
                                  dtype=getattr(torch, WEIGHT_DTYPES[cfg.dtype]))
        self.parts = self.family.parts
        self.shape = self.family.latent_shape(cfg.num_frames, cfg.height, cfg.width)
        self.device = torch.device(cfg.device)
        self.family.to(self.device)
        self.policy = LoraPolicy(self.family, rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=cfg.lora_targets,
                                 mixed_precision=cfg.mixed_precision)
        configure_memory(self.parts, gradient_checkpointing=cfg.gradient_checkpointing, vae_tiling=cfg.vae_tiling,
                         vae_slicing=cfg.vae_slicing)
        if reward_model is None:
            from ltlreward import RewardModel

            reward_model = RewardModel(cfg.spec, grounder=cfg.grounder, fps=cfg.fps,
                                       failure_reward=cfg.failure_reward)
        self.reward_model = reward_model
        self.optimizer = torch.optim.AdamW(self.policy.trainable_parameters(), lr=cfg.lr,
                                           weight_decay=cfg.weight_decay, eps=cfg.adam_eps)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # rollout noise and training times
        from .conditioning import prepare_sampling

        self.sampling = prepare_sampling(self.family, cfg, self.shape)  # prompts, images, negative prompt, grid
        self.prompt_cond = self.sampling.prompt_cond
        release_text_encoder(self.parts, cfg.text_encoder_after)  # every prompt and image is encoded by now
        self.step = 0
        self.out = Path(cfg.output_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.log_path = self.out / "train_log.jsonl"
        self._tb: Any = None

    # ---------------------------------------------------------------- one step
    def _latent_masks(self, info: dict[str, Any], violated: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
        """Pixel violation masks (T,H,W) → latent (B,T′,H′,W′); a violating rollout whose mask is empty (or
        missing: a failed score) gets its witness frames' whole extent. Returns the masks and the filled rows."""
        import torch

        from .masks import fill_empty_masks, pixel_to_latent_mask, witness_frames

        _, tl, hl, wl = self.shape
        fixed = self.sampling.conditioning_frames
        pix = np.zeros((n, self.cfg.num_frames, self.cfg.height, self.cfg.width), np.float32)
        for i, m in enumerate(info.get("masks") or [None] * n):
            if m is not None:
                m = np.asarray(m, np.float32)
                if m.shape != pix.shape[1:]:
                    raise ValueError(f"reward mask {i} has shape {m.shape}, expected {pix.shape[1:]}")
                pix[i] = m
        frames = witness_frames(info.get("results") or [None] * n, self.cfg.num_frames)
        filled_pix, filled = fill_empty_masks(torch.from_numpy(pix), violated, torch.from_numpy(frames))
        lat = pixel_to_latent_mask(filled_pix, temporal=self.family.temporal, spatial=self.family.spatial,
                                   dilate=self.cfg.mask_dilate)
        if tuple(lat.shape[1:]) != (tl, hl, wl):
            raise ValueError(f"latent mask shape {tuple(lat.shape[1:])} != latent shape {(tl, hl, wl)}")
        lat[:, :fixed] = 0.0  # the conditioning frame is the given image: no mask ever blames it
        return lat, filled

    def _times(self, n: int) -> torch.Tensor:
        """One training time per sample, uniform over the solver grid's times σ_0 … σ_{N−1} (the shifted times
        the sampler evaluates the model at), from the trainer's generator."""
        import torch

        grid = self.sampling.grid[:-1]
        return grid[torch.randint(len(grid), (n,), generator=self.generator)]

    # ------------------------------------------------ collectives (identities in one process)
    rank, world = 0, 1

    def _rows(self) -> tuple[int, int]:
        """Rows [lo, hi) of the step's global batch that this process samples (whole groups)."""
        return 0, self.cfg.prompts_per_step * self.cfg.group_size

    def _gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate per-process tensors in rank order (one process: x itself)."""
        return x

    def _sum(self, values: list[float]) -> list[float]:
        """Sum scalars over processes (one process: the values themselves)."""
        return values

    def _average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Average gradients over processes (one process: nothing to do)."""

    def _sum_terms(self, terms: dict[str, float]) -> dict[str, float]:
        """Sum additive diagnostics over processes by key (one process: the terms themselves)."""
        return terms

    def train_step(self) -> StepResult:
        """One step: sample this rank's whole groups, score, advantages over the global batch, and (unless every
        group is uninformative or the loss is non-finite) update. With one process the collectives are identities;
        under torch.distributed (see distributed.py) the loss is rescaled so the averaged gradient equals the
        single-process gradient of the same global batch."""
        import torch

        t0 = time.perf_counter()
        sb = self._sample_and_score()
        adv = sb.adv
        result = StepResult(step=self.step + 1, skipped=None, reward_mean=float(sb.rewards_all.mean()),
                            satisfied_frac=float(sb.satisfied_all.float().mean()), n_valid=adv.n_valid)
        if not torch.isfinite(sb.rewards_all).all():
            return self._finish(result, "non-finite reward", t0)
        if adv.n_valid == 0 and not self.cfg.loss.keep_zero_advantage:
            return self._finish(result, "no advantage: every group's rewards are equal", t0)
        self.optimizer.zero_grad(set_to_none=True)
        global_loss, terms = self._backward_losses(sb)
        result.terms = terms
        if not np.isfinite(global_loss):  # every rank sees the same sum, so every rank skips together
            return self._finish(result, "non-finite loss", t0)
        return self._finish(result, self._apply_update(terms), t0)

    def _sample_and_score(self) -> _Scored:
        """Sample this rank's rollouts, score them, gather rewards; the global advantages and every draw."""
        import torch

        from .advantages import group_advantages
        from .losses import reflow_negatives
        from .rollout import sample_groups

        cfg, k, lc = self.cfg, self.cfg.group_size, self.cfg.loss
        idx = [(self.step * cfg.prompts_per_step + i) % len(cfg.prompts) for i in range(cfg.prompts_per_step)]
        (lo, hi), n_global = self._rows(), cfg.prompts_per_step * k
        # this rank's whole groups; the whole batch's noise is drawn, so the stream matches one process
        ro = sample_groups(self.policy, [cfg.prompts[i] for i in idx], self.prompt_cond[idx], group_size=k,
                           shape=self.shape, steps=cfg.num_inference_steps, generator=self.generator,
                           which=cfg.sample_with, rows=(lo, hi), micro_batch=cfg.micro_batch, grid=self.sampling.grid,
                           guidance_scale=self.sampling.guidance_scale, uncond=self.sampling.uncond)
        rewards, info = self.reward_model(ro.videos)
        rewards_t = torch.as_tensor(np.asarray(rewards, np.float32))
        satisfied = torch.as_tensor(np.asarray(info.get("all_satisfied", np.zeros(hi - lo, bool)), bool))
        rewards_all = self._gather(rewards_t)
        satisfied_all = self._gather(satisfied.to(torch.uint8)).to(torch.bool)
        groups_all = torch.arange(cfg.prompts_per_step).repeat_interleave(k)
        adv = group_advantages(rewards_all, groups_all, std=lc.adv_std)  # identical on every rank
        # global draws in a fixed order, so the stream (and resume) matches one process
        t_draw, t_reflow = self._times(n_global)[lo:hi], self._times(n_global)[lo:hi]
        eps_fwd = torch.randn((n_global, *self.shape), generator=self.generator, dtype=torch.float32)[lo:hi]
        chosen = reflow_negatives(groups_all, satisfied_all, lc.reflow_max, self.generator) if lc.reflow else \
            torch.zeros(n_global, dtype=torch.bool)
        return _Scored(ro, info, satisfied, rewards_all, satisfied_all, adv, t_draw, t_reflow,
                       eps_fwd.to(ro.x0.device), chosen[lo:hi])

    def _backward_losses(self, sb: _Scored) -> tuple[float, dict[str, float]]:
        """Backpropagate this rank's share of the objective; return the global loss value and terms."""
        from .advantages import aggregate_group_masks
        from .losses import corrective_targets, policy_rows

        lc, (lo, hi), ro = self.cfg.loss, self._rows(), sb.ro
        masks, n_fallback = None, 0
        if lc.needs_masks:
            latent, filled = self._latent_masks(sb.info, ~sb.satisfied, hi - lo)
            masks, n_fallback = aggregate_group_masks(latent, ro.groups, ~sb.satisfied), int(filled.sum())
        rows = policy_rows(sb.adv.valid[lo:hi], lc)
        ct = None
        if lc.reflow:
            ct = corrective_targets(ro.x0, masks.to(ro.x0.device), ro.groups.to(ro.x0.device),
                                    sb.satisfied.to(ro.x0.device), close_diff=lc.reflow_close_diff,
                                    select=sb.reflow_rows)
        n_rows, n_ct, n_fb = self._sum([float(len(rows)), float(len(ct) if ct is not None else 0), float(n_fallback)])
        local, terms = 0.0, {}
        if len(rows):  # a rank without rows computes nothing (its zero gradient still joins the all-reduce)
            local, terms = self._policy_loss(sb, rows, masks, int(n_rows))
        if ct is not None and len(ct):
            r_local, r_terms = self._reflow_loss(ct, sb, int(n_ct))
            local, terms = local + r_local, _add(terms, r_terms)
        local, terms = _host_floats(local, terms)  # the loss pass's one device→host sync
        terms = self._sum_terms(terms)
        (global_loss,) = self._sum([local])  # the single-process loss value
        terms |= {"loss": global_loss, "policy_rows": n_rows, "reflow_n": n_ct, "mask_fallback_n": n_fb}
        return global_loss, terms

    def _apply_update(self, terms: dict[str, float]) -> str | None:
        """Average, clip and apply the accumulated gradients, then move θ_old; the skip reason or None."""
        import torch

        from .losses import old_policy_decay

        cfg, params = self.cfg, self.policy.trainable_parameters()
        self._average_gradients(params)
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        terms["grad_norm"] = float(gnorm)
        if not torch.isfinite(gnorm):
            self.optimizer.zero_grad(set_to_none=True)
            return "non-finite gradient"
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        decay = old_policy_decay(self.step + 1, flat=cfg.decay_flat, uprate=cfg.decay_uprate, cap=cfg.decay_cap)
        self.policy.sync_old(decay)
        terms["old_decay"] = decay
        return None

    def _policy_loss(
        self, sb: _Scored, rows: torch.Tensor, masks: torch.Tensor | None, n_all: int
    ) -> tuple[float, dict[str, float]]:
        """The objective's NFT/KL/anchor terms over this rank's `rows`, backpropagated micro-batch by micro-batch.

        x_t = (1 − t)·x0 + t·ε with ε the fresh forward-process noise; every chunk is divided by the whole
        batch's row count `n_all` (all ranks), so the accumulated gradient and the summed terms are the
        batch's. Returns this rank's loss value and terms.
        """
        from .losses import PolicyBatch, creflow_objective, rf_interpolate
        from .rollout import row_slices

        lc, ro, dev = self.cfg.loss, sb.ro, sb.ro.x0.device
        rows_d = rows.to(dev)
        x0, eps, cond = ro.x0[rows_d], sb.eps_fwd[rows_d], ro.cond[rows]
        lo, hi = self._rows()
        a, t = (v[rows].to(dev, x0.dtype) for v in (sb.adv.advantages[lo:hi], sb.t_draw))
        m = masks[rows].to(dev, x0.dtype) if masks is not None else None
        violated = (~sb.satisfied)[rows].to(dev)
        f = self.sampling.conditioning_frames  # every term skips the conditioning frame
        total, terms = 0.0, {}
        for r in row_slices(len(rows), self.cfg.micro_batch):
            x_t = rf_interpolate(x0[r], eps[r], t[r])
            v_theta = self.policy.velocity(x_t, t[r], cond[r], "default")
            v_old = self.policy.velocity(x_t, t[r], cond[r], "old")
            v_ref = self.policy.velocity(x_t, t[r], cond[r], "ref") if lc.needs_ref else None
            v_theta, v_old, v_ref, x0_r, eps_r = skip_frames(f, v_theta, v_old, v_ref, x0[r], eps[r])
            m_r = m[r][:, f:] if m is not None else None
            batch = PolicyBatch(v_theta, v_old, x0_r, eps_r, t[r], a[r], v_ref, m_r, violated[r])
            loss, chunk = creflow_objective(lc, batch, n_policy=n_all, tensor_terms=True)
            total = total + self._backward(loss, self.world)
            terms = _add(terms, chunk)
        return total, terms

    def _reflow_loss(self, ct: CorrectiveTargets, sb: _Scored, n_all: int) -> tuple[float, dict[str, float]]:
        """The objective's reflow rows (this rank's negatives ct.index, their own rollout noise), micro-batched like
        `_policy_loss` and divided by the whole batch's reflow count `n_all`. Returns the loss value and terms."""
        from .losses import ReflowBatch, creflow_objective, rf_interpolate
        from .rollout import row_slices

        ro, dev = sb.ro, sb.ro.x0.device
        t = sb.t_reflow.to(dev, ro.x0.dtype)
        f = self.sampling.conditioning_frames
        total, terms = 0.0, {}
        for r in row_slices(len(ct), self.cfg.micro_batch):
            rows, x0_star = ct.index[r], ct.x0_star[r]
            eps = ro.eps[rows]  # the negative's own initial noise: reflow corrects the sampler's coupling
            v = self.policy.velocity(rf_interpolate(x0_star, eps, t[rows]), t[rows], ro.cond[rows.cpu()])
            v, x0_star, eps = skip_frames(f, v, x0_star, eps)
            loss, chunk = creflow_objective(self.cfg.loss, reflow=ReflowBatch(v, x0_star, eps, ct.mask[r][:, f:]),
                                            n_reflow=n_all, tensor_terms=True)
            total = total + self._backward(loss, self.world)
            terms = _add(terms, chunk)
        return total, terms

    @staticmethod
    def _backward(loss: torch.Tensor, scale: float) -> torch.Tensor:
        """Accumulate the gradient of scale·loss into the LoRA parameters (scale W: the all-reduce averages over
        W ranks); return the unscaled loss, detached (a tensor: no host sync until the step ends)."""
        (loss * scale).backward()
        return loss.detach()

    def _finish(self, result: StepResult, skipped: str | None, t0: float) -> StepResult:
        """Advance the step counter, log the step (JSONL, tensorboard) and return it."""
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        result.step, result.skipped, result.seconds = self.step, skipped, time.perf_counter() - t0
        self.out.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result.to_json()) + "\n")
        tb = self._tensorboard()
        if tb is not None:
            for k, v in result.to_json().items():
                if isinstance(v, float):
                    tb.add_scalar(k, v, self.step)
        return result

    def _tensorboard(self) -> Any:
        """A SummaryWriter when cfg.tensorboard and the tensorboard package is installed, else None."""
        if self._tb is None and self.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tb = False
            else:
                self._tb = SummaryWriter(str(self.out / "tensorboard"))
        return self._tb or None

    # ------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> Path:
        """Write checkpoint-<step>.pt atomically (tmp file + os.replace) and prune old ones."""
        import torch

        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        np_state = np.random.get_state()
        state = {
            "step": self.step,
            "lora": self.policy.lora_state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
                    "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
                    "python": random.getstate()},
            "config": self.cfg.to_dict(),
        }
        path = self.ckpt_dir / f"checkpoint-{self.step:07d}.pt"
        tmp = path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        for old in sorted(self.ckpt_dir.glob(CHECKPOINT_GLOB))[: -self.cfg.keep_checkpoints]:
            old.unlink()
        return path

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint in output_dir/checkpoints, if any (not checked for readability)."""
        found = sorted(self.ckpt_dir.glob(CHECKPOINT_GLOB)) if self.ckpt_dir.is_dir() else []
        return found[-1] if found else None

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore LoRA weights, optimiser, step and RNG states exactly; CheckpointError names an unreadable
        file or one written by a run of another shape (LoRA targets or rank)."""
        self._apply_state(read_checkpoint(path), Path(path))

    def _apply_state(self, state: dict[str, Any], path: Path) -> None:
        """Put a checkpoint read by `read_checkpoint` into the policy, optimiser, counters and RNGs."""
        import torch

        try:
            self.policy.load_lora_state_dict(state["lora"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: does not fit this run's LoRA (lora_rank, lora_targets or the model "
                                  f"changed?): {e}") from e
        self.step = int(state["step"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.generator.set_state(rng["generator"])
        kind, keys, *rest = rng["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
        py = rng["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        self._truncate_log(self.step)

    def resume(self, warn: Callable[[str], None] | None = None) -> Path | None:
        """Load the newest readable checkpoint; return its path (None when there is none).

        Unreadable newer ones (zero bytes, truncated, not a checkpoint) are renamed `<name>.corrupt` (kept for a
        look, skipped from then on) and `warn` (default: warnings.warn) is told each name and why. When none is
        readable nothing is renamed and CheckpointError names every file: a run never silently starts over.
        """
        found = sorted(self.ckpt_dir.glob(CHECKPOINT_GLOB)) if self.ckpt_dir.is_dir() else []
        bad: list[tuple[Path, CheckpointError]] = []
        for path in reversed(found):
            try:
                state = read_checkpoint(path)
            except CheckpointError as e:
                bad.append((path, e))
                continue
            for b, e in bad:  # rank 0 alone renames (the others read the same files)
                if self.rank:
                    continue
                aside = b.with_name(b.name + ".corrupt")
                os.replace(b, aside)
                _warn(warn, f"{e}; moved aside to {aside.name}, resuming from the older {path.name}")
            self._apply_state(state, path)
            return path
        if bad:
            raise CheckpointError(f"no readable checkpoint in {self.ckpt_dir} (delete or move the files, or pass "
                                  f"--no-resume to start over): " + "; ".join(str(e) for _, e in bad))
        return None

    def _truncate_log(self, step: int) -> None:
        """Drop JSONL lines of steps after `step` (written before a crash), so the log matches the state."""
        if not self.log_path.exists():
            return
        keep = [s for s in self.log_path.read_text(encoding="utf-8").splitlines() if _logged_step(s) <= step]
        tmp = self.log_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
        os.replace(tmp, self.log_path)

    def run(self, *, resume: bool = True, log: Any = None, warn: Callable[[str], None] | None = None
            ) -> list[StepResult]:
        """Train until cfg.steps (resuming from the newest readable checkpoint, see `resume`), checkpointing
        every few steps."""
        latest = self.resume(warn) if resume else None
        if latest is not None and log:
            log(f"resumed from {latest} at step {self.step}")
        out = []
        while self.step < self.cfg.steps:
            res = self.train_step()
            out.append(res)
            if log:
                loss = res.terms.get("loss", float("nan"))
                status = f"skipped ({res.skipped})" if res.skipped else f"loss {loss:.4g}"
                log(f"step {res.step}: reward {res.reward_mean:.3f} {status}")
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                self.save_checkpoint()
        if self._tb:
            self._tb.close()
        return out


def configure_memory(parts: ModelParts, *, gradient_checkpointing: bool = False, vae_tiling: bool = False,
                     vae_slicing: bool = False) -> None:
    """Turn on the diffusers memory switches: activation checkpointing of the transformer's blocks (recomputed in
    the backward pass) and the VAE's tiled / per-sample decoding; ConfigError names one a part lacks."""
    from .errors import ConfigError

    wanted = [("gradient_checkpointing", gradient_checkpointing, t, "enable_gradient_checkpointing")
              for t in parts.transformers()]  # both of Wan2.2-A14B's experts
    wanted += [("vae_tiling", vae_tiling, parts.vae, "enable_tiling"),
               ("vae_slicing", vae_slicing, parts.vae, "enable_slicing")]
    for key, on, module, method in wanted:
        if not on:
            continue
        if not callable(getattr(module, method, None)):
            raise ConfigError(f"{key}: a {type(module).__name__} has no {method}()")
        getattr(module, method)()


def release_text_encoder(parts: ModelParts, how: str) -> None:
    """After the prompts (and images) are encoded, once per run: "free" drops the text encoder and the image
    encoder (Wan2.1-I2V's CLIP), "offload" moves them to the CPU, "keep" leaves them where they are. UMT5-XXL
    is ≈ 11 GB in bf16 and is never needed again."""
    import gc

    import torch

    if how == "free":
        parts.text_encoder = parts.image_encoder = None
        gc.collect()
    elif how == "offload":
        for m in (parts.text_encoder, parts.image_encoder):
            if m is not None:
                m.to("cpu")
    if how != "keep" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's state dict (torch.load with weights_only=True); CheckpointError names a file that is empty,
    truncated, not a torch file or lacks a checkpoint's keys."""
    import torch

    p = Path(path)
    try:
        if p.stat().st_size == 0:
            raise CheckpointError(f"{p}: empty file (0 bytes)")
        state = torch.load(p, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # torch.load raises RuntimeError, EOFError, UnpicklingError, OSError, … by damage kind
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{p}: unreadable checkpoint ({type(e).__name__}: {first})") from e
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{p}: not a creflow checkpoint (missing {', '.join(missing)})")
    return state


def _logged_step(line: str) -> float:
    """The step of one JSONL log line; inf for a blank or half-written line (a kill mid-write), so it is dropped."""
    try:
        return float(json.loads(line).get("step", 0)) if line.strip() else float("inf")
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return float("inf")


def _warn(warn: Callable[[str], None] | None, msg: str) -> None:
    """Tell `warn`, or warnings.warn when None."""
    if warn is not None:
        warn(msg)
    else:
        warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _host_floats(local: Any, terms: dict[str, Any]) -> tuple[float, dict[str, float]]:
    """The loss value and the accumulated terms (tensors or floats) as Python floats, in one transfer."""
    import torch

    keys = list(terms)
    values = [local, *(terms[k] for k in keys)]
    if not any(isinstance(v, torch.Tensor) for v in values):
        return float(local), {k: float(terms[k]) for k in keys}
    dev = next(v.device for v in values if isinstance(v, torch.Tensor))
    flat = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=dev).reshape(()) for v in values]).tolist()
    return flat[0], dict(zip(keys, flat[1:], strict=True))


def skip_frames(f: int, *xs: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """Each (B, C, T′, H′, W′) tensor without its first f latent frames (the conditioning frame); None stays."""
    return tuple(x[:, :, f:] if x is not None and f else x for x in xs)


def _add(acc: dict[str, float], terms: dict[str, float]) -> dict[str, float]:
    """acc + terms key by key (chunk terms are each a chunk's share of a whole-batch mean)."""
    return {k: acc.get(k, 0.0) + terms.get(k, 0.0) for k in acc | terms}
