"""LLM backend: a local transformers causal/chat model writes the spec; we parse, validate and ask again.

The prompt carries the spec grammar, the predicate library and few-shot examples (compiled by the rules
backend, so they are always valid). Each answer is parsed with the spec parser (which checks entities and
predicates); on an error the model sees its answer and the located error and tries again, up to
`max_attempts`; the final failure is an NLError that lists every error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ltlreward.errors import LtlRewardError

from .compiler import CompileResult
from .errors import NLError

FEW_SHOT = (
    "Put the red block on the plate.",
    "Hand the bottle from the left arm to the right arm.",
    "Open the drawer, then push the button. Never touch the vase.",
)

GRAMMAR_SUMMARY = """A spec file (.ltl) has these lines:
  task "English task"
  entity NAME = "grounding prompt" [: gripper|object|surface|region] [color=red]
  constraint NAME "English description":
      FORMULA
  reward weighted_mean
Formulas: predicate atoms pred(a, b) over declared entities, quoted atoms "the drawer is open",
! & | -> <->, X (next), F (eventually), G (always), U (until), W (weak until); parentheses as usual.
"F G p" means p holds at the end; "F (a & F b)" means a, later b; "G (p -> q)" is a safety rule."""


def predicate_library() -> str:
    """One line per predicate of the catalogue: signature and meaning."""
    from ltlreward.predicates.catalog import PREDICATES

    return "\n".join(f"  {p.signature()}: {p.doc or p.english}" for p in PREDICATES.values())


def extract_spec(output: str) -> str:
    """The spec text inside a model answer (the first fenced block if any, else the whole answer)."""
    m = re.search(r"```(?:ltl)?\s*\n(.*?)(?:```|$)", output, re.S)
    return (m.group(1) if m else output).strip() + "\n"


@dataclass
class Attempt:
    """One round of the loop: the prompt sent, the raw answer, and the error it produced ('' if valid)."""

    prompt: str
    output: str
    error: str = ""


@dataclass
class LLMTranslator:
    """English → spec with a local transformers model, validated by the spec parser, repaired on error."""

    model_path: str | Path
    max_attempts: int = 3
    max_new_tokens: int = 768
    device: str = "cpu"
    transcript: list[Attempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._model = None
        self._tokenizer = None

    # ------------------------------------------------------------------------------------- model
    def load(self) -> None:
        """Load tokenizer and model from the local path (no hub access)."""
        path = Path(self.model_path)
        if not path.exists():
            raise NLError(f"LLM model path does not exist: {path}")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise NLError("the llm backend needs transformers: pip install 'ltlreward[models]'") from exc
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).to(self.device)
        self._model.eval()

    def generate(self, prompt: str) -> str:
        """Greedy continuation of `prompt` by the model (the new text only)."""
        import torch

        if self._model is None:
            self.load()
        tok = self._tokenizer
        enc = tok(prompt, return_tensors="pt").to(self.device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = self._model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                       pad_token_id=pad)
        return tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)

    # ------------------------------------------------------------------------------------ prompts
    def messages(self, text: str) -> list[dict]:
        """The chat messages of the first attempt plus one user turn per earlier failed attempt."""
        from .compiler import compile_rules

        system = ("You translate robot manipulation tasks into task specs in the ltlreward spec language.\n"
                  f"{GRAMMAR_SUMMARY}\nPredicates (use only these, or quoted atoms):\n{predicate_library()}\n"
                  "Answer with the spec file only.")
        msgs = [{"role": "system", "content": system}]
        for ex in FEW_SHOT:
            msgs += [{"role": "user", "content": f"Task: {ex}"},
                     {"role": "assistant", "content": compile_rules(ex).text}]
        msgs.append({"role": "user", "content": f"Task: {text}"})
        for a in self.transcript:
            msgs += [{"role": "assistant", "content": a.output},
                     {"role": "user", "content": f"That spec is invalid:\n{a.error}\nWrite the corrected spec."}]
        return msgs

    def prompt(self, text: str) -> str:
        """The prompt string: the tokenizer's chat template if it has one, else a plain transcript."""
        msgs = self.messages(text)
        if self._model is None:
            self.load()
        if getattr(self._tokenizer, "chat_template", None):
            return self._tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        parts = [f"{m['role'].upper()}:\n{m['content']}\n" for m in msgs]
        return "\n".join(parts) + "\nASSISTANT:\n"

    # --------------------------------------------------------------------------------------- loop
    def translate(self, text: str) -> CompileResult:
        """Ask, parse, validate; on an error ask again with the error; NLError after max_attempts."""
        from ltlreward.spec import format_spec, parse_spec

        self.transcript = []
        for i in range(1, self.max_attempts + 1):
            prompt = self.prompt(text)
            output = self.generate(prompt)
            attempt = Attempt(prompt, output)
            self.transcript.append(attempt)
            try:
                spec = parse_spec(extract_spec(output), path="<llm answer>")
                if not spec.constraints:
                    raise NLError("the answer declares no constraint")
            except LtlRewardError as exc:
                attempt.error = str(exc)
                continue
            if not spec.task:
                spec = type(spec)(task=" ".join(text.split()), entities=spec.entities, macros=spec.macros,
                                  constraints=spec.constraints, reward=spec.reward)
            return CompileResult(spec=spec, text=format_spec(spec), backend="llm", attempts=i)
        errors = "\n".join(f"  attempt {k}: {a.error.splitlines()[0]}" for k, a in enumerate(self.transcript, 1))
        raise NLError(f"the LLM did not produce a valid spec in {self.max_attempts} attempts:\n{errors}",
                      text=text, attempts=self.max_attempts)


def compile_llm(text: str, *, model: str | Path | LLMTranslator | None = None, max_attempts: int = 3,
                **opts) -> CompileResult:
    """LLM backend entry of compile_text: `model` is a local model directory or a ready LLMTranslator."""
    if model is None:
        raise NLError("the llm backend needs a local model: compile_text(text, backend='llm', model=PATH)")
    translator = model if isinstance(model, LLMTranslator) else LLMTranslator(model, max_attempts, **opts)
    return translator.translate(text)
