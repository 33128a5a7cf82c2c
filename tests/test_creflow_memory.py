"""`creflow train`'s memory switches (#16 item 3) on the tiny random-initialised Wan: gradient checkpointing
(same gradient, fewer saved activations), bf16/fp16 weight loading, the text encoder released after encoding,
the VAE's tiling/slicing switches and a loss pass without device→host syncs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
pytest.importorskip("yaml")

from test_creflow_trainer import BrightReward, recording_trainer, write_config  # noqa: E402


def _saved_bytes(fn) -> int:
    """Bytes of the tensors autograd saves for the backward pass while `fn` runs (outside checkpointed blocks:
    a checkpointed block saves through its own hooks and keeps only its input)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def test_gradient_checkpointing_gives_the_same_gradient_and_saves_less(tiny_model: Path, tmp_path: Path) -> None:
    """One whole step (sampling, reward, NFT + KL + anchor + reflow loss pass) with and without checkpointing:
    the recomputation in the backward pass runs the same kernels on the same inputs in the same process, so the
    gradients and the step's terms are bitwise equal; and autograd saves far fewer bytes with it on."""
    from creflow_train.config import load_config

    runs = {}
    for ckpt in (False, True):
        (tmp_path / str(ckpt)).mkdir()
        path = write_config(tmp_path / str(ckpt), tiny_model, steps=1, gradient_checkpointing=ckpt, mask_floor=0.1,
                            height=16, width=16, num_inference_steps=2, anchor_outside=0.5)
        trainer = recording_trainer(load_config(path), reward_model=BrightReward())
        blocks = trainer.parts.transformer
        assert blocks.gradient_checkpointing is ckpt
        res = trainer.train_step()
        assert res.skipped is None, res
        x, t = torch.randn(2, *trainer.shape), torch.tensor([0.3, 0.7])
        cond = trainer.prompt_cond[[0, 1]]
        saved = _saved_bytes(lambda tr=trainer, x=x, t=t, c=cond: tr.policy.velocity(x, t, c, "default").sum())
        runs[ckpt] = (res, trainer.grads[0], saved)
    (r0, g0, s0), (r1, g1, s1) = runs[False], runs[True]
    assert r0.terms["reflow_n"] > 0 and r0.terms.keys() == r1.terms.keys()
    assert {k: v for k, v in r0.terms.items()} == {k: v for k, v in r1.terms.items()}
    assert all(torch.equal(a, b) for a, b in zip(g0, g1, strict=True))
    assert any(float(g.abs().max()) > 0 for g in g0)
    assert s1 < s0 / 2, (s0, s1)  # the two tiny blocks' activations are no longer saved


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_dtype_loads_transformer_and_text_encoder_in_that_dtype(tiny_model: Path, tmp_path: Path,
                                                                dtype: str) -> None:
    from creflow_train.config import WEIGHT_DTYPES, load_config
    from creflow_train.families import load_family
    from creflow_train.trainer import Trainer

    want = getattr(torch, WEIGHT_DTYPES[dtype])
    fam = load_family(tiny_model, dtype=want)

    def kept(name: str, module=fam.parts.transformer) -> bool:
        """diffusers keeps Wan's norms and time MLP float32; transformers keeps T5's `wo` float32 under fp16."""
        keep = set(getattr(module, "_keep_in_fp32_modules", None) or ())
        return any(part in keep for part in name.split("."))

    base = dict(fam.parts.transformer.named_parameters())
    assert all(p.dtype == (torch.float32 if kept(n) else want) for n, p in base.items())
    # most weights take the dtype (89 % of this tiny model; the time MLP and norms are > 99 % smaller at 1.3B)
    assert sum(p.numel() for n, p in base.items() if not kept(n)) > 0.85 * sum(p.numel() for p in base.values())
    enc = fam.parts.text_encoder
    fp32_ok = dtype == "fp16"  # transformers applies the T5 exception only to fp16
    assert all(p.dtype == (torch.float32 if fp32_ok and kept(n, enc) else want) for n, p in enc.named_parameters())
    assert all(p.dtype == torch.float32 for p in fam.parts.vae.parameters())  # the VAE decodes in float32

    cfg = load_config(write_config(tmp_path, tiny_model, steps=1, dtype=dtype, text_encoder_after="keep",
                                   height=16, width=16, num_inference_steps=2))
    trainer = Trainer(cfg, reward_model=BrightReward())
    named = dict(trainer.parts.transformer.named_parameters())
    assert all(p.dtype == want for n, p in named.items() if ".lora_" not in n and not kept(n))
    assert all(named[n].dtype == torch.float32 for n in trainer.policy.default_names)  # LoRA stays float32
    assert trainer.prompt_cond.embeds.dtype == want
    res = trainer.train_step()
    assert res.skipped is None and math.isfinite(res.terms["loss"]), res


def test_text_encoder_is_freed_or_offloaded_after_encoding(tiny_model: Path, tmp_path: Path) -> None:
    from creflow_train.config import load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, tiny_model, steps=1, text_encoder_after="free", height=16,
                                   width=16, num_inference_steps=2))
    trainer = Trainer(cfg, reward_model=BrightReward())
    assert trainer.parts.text_encoder is None
    assert trainer.prompt_cond.embeds.shape[0] == len(cfg.prompts)
    assert trainer.train_step().skipped is None
    trainer.family.to("cpu")  # a freed encoder is skipped when the family moves
    off = Trainer(load_config(write_config(tmp_path, tiny_model, steps=1, height=16, width=16)),
                  reward_model=BrightReward())
    assert off.cfg.text_encoder_after == "offload"
    assert all(p.device.type == "cpu" for p in off.parts.text_encoder.parameters())
    torch.testing.assert_close(off.prompt_cond.embeds, trainer.prompt_cond.embeds, rtol=0, atol=0)


