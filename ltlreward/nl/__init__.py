"""English task descriptions → task specs: a controlled-English rules backend and an optional LLM translator."""

from __future__ import annotations

from .compiler import CompileResult, compile_rules
from .errors import NLError
from .output import compile_command_dict, compile_command_output
from .parser import SUPPORTED_PHRASES, parse_text

BACKENDS = ("rules", "llm")


def compile_text(text: str, *, backend: str = "rules", **opts) -> CompileResult:
    """Compile an English task description into a TaskSpec with the chosen backend ("rules" or "llm").

    The llm backend takes `model` (a local path or a loaded translator) and `max_attempts`; see
    ltlreward.nl.llm.LLMTranslator.
    """
    if backend == "rules":
        if opts:
            raise TypeError(f"the rules backend takes no options (got {', '.join(sorted(opts))})")
        return compile_rules(text)
    if backend == "llm":
        from .llm import compile_llm

        return compile_llm(text, **opts)
    raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "SUPPORTED_PHRASES", "CompileResult", "NLError", "compile_command_dict",
           "compile_command_output", "compile_text", "parse_text"]
