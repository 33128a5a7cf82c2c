"""English backends, by name: one registry, `BACKENDS`, of functions `(text, **options) -> CompileResult`.

    rules  the controlled-English grammar and templates (ltlreward.nl.compiler): offline, deterministic
    llm    a small packaged GGUF model writes the IR under a grammar (constrained decoding); the rules
           templates give it its meaning (ltlreward.nl.llm; options: model, max_attempts, shots)
    auto   rules first, the model when the grammar cannot read the description

Entries are lazy, so the llm backend's module loads only when chosen. An unknown name is a `BackendError`
listing the registered ones (with a "did you mean" for a typo).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registry import Registry
from .errors import BackendError

if TYPE_CHECKING:
    from .bind import EntityNames
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
    "a packaged small model writes the IR under a grammar; compiled by the rules templates and self-checked",
    ("model", "max_attempts", "shots")))
BACKENDS.register("auto", "ltlreward.nl.llm:compile_auto", meta=BackendInfo(
    "rules first; the llm backend when the grammar cannot read the description", ("model", "max_attempts", "shots")))


def compile_text(text: str, *, backend: str = "rules", entities: str | Path | EntityNames | None = None,
                 **opts: Any) -> CompileResult:
    """Compile an English task description into a TaskSpec with the named backend (see BACKENDS).

    `entities` (a sidecar or prompts file, or EntityNames) renames the compiled entities to its names
    (ltlreward.nl.bind). The llm and auto backends take `model` (a packaged model name, a .gguf path or a
    loaded LLMTranslator), `max_attempts` and `shots`; see ltlreward.nl.llm. A backend that takes no options
    rejects any (TypeError).
    """
    name = BACKENDS.canonical(backend)
    if opts and not BACKENDS.meta(name).options:
        raise TypeError(f"the {name} backend takes no options (got {', '.join(sorted(opts))})")
    result = BACKENDS.get(name)(text, **opts)
    return result if entities is None else bind_result(result, entities)


def bind_result(result: CompileResult, entities: str | Path | EntityNames) -> CompileResult:
    """A compile result with its entity names bound to a sidecar / prompts file's (ltlreward.nl.bind); the
    guessed matches join its warnings."""
    from dataclasses import replace

    from ..spec import format_spec
    from .bind import EntityNames, bind_entities, load_entity_names

    names = entities if isinstance(entities, EntityNames) else load_entity_names(entities)
    bound = bind_entities(result.spec, names)
    return replace(result, spec=bound.spec, text=format_spec(bound.spec),
                   warnings=(*result.warnings, *bound.warnings))


__all__ = ["BACKENDS", "BackendInfo", "bind_result", "compile_text"]
