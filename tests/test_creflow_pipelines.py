"""Our rollouts equal the diffusers pipelines' outputs (issue #16 items 1-3) on tiny random models.

Same initial noise, same guidance (≠ 1, with a negative prompt), the checkpoint's scheduler shift, the same
prompt embeddings: `euler_sample` on `VideoFamily.sigmas` must reproduce WanPipeline (text-to-video, and
Wan2.2-A14B's two experts switched at boundary_ratio), WanImageToVideoPipeline (Wan2.1-I2V; Wan2.2-TI2V with
expand_timesteps) and LTXImageToVideoPipeline (dynamic shift), with `output_type="latent"`. The tolerance:
both sides run the same float32 kernels in the same order except where noted (LTX batches its two guidance
branches into one forward, which may sum in another order on another CPU: a few float32 ulps of the
latents' O(1) values). Measured on this machine: bit-identical in all four cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

PROMPT, NEGATIVE = "a red block moves to the green zone", "blue cup"
K, FRAMES, STEPS, GUIDANCE, TEXT_LEN = 2, 9, 4, 4.0, 8
ATOL = 2e-5  # LTX only: float32 ε ≈ 1.2e-7 × |x| ≲ 5 × a few dozen reordered sums over 4 guided steps


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from creflow_train import testing as T

    root = tmp_path_factory.mktemp("pipes")
    return {"t2v": Path(T.build_tiny_wan_moe(root / "moe")), "ti2v": Path(T.build_tiny_wan_ti2v(root / "ti2v")),
            "i2v": Path(T.build_tiny_wan_i2v(root / "i2v")), "ltx": Path(T.build_tiny_ltx(root / "ltx")),
            "images": Path(T.save_tiny_first_frames(root / "img", 1, size=(64, 64))[0]).parent}


def _ours(family, image, size: int, seed: int = 0):
    """(initial noise, our final latents, our prompt/negative conditioning) for K rollouts of PROMPT."""
    from creflow_train.policy import LoraPolicy
    from creflow_train.rollout import euler_sample

    policy = LoraPolicy(family, rank=2, alpha=2.0)  # B = 0: θ equals the base model exactly
    cond = family.encode_prompts([PROMPT], TEXT_LEN)
    if image is not None:
        cond = family.with_images(cond, [image], FRAMES, size, size)
    neg = family.encode_prompts([NEGATIVE], TEXT_LEN)
    shape = family.latent_shape(FRAMES, size, size)
    eps = torch.randn((K, *shape), generator=torch.Generator().manual_seed(seed))
    grid = family.sigmas(STEPS, shape)
    x0 = euler_sample(policy, eps, cond.repeat_interleave(K), STEPS, grid=grid, guidance_scale=GUIDANCE, uncond=neg)
    return eps, x0, cond, neg


def _image(models, size):
    from PIL import Image

    return Image.open(models["images"] / "0.png").convert("RGB").resize((size, size))


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["t2v", "ti2v", "i2v"])
def test_rollout_equals_the_wan_pipelines(models, layout):
    """Text-to-video with two experts (WanPipeline, boundary_ratio 0.875: the first step runs transformer, the
    rest transformer_2), Wan2.2-TI2V (expand_timesteps: clean first frame, per-token timesteps) and Wan2.1-I2V
    (CLIP tokens + the concatenated masked-video condition): our latents equal the pipeline's."""
    from diffusers import WanImageToVideoPipeline, WanPipeline

    from creflow_train.families import load_family

    family = load_family(models[layout])
    assert family.layout == layout and (family.boundary == 875.0) == (layout == "t2v")
    image = _image(models, 32) if layout != "t2v" else None
    eps, x0, cond, neg = _ours(family, image, 32)
    p = family.parts
    common = {"vae": p.vae, "text_encoder": p.text_encoder, "tokenizer": p.tokenizer, "scheduler": family.scheduler(),
              "transformer": p.transformer}
    if layout == "t2v":
        pipe = WanPipeline(**common, transformer_2=p.transformer_2, boundary_ratio=0.875)
        kw = {}
    else:
        pipe = WanImageToVideoPipeline(**common, image_encoder=p.image_encoder, image_processor=p.image_processor,
                                       expand_timesteps=layout == "ti2v")
        kw = {"image": image}
    pe, ne = pipe.encode_prompt(PROMPT, NEGATIVE, max_sequence_length=TEXT_LEN)
    assert torch.equal(pe, cond.embeds) and torch.equal(ne, neg.embeds)  # the same text conditioning
    out = pipe(prompt_embeds=pe.repeat(K, 1, 1), negative_prompt_embeds=ne.repeat(K, 1, 1), latents=eps.clone(),
               height=32, width=32, num_frames=FRAMES, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
               output_type="latent", **kw).frames
    assert torch.equal(pipe.scheduler.sigmas, family.sigmas(STEPS, eps.shape[1:]))  # the same shifted grid
    assert torch.equal(out, x0)  # the same float32 ops in the same order (measured: bit-identical)
    assert float((x0[0] - x0[1]).abs().max()) > 0.1  # rollouts differ: the test compares real paths
    if layout == "ti2v":
        assert torch.equal(x0[:, :, 0], cond.image[:, :, 0].expand(K, -1, -1, -1))  # the first frame is the image


@pytest.mark.slow
def test_rollout_equals_the_ltx_image_to_video_pipeline(models):
    """LTXImageToVideoPipeline with LTX-Video's dynamic-shift scheduler config (mu from the latent size, shift
    terminal 0.1) and guidance 4: same latents. The pipeline takes our packed initial latents (whose first frame
    is our image latent) because it samples the VAE posterior where we take its mode."""
    from diffusers import LTXImageToVideoPipeline

    from creflow_train.families import load_family
    from creflow_train.families.ltx import pack_latents, unpack_latents

    family = load_family(models["ltx"])
    family.parts.scheduler_config = {"_class_name": "FlowMatchEulerDiscreteScheduler", "use_dynamic_shifting": True,
                                     "base_shift": 0.95, "max_shift": 2.05, "base_image_seq_len": 1024,
                                     "max_image_seq_len": 4096, "shift_terminal": 0.1}
    image = _image(models, 64)
    eps, x0, cond, neg = _ours(family, image, 64)
    p = family.parts
    pipe = LTXImageToVideoPipeline(scheduler=family.scheduler(), vae=p.vae, text_encoder=p.text_encoder,
                                   tokenizer=p.tokenizer, transformer=p.transformer)
    start = family.fix_conditioning(eps, cond.repeat_interleave(K))
    out = pipe(image=image, prompt_embeds=cond.embeds.repeat(K, 1, 1), prompt_attention_mask=cond.mask.repeat(K, 1),
               negative_prompt_embeds=neg.embeds.repeat(K, 1, 1), negative_prompt_attention_mask=neg.mask.repeat(K, 1),
               latents=pack_latents(start), height=64, width=64, num_frames=FRAMES, frame_rate=family.frame_rate,
               num_inference_steps=STEPS, guidance_scale=GUIDANCE, output_type="latent").frames
    out = unpack_latents(out, *eps.shape[2:])
    sig = family.sigmas(STEPS, eps.shape[1:])
    assert torch.equal(pipe.scheduler.sigmas, sig) and float(sig[-2]) == pytest.approx(0.1, abs=1e-6)
    assert float((out - x0).abs().max()) <= ATOL  # measured: 0 here; the batched CFG may reorder sums elsewhere
    assert torch.equal(x0[:, :, 0], cond.image[:, :, 0].expand(K, -1, -1, -1))
