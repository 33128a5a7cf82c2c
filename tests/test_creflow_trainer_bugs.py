"""The five `creflow train` bugs of issue #15, each pinned by a test that fails on the old trainer.

1. NFT/KL/anchor rows use fresh forward-process noise (not the rollout's), reflow rows the rollout's own.
2. Reflow positives are rollouts that satisfy every constraint (not "above the group mean"), and violating
   rows reach the objective flagged as such (inside their own mask r ≤ ½: tests/test_creflow_losses.py).
3. A violating rollout with an empty mask gets its witness frames' whole extent, counted in the log.
4. DiffusionNFT's C/β scale: tests/test_creflow_nft_oracle.py.
5. The solver samples with θ_old by default.
Plus: zero-advantage groups stay in the NFT batch (DiffusionNFT) unless disabled, and failure_reward reaches
the reward model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from test_creflow_trainer import write_config  # noqa: E402  (the trainer tests' config helper)


class GradedReward:
    """Per group of 4: rewards [1.0, 0.9, 0.2, 0.1]; only the first satisfies the spec. The second (0.9) is a
    violating rollout above its group mean — the old trainer made it a reflow positive. Violating rollouts get
    `masks` (all ones unless `empty`) and results whose one violated constraint's witness names frame 2."""

    def __init__(self, empty: bool = False) -> None:
        self.empty = empty

    def __call__(self, videos: torch.Tensor) -> tuple[object, dict]:
        import numpy as np

        from ltlreward import RewardResult, Witness
        from ltlreward.result import ConstraintOutcome

        b, t, _, h, w = videos.shape
        r = np.tile(np.array([1.0, 0.9, 0.2, 0.1], np.float32), b // 4)
        sat = r == 1.0
        masks = [None if s else np.full((t, h, w), 0.0 if self.empty else 1.0, np.float32) for s in sat]
        results = [RewardResult("<memory>", float(x), bool(s), [ConstraintOutcome(
            "c", bool(s), 1.0 if s else -1.0, 1.0, None if s else Witness((2,), (), ()))]) for x, s in zip(r, sat, strict=True)]
        return r, {"all_satisfied": sat, "masks": masks, "results": results}


class Spy:
    """Records the arguments of every creflow_objective call (the trainer imports it at call time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import creflow_train.losses as L

        self.calls: list[tuple] = []
        real = L.creflow_objective

        def spy(cfg, policy=None, reflow=None, **kw):
            self.calls.append((cfg, policy, reflow))
            return real(cfg, policy, reflow, **kw)

        monkeypatch.setattr(L, "creflow_objective", spy)

    def policy(self):
        return [c[1] for c in self.calls if c[1] is not None]

    def reflow(self):
        return [c[2] for c in self.calls if c[2] is not None]


def _trainer(tmp_path: Path, model: Path, reward, **over):
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, model, steps=1, prompts_per_step=2, **over))
    trainer = Trainer(cfg, reward_model=reward)
    seen = {}
    import creflow_train.rollout as R

    real = R.sample_groups

    def spy(*a, **k):
        seen["ro"] = ro = real(*a, **k)
        return ro

    return trainer, seen, spy


def test_nft_rows_use_fresh_noise_and_reflow_rows_the_rollouts_own(tiny_model: Path, tmp_path: Path, monkeypatch):
    """Bug 1: x_t of the NFT/KL/anchor rows comes from noise the trainer's generator draws afresh; only corrective
    reflow regresses the rollout's own noise ε⁻ (the sampler's coupling is what it corrects)."""
    import creflow_train.rollout as R

    spy = Spy(monkeypatch)
    trainer, seen, sample_spy = _trainer(tmp_path, tiny_model, GradedReward(), reflow_close_diff=None)
    monkeypatch.setattr(R, "sample_groups", sample_spy)
    res = trainer.train_step()
    assert res.skipped is None
    ro = seen["ro"]
    (pb,) = spy.policy()
    assert pb.eps.shape == ro.eps.shape  # every row trains (no zero-advantage group here)
    for i in range(len(pb)):
        assert not torch.allclose(pb.eps[i], ro.eps[i])  # fresh, not the rollout's
    (rb,) = spy.reflow()
    negatives = [i for i in range(len(ro.eps)) if i % 4 != 0]
    assert torch.equal(rb.eps, ro.eps[negatives])  # reflow: each negative's own initial noise


def test_reflow_positives_are_the_rollouts_that_satisfy_the_spec(tiny_model: Path, tmp_path: Path, monkeypatch):
    """Bug 2: the 0.9-reward rollout violates the spec although it is above its group mean: it is a reflow
    negative (its target the satisfied rollout's latent), not a positive averaged into the other targets."""
    import creflow_train.rollout as R

    spy = Spy(monkeypatch)
    trainer, seen, sample_spy = _trainer(tmp_path, tiny_model, GradedReward(), reflow_close_diff=None,
                                         mask_dilate=0)
    monkeypatch.setattr(R, "sample_groups", sample_spy)
    res = trainer.train_step()
    ro = seen["ro"]
    (rb,) = spy.reflow()
    assert res.terms["reflow_n"] == 6  # rows 1, 2, 3 of both groups
    want = torch.stack([ro.x0[g * 4] for g in (0, 0, 0, 1, 1, 1)])  # mask all ones: x0* = mean of positives
    assert torch.equal(rb.x0_star, want)
    (pb,) = spy.policy()
    assert pb.violated.tolist() == [i % 4 != 0 for i in range(8)]  # the objective knows who violates
    assert pb.advantages[1] > 0  # … including the one above its group mean (r capped inside its mask)


def test_empty_masks_of_violating_rollouts_fall_back_to_the_witness_frames(tiny_model: Path, tmp_path: Path,
                                                                           monkeypatch):
    """Bug 3: with empty masks the old trainer gave every violating rollout zero credit (no gradient, still in
    the batch mean). Now its mask is the whole extent of the witness frame (pixel frame 2 → Wan latent frame 1)
    and the log counts the 6 filled rows."""
    spy = Spy(monkeypatch)
    trainer, _, _ = _trainer(tmp_path, tiny_model, GradedReward(empty=True), mask_dilate=0, loss="credit-nft")
    res = trainer.train_step()
    assert res.skipped is None and res.terms["mask_fallback_n"] == 6
    (pb,) = spy.policy()
    assert pb.mask.shape[1] == 2  # 5 frames → latent frames {0}, {1..4}
    assert bool((pb.mask[:, 1] == 1).all()) and float(pb.mask[:, 0].abs().sum()) == 0.0
    assert res.terms["credit_nft_mask_frac"] == pytest.approx(0.2 + 0.8 * 0.5)  # W = floor + (1 − floor)·M, M = ½
    log = json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[-1])
    assert log["mask_fallback_n"] == 6


