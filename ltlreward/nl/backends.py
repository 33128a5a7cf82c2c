"""English backends, by name: one registry, `BACKENDS`, of functions `(text, **options) -> CompileResult`.

    rules  the controlled-English grammar and templates (ltlreward.nl.compiler): offline, deterministic
    llm    a local transformers chat model writes the spec, validated by the spec parser and repaired on error
           (ltlreward.nl.llm; options: model, max_attempts, max_new_tokens, device)

Entries are lazy, so the llm backend's module loads only when chosen. An unknown name is a `BackendError`
listing the registered ones (with a "did you mean" for a typo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registry import Registry
from .errors import BackendError

if TYPE_CHECKING:
    from .compiler import CompileResult


@dataclass(frozen=True)
class BackendInfo:
    """What a registered English backend is: one line, and the options it takes (none: it takes none)."""

    doc: str
    options: tuple[str, ...] = ()


BACKENDS: Registry[Callable[..., CompileResult]] = Registry("backend", error=BackendError)
BACKENDS.register("rules", "ltlreward.nl.compiler:compile_rules", meta=BackendInfo(
    "controlled-English grammar and templates: offline, deterministic"))
BACKENDS.register("llm", "ltlreward.nl.llm:compile_llm", meta=BackendInfo(
    "a local transformers chat model writes the spec; parsed, validated and repaired on error",
    ("model", "max_attempts", "max_new_tokens", "device")))


def compile_text(text: str, *, backend: str = "rules", **opts: Any) -> CompileResult:
    """Compile an English task description into a TaskSpec with the named backend (see BACKENDS).

    The llm backend takes `model` (a local path or a loaded translator) and `max_attempts`; see
    ltlreward.nl.llm.LLMTranslator. A backend that takes no options rejects any (TypeError).
    """
    name = BACKENDS.canonical(backend)
    if opts and not BACKENDS.meta(name).options:
        raise TypeError(f"the {name} backend takes no options (got {', '.join(sorted(opts))})")
    return BACKENDS.get(name)(text, **opts)


__all__ = ["BACKENDS", "BackendInfo", "compile_text"]
