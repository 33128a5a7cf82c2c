"""Tiny random-initialised checkpoints for offline tests and smoke runs (not used by training itself).

`build_tiny_wan` / `build_tiny_ltx` save a diffusers-layout directory (transformer/ vae/ text_encoder/
tokenizer/) small enough to train on a CPU in seconds; `creflow tiny-model wan DIR` does the same from the
shell. The tokenizer is a WordLevel vocabulary over `TINY_WORDS`, built offline with `tokenizers`.
"""

from __future__ import annotations

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


def build_tiny_wan(root: str | os.PathLike[str], seed: int = 0) -> str:
    """Save a tiny random-initialised Wan checkpoint (diffusers layout) for offline tests and smoke runs.

    1-layer WanTransformer3DModel (2 heads × 8, patch (1, 2, 2), 4 latent channels), an AutoencoderKLWan
    with base_dim 8 (4× temporal, 8× spatial compression), a 1-layer UMT5 encoder and a WordLevel tokenizer.
    """
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    out = os.fspath(root)
    torch.manual_seed(seed)
    WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=1, rope_max_seq_len=32,
    ).save_pretrained(os.path.join(out, "transformer"))
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


TINY_BUILDERS = {"wan": build_tiny_wan, "ltx": build_tiny_ltx}