@pytest.mark.slow
def test_the_solver_samples_with_theta_old_by_default(tiny_model: Path, tmp_path: Path, monkeypatch):
    """Bug 5: DiffusionNFT and the precursor sample with θ_old; so does the default config (θ stays an option)."""
    from creflow_train.config import TrainConfig

    assert TrainConfig(model="m", spec="s", prompts=["p"], output_dir="o").sample_with == "old"
    for sample_with, want in ((None, {"old"}), ("default", {"default"})):
        over = {} if sample_with is None else {"sample_with": sample_with}
        d = tmp_path / str(sample_with)
        d.mkdir()
        trainer, _, _ = _trainer(d, tiny_model, GradedReward(), **over)
        import creflow_train.rollout as R

        used = set()
        real = R.euler_sample

        def spy(policy, eps, cond, steps, shift=1.0, which="default", micro_batch=0, used=used, real=real, **kw):
            used.add(which)
            return real(policy, eps, cond, steps, shift, which, micro_batch, **kw)

        monkeypatch.setattr(R, "euler_sample", spy)
        trainer.train_step()
        assert used == want


class HalfConstantReward(GradedReward):
    """GradedReward, except every rollout of group 1 gets the same reward (a zero-advantage group)."""

    def __call__(self, videos):
        r, info = super().__call__(videos)
        r[4:] = 0.5
        info["all_satisfied"][4:] = False
        return r, info


@pytest.mark.parametrize(("keep", "rows"), [(True, 8), (False, 4)])
def test_zero_advantage_groups_stay_in_the_nft_batch(tiny_model: Path, tmp_path: Path, monkeypatch, keep, rows):
    """DiffusionNFT keeps rows of groups whose rewards are all equal (A = 0, r = ½: a pull towards θ_old);
    keep_zero_advantage: false drops them, as the precursor does."""
    spy = Spy(monkeypatch)
    trainer, _, _ = _trainer(tmp_path, tiny_model, HalfConstantReward(), keep_zero_advantage=keep)
    res = trainer.train_step()
    assert res.n_valid == 4 and res.terms["policy_rows"] == rows
    (pb,) = spy.policy()
    assert len(pb) == rows and (keep == bool((pb.advantages[4:] == 0).all()) if keep else len(pb) == 4)


def test_failure_reward_reaches_the_reward_model(tiny_model: Path, tmp_path: Path):
    """A rollout ltlreward cannot score gets `failure_reward` (default 0, the lowest in-range reward)."""
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    assert Trainer(load_config(write_config(tmp_path, tiny_model))).reward_model.failure_reward == 0.0
    cfg = load_config(write_config(tmp_path, tiny_model, failure_reward=-1.0))
    assert Trainer(cfg).reward_model.failure_reward == -1.0
