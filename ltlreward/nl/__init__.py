"""English task descriptions → task specs: a controlled-English rules backend and a small local model.

    compile_text("put the red block on the plate")            # rules backend → CompileResult(spec, text, …)
    compile_text(text, backend="auto")                        # rules, else the packaged model (smollm2)
    compile_text(text, entities="clip.sidecar.json")          # entity names as the sidecar names them

One module per job:

    backends   the BACKENDS registry (rules, llm, auto) and compile_text
    normalise  the words people write → the grammar's words (lemmas, synonyms, spelling), each change a warning
    parser     English → the typed IR (grammar.lark, lexicon.py; located NLErrors with a suggested phrasing)
    ir         the IR: frozen dataclasses (Step, NP, State, modifiers, Forbid / Rule), to/from JSON
    entities   noun phrases → entity names, kinds, prompts; grippers (World)
    planner    steps → template plans (templates.py: one Plan per verb and object)
    states     state clauses → formulas and English
    compiler   plans, modifiers and statements → named constraints; compile_ir, compile_rules
    llm        the llm and auto backends: constrained decoding of IR text (irtext) by a packaged GGUF model
    irtext     the IR's compact line form: its Lark grammar (the decoding grammar), renderer and reader
    bind       compiled entity names → a sidecar's / prompts file's names
    output     what `ltlreward compile` prints
"""

from __future__ import annotations

from .backends import BACKENDS, BackendInfo, compile_text
from .compiler import CompileResult, compile_ir, compile_rules
from .errors import BackendError, NLError
from .ir import IRError, Parsed
from .output import compile_command_dict, compile_command_output
from .parser import SUPPORTED_PHRASES, parse_text

__all__ = ["BACKENDS", "SUPPORTED_PHRASES", "BackendError", "BackendInfo", "CompileResult", "IRError", "NLError",
           "Parsed", "compile_command_dict", "compile_command_output", "compile_ir", "compile_rules", "compile_text",
           "parse_text"]
