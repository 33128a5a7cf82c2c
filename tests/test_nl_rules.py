"""Rules backend of `compile_text`: grammar coverage, templates, composition, errors, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ltlreward.ltlf import evaluate
from ltlreward.nl import NLError, compile_command_dict, compile_command_output, compile_text
from ltlreward.nl.lexicon import COLOURS, COUNTS, MANNERS, ORDINALS, SIZES, classify, is_plural, singular
from ltlreward.nl.parser import SUPPORTED_PHRASES, keywords
from ltlreward.predicates.catalog import PREDICATES
from ltlreward.spec import atoms_of, format_formula, parse_formula, parse_spec
from ltlreward.spec.ast import Atom

# one description per covered task (Meta-World and bimanual), with the constraint names it must produce
COVERED = {
    "pick-place": ("Pick up the puck and place it at the goal.",
                   ["reach_puck", "grasp_puck", "lift_puck", "place_puck", "release_puck", "order", "no_drop_puck"]),
    "push": ("Push the puck to the goal.", ["reach_puck", "contact_puck", "push_puck", "no_lift_puck", "order"]),
    "reach": ("Reach the goal.", ["reach_goal"]),
    "drawer-open": ("Open the drawer.", ["reach_drawer", "contact_drawer", "open_drawer", "order"]),
    "drawer-close": ("Close the drawer.", ["reach_drawer", "contact_drawer", "close_drawer", "order"]),
    "button-press": ("Press the button.", ["reach_button", "press_button", "order"]),
    "door-open": ("Open the door.", ["reach_door", "contact_door", "open_door", "order"]),
    "peg-insert": ("Insert the peg into the hole.", ["reach_peg", "grasp_peg", "insert_peg", "order", "no_drop_peg"]),
    "assembly": ("Assemble the nut onto the peg.",
                 ["reach_nut", "grasp_nut", "lift_nut", "place_nut", "release_nut", "order", "no_drop_nut"]),
    "handover": ("Hand the bottle from the left arm to the right arm.",
                 ["grasp_bottle", "exchange_bottle", "handover_bottle", "grasp_first_bottle", "order",
                  "no_drop_bottle"]),
    "two-arm-lift": ("Lift the pot with both arms.", ["reach_pot", "grasp_pot", "lift_pot", "balance_pot", "order"]),
    "stack-blocks-three": ("Stack the red, green and blue blocks.", None),
    "stack-bowls-three": ("Stack the three bowls.", None),
    "ranking-colour": ("Arrange the blocks by colour from left to right: red, green, blue.", None),
    "ranking-size": ("Arrange the blocks by size from largest to smallest, left to right.", None),
    "bottles-dustbin": ("Put both bottles in the dustbin.", None),
    "object-cabinet": ("Open the cabinet with the left arm, then put the mouse in the cabinet with the right arm.",
                       None),
}


def formulas(res) -> dict[str, str]:
    return {c.name: format_formula(c.formula) for c in res.spec.constraints}


@pytest.mark.parametrize("task", sorted(COVERED))
def test_every_covered_task_compiles_and_parses_back(task):
    text, names = COVERED[task]
    res = compile_text(text)
    assert res.backend == "rules" and res.attempts == 1
    assert parse_spec(res.text) == res.spec  # the printed spec file parses back to the same spec
    if names is not None:
        assert [c.name for c in res.spec.constraints] == names
    declared = set(res.spec.entity_names)
    for c in res.spec.constraints:
        assert c.description
        for a in atoms_of(c.formula):
            if isinstance(a, Atom):
                assert a.name in PREDICATES and set(a.call.identifiers) <= declared


def test_pick_and_place_template_exact():
    res = compile_text("Pick up the red block and put it on the blue plate.")
    assert formulas(res) == {
        "reach_red_block": "F near(gripper, red_block)",
        "grasp_red_block": "F holding(gripper, red_block)",
        "lift_red_block": "F (holding(gripper, red_block) & lifted(red_block))",
        "place_red_block": "F on(red_block, blue_plate)",
        "release_red_block": "F G (on(red_block, blue_plate) & !holding(gripper, red_block))",
        "order": "F (near(gripper, red_block) & F (holding(gripper, red_block) & F (holding(gripper, red_block) & "
                 "lifted(red_block) & F (on(red_block, blue_plate) & F (on(red_block, blue_plate) & "
                 "!holding(gripper, red_block))))))",
        "no_drop_red_block": "G (lifted(red_block) -> holding(gripper, red_block) | on(red_block, blue_plate))",
    }
    ents = {e.name: e for e in res.spec.entities}
    assert (ents["red_block"].kind, ents["red_block"].hint("color")) == ("object", "red")
    assert (ents["blue_plate"].kind, ents["blue_plate"].hint("color")) == ("surface", "blue")
    assert (ents["gripper"].kind, ents["gripper"].prompt) == ("gripper", "robot gripper")


def test_handover_template_exact():
    res = compile_text("Hand the red bottle from the left arm to the right arm without dropping it.")
    f = formulas(res)
    assert f["grasp_first_red_bottle"] == "!touching(right, red_bottle) U holding(left, red_bottle)"
    assert f["exchange_red_bottle"] == "F (holding(left, red_bottle) & holding(right, red_bottle))"
    assert f["handover_red_bottle"] == "F G (holding(right, red_bottle) & !holding(left, red_bottle))"
    assert f["no_drop_red_bottle"] == "G (lifted(red_bottle) -> holding(left, red_bottle) | holding(right, red_bottle))"
    assert res.spec.constraint("no_drop_red_bottle").weight == 2.0  # "without dropping it" stresses it
    kinds = {e.name: e.kind for e in res.spec.entities}
    assert kinds == {"red_bottle": "object", "left": "gripper", "right": "gripper"}


def test_two_arm_lift_and_stacking_order():
    f = formulas(compile_text("Use both arms to lift the pot."))
    assert f["balance_pot"] == "G (lifted(pot) -> holding(left, pot) & holding(right, pot))"
    assert f["lift_pot"] == "F G (holding(left, pot) & holding(right, pot) & lifted(pot))"
    bowls = formulas(compile_text("Stack the three bowls."))
    assert bowls["release_bowl2"] == "F G (on(bowl2, bowl1) & !holding(gripper, bowl2))"
    assert bowls["release_bowl3"] == "F G (on(bowl3, bowl2) & !holding(gripper, bowl3))"
    top_down = formulas(compile_text("Stack the red, green and blue blocks from top to bottom."))
    assert top_down["release_green_block"] == "F G (on(green_block, blue_block) & !holding(gripper, green_block))"
    assert top_down["release_red_block"] == "F G (on(red_block, green_block) & !holding(gripper, red_block))"


def test_ranking_by_colour_and_size():
    rgb = formulas(compile_text("Put the red, green and blue blocks in a row from left to right."))
    assert rgb["arrange_row"] == "F G (left_of(red_block, green_block) & left_of(green_block, blue_block))"
    size = formulas(compile_text("Sort the three blocks by size, smallest first, from left to right."))
    assert size["arrange_row"] == "F G (left_of(small_block, medium_block) & left_of(medium_block, large_block))"
    rtl = formulas(compile_text("Arrange the blocks by colour from right to left: red, green, blue."))
    assert rtl["arrange_row"] == "F G (left_of(blue_block, green_block) & left_of(green_block, red_block))"


def test_plural_objects_are_parallel_not_ordered():
    f = formulas(compile_text("Put both bottles in the dustbin."))
    assert "order_bottle1" in f and "order_bottle2" in f and "order" not in f
    assert f["release_bottle1"] == "F G (inside(bottle1, dustbin) & !holding(gripper, bottle1))"
    assert "bottle2" not in f["order_bottle1"]


def test_sequencing_words_agree():
    base = compile_text("Open the drawer, then press the button.").spec.constraints
    for text in ("First open the drawer. Then press the button.", "After opening the drawer, press the button.",
                 "Press the button after opening the drawer.", "Before pressing the button, open the drawer.",
                 "Open the drawer before pressing the button."):
        assert compile_text(text).spec.constraints == base, text
    later = formulas(compile_text("Open the drawer, then press the button."))["order"]
    assert later.startswith('F (near(gripper, drawer) & F (touching(gripper, drawer) & F ("the drawer is open"')


def test_later_step_on_same_object_overrides_end_state():
    f = formulas(compile_text("Put the cup on the plate, then put it in the sink."))
    assert f["release_cup"] == "F (on(cup, plate) & !holding(gripper, cup))"  # intermediate, not held to the end
    assert f["release_cup_2"] == "F G (inside(cup, sink) & !holding(gripper, cup))"
    assert f["no_drop_cup"] == "G (lifted(cup) -> holding(gripper, cup) | on(cup, plate) | inside(cup, sink))"


def test_pronouns_resolve_to_the_right_object():
    f = formulas(compile_text("Open the drawer, then put the cup in it."))
    assert f["release_cup"] == "F G (inside(cup, drawer) & !holding(gripper, cup))"
    g = formulas(compile_text("Keep the gripper open until it reaches the cup."))
    assert g == {"keep_gripper": "gripper_open(gripper) U near(gripper, cup)"}


def test_statements_never_keep_at_end_always_eventually():
    f = formulas(compile_text("The cup must never touch the table. At the end, the cup is on the plate. "
                              "Eventually the lamp is on. The vase is always still. Never lift the vase."))
    assert f == {"never_cup": "G !touching(cup, table)", "final_cup": "F G on(cup, plate)",
                 "eventually_lamp": 'F "the lamp is on"', "always_vase": "G !moving(vase)",
                 "no_lift_vase": "G !lifted(vase)"}
    g = formulas(compile_text("Put the cup on the plate and never touch the vase."))
    assert g["avoid_vase"] == "G !touching(gripper, vase)"


def test_synonyms_give_the_same_entities_but_keep_the_users_words():
    res = compile_text("Throw the red cube into the trash can.")
    ents = {e.name: e.prompt for e in res.spec.entities}
    assert ents == {"red_block": "red cube", "gripper": "robot gripper", "dustbin": "trash can"}


def test_manner_words_warn_instead_of_vanishing():
    res = compile_text("Carefully place the cup onto the tray.")
    assert res.warnings == ('"carefully" is not expressible with the predicate library; ignored',)
    res = compile_text("Put the bottles in the bin.")
    assert res.warnings == ('"bottle": number not given, assuming 2',)


def test_unknown_verb_error_quotes_span_and_suggests():
    text = "Pick up the cup. Wipe the table with the sponge."
    with pytest.raises(NLError) as err:
        compile_text(text)
    e = err.value
    assert e.unparsed == "Wipe the table with the sponge"
    assert e.span == (17, 47)
    assert "'wipe' is not a supported verb" in str(e)
    assert e.suggestion in SUPPORTED_PHRASES
    assert "    Pick up the cup. Wipe the table with the sponge.\n" + " " * 21 + "^" * 30 in str(e)


def test_typo_of_a_keyword_is_corrected_with_a_warning():
    # #17: a word in no dictionary one edit from a keyword is read as that keyword, and the warning says so
    got = compile_text("Pik up the cup and put it on the plate.")
    assert got.warnings[0].startswith('spelling: read "pik" as "pick" (edit distance 1, confidence')
    assert got.spec.constraints == compile_text("Pick up the cup and put it on the plate.").spec.constraints


def test_trailing_garbage_is_not_dropped():
    with pytest.raises(NLError) as err:
        compile_text("Open the drawer quickly and gracefully sideways.")
    assert err.value.unparsed == "gracefully sideways"
    assert 'did you mean:' in str(err.value)
    with pytest.raises(NLError, match="incomplete sentence"):
        compile_text("Put the cup on")
    with pytest.raises(NLError, match="where should the peg go"):
        compile_text("Insert the peg.")
    with pytest.raises(NLError, match='cannot understand "Put the cup"'):
        compile_text("Put the cup.")
    with pytest.raises(NLError, match="empty task description"):
        compile_text("   ")


def test_semantic_errors_are_nlerrors():
    with pytest.raises(NLError, match="two different arms"):
        compile_text("Hand the cup from the left arm to the left arm.")
    with pytest.raises(NLError, match="does not refer to anything"):
        compile_text("Pick it up.")
    with pytest.raises(NLError, match="say the order of the row"):
        compile_text("Arrange the blocks from left to right.")


def test_deterministic():
    text = "First open the cabinet with the left arm, then use the right arm to put the mouse inside it."
    a, b = compile_text(text), compile_text(text)
    assert a.text == b.text and a.spec == b.spec


def test_compiled_handover_behaves_on_traces():
    """The compiled spec accepts a clean handover and rejects a drop mid-air (checked by the monitor)."""
    res = compile_text("Hand the bottle from the left arm to the right arm.")
    conj = parse_formula(" & ".join(f"({format_formula(c.formula)})" for c in res.spec.constraints))
    good = {"holding(left,bottle)": [1, 1, 1, 0], "holding(right,bottle)": [0, 1, 1, 1],
            "touching(right,bottle)": [0, 1, 1, 1], "lifted(bottle)": [1, 1, 1, 1]}
    bad = dict(good, **{"holding(right,bottle)": [0, 0, 0, 1], "holding(left,bottle)": [1, 0, 0, 0]})
    sig = {k: np.array([good[k], bad[k]], dtype=bool) for k in good}
    assert evaluate(conj, sig).tolist() == [True, False]


def test_cli_output_text_and_json():
    res = compile_text("Press the button.")
    out = compile_command_output(res)
    assert out.startswith('task "Press the button."\n')
    assert "# compiled by the rules backend; in English:" in out
    assert "#   press_button:" in out
    d = json.loads(compile_command_output(res, json=True))
    assert d == compile_command_dict(res)
    assert [c["name"] for c in d["constraints"]] == ["reach_button", "press_button", "order"]
    assert d["constraints"][1]["formula"] == 'F (touching(gripper, button) & "the button is pressed")'
    assert {"name": "gripper", "prompt": "robot gripper", "kind": "gripper", "hints": {}} in d["entities"]
    assert parse_spec(d["spec"]) == res.spec


def test_lexicon_classes_never_collide_with_keywords():
    kw = keywords()
    for words in (COLOURS, SIZES, ORDINALS, COUNTS, MANNERS):
        assert not set(words) & kw
    assert classify("onion", {"on": "ON"}) == "NOUN" and classify("on", {"on": "ON"}) == "ON"
    assert is_plural("blocks") and not is_plural("glass") and not is_plural("bus")
    assert [singular(w) for w in ("boxes", "bottles", "batteries", "glasses")] == ["box", "bottle", "battery",
                                                                                   "glass"]


def test_common_object_nouns_are_not_keywords():
    nouns = {"block", "blocks", "can", "cup", "bowl", "bottle", "table", "drawer", "door", "button", "goal", "target",
             "peg", "hole", "nut", "puck", "plate", "box", "lid", "mouse", "cabinet", "dustbin", "pot", "tray",
             "shelf", "sponge", "apple", "handle", "task", "position"}
    assert not nouns & keywords()


def test_every_supported_phrase_compiles():
    for phrase in SUPPORTED_PHRASES:
        compile_text(phrase)
