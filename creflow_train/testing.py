"""Tiny random-initialised checkpoints for offline tests and smoke runs (not used by training itself).

`build_tiny_wan` / `build_tiny_ltx` save a diffusers-layout directory (transformer/ vae/ text_encoder/
tokenizer/) small enough to train on a CPU in seconds; `creflow tiny-model wan DIR` does the same from the
shell. The tokenizer is a WordLevel vocabulary over `TINY_WORDS`, built offline with `tokenizers`.

Image-to-video and two-expert layouts (all offline, random weights, real diffusers classes and configs):
- `build_tiny_wan_ti2v`: the Wan2.2-TI2V-5B layout — model_index.json `expand_timesteps: true`, transformer
  in_channels = z (the first latent frame replaced by the encoded image, per-token timesteps), UniPC scheduler
  config with flow_shift 5 as the released checkpoint ships;
- `build_tiny_wan_i2v`: the Wan2.1-I2V layout — transformer in_channels = 2z + 4, image_dim / added_kv_proj_dim
  set, a 2-layer CLIPVisionModel in image_encoder/ and a CLIPImageProcessor in image_processor/, flow_shift 3;
- `build_tiny_wan_moe`: the Wan2.2-A14B layout — transformer/ and transformer_2/ (different random weights),
  model_index.json `boundary_ratio: 0.875`.
`save_tiny_first_frames` writes `<i>.png` first frames (a toy_carry scene) for `images:`.
"""

from __future__ import annotations

import json
import os

TINY_WORDS = ("a", "red", "block", "moves", "to", "the", "green", "zone", "blue", "cup", "on", "table",
              "gripper", "square", "carries", "goal")


def save_tiny_tokenizer(path: str) -> None:
    """A WordLevel tokenizer over TINY_WORDS (built offline with `tokenizers`), saved as a fast tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: 3 + i for i, w in enumerate(TINY_WORDS)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(path)


TINY_WAN_TRANSFORMER = {"patch_size": (1, 2, 2), "num_attention_heads": 2, "attention_head_dim": 8,
                        "in_channels": 4, "out_channels": 4, "text_dim": 16, "freq_dim": 16, "ffn_dim": 32,
                        "num_layers": 1, "rope_max_seq_len": 32}


def build_tiny_wan(root: str | os.PathLike[str], seed: int = 0, **transformer: object) -> str:
    """Save a tiny random-initialised Wan checkpoint (diffusers layout) for offline tests and smoke runs.

    1-layer WanTransformer3DModel (2 heads × 8, patch (1, 2, 2), 4 latent channels; `transformer` overrides
    its config), an AutoencoderKLWan with base_dim 8 (4× temporal, 8× spatial compression), a 1-layer UMT5
    encoder and a WordLevel tokenizer.
    """
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    out = os.fspath(root)
    torch.manual_seed(seed)
    WanTransformer3DModel(**(TINY_WAN_TRANSFORMER | transformer)).save_pretrained(os.path.join(out, "transformer"))
    AutoencoderKLWan(
        base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.1, -0.1, 0.0, 0.2], latents_std=[1.5, 1.0, 0.8, 1.2],
    ).save_pretrained(os.path.join(out, "vae"))
    t5 = UMT5Config(vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                    relative_attention_num_buckets=8)
    UMT5EncoderModel(t5).save_pretrained(os.path.join(out, "text_encoder"))
    save_tiny_tokenizer(os.path.join(out, "tokenizer"))
    return out


def build_tiny_ltx(root: str | os.PathLike[str], seed: int = 0) -> str:
    """Save a tiny random-initialised LTX-Video checkpoint (diffusers layout) for offline tests and smoke runs.

    1-layer LTXVideoTransformer3DModel (2 heads × 8, patch 1, 8 latent channels), an AutoencoderKLLTXVideo with
    8-channel blocks but LTX's real compression (patch 4 × three 2× stages: 8× temporal, 32× spatial; timestep
    conditioned decoder, output conv scaled up for contrast), non-trivial latents_mean/std and scaling_factor, a
    1-layer T5 encoder and a WordLevel tokenizer.
    """
    import torch
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    out = os.fspath(root)
    torch.manual_seed(seed)
    LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, num_layers=1, caption_channels=16,
    ).save_pretrained(os.path.join(out, "transformer"))
    vae = AutoencoderKLLTXVideo(
        latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False), decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4, upsample_factor=(1,) * 4,
        timestep_conditioning=True, patch_size=4, patch_size_t=1, scaling_factor=0.9,
    )
    with torch.no_grad():
        vae.latents_mean.copy_(torch.linspace(-0.2, 0.2, 8))
        vae.latents_std.copy_(torch.linspace(0.8, 1.4, 8))
        # random init decodes to low-contrast grey; 4× on the output conv gives saturated colours the colour
        # grounder can see, so rewards differ between rollouts (as with the tiny Wan VAE)
        vae.decoder.conv_out.conv.weight.mul_(4.0)
    if (vae.temporal_compression_ratio, vae.spatial_compression_ratio) != (8, 32):
        raise RuntimeError("tiny LTX VAE must compress like the real one (8× temporal, 32× spatial)")
    vae.save_pretrained(os.path.join(out, "vae"))
    t5 = T5Config(vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                  relative_attention_num_buckets=8)
    T5EncoderModel(t5).save_pretrained(os.path.join(out, "text_encoder"))
    save_tiny_tokenizer(os.path.join(out, "tokenizer"))
    return out


def _write_json(path: str, data: dict) -> None:
    """Write `data` as indented JSON, creating the parent folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)


