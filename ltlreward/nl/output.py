"""What `ltlreward compile` prints: the spec with an English explanation, or a JSON document."""

from __future__ import annotations

import json as _json

from .compiler import CompileResult


def compile_command_dict(result: CompileResult) -> dict:
    """A JSON-ready dict of a compile result (for `ltlreward compile --json`)."""
    from ..spec import explain_constraint, format_formula

    spec = result.spec
    return {
        "backend": result.backend,
        "attempts": result.attempts,
        "task": spec.task,
        "entities": [{"name": e.name, "prompt": e.prompt, "kind": e.kind, "hints": {k: v for k, v in e.hints}}
                     for e in spec.entities],
        "constraints": [{"name": c.name, "description": c.description, "weight": c.weight,
                         "formula": format_formula(c.formula), "english": explain_constraint(c, spec)}
                        for c in spec.constraints],
        "reward": spec.reward,
        "warnings": list(result.warnings),
        "spec": result.text,
    }


def compile_command_output(result: CompileResult, *, json: bool = False) -> str:
    """The text `ltlreward compile` prints: the .ltl spec followed by a commented English explanation."""
    if json:
        return _json.dumps(compile_command_dict(result), indent=2)
    from ..spec import explain_constraint

    lines = [result.text.rstrip("\n"), "", f"# compiled by the {result.backend} backend; in English:"]
    for c in result.spec.constraints:
        lines.append(f"#   {c.name}: {explain_constraint(c, result.spec)}")
    for w in result.warnings:
        lines.append(f"# warning: {w}")
    return "\n".join(lines) + "\n"
