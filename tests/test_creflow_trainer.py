"""End-to-end CPU test of `creflow train` on a tiny random-initialised Wan pipeline saved to disk.

Random weights make meaningless videos, so the assertions are about behaviour: what is trained, what is
saved, that resuming is exact, and that the base model never moves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

SPEC = """\
task "the bright thing and the dark thing show up"
entity bright = "bright thing" hsv=(0,0,130,180,255,255)
entity dark = "dark thing" hsv=(0,0,0,180,255,125)
constraint seen "the bright thing is always visible": G visible(bright)
constraint dark "the dark thing is visible at some point": F visible(dark)
reward mean_robustness
"""


class BrightReward:
    """A smooth stand-in for the reward model: reward = mean brightness, violation mask = pixels darker than
    the video's mean (so masks and the reflow rows depend on the videos), satisfied = at least the batch median.
    """

    def __call__(self, videos: torch.Tensor) -> tuple[object, dict]:
        import numpy as np

        r = videos.float().mean(dim=(1, 2, 3, 4)).numpy().astype(np.float32)
        grey = videos.float().mean(dim=2)  # (B, T, H, W)
        masks = [(g < g.mean()).numpy() for g in grey]
        return r, {"all_satisfied": r >= np.median(r), "masks": masks}


class LeftBrightReward(BrightReward):
    """BrightReward whose violation masks only ever blame the left half of the frame."""

    def __call__(self, videos: torch.Tensor) -> tuple[object, dict]:
        r, info = super().__call__(videos)
        for m in info["masks"]:
            m[..., m.shape[-1] // 2:] = False
        return r, info


def recording_trainer(cfg, **kw):
    """A Trainer whose `_average_gradients` hook keeps a copy of each step's LoRA gradients in `.grads`."""
    from creflow_train.trainer import Trainer

    class Recording(Trainer):
        def _average_gradients(self, params):
            self.grads.append([p.grad.detach().clone() for p in params])

    trainer = Recording(cfg, **kw)
    trainer.grads = []
    return trainer


def write_config(tmp: Path, model: Path, **over: object) -> Path:
    """A YAML config with relative paths (resolved against the config file's directory); keyword overrides that
    are LossConfig fields go under `loss:`."""
    import yaml

    from creflow_train.losses import LOSS_KEYS

    (tmp / "spec.ltl").write_text(SPEC, encoding="utf-8")
    cfg = {
        "model": str(model), "spec": "spec.ltl", "output_dir": "run",
        "prompts": ["a red block moves to the green zone", "a blue cup on the table"],
        "steps": 2, "seed": 3, "group_size": 4, "num_frames": 5, "height": 32, "width": 32,
        "num_inference_steps": 3, "max_sequence_length": 8, "lora_rank": 4, "lora_alpha": 8.0,
        "lr": 0.01, "checkpoint_every": 1, "decay_uprate": 0.25, "tensorboard": False,
    }
    loss = {"mode": "creflow", "mask_floor": 0.2, "kl_weight": 0.01}
    if "loss" in over:
        mode = over.pop("loss")
        loss |= {"mode": mode} if isinstance(mode, str) else mode
    loss |= {k: over.pop(k) for k in list(over) if k in LOSS_KEYS}
    cfg = cfg | over | {"loss": loss}
    path = tmp / "train.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    from creflow_train.config import ConfigError, config_from_dict
    from creflow_train.losses import LossConfig

    base = {"model": "m", "spec": "s.ltl", "prompts": ["p"], "output_dir": "o"}
    cfg = config_from_dict(base, base_dir=tmp_path)
    assert cfg.model == str(tmp_path / "m") and cfg.group_size == 8 and cfg.loss == LossConfig()
    assert (cfg.family, cfg.micro_batch, cfg.mixed_precision, cfg.sample_with) == ("auto", 0, "no", "old")
    assert config_from_dict(base | {"loss": "nft"}).loss == LossConfig(mode="nft")
    nested = config_from_dict(base | {"loss": {"mode": "reflow", "beta": 0.1, "reflow_close_diff": None}}).loss
    assert (nested.mode, nested.beta, nested.reflow_close_diff) == ("reflow", 0.1, None)
    for bad, key in [({"grup_size": 4}, "grup_size"), ({"group_size": 1}, "group_size"),
                     ({"loss": "grpo"}, "loss.mode"), ({"mask_floor": 0.2}, "mask_floor"),
                     ({"loss": {"mask_floor": 2.0}}, "loss.mask_floor"), ({"loss": {"betta": 1}}, "loss.betta"),
                     ({"loss": {"beta": "big"}}, "loss.beta"), ({"loss": 3}, "loss"),
                     ({"lr": "fast"}, "lr"), ({"prompts": "p"}, "prompts"),
                     ({"decay_cap": 1.0}, "decay_cap"), ({"sample_with": "ref"}, "sample_with"),
                     ({"micro_batch": -1}, "micro_batch"), ({"micro_batch": 1.5}, "micro_batch"),
                     ({"mixed_precision": "fp16"}, "mixed_precision"), ({"family": "sd3"}, "family")]:
        with pytest.raises(ConfigError, match=rf"^{key}:"):
            config_from_dict(base | bad)
    with pytest.raises(ConfigError, match=r"^kl_weight: belongs under loss:"):
        config_from_dict(base | {"kl_weight": 0.1})
    with pytest.raises(ConfigError, match=r"^spec: required"):
        config_from_dict({k: v for k, v in base.items() if k != "spec"})


