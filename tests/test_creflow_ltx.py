"""LTX-Video through `creflow train`: a tiny random-initialised LTX pipeline saved to disk, trained offline.

Checks the family plumbing against diffusers' own LTXPipeline conventions (token packing, latent
normalisation, the transformer's inputs, VAE decoding), family detection, and the same end-to-end loop as the
Wan test: two steps of sample → score → update → checkpoint, then an exact resume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from test_creflow_trainer import BrightReward, write_config  # noqa: E402  (the trainer tests' helpers)

LTX = {"num_frames": 9, "height": 64, "width": 64}  # 1 + 8 frames, 2 × 32 pixels → latents (8, 2, 2, 2)


@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from creflow_train.testing import build_tiny_ltx

    return Path(build_tiny_ltx(tmp_path_factory.mktemp("tiny_ltx")))


def test_pack_unpack_round_trip_is_exact_and_matches_the_pipeline() -> None:
    from diffusers import LTXPipeline

    from creflow_train.families.ltx import pack_latents, unpack_latents

    x = torch.randn(2, 3, 4, 6, 8)
    for p, pt in ((1, 1), (2, 1), (2, 2)):
        tokens = pack_latents(x, p, pt)
        assert tokens.shape == (2, 4 // pt * 6 // p * 8 // p, 3 * pt * p * p)
        assert torch.equal(tokens, LTXPipeline._pack_latents(x, p, pt))
        back = unpack_latents(tokens, 4 // pt, 6 // p, 8 // p, p, pt)
        assert torch.equal(back, x)
        assert torch.equal(back, LTXPipeline._unpack_latents(tokens, 4 // pt, 6 // p, 8 // p, p, pt))


def test_family_detection_and_clear_errors(tiny_ltx: Path, tmp_path: Path) -> None:
    from creflow_train.config import ConfigError
    from creflow_train.families import detect_family, load_family
    from creflow_train.testing import build_tiny_wan

    wan = Path(build_tiny_wan(tmp_path / "wan"))
    assert detect_family(tiny_ltx) == "ltx" and detect_family(wan) == "wan"
    assert type(load_family(wan, "auto")).__name__ == "WanFamily"
    odd = tmp_path / "odd"
    shutil.copytree(tiny_ltx, odd)
    cfg_path = odd / "transformer" / "config.json"
    cfg_path.write_text(json.dumps(json.loads(cfg_path.read_text()) | {"_class_name": "FluxTransformer2DModel"}))
    with pytest.raises(ConfigError, match=rf"^model: {odd} holds a 'FluxTransformer2DModel' transformer"):
        detect_family(odd)
    assert type(load_family(odd, "ltx")).__name__ == "LtxFamily"  # an explicit family skips detection
    with pytest.raises(ConfigError, match=rf"^model: {tmp_path} has no transformer/config.json"):
        detect_family(tmp_path)
    shutil.rmtree(odd / "tokenizer")
    with pytest.raises(ConfigError, match=rf"^model: {odd} is missing subfolder tokenizer/"):
        load_family(odd, "ltx")


def test_tiny_ltx_compresses_like_ltx_and_follows_the_pipeline(tiny_ltx: Path) -> None:
    """8× temporal / 32× spatial VAE; the policy's velocity and decode equal LTXPipeline's own calls."""
    from diffusers import LTXPipeline

    from creflow_train.config import ConfigError
    from creflow_train.families import load_family
    from creflow_train.families.ltx import LtxFamily
    from creflow_train.policy import LoraPolicy

    fam = load_family(tiny_ltx, frame_rate=16.0)
    assert isinstance(fam, LtxFamily) and (fam.temporal, fam.spatial, fam.patch) == (8, 32, (1, 1))
    assert fam.latent_shape(9, 64, 64) == (8, 2, 2, 2) and fam.latent_shape(17, 32, 96) == (8, 3, 1, 3)
    for sizes, key in (((8, 64, 64), "num_frames"), ((9, 48, 64), "height"), ((9, 64, 40), "width")):
        with pytest.raises(ConfigError, match=rf"^{key}: ltx needs"):
            fam.latent_shape(*sizes)
    vae = fam.parts.vae
    z = torch.randn(1, 3, 9, 64, 64).clamp(-1, 1)
    with torch.no_grad():
        assert tuple(vae.encode(z).latent_dist.mode().shape) == (1, 8, 2, 2, 2)  # the encoder agrees

    cond = fam.encode_prompts(["a red block", "a blue cup on the table"], 8)
    assert cond.embeds.shape == (2, 8, 16) and cond.mask.sum(dim=1).tolist() == [3, 6]
    policy = LoraPolicy(fam, rank=4, alpha=8.0, targets=["to_q", "to_k", "to_v", "to_out.0"])
    x, t = torch.randn(2, 8, 2, 2, 2), torch.tensor([0.25, 0.8])
    v = policy.velocity(x, t, cond, "ref")
    with torch.no_grad():
        out = fam.parts.transformer(
            hidden_states=LTXPipeline._pack_latents(x, 1, 1), encoder_hidden_states=cond.embeds,
            timestep=t * 1000, encoder_attention_mask=cond.mask, num_frames=2, height=2, width=2,
            rope_interpolation_scale=(8 / 16.0, 32, 32), return_dict=False)[0]
    assert torch.equal(v, LTXPipeline._unpack_latents(out, 2, 2, 2, 1, 1))
    assert not torch.equal(v, policy.velocity(x, t, cond.embeds, "ref"))  # the text mask matters

    frames = fam.decode(x)
    assert frames.shape == (2, 9, 3, 64, 64) and float(frames.min()) >= 0 and float(frames.max()) <= 1
    latents = LTXPipeline._denormalize_latents(x, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
    with torch.no_grad():
        video = vae.decode(latents, torch.zeros(2), return_dict=False)[0]
    assert torch.allclose(frames, ((video + 1) / 2).clamp(0, 1).permute(0, 2, 1, 3, 4), atol=1e-6)


@pytest.mark.slow
def test_ltx_train_checkpoint_and_exact_resume(tiny_ltx: Path, tmp_path: Path) -> None:
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    path = write_config(tmp_path, tiny_ltx, prompts_per_step=2, micro_batch=3, num_inference_steps=2, **LTX)
    trainer = Trainer(load_config(path), reward_model=BrightReward())
    assert trainer.family.name == "ltx" and trainer.shape == (8, 2, 2, 2)
    policy = trainer.policy
    base0 = {n: p.detach().clone() for n, p in trainer.parts.transformer.named_parameters() if ".lora_" not in n}
    lora0 = policy.lora_state_dict()
    results = trainer.run()
    assert [r.step for r in results] == [1, 2] and all(r.skipped is None for r in results), results
    for r in results:
        assert r.n_valid == 8 and r.terms["reflow_n"] > 0 and r.terms["credit_nft_mask_frac"] > 0.2
    lora1 = policy.lora_state_dict()
    assert any(not torch.equal(lora0[k], lora1[k]) for k in lora1 if ".default." in k)
    assert all(torch.equal(base0[n], p) for n, p in trainer.parts.transformer.named_parameters() if n in base0)

    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("checkpoint-*.pt"))
    assert [p.name for p in ckpts] == ["checkpoint-0000001.pt", "checkpoint-0000002.pt"]
    ckpts[-1].unlink()  # resume from step 1: redoing step 2 reproduces the first run bit for bit
    again = Trainer(load_config(path), reward_model=BrightReward())
    assert [r.step for r in again.run()] == [2] and again.step == 2
    lora2 = again.policy.lora_state_dict()
    assert all(torch.equal(lora1[k], lora2[k]) for k in lora1)


def test_cli_trains_ltx_with_the_reward_model(tiny_ltx: Path, tmp_path: Path) -> None:
    """`creflow train` on the LTX directory (family detected, bf16 autocast) scores with the real RewardModel."""
    from typer.testing import CliRunner

    from creflow_train.cli import app

    path = write_config(tmp_path, tiny_ltx, steps=1, group_size=2, prompts=["a blue cup"], mixed_precision="bf16",
                        **LTX)
    res = CliRunner().invoke(app, ["train", str(path), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "trained to step 1 (1 steps this run" in res.output
    bad = write_config(tmp_path, tiny_ltx, num_frames=12)
    res = CliRunner().invoke(app, ["train", str(bad), "--no-resume"])
    assert res.exit_code == 2 and "num_frames: ltx needs 1 + 8·k frames, got 12" in res.output
