"""LoRA policy on a model family's transformer (Wan, LTX-Video): θ, θ_old and the reference in one model.

One base model carries two peft LoRA adapters: "default" (θ, trainable) and "old" (θ_old, frozen, EMA of
θ); the reference policy is the base with every adapter disabled. No full model copies are made. The
family adapter (creflow_train.families) makes the actual transformer call, so the policy is family-agnostic.
With two experts (Wan2.2-A14B) both carry both adapters; the family routes each row to its timestep's expert.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from .config import MIXED_PRECISION

if TYPE_CHECKING:
    import torch

    from .families import TextCond, VideoFamily

__all__ = ["MIXED_PRECISION", "WHICH", "LoraPolicy"]

WHICH = ("default", "old", "ref")
EXPERT_PREFIXES = ("", "transformer_2.")  # LoRA key prefix of each expert (the first keeps its plain names)
TIMESTEP_SCALE = 1000.0  # diffusers flow-matching transformers take t·1000


class LoraPolicy:
    """θ ("default" LoRA), θ_old ("old" LoRA, no grad) and the reference (adapters off) on one transformer."""

    def __init__(
        self, family: VideoFamily, *, rank: int = 32, alpha: float = 64.0, targets: Sequence[str] = ("to_q",),
        mixed_precision: str = "no",
    ) -> None:
        """Add both adapters to the family's transformer; `mixed_precision="bf16"` autocasts its forwards."""
        from peft import LoraConfig

        if mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision {mixed_precision!r} is not one of: {', '.join(MIXED_PRECISION)}")
        self.family = family
        self.mixed_precision = mixed_precision
        # one or two experts (Wan2.2-A14B: transformer_2); both get both adapters, keys of the second prefixed
        self.transformers = family.parts.transformers()
        self.transformer = self.transformers[0]
        cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=True)
        params: dict[str, Any] = {}
        for prefix, transformer in zip(EXPERT_PREFIXES, self.transformers, strict=False):
            transformer.requires_grad_(False)
            with warnings.catch_warnings():  # peft warns that a second adapter joins the first: intended here
                warnings.simplefilter("ignore", UserWarning)
                transformer.add_adapter(cfg, adapter_name="default")
                transformer.add_adapter(cfg, adapter_name="old")
            params |= {prefix + n: q for n, q in transformer.named_parameters()}
        self.default_names = sorted(n for n in params if ".lora_" in n and ".default." in n)
        if not self.default_names:
            raise ValueError(f"no LoRA layers were created for targets {list(targets)}")
        self.old_names = [n.replace(".default.", ".old.") for n in self.default_names]
        self._default = [params[n] for n in self.default_names]
        self._old = [params[n] for n in self.old_names]
        for p in self._default + self._old:  # LoRA weights (and so AdamW's state) stay float32 under any base dtype
            p.data = p.data.float()
        self._activate("default")
        self.sync_old(0.0)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """θ: the "default" adapter's LoRA parameters (what the optimiser updates)."""
        return list(self._default)

    def old_parameters(self) -> list[torch.nn.Parameter]:
        """θ_old: the "old" adapter's LoRA parameters, paired index by index with `trainable_parameters`."""
        return list(self._old)

    def _activate(self, which: str) -> None:
        """Switch the active adapter state of every expert and re-pin requires_grad (peft toggles it on switches)."""
        for t in self.transformers:
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

    def autocast(self, device: Any) -> Any:
        """bf16 autocast on `device` when mixed_precision is "bf16", else a no-op context."""
        import torch

        if self.mixed_precision == "bf16":
            return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
        return nullcontext()

    def velocity(
        self, x_t: torch.Tensor, t: torch.Tensor, cond: TextCond | torch.Tensor, which: str = "default"
    ) -> torch.Tensor:
        """Predicted velocity v(x_t, t | cond) of policy `which`; "old" and "ref" run without gradient.

        x_t (B, C, T′, H′, W′) latents, t (B,) in [0, 1], cond a TextCond (or bare (B, L, D) embeddings, all
        tokens valid). Returns float32 (x_t's dtype) whatever the transformer computed in.
        """
        import torch

        from .families import as_cond

        ts = (t.to(torch.float32) * TIMESTEP_SCALE).to(x_t.device)
        grad = which == "default" and torch.is_grad_enabled()
        with self.use(which), torch.set_grad_enabled(grad), self.autocast(x_t.device):
            out = self.family.forward(x_t, ts, as_cond(cond).to(x_t.device))
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


def __getattr__(name: str) -> Any:
    """`build_tiny_wan` / `build_tiny_ltx` moved to creflow_train.testing; the old import path still works."""
    if name in ("build_tiny_wan", "build_tiny_ltx"):
        from . import testing

        warnings.warn(f"creflow_train.policy.{name} moved to creflow_train.testing.{name}", DeprecationWarning,
                      stacklevel=2)
        return getattr(testing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
