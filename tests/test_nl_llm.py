"""LLM backend: the whole prompt → generate → parse → repair loop with a tiny random-initialised model."""

from __future__ import annotations

import string

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ltlreward.nl import NLError, compile_text
from ltlreward.nl.llm import LLMTranslator, extract_spec
from ltlreward.spec import parse_spec

VALID = """task "pick up the cup"
entity gripper = "robot gripper" : gripper
entity cup = "cup"
constraint grasp "the gripper grasps the cup":
    F holding(gripper, cup)
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer Llama with a character-level tokenizer, saved like a user's local model directory."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = sorted(set(string.printable))
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32768)
    model = LlamaForCausalLM(cfg)
    path = tmp_path_factory.mktemp("tiny-llm")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_garbage_model_gives_up_after_n_attempts_with_every_error(tiny_model):
    tr = LLMTranslator(tiny_model, max_attempts=3, max_new_tokens=12)
    with pytest.raises(NLError) as err:
        tr.translate("pick up the cup")
    assert err.value.attempts == 3
    assert "did not produce a valid spec in 3 attempts" in str(err.value)
    assert str(err.value).count("attempt ") >= 3
    assert len(tr.transcript) == 3
    assert all(a.error for a in tr.transcript)
    # each retry shows the model its previous answer and the located parse error
    assert tr.transcript[0].error.splitlines()[0] in tr.transcript[1].prompt
    assert tr.transcript[1].error.splitlines()[0] in tr.transcript[2].prompt
    assert len(tr.transcript[2].prompt) > len(tr.transcript[1].prompt) > len(tr.transcript[0].prompt)


def test_prompt_carries_grammar_predicates_and_valid_few_shot_examples(tiny_model):
    tr = LLMTranslator(tiny_model, max_attempts=1, max_new_tokens=4)
    p = tr.prompt("open the drawer")
    assert "  holding(g, o" in p and "  left_of(a, b" in p and "  near(a, b" in p
    assert "constraint NAME" in p and "Task: open the drawer" in p
    shots = [m["content"] for m in tr.messages("x") if m["role"] == "assistant"]
    assert len(shots) == 3 and all(parse_spec(s).constraints for s in shots)


class _SecondTimeRight(LLMTranslator):
    """Test-only: the real model answers first; the second answer is injected to reach the success path."""

    def generate(self, prompt: str) -> str:
        if not self.transcript:
            return super().generate(prompt)
        return "```ltl\n" + VALID + "```"


def test_repair_then_success_reports_attempts(tiny_model):
    tr = _SecondTimeRight(tiny_model, max_attempts=3, max_new_tokens=8)
    res = compile_text("pick up the cup", backend="llm", model=tr)
    assert res.backend == "llm" and res.attempts == 2
    assert [c.name for c in res.spec.constraints] == ["grasp"]
    assert parse_spec(res.text) == res.spec
    assert tr.transcript[0].error and not tr.transcript[1].error


def test_compile_text_llm_errors_are_clear(tmp_path):
    with pytest.raises(NLError, match="needs a local model"):
        compile_text("pick up the cup", backend="llm")
    with pytest.raises(NLError, match="does not exist"):
        compile_text("pick up the cup", backend="llm", model=tmp_path / "nope", max_attempts=1)
    with pytest.raises(ValueError, match="unknown backend 'gpt'; available: rules, llm"):
        compile_text("pick up the cup", backend="gpt")


def test_extract_spec_takes_the_fenced_block():
    assert extract_spec("here:\n```ltl\ntask \"x\"\n```\nbye") == 'task "x"\n'
    assert extract_spec('task "y"') == 'task "y"\n'


class _ScriptedAfterFirst(LLMTranslator):
    """Test-only: the real model answers first, then scripted answers (an invalid one, then a valid one)."""

    script = ('entity cup = "cup"\nconstraint a: F grab(cup)\n', VALID)

    def generate(self, prompt: str) -> str:
        if not self.transcript:
            return super().generate(prompt)
        return self.script[len(self.transcript) - 1]


def test_unknown_predicates_and_entities_are_fed_back_located(tiny_model):
    tr = _ScriptedAfterFirst(tiny_model, max_attempts=3, max_new_tokens=8)
    res = tr.translate("pick up the cup")
    assert res.attempts == 3 and res.spec.task == "pick up the cup"
    err = tr.transcript[1].error
    assert err.startswith("<llm answer>:2:17: error: unknown predicate 'grab'")
    assert err.splitlines()[0] in tr.transcript[2].prompt
