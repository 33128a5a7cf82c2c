"""Image-to-video conditioning, guidance, the shifted grid, Wan2.2-A14B's two experts and `creflow sample`
(issue #16 items 1-3). Equality with the diffusers pipelines themselves: tests/test_creflow_pipelines.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from test_creflow_trainer import write_config  # noqa: E402  (the trainer tests' config helper)
from test_creflow_trainer_bugs import GradedReward, Spy  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from creflow_train import testing as T

    root = tmp_path_factory.mktemp("i2v")
    return {"ti2v": Path(T.build_tiny_wan_ti2v(root / "ti2v")), "i2v": Path(T.build_tiny_wan_i2v(root / "i2v")),
            "moe": Path(T.build_tiny_wan_moe(root / "moe")), "t2v": Path(T.build_tiny_wan(root / "t2v")),
            "ltx": Path(T.build_tiny_ltx(root / "ltx")),  # LTX-Video checkpoints do text- and image-to-video
            "images": Path(T.save_tiny_first_frames(root / "img", 2)[0]).parent,
            "images64": Path(T.save_tiny_first_frames(root / "img64", 2, size=(64, 64))[0]).parent}


# ------------------------------------------------------------------------------------------ guidance, grid
class TextVelocity:
    """A policy whose velocity is the mean of the text embeddings (cond rows 2, negative rows 1): exact CFG."""

    def velocity(self, x, t, cond, which="default"):
        return torch.full_like(x, 0.0) + cond.embeds.mean(dim=(1, 2)).view(-1, *([1] * (x.dim() - 1)))


def test_guidance_mixes_the_two_branches_as_the_pipelines_do() -> None:
    """v = v_u + g·(v_c − v_u) each step; on a straight path x0 = ε − Σ|dt|·v = ε − (1 + g·(2 − 1))."""
    from creflow_train.families import TextCond
    from creflow_train.rollout import euler_sample

    cond = TextCond(torch.full((2, 3, 4), 2.0), torch.ones(2, 3, dtype=torch.bool))
    neg = TextCond(torch.full((1, 3, 4), 1.0), torch.ones(1, 3, dtype=torch.bool))
    eps = torch.randn(2, 4, 2, 4, 4, dtype=torch.float64)
    for g in (1.0, 3.0, 5.0):
        x0 = euler_sample(TextVelocity(), eps, cond, steps=3, guidance_scale=g, uncond=neg if g > 1 else None)
        assert torch.allclose(x0, eps - (1 + g * (2 - 1)) if g > 1 else eps - 2.0, atol=1e-12)
    with pytest.raises(ValueError, match="negative prompt"):
        euler_sample(TextVelocity(), eps, cond, steps=3, guidance_scale=2.0)


def test_the_grid_is_the_checkpoints_shift_and_training_times_lie_on_it(tiny, tmp_path) -> None:
    """The TI2V checkpoint ships UniPC with flow_shift 5: our grid is FlowMatchEuler's at shift 5, i.e. σ =
    s·u/(1 + (s − 1)·u) on u = linspace(1, σ_min, N) (σ_min the shifted 1/1000), then 0 — computed here in
    float64. `shift:` overrides it; training times are drawn from σ_0 … σ_{N−1}."""
    from creflow_train.config import load_config
    from creflow_train.families import load_family
    from creflow_train.trainer import Trainer

    fam = load_family(tiny["ti2v"])

    def want(s, n):
        sm = s * 1e-3 / (1 + (s - 1) * 1e-3)
        u = np.linspace(1.0, sm, n)
        return np.append(s * u / (1 + (s - 1) * u), 0.0)

    shape = fam.latent_shape(9, 32, 32)
    assert np.allclose(fam.sigmas(4, shape).numpy(), want(5.0, 4), atol=1e-6)
    assert np.allclose(fam.sigmas(6, shape, shift=2.0).numpy(), want(2.0, 6), atol=1e-6)
    assert np.allclose(load_family(tiny["t2v"]).sigmas(4, shape).numpy(), want(1.0, 4), atol=1e-6)  # no scheduler/
    cfg = load_config(write_config(tmp_path, tiny["ti2v"], num_frames=9, num_inference_steps=4))
    trainer = Trainer(cfg, reward_model=GradedReward())
    assert cfg.shift is None and torch.equal(trainer.sampling.grid, fam.sigmas(4, shape))
    times = trainer._times(400)
    assert set(times.tolist()) == set(trainer.sampling.grid[:-1].tolist())  # every grid time, nothing else


# ------------------------------------------------------------------------------------ image conditioning
def _i2v_trainer(tmp_path, model, images, reward, **over):
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, model, steps=1, prompts_per_step=2, num_frames=9,
                                   images=str(images), guidance_scale=3.0, **over))
    return Trainer(cfg, reward_model=reward)


@pytest.mark.parametrize("layout", ["ti2v", "i2v", "ltx"])
def test_the_conditioning_frame_is_in_no_mask_and_no_loss_term(tiny, tmp_path, monkeypatch, layout) -> None:
    """Rewards see the whole decoded video; with all-ones pixel masks the latent masks are still 0 on latent
    frame 0, and every NFT/KL/anchor and reflow tensor reaching the objective lacks latent frame 0. For TI2V
    and LTX every rollout's latent frame 0 is the image latent (with Wan's causal VAE decoder a prompt's
    decoded first frames are then equal); training uses the conditional branch only (the loss pass never sees
    the negative prompt)."""
    import creflow_train.rollout as R

    spy = Spy(monkeypatch)
    seen, seen_videos, calls = {}, [], []
    real = R.sample_groups

    def sample_spy(*a, **k):
        seen["ro"] = ro = real(*a, **k)
        calls.clear()  # from here on: the loss pass
        return ro

    monkeypatch.setattr(R, "sample_groups", sample_spy)

    class Reward(GradedReward):
        def __call__(self, videos):
            seen_videos.append(videos)
            return super().__call__(videos)

    size = 64 if layout == "ltx" else 32
    trainer = _i2v_trainer(tmp_path, tiny[layout], tiny["images64" if size == 64 else "images"], Reward(),
                           reflow_close_diff=None, height=size, width=size, micro_batch=3 if size == 64 else 0)
    real_velocity = trainer.policy.velocity
    monkeypatch.setattr(trainer.policy, "velocity", lambda x, t, c, w="default": calls.append(c) or
                        real_velocity(x, t, c, w))
    res = trainer.train_step()
    assert res.skipped is None
    ro, tl = seen["ro"], trainer.shape[1]
    assert seen_videos[0].shape[1] == 9  # the reward scores every decoded frame, the conditioning one included
    ones = [np.ones((9, size, size), np.float32)] * 8
    masks, _ = trainer._latent_masks({"masks": ones}, torch.ones(8, dtype=bool), 8)
    assert float(masks[:, 0].abs().sum()) == 0.0 and bool((masks[:, 1:] == 1).all())
    pb, rb = spy.policy()[0], spy.reflow()[0]  # (LTX runs micro-batches of 3 rows: the first chunk's)
    for x in (pb.v_theta, pb.v_old, pb.v_ref, pb.x0, pb.eps, rb.v_theta, rb.x0_star, rb.eps):
        assert x.shape[2] == tl - 1
    assert torch.equal(pb.x0, ro.x0[:len(pb), :, 1:]) and pb.mask.shape[1] == tl - 1
    neg = trainer.sampling.uncond.embeds[0]
    assert calls and not any(torch.equal(c.embeds[0], neg) for c in calls)  # conditional branch only in the loss
    if layout != "i2v":
        img = trainer.prompt_cond.image.repeat_interleave(4, dim=0)
        assert torch.equal(ro.x0[:, :, :1], img)
    if layout == "ti2v":  # Wan's causal decoder: pixel frame 0 depends on latent frame 0 alone (LTX's does not)
        assert bool((ro.videos[:4, 0] == ro.videos[0, 0]).all()) and not torch.equal(ro.videos[0, 1:], ro.videos[1, 1:])


def test_image_config_errors_name_the_key(tiny, tmp_path) -> None:
    from creflow_train.config import ConfigError, config_from_dict, load_config
    from creflow_train.trainer import Trainer

    base = {"model": "m", "spec": "s.ltl", "prompts": ["p", "q"], "output_dir": "o"}
    for bad, msg in [({"images": ["a.png"]}, "1 images for 2 prompts"), ({"images": 3}, "folder or a list"),
                     ({"guidance_scale": 0.5}, "must be >= 1"), ({"shift": 0}, "must be > 0")]:
        with pytest.raises(ConfigError, match=rf"^{next(iter(bad))}: .*{msg}"):
            config_from_dict(base | bad)
    cfg = config_from_dict(base | {"images": "frames", "shift": None}, base_dir=tmp_path)
    assert cfg.images == str(tmp_path / "frames") and cfg.shift is None and cfg.max_sequence_length is None
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "0.png").write_bytes((tiny["images"] / "0.png").read_bytes())
    cases = [(tiny["i2v"], {}, r"images: the checkpoint .* is image-to-video only"),
             (tiny["t2v"], {"images": str(tiny["images"])}, r"images: this Wan checkpoint is text-to-video"),
             (tiny["ti2v"], {"images": str(tmp_path / "one")}, r"images: .*1\.png \(the first frame of prompt 1")]
    for i, (model, over, msg) in enumerate(cases):
        d = tmp_path / f"c{i}"
        d.mkdir()
        with pytest.raises(ConfigError, match=msg):
            Trainer(load_config(write_config(d, model, **over)), reward_model=GradedReward())


# ------------------------------------------------------------------------------------------- two experts
def test_two_experts_switch_at_the_boundary_and_both_carry_lora(tiny) -> None:
    """Rows at t·1000 ≥ boundary_ratio·1000 (875) run transformer, the others transformer_2 (a mixed batch is
    split and put back in order); LoRA θ and θ_old sit on both experts and a loss straddling the boundary
    gives both experts' LoRA a gradient, saved under distinct keys."""
    from creflow_train.families import load_family
    from creflow_train.policy import LoraPolicy

    fam = load_family(tiny["moe"])
    p, cond = fam.parts, fam.encode_prompts(["a red block", "blue cup", "a cup"], 8)
    x = torch.randn(3, *fam.latent_shape(5, 32, 32), generator=torch.Generator().manual_seed(1))
    ts = torch.tensor([875.0, 874.9, 990.0])
    out = fam.forward(x, ts, cond)

    def direct(model, i):
        return model(hidden_states=x[i:i + 1], timestep=ts[i:i + 1], encoder_hidden_states=cond.embeds[i:i + 1],
                     return_dict=False)[0]

    for i, model in enumerate((p.transformer, p.transformer_2, p.transformer)):
        assert torch.allclose(out[i:i + 1], direct(model, i), atol=1e-6)
    assert not torch.allclose(direct(p.transformer, 1), direct(p.transformer_2, 1), atol=1e-3)  # they differ
    policy = LoraPolicy(fam, rank=2, alpha=2.0)
    second = [n for n in policy.default_names if n.startswith("transformer_2.")]
    assert second and len(second) * 2 == len(policy.default_names)
    v = policy.velocity(x, ts / 1000, cond)
    v.square().mean().backward()
    grads = {n: q.grad for n, q in zip(policy.default_names, policy.trainable_parameters(), strict=True)}
    for prefix_ok in (lambda n: n.startswith("transformer_2."), lambda n: not n.startswith("transformer_2.")):
        assert any(g is not None and float(g.abs().sum()) > 0 for n, g in grads.items() if prefix_ok(n))
    assert set(policy.lora_state_dict()) == set(policy.default_names + policy.old_names)


