"""LoRA policy adapter for diffusers flow-matching video transformers (WanTransformer3DModel).

One base model carries two peft LoRA adapters: "default" (θ, trainable) and "old" (θ_old, frozen, EMA of
θ); the reference policy is the base with every adapter disabled. No full model copies are made.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

WHICH = ("default", "old", "ref")
TIMESTEP_SCALE = 1000.0  # diffusers flow-matching transformers take t·1000


@dataclass
class WanParts:
    """The pieces of a diffusers Wan text-to-video checkpoint the trainer uses."""

    transformer: Any  # WanTransformer3DModel
    vae: Any  # AutoencoderKLWan
    text_encoder: Any  # UMT5EncoderModel
    tokenizer: Any


def load_wan(model_dir: str | os.PathLike[str], dtype: Any = None) -> WanParts:
    """Load transformer/, vae/, text_encoder/ and tokenizer/ from a diffusers-layout Wan directory."""
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    root = os.fspath(model_dir)
    for sub in ("transformer", "vae", "text_encoder", "tokenizer"):
        if not os.path.isdir(os.path.join(root, sub)):
            raise FileNotFoundError(f"{root}: missing subfolder {sub}/ (expected a diffusers Wan checkpoint)")
    dtype = dtype or torch.float32
    transformer = WanTransformer3DModel.from_pretrained(root, subfolder="transformer", torch_dtype=dtype)
    vae = AutoencoderKLWan.from_pretrained(root, subfolder="vae", torch_dtype=torch.float32)
    text_encoder = UMT5EncoderModel.from_pretrained(root, subfolder="text_encoder", dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
    for m in (transformer, vae, text_encoder):
        m.requires_grad_(False)
        m.eval()
    return WanParts(transformer, vae, text_encoder, tokenizer)


class LoraPolicy:
    """θ ("default" LoRA), θ_old ("old" LoRA, no grad) and the reference (adapters off) on one transformer."""

    def __init__(
        self, transformer: Any, *, rank: int = 32, alpha: float = 64.0, targets: Sequence[str] = ("to_q",)
    ) -> None:
        from peft import LoraConfig

        self.transformer = transformer
        transformer.requires_grad_(False)
        cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=True)
        with warnings.catch_warnings():  # peft warns that a second adapter joins the first: intended here
            warnings.simplefilter("ignore", UserWarning)
            transformer.add_adapter(cfg, adapter_name="default")
            transformer.add_adapter(cfg, adapter_name="old")
        names = [n for n, _ in transformer.named_parameters()]
        self.default_names = sorted(n for n in names if ".lora_" in n and ".default." in n)
        if not self.default_names:
            raise ValueError(f"no LoRA layers were created for targets {list(targets)}")
        params = dict(transformer.named_parameters())
        self.old_names = [n.replace(".default.", ".old.") for n in self.default_names]
        self._default = [params[n] for n in self.default_names]
        self._old = [params[n] for n in self.old_names]
        self._activate("default")
        self.sync_old(0.0)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """θ: the "default" adapter's LoRA parameters (what the optimiser updates)."""
        return list(self._default)

    def old_parameters(self) -> list[torch.nn.Parameter]:
        """θ_old: the "old" adapter's LoRA parameters, paired index by index with `trainable_parameters`."""
        return list(self._old)

    def _activate(self, which: str) -> None:
        """Switch the active adapter state and re-pin requires_grad (peft toggles it on switches)."""
        t = self.transformer
        if which == "ref":
            t.disable_adapters()
        else:
            t.enable_adapters()
            t.set_adapter(which)
        for p in self._old:
            p.requires_grad_(False)
        for p in self._default:
            p.requires_grad_(True)

    @contextmanager
    def use(self, which: str) -> Iterator[None]:
        """Context in which the transformer computes policy `which`; always returns to "default"."""
        if which not in WHICH:
            raise ValueError(f"unknown policy {which!r}; expected one of: {', '.join(WHICH)}")
        self._activate(which)
        try:
            yield
        finally:
            self._activate("default")

    def velocity(
        self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, which: str = "default"
    ) -> torch.Tensor:
        """Predicted velocity v(x_t, t | cond) of policy `which`; "old" and "ref" run without gradient.

        x_t (B, C, T′, H′, W′) latents, t (B,) in [0, 1], cond (B, L, D) text embeddings.
        """
        import torch

        dtype = self.transformer.dtype
        ts = (t.to(torch.float32) * TIMESTEP_SCALE).to(x_t.device)
        with self.use(which), torch.set_grad_enabled(which == "default" and torch.is_grad_enabled()):
            out = self.transformer(
                hidden_states=x_t.to(dtype), timestep=ts, encoder_hidden_states=cond.to(dtype),
                return_dict=False,
            )[0]
        return out.to(x_t.dtype)

    def sync_old(self, decay: float) -> None:
        """θ_old ← d·θ_old + (1 − d)·θ (d = 0 copies θ)."""
        from .losses import ema_update_

        ema_update_(self._old, self._default, decay)

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """Both adapters' LoRA tensors, keyed by the transformer's own parameter names (CPU copies)."""
        return {n: p.detach().cpu().clone() for n, p in zip(self.default_names + self.old_names,
                                                              self._default + self._old, strict=True)}

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore tensors saved by `lora_state_dict`; any missing or foreign key is an error."""
        import torch

        names = self.default_names + self.old_names
        missing = [n for n in names if n not in state]
        extra = [k for k in state if k not in set(names)]
        if missing or extra:
            raise KeyError(f"LoRA state mismatch: missing {missing[:3]}, unexpected {extra[:3]}")
        with torch.no_grad():
            for n, p in zip(names, self._default + self._old, strict=True):
                p.copy_(state[n].to(p.device, p.dtype))


TINY_WORDS = ("a", "red", "block", "moves", "to", "the", "green", "zone", "blue", "cup", "on", "table",
              "gripper", "square", "carries", "goal")


def build_tiny_wan(root: str | os.PathLike[str], seed: int = 0) -> str:
    """Save a tiny random-initialised Wan checkpoint (diffusers layout) for offline tests and smoke runs.

    1-layer WanTransformer3DModel (2 heads × 8, patch (1, 2, 2), 4 latent channels), an AutoencoderKLWan
    with base_dim 8 (4× temporal, 8× spatial compression), a 1-layer UMT5 encoder and a WordLevel tokenizer.
    """
    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

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
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: 3 + i for i, w in enumerate(TINY_WORDS)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(os.path.join(out, "tokenizer"))
    return out