def test_vae_switches_and_bad_values(tiny_model: Path, tmp_path: Path) -> None:
    from creflow_train.config import ConfigError, config_from_dict, load_config
    from creflow_train.trainer import Trainer

    cfg = load_config(write_config(tmp_path, tiny_model, steps=1, vae_tiling=True, vae_slicing=True,
                                   height=16, width=16, num_inference_steps=2))
    trainer = Trainer(cfg, reward_model=BrightReward())
    assert trainer.parts.vae.use_tiling and trainer.parts.vae.use_slicing
    assert trainer.train_step().skipped is None
    base = {"model": "m", "spec": "s.ltl", "prompts": ["p"], "output_dir": "o"}
    for key, value, msg in (("dtype", "fp8", "dtype: 'fp8' is not one of: fp32, bf16, fp16"),
                            ("text_encoder_after", "gpu", "text_encoder_after: 'gpu' is not one of"),
                            ("gradient_checkpointing", "yes", "gradient_checkpointing: must be true or false")):
        with pytest.raises(ConfigError, match=msg):
            config_from_dict(base | {key: value})


def test_the_loss_pass_makes_no_host_syncs(tiny_model: Path, tmp_path: Path, monkeypatch) -> None:
    """No `.item()` / `float(tensor)` inside the micro-batched policy and reflow loss passes: the terms stay tensors
    until the step ends (one transfer), and the logged values equal creflow_objective's float terms."""
    from creflow_train.config import load_config
    from creflow_train.losses import creflow_objective

    cfg = load_config(write_config(tmp_path, tiny_model, steps=1, micro_batch=2, height=16, width=16,
                                   num_inference_steps=2, mask_floor=0.1))
    trainer = recording_trainer(cfg, reward_model=BrightReward())
    syncs = []
    real_item, real_float = torch.Tensor.item, torch.Tensor.__float__
    for name in ("_policy_loss", "_reflow_loss"):
        inner = getattr(trainer, name)

        def counted(*a, _inner=inner, **k):
            monkeypatch.setattr(torch.Tensor, "item", lambda t: syncs.append("item") or real_item(t))
            monkeypatch.setattr(torch.Tensor, "__float__", lambda t: syncs.append("float") or real_float(t))
            try:
                return _inner(*a, **k)
            finally:
                monkeypatch.setattr(torch.Tensor, "item", real_item)
                monkeypatch.setattr(torch.Tensor, "__float__", real_float)

        monkeypatch.setattr(trainer, name, counted)
    res = trainer.train_step()
    assert res.skipped is None and res.terms["reflow_n"] > 0
    assert syncs == []
    assert all(isinstance(v, float) for v in res.terms.values())
    # tensor_terms returns the same values as tensors
    g = torch.Generator().manual_seed(0)
    from creflow_train.losses import LossConfig, PolicyBatch

    b = PolicyBatch(*(torch.randn(3, 2, 2, 4, 4, generator=g) for _ in range(4)), torch.rand(3, generator=g),
                    torch.randn(3, generator=g), torch.randn(3, 2, 2, 4, 4, generator=g),
                    (torch.rand(3, 2, 4, 4, generator=g) > 0.5).float(), torch.tensor([True, False, True]))
    lc = LossConfig()
    loss_f, floats = creflow_objective(lc, b)
    loss_t, tensors = creflow_objective(lc, b, tensor_terms=True)
    assert torch.equal(loss_f, loss_t) and floats.keys() == tensors.keys()
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in tensors.values())
    for k, v in tensors.items():  # the same float32 sum, divided in float32 instead of float64: one rounding (u)
        assert float(v) == pytest.approx(floats[k], rel=2.0**-24, abs=1e-30), k


@pytest.mark.slow
def test_two_experts_are_both_checkpointed_and_the_clip_encoder_is_released(tmp_path: Path) -> None:
    """Wan2.2-A14B layout: gradient checkpointing on both experts; Wan2.1-I2V: `free` also drops CLIP."""
    from creflow_train.config import load_config
    from creflow_train.testing import build_tiny_wan_i2v, build_tiny_wan_moe, save_tiny_first_frames
    from creflow_train.trainer import Trainer

    moe = build_tiny_wan_moe(tmp_path / "moe")
    (tmp_path / "a").mkdir()
    cfg = load_config(write_config(tmp_path / "a", moe, steps=1, gradient_checkpointing=True, height=16, width=16,
                                   num_inference_steps=2))
    trainer = Trainer(cfg, reward_model=BrightReward())
    experts = trainer.parts.transformers()
    assert len(experts) == 2 and all(t.gradient_checkpointing for t in experts)
    assert trainer.train_step().skipped is None

    i2v = build_tiny_wan_i2v(tmp_path / "i2v")
    frames = Path(save_tiny_first_frames(tmp_path / "img", 2)[0]).parent
    (tmp_path / "b").mkdir()
    cfg = load_config(write_config(tmp_path / "b", i2v, steps=1, text_encoder_after="free", images=str(frames)))
    trainer = Trainer(cfg, reward_model=BrightReward())
    assert trainer.parts.text_encoder is None and trainer.parts.image_encoder is None
    assert trainer.prompt_cond.image_embeds is not None  # CLIP's tokens were computed before it was freed
    assert trainer.train_step().skipped is None