# --------------------------------------------------------------------------------------- end to end (CLI)
def _example(tmp_path: Path, name: str, model: Path) -> Path:
    """The shipped example config with its model and output_dir pointed into tmp_path (images stay shipped)."""
    import yaml

    cfg = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    cfg |= {"model": str(model), "output_dir": str(tmp_path / "run"), "images": str(EXAMPLES / cfg["images"]),
            "spec": str((EXAMPLES / cfg["spec"]).resolve())}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])  # (T, H, W, 3)


@pytest.mark.slow
def test_example_trains_then_samples_k_videos_per_prompt_sharing_the_first_frame(tiny, tmp_path) -> None:
    """`creflow train examples/creflow_tiny_i2v.yaml` runs end to end; `creflow sample … --out D` (before and
    after, --checkpoint) writes p<i>_k<k>.mp4 for every prompt and rollout — first frames identical within a
    prompt, later frames different — and rewards.jsonl with each rollout's reward and verdicts."""
    from typer.testing import CliRunner

    from creflow_train.cli import app

    cfg_path = _example(tmp_path, "creflow_tiny_i2v.yaml", tiny["ti2v"])
    run = CliRunner().invoke(app, ["train", str(cfg_path), "--quiet"])
    assert run.exit_code == 0, run.output
    ckpt = tmp_path / "run" / "checkpoints" / "checkpoint-0000002.pt"
    assert ckpt.is_file()
    for out, extra in ((tmp_path / "before", []), (tmp_path / "after", ["--checkpoint", str(ckpt)])):
        res = CliRunner().invoke(app, ["sample", str(cfg_path), "--out", str(out), "--quiet", *extra])
        assert res.exit_code == 0, res.output
        lines = [json.loads(s) for s in (out / "rewards.jsonl").read_text().splitlines()]
        assert [(r["prompt_index"], r["rollout"]) for r in lines] == [(i, k) for i in range(2) for k in range(4)]
        assert all(r["video"] == f"p{r['prompt_index']}_k{r['rollout']}.mp4" and 0 <= r["reward"] <= 1
                   and {c["name"] for c in r["constraints"]} >= {"reach", "deliver"} for r in lines)
        for i in range(2):
            v = [_frames(out / f"p{i}_k{k}.mp4") for k in range(4)]
            assert v[0].shape == (9, 32, 32, 3)
            assert all(np.array_equal(v[0][0], x[0]) for x in v)  # the conditioning frame
            assert all(not np.array_equal(v[0][1:], x[1:]) for x in v[1:])  # the generated ones differ
    again = CliRunner().invoke(app, ["sample", str(cfg_path), "--out", str(tmp_path / "again"), "--quiet"])
    assert again.exit_code == 0
    assert (tmp_path / "again" / "rewards.jsonl").read_text() == (tmp_path / "before" / "rewards.jsonl").read_text()