def _wan_scheduler(out: str, flow_shift: float) -> None:
    """scheduler/scheduler_config.json as the released Wan checkpoints ship it (UniPC with a flow shift)."""
    _write_json(os.path.join(out, "scheduler", "scheduler_config.json"), {
        "_class_name": "UniPCMultistepScheduler", "flow_shift": flow_shift, "num_train_timesteps": 1000,
        "prediction_type": "flow_prediction", "use_flow_sigmas": True})


def build_tiny_wan_ti2v(root: str | os.PathLike[str], seed: int = 0) -> str:
    """Save a tiny random Wan2.2-TI2V-5B-layout checkpoint: `build_tiny_wan` plus model_index.json
    (`expand_timesteps: true`) and a UniPC scheduler config with flow_shift 5."""
    out = build_tiny_wan(root, seed)
    _write_json(os.path.join(out, "model_index.json"), {"_class_name": "WanPipeline", "expand_timesteps": True,
                                                         "boundary_ratio": None})
    _wan_scheduler(out, 5.0)
    return out


def build_tiny_wan_i2v(root: str | os.PathLike[str], seed: int = 0) -> str:
    """Save a tiny random Wan2.1-I2V-layout checkpoint: transformer in_channels 2z + 4 = 12 with CLIP image
    cross-attention (image_dim 16), a 2-layer CLIPVisionModel (32 px, patch 16) and its CLIPImageProcessor."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    out = build_tiny_wan(root, seed, in_channels=12, image_dim=16, added_kv_proj_dim=16)
    torch.manual_seed(seed + 1)
    CLIPVisionModel(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, image_size=32, patch_size=16)).save_pretrained(
        os.path.join(out, "image_encoder"))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        os.path.join(out, "image_processor"))
    _write_json(os.path.join(out, "model_index.json"), {"_class_name": "WanImageToVideoPipeline",
                                                         "expand_timesteps": False, "boundary_ratio": None})
    _wan_scheduler(out, 3.0)
    return out


def build_tiny_wan_moe(root: str | os.PathLike[str], seed: int = 0, boundary_ratio: float = 0.875) -> str:
    """Save a tiny random Wan2.2-A14B-layout checkpoint: two experts (transformer/ for high noise,
    transformer_2/ with other random weights for low noise) and model_index.json's `boundary_ratio`."""
    import torch
    from diffusers import WanTransformer3DModel

    out = build_tiny_wan(root, seed)
    torch.manual_seed(seed + 7)
    WanTransformer3DModel(**TINY_WAN_TRANSFORMER).save_pretrained(os.path.join(out, "transformer_2"))
    _write_json(os.path.join(out, "model_index.json"), {
        "_class_name": "WanPipeline", "boundary_ratio": boundary_ratio, "expand_timesteps": False,
        "transformer": ["diffusers", "WanTransformer3DModel"], "transformer_2": ["diffusers", "WanTransformer3DModel"]})
    _wan_scheduler(out, 3.0)
    return out


def save_tiny_first_frames(folder: str | os.PathLike[str], n: int = 1, size: tuple[int, int] = (32, 32),
                           seed: int = 0) -> list[str]:
    """Write `<i>.png` (i < n) first frames of a toy_carry scene (grey table, green goal zone, red block,
    white gripper, blue and yellow objects at seeded positions) at (height, width) `size`; returns the paths."""
    import numpy as np
    from PIL import Image

    h, w = size
    rng = np.random.default_rng(seed)
    colours = [(40, 200, 40), (220, 30, 30), (245, 245, 245), (30, 60, 220), (230, 210, 30)]  # goal first
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((h, w, 3), 110, np.uint8)  # (H, W, 3)
        s = max(2, min(h, w) // 8)
        for k, c in enumerate(colours):
            big = 2 * s if k == 0 else s
            y, x = rng.integers(0, h - big), rng.integers(0, w - big)
            img[y:y + big, x:x + big] = c
        path = os.path.join(os.fspath(folder), f"{i}.png")
        Image.fromarray(img).save(path)
        paths.append(path)
    return paths


TINY_BUILDERS = {"wan": build_tiny_wan, "ltx": build_tiny_ltx, "wan-ti2v": build_tiny_wan_ti2v,
                 "wan-i2v": build_tiny_wan_i2v, "wan-moe": build_tiny_wan_moe}
