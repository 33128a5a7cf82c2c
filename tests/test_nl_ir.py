"""The typed IR between the English parser and the compiler: exact parses, JSON round trips, located errors,
and the English backend registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltlreward.cli import app
from ltlreward.nl import BACKENDS, BackendError, NLError, compile_ir, compile_rules, compile_text, parse_text
from ltlreward.nl.ir import (
    NP,
    Arm,
    ArmMod,
    Forbid,
    IRError,
    NoDrop,
    Parsed,
    RowOrder,
    Rule,
    StackOrder,
    State,
    Step,
    from_json,
    to_json,
    walk,
)
from ltlreward.nl.parser import SUPPORTED_PHRASES

ROOT = Path(__file__).resolve().parents[1]
CASES = [json.loads(line)["text"] for name in ("cases.jsonl", "cases_heldout.jsonl", "cases_heldout2.jsonl")
         for line in (ROOT / "benchmarks" / "nl2ltl" / name).read_text().splitlines() if line.strip()]


def test_parse_gives_the_typed_steps_and_statements():
    p = parse_text("Pick up the cup with the left arm and put it on the plate without dropping it. "
                   "Never touch the vase.")
    left = Arm("left")
    assert p == Parsed(
        steps=(Step("pick", (NP("cup", text="cup"),), arm=left, mods=(ArmMod(left),)),
               Step("place", (NP(pronoun="it", text="it"),), dest=NP("plate", text="plate"), rel="on",
                    mods=(NoDrop(),))),
        statements=(Forbid("touch", (NP("vase", text="vase"),)),))


def test_verb_specific_fields_replace_the_extra_dict():
    (stack,) = parse_text("Stack the blocks with the red block at the bottom.").steps
    assert stack.verb == "stack" and stack.stack == StackOrder("bottom_is", NP("block", colour="red",
                                                                              text="red block"))
    (row,) = parse_text("Arrange the blocks by colour from right to left: red, green, blue.").steps
    assert row.row == RowOrder(by="colour", colours=("red", "green", "blue"), direction="rtl")
    (pour,) = parse_text("Pour the water from the cup into the bowl.").steps
    assert (pour.verb, pour.contents, pour.dest, pour.rel) == ("pour", NP("water", text="water"),
                                                              NP("bowl", text="bowl"), "in")
    (keep,) = parse_text("Keep the gripper open until it reaches the cup.").statements
    assert keep == Rule("until", (State(Arm("default"), "open"), State(NP(pronoun="it", text="it"), "near",
                                                                        NP("cup", text="cup"))))


@pytest.mark.parametrize("text", sorted(set(SUPPORTED_PHRASES) | set(CASES)))
def test_json_round_trip_compiles_to_the_same_spec(text):
    try:
        parsed = parse_text(text)
    except NLError:
        return  # a case the grammar does not cover: nothing to round-trip
    data = json.loads(json.dumps(parsed.to_json()))
    again = Parsed.from_json(data)
    assert again == parsed
    try:
        direct = compile_rules(text)
    except NLError as e:
        with pytest.raises(NLError) as again_err:
            compile_ir(again, text)
        assert str(again_err.value) == str(e)
        return
    assert compile_ir(again, text).text == direct.text


def test_a_hand_written_ir_compiles_like_the_sentence():
    ir = {"type": "Parsed", "steps": [{"type": "Step", "verb": "push",
                                       "objs": [{"type": "NP", "head": "puck", "text": "puck"}],
                                       "dest": {"type": "NP", "head": "goal", "text": "goal"}, "rel": "at"}]}
    got = compile_ir(Parsed.from_json(ir), "Push the puck to the goal.")
    assert got.text == compile_text("Push the puck to the goal.").text


def test_to_json_omits_defaults_and_tags_every_node():
    assert to_json(Step("reach", (NP("goal", text="goal"),))) == {
        "type": "Step", "verb": "reach", "objs": [{"type": "NP", "head": "goal", "text": "goal"}]}
    assert from_json({"type": "Arm", "which": "both"}) == Arm("both")
    kinds = [type(n).__name__ for n in walk(parse_text("Lift the pot with both arms."))]
    assert kinds == ["Parsed", "Step", "NP", "Arm", "ArmMod", "Arm"]


def test_invalid_nodes_name_the_field_and_the_options():
    with pytest.raises(IRError, match=r"^error: Step\.verb must be one of pick, place, stack, .*, got 'wipe'$"):
        Step("wipe")
    with pytest.raises(IRError, match=r"Rule 'until' takes 2 state\(s\), got 1"):
        Rule("until", (State(NP("cup"), "lifted"),))
    with pytest.raises(IRError, match=r"State\.subject must be NP \| Arm, got str 'cup'"):
        State("cup", "lifted")


@pytest.mark.parametrize("data, message", [
    ({"type": "Parsed", "steps": [{"type": "Step", "verb": "pick", "objs": [{"type": "Arm", "which": "left"}]}]},
     r"\$\.steps\[0\]: Step\.objs must be NP \| Plural, got Arm"),
    ({"type": "Parsed", "steps": [{"type": "Stepp", "verb": "pick"}]}, r"\$\.steps\[0\]: unknown node type 'Stepp'"),
    ({"type": "Parsed", "steps": [{"type": "Step", "verb": "pick", "colour": "red"}]},
     r"\$\.steps\[0\]: Step has no field 'colour'; fields: arm, arm_arg, contents"),
    ({"type": "Parsed", "statements": [{"type": "Forbid", "action": "smash"}]},
     r"\$\.statements\[0\]: Forbid\.action must be one of drop, touch, contact, lift, move, spill, got 'smash'"),
    ({"type": "Step", "verb": "pick"}, r"\$: expected a Parsed document, got Step"),
])
def test_from_json_errors_name_the_path(data, message):
    with pytest.raises(IRError, match=message):
        Parsed.from_json(data)


def test_backends_registry_lists_the_options_on_a_typo():
    assert BACKENDS.names() == ("rules", "llm", "auto")
    with pytest.raises(BackendError) as e:
        compile_text("press the button", backend="rule")
    assert str(e.value) == "unknown backend 'rule'; did you mean 'rules'? available: rules, llm, auto"
    assert isinstance(e.value, ValueError)
    with pytest.raises(TypeError, match=r"the rules backend takes no options \(got model\)"):
        compile_text("press the button", model="x")
    res = CliRunner().invoke(app, ["compile", "press the button", "--backend", "rule"])
    assert res.exit_code == 2
    assert "unknown backend 'rule'; did you mean 'rules'? available: rules, llm, auto" in res.output