@pytest.mark.slow
def test_wan21_i2v_example_trains_end_to_end(tiny, tmp_path) -> None:
    from typer.testing import CliRunner

    from creflow_train.cli import app

    res = CliRunner().invoke(app, ["train", str(_example(tmp_path, "creflow_tiny_wan21_i2v.yaml", tiny["i2v"])),
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    log = [json.loads(s) for s in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]


def test_text_length_defaults_to_the_familys_and_sample_checks_its_checkpoint(tiny, tmp_path) -> None:
    """max_sequence_length null: Wan's 512 text tokens (LTX's 128 is its class default); `creflow sample` with a
    missing checkpoint is a usage error naming --checkpoint."""
    from typer.testing import CliRunner

    from creflow_train.cli import app
    from creflow_train.config import load_config
    from creflow_train.families.ltx import LtxFamily
    from creflow_train.trainer import Trainer

    path = write_config(tmp_path, tiny["t2v"], max_sequence_length=None)
    trainer = Trainer(load_config(path), reward_model=GradedReward())
    assert trainer.prompt_cond.embeds.shape[1] == 512 and LtxFamily.max_sequence_length == 128
    res = CliRunner().invoke(app, ["sample", str(path), "--out", str(tmp_path / "s"),
                                   "--checkpoint", str(tmp_path / "nope.pt")])
    assert res.exit_code == 2 and "--checkpoint" in res.output and not (tmp_path / "s").exists()