def test_euler_solver_is_exact_on_a_constant_velocity() -> None:
    from creflow_train.rollout import euler_sample, time_grid

    class Const:
        def velocity(self, x, t, cond, which="default"):
            return torch.full_like(x, 2.0)

    g = time_grid(4)
    assert torch.allclose(g, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    assert torch.allclose(time_grid(2, shift=3.0), torch.tensor([1.0, 0.75, 0.0]))
    eps = torch.randn(2, 4, 2, 4, 4)
    x0 = euler_sample(Const(), eps, torch.zeros(2, 8, 16), steps=4)  # x0 = ε − v for a straight path
    assert torch.allclose(x0, eps - 2.0)


@pytest.mark.slow
def test_train_checkpoint_and_exact_resume(tiny_model: Path, tmp_path: Path) -> None:
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, tiny_model))
    trainer = Trainer(cfg)
    policy = trainer.policy
    named = trainer.parts.transformer.named_parameters()
    base0 = {n: p.detach().clone() for n, p in named if ".lora_" not in n}
    lora0 = policy.lora_state_dict()
    assert all(float(v.abs().sum()) == 0.0 for k, v in lora0.items() if ".lora_B." in k)  # B = 0: a no-op

    # the three policies agree before training (B = 0), and only "default" carries a gradient
    x = torch.randn(2, *trainer.shape)
    t = torch.tensor([0.3, 0.7])
    cond = trainer.prompt_cond[[0, 0]]
    v_def, v_old, v_ref = (policy.velocity(x, t, cond, w) for w in ("default", "old", "ref"))
    assert torch.equal(v_def.detach(), v_old) and torch.equal(v_old, v_ref)
    assert v_def.requires_grad and not v_old.requires_grad and not v_ref.requires_grad

    results = trainer.run()
    assert [r.step for r in results] == [1, 2]
    lines = [json.loads(s) for s in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == [1, 2]
    updated = [d for d in lines if d["skipped"] is None]
    assert updated, f"no step updated: {lines}"
    for d in updated:
        for k in ("loss", "credit_nft_loss", "kl_loss", "grad_norm", "old_decay"):
            assert isinstance(d[k], float), k
    # violation masks reach the loss: the credit weight exceeds the 0.2 floor somewhere
    assert any(d["credit_nft_mask_frac"] > 0.2 + 1e-6 for d in updated)
    assert any(0.0 < d["satisfied_frac"] < 1.0 for d in lines)  # some groups mix satisfied and violated

    # LoRA "default" moved, the base did not, and after a decay-0.25 EMA "old" differs from both
    base1 = {n: p for n, p in trainer.parts.transformer.named_parameters() if ".lora_" not in n}
    assert all(torch.equal(base0[n], base1[n]) for n in base0)
    lora1 = policy.lora_state_dict()
    assert any(not torch.equal(lora0[k], lora1[k]) for k in lora1 if ".default." in k)
    v_def, v_old, v_ref = (policy.velocity(x, t, cond, w) for w in ("default", "old", "ref"))
    assert not torch.equal(v_def.detach(), v_ref)
    assert not torch.equal(v_old, v_ref) and not torch.equal(v_old, v_def.detach())

    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("checkpoint-*.pt"))
    assert [p.name for p in ckpts] == ["checkpoint-0000001.pt", "checkpoint-0000002.pt"]
    assert not list((tmp_path / "run" / "checkpoints").glob("*.tmp"))
    state = torch.load(ckpts[-1], weights_only=True)
    transformer_keys = set(trainer.parts.transformer.state_dict())
    assert state["step"] == 2 and state["lora"]
    assert all(".lora_" in k and k in transformer_keys for k in state["lora"])
    assert all(torch.equal(state["lora"][k], lora1[k]) for k in lora1)

    # resume from step 1 in a fresh trainer: redoing step 2 reproduces the first run bit for bit
    (tmp_path / "run" / "checkpoints" / ckpts[-1].name).unlink()
    again = Trainer(load_config(tmp_path / "train.yaml"))
    again.run()
    assert again.step == 2
    lora2 = again.policy.lora_state_dict()
    assert lora2.keys() == lora1.keys() and all(torch.equal(lora1[k], lora2[k]) for k in lora1)
    opt1, opt2 = trainer.optimizer.state_dict(), again.optimizer.state_dict()
    assert opt1["param_groups"] == opt2["param_groups"]
    for i, s in opt1["state"].items():
        assert all(torch.equal(s[k], opt2["state"][i][k]) for k in s)
    assert torch.equal(trainer.generator.get_state(), again.generator.get_state())
    resumed = [json.loads(s) for s in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    def timeless(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert timeless(resumed) == timeless(lines)  # log cut back to step 1, step 2 relogged identically


@pytest.mark.slow
def test_non_finite_rewards_and_loss_skip_the_step(tiny_model: Path, tmp_path: Path) -> None:
    import numpy as np

    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, tiny_model, steps=3, loss="nft", kl_weight=0.0, anchor_outside=0.0,
                                   sample_with="default"))  # θ_old then only enters the loss
    calls = []

    def rewards(videos):
        b = videos.shape[0]
        assert videos.shape == (b, 5, 3, 32, 32) and float(videos.min()) >= 0 and float(videos.max()) <= 1
        calls.append(b)
        r = np.tile(np.array([0.0, 1.0, 1.0, 0.5], np.float32), b // 4)
        if len(calls) == 1:
            r[1] = np.nan
        return r, {"all_satisfied": r == 1.0}

    trainer = Trainer(cfg, reward_model=rewards)
    policy = trainer.policy
    before = policy.lora_state_dict()
    assert trainer.train_step().skipped == "non-finite reward"
    b_old = policy.old_names.index("blocks.0.attn1.to_out.0.lora_B.old.weight")
    with torch.no_grad():  # poison θ_old's output projection (θ_old is used only inside the loss): NaN loss
        policy.old_parameters()[b_old][0, 0] = float("nan")
    assert trainer.train_step().skipped == "non-finite loss"
    a_name, b_name = (f"blocks.0.attn1.to_out.0.lora_{x}.default.weight" for x in "AB")
    a, b = (policy.trainable_parameters()[policy.default_names.index(n)] for n in (a_name, b_name))
    with torch.no_grad():  # restore θ_old; scale θ's output LoRA to A·1e30, B = 1e-30: B·A·x stays O(1), so
        policy.old_parameters()[b_old][0, 0] = 0.0  # rollouts and loss are finite, but ∂/∂B ~ 1e30·δ and
        a.mul_(1e30)  # the float32 norm Σ g² overflows (no kernel's luck involved: 1e60 > 3.4e38)
        b.fill_(1e-30)
    poisoned = policy.lora_state_dict()
    res = trainer.train_step()
    assert res.skipped == "non-finite gradient" and res.step == 3 and trainer.step == 3
    assert math.isfinite(res.terms["loss"])
    assert not trainer.optimizer.state  # AdamW never stepped
    after = policy.lora_state_dict()
    for k in before:
        assert torch.equal(after[k], poisoned[k])  # nothing moved
        assert k in (a_name, b_name) or torch.equal(before[k], after[k])
    lines = [json.loads(s) for s in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [d["skipped"] for d in lines] == ["non-finite reward", "non-finite loss", "non-finite gradient"]
    assert lines[1]["loss"] is None and isinstance(lines[2]["loss"], float) and lines[2]["grad_norm"] is None


@pytest.mark.slow
def test_cli_train_runs_and_reports_bad_keys(tiny_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from creflow_train.cli import app

    path = write_config(tmp_path, tiny_model, steps=1, group_size=2, prompts=["a blue cup"],
                        sample_with="old")
    res = CliRunner().invoke(app, ["train", str(path), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "trained to step 1 (1 steps this run" in res.output
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-0000001.pt").is_file()
    res = CliRunner().invoke(app, ["train", str(path), "--quiet"])  # already at cfg.steps: nothing to do
    assert res.exit_code == 0 and "trained to step 1 (0 steps this run" in res.output
    bad = write_config(tmp_path, tiny_model, group_sz=4)
    res = CliRunner().invoke(app, ["train", str(bad)])
    assert res.exit_code == 2 and "group_sz: unknown key" in res.output


U32 = 2.0**-24  # float32 unit roundoff


@pytest.mark.slow
@pytest.mark.parametrize(("extra", "reward"), [
    ({"anchor_outside": 0.0}, BrightReward),
    ({"anchor_outside": 0.5, "mask_dilate": 0}, LeftBrightReward),  # masks leave the right half to anchor
])
def test_micro_batches_accumulate_the_whole_batch_gradient(
    tiny_model: Path, tmp_path: Path, extra: dict, reward: type
) -> None:
    """micro_batch 3 over 8 rows (chunks 3, 3, 2) and the reflow rows (chunks of 3) = one whole-batch pass: same
    loss, diagnostics, gradient and LoRA after the step (NFT + KL [+ outside anchor] + reflow).

    Both passes train on the same rollouts (sampled once with micro-batches, row by row equal to the whole-batch
    sampling up to float32 rounding), so what differs is only the order in which float32 sums run: the
    gradient accumulation over chunks and the kernels' blocking, which depends on the batch size. A reordered
    float32 sum of n terms differs by at most γ_n·Σ|terms| (γ_n ≈ n·u, u = 2⁻²⁴); each entry here sums the
    contributions of the 12 rows through a few reductions, Σ|terms| ≤ 12·max|g| of the tensor, so the bound
    used is 12 rows × 8 levels × u × max|g| ≈ 5.7e-6·max|g| — a dropped or doubled chunk (≥ 1/8 of the
    gradient) is far outside it. (Comparing the two runs' own samplings would not work: the fake reward's tiny
    spread divides float32 rounding of the videos by the reward std.)"""
    from creflow_train.config import load_config

    runs, scored = {}, None
    for mb in (3, 0):
        (tmp_path / str(mb)).mkdir()
        path = write_config(tmp_path / str(mb), tiny_model, steps=1, micro_batch=mb, mask_floor=0.1,
                            prompts_per_step=2, height=16, width=16, num_inference_steps=2, **extra)
        trainer = recording_trainer(load_config(path), reward_model=reward())
        if scored is None:
            scored = trainer._sample_and_score()
        else:  # the whole-batch sampling gives the same rollouts, to float32 rounding
            own = trainer._sample_and_score()
            assert torch.allclose(own.ro.x0, scored.ro.x0, rtol=0, atol=64 * U32 * float(own.ro.x0.abs().max()))
        trainer._sample_and_score = lambda sb=scored: sb
        res = trainer.train_step()
        assert res.skipped is None, res
        runs[mb] = (res, trainer.grads[0], trainer.policy.lora_state_dict())
    (res0, g0, lora0), (res3, g3, lora3) = runs[0], runs[3]
    assert res0.n_valid == res3.n_valid == 8 and res0.terms["reflow_n"] == res3.terms["reflow_n"] > 0
    assert res0.terms["policy_rows"] == 8
    assert ("anchor_keep_frac" in res0.terms) == (extra["anchor_outside"] > 0)
    assert res0.terms.get("anchor_keep_frac", 1.0) > 0
    assert res0.terms.keys() == res3.terms.keys()
    bound = 12 * 8 * U32
    for key, value in res0.terms.items():
        if key != "grad_norm":
            assert abs(res3.terms[key] - value) <= bound * max(abs(value), 1e-30), key
    for a, b in zip(g0, g3, strict=True):
        scale = float(a.abs().max())
        assert bool(((a - b).abs() <= bound * scale).all())  # (LoRA A: 0 at the first step, B starts at 0)
    assert any(float(g.abs().max()) > 0 for g in g0)
    for k, g in zip(trainer.policy.default_names, g0, strict=True):  # Adam's first step is lr·sign(g) where
        sure = g.abs() > 1e3 * bound * float(g.abs().max())  # |g| is well above the tolerance
        assert torch.allclose(lora0[k][sure], lora3[k][sure], rtol=0, atol=1e-6), k


def test_bf16_autocast_step_keeps_lora_and_optimiser_float32(tiny_model: Path, tmp_path: Path) -> None:
    """mixed_precision bf16 (with micro-batches): forwards really run in bf16, the step is finite and moves
    LoRA, and the LoRA weights and AdamW moments stay float32."""
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, tiny_model, steps=1, mixed_precision="bf16", micro_batch=2,
                                   height=16, width=16, num_inference_steps=2))
    trainer = Trainer(cfg, reward_model=BrightReward())
    policy = trainer.policy
    x, t = torch.randn(2, *trainer.shape), torch.tensor([0.3, 0.7])
    cond = trainer.prompt_cond[[0, 1]]
    v_bf16 = policy.velocity(x, t, cond, "ref")
    policy.mixed_precision = "no"
    v_fp32 = policy.velocity(x, t, cond, "ref")
    policy.mixed_precision = "bf16"
    assert v_bf16.dtype == torch.float32 and not torch.equal(v_bf16, v_fp32)  # autocast really ran in bf16
    assert torch.allclose(v_bf16, v_fp32, rtol=0.1, atol=0.1)
    before = policy.lora_state_dict()
    res = trainer.train_step()
    assert res.skipped is None and math.isfinite(res.terms["loss"]) and math.isfinite(res.terms["grad_norm"])
    after = policy.lora_state_dict()
    assert all(v.dtype == torch.float32 and bool(torch.isfinite(v).all()) for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in after if ".default." in k)
    assert all(s.dtype == torch.float32 for st in trainer.optimizer.state.values() for s in st.values()
               if s.dim() > 0)



def test_the_shipped_example_configs_load(root: Path) -> None:
    """examples/creflow_tiny*.yaml are valid configs of the current schema (loss: a LossConfig mapping)."""
    from creflow_train.config import load_config
    from creflow_train.losses import LossConfig

    for name in ("creflow_tiny.yaml", "creflow_tiny_ltx.yaml"):
        cfg = load_config(root / "examples" / name)
        assert cfg.loss == LossConfig(mask_floor=0.1) and cfg.sample_with == "old"
        assert Path(cfg.model).name in ("tiny_wan", "tiny_ltx")
