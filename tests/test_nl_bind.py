"""Entity binding: compiled entity names renamed to a sidecar's / prompts file's names (ltlreward.nl.bind),
`compile --entities`, and `agree --from-descriptions` binding each video's sidecar."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ltlreward.nl import compile_rules, compile_text
from ltlreward.nl.bind import BindError, EntityNames, bind_entities, load_entity_names

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MW = EntityNames(("gripper", "obj", "goal"), frozenset({"gripper"}), "mw.sidecar.json")


def _atoms(spec):
    from ltlreward.spec import spec_atoms

    return sorted({a.canonical for a in spec_atoms(spec)})


def test_generic_and_synonym_matches_are_warned():
    b = bind_entities(compile_rules("Push the puck onto the goal.").spec, MW)
    assert b.mapping == {"goal": "goal", "gripper": "gripper", "puck": "obj"}
    assert b.warnings == ("entity 'puck' ('puck') bound to 'obj' by synonym match; check it",)
    assert "on(obj,goal)" in _atoms(b.spec) and {e.name for e in b.spec.entities} == {"gripper", "obj", "goal"}
    b = bind_entities(compile_rules("Open the drawer.").spec, MW)
    assert b.mapping == {"gripper": "gripper", "drawer": "obj"}
    assert b.warnings == ("entity 'drawer' ('drawer') bound to the generic 'obj'; check it",)


def test_exact_and_lemma_matches_are_silent_guesses_are_not():
    names = EntityNames(("hammer", "left", "right"), frozenset({"left", "right"}), "rs")
    b = bind_entities(compile_rules("Hand the red hammer from the left arm to the right arm.").spec, names)
    assert b.mapping == {"left": "left", "right": "right", "red_hammer": "hammer"} and b.warnings == ()
    one = EntityNames(("robot", "cube", "plate"), frozenset({"robot"}), "x")
    b = bind_entities(compile_rules("Put the cube on the plate.").spec, one)
    assert b.mapping == {"block": "cube", "plate": "plate", "gripper": "robot"}
    assert b.warnings == ("entity 'gripper' ('robot gripper') bound to 'robot' by gripper match; check it",
                          "entity 'block' ('cube') bound to 'cube' by synonym match; check it")


def test_no_match_is_an_error_listing_the_files_entities():
    with pytest.raises(BindError, match=r"no entity of mw.sidecar.json matches 'plate' \('plate'\); its entities: "
                                        r"gripper, obj, goal"):
        bind_entities(compile_rules("Put the cup on the plate.").spec, MW)


def test_load_entity_names_from_a_sidecar_and_compile_entities():
    side = EXAMPLES / "pick_place_success.sidecar.json"
    names = load_entity_names(side)
    assert names.names == ("block", "plate", "gripper") and names.grippers == {"gripper"}
    res = compile_text("put the cube on the plate", entities=side)
    assert {e.name for e in res.spec.entities} == {"block", "plate", "gripper"}
    assert "holding(gripper,block)" in _atoms(res.spec)


def test_cli_compile_entities(tmp_path):
    from typer.testing import CliRunner

    from ltlreward.cli import app

    prompts = tmp_path / "clip.prompts.json"
    boxes = {"gripper": {"box": [0, 0, 2, 2]}, "obj": {"box": [0, 0, 4, 4]}, "goal": {"box": [5, 5, 9, 9]}}
    prompts.write_text(json.dumps({"version": 1, "frame": 0, "entities": boxes}))
    r = CliRunner().invoke(app, ["compile", "push the puck to the goal", "--entities", str(prompts), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert sorted(e["name"] for e in out["entities"]) == ["goal", "gripper", "obj"]
    assert "entity 'puck' ('puck') bound to 'obj' by synonym match; check it" in out["warnings"]
    r = CliRunner().invoke(app, ["compile", "put the cup on the plate", "--entities", str(prompts)])
    assert r.exit_code == 2 and "its entities: gripper, obj, goal" in r.output


def test_assign_specs_binds_each_videos_sidecar(tmp_path):
    from ltlreward.agree import LabelItem, assign_specs

    for stem in ("a", "b"):
        shutil.copy(EXAMPLES / "pick_place_success.sidecar.json", tmp_path / f"{stem}.sidecar.json")
    items = [LabelItem(str(tmp_path / "a.mp4"), True, "t", description="a video; fails", task_description=
                       "put the cube on the plate"),
             LabelItem(str(tmp_path / "b.mp4"), False, "t", task_description="put the cup on the tray")]
    specs, notes = assign_specs(items, from_descriptions=True)
    assert {e.name for e in specs[0].entities} == {"block", "plate", "gripper"}
    assert specs[1] is None
    assert f"'put the cup on the tray': no entity of {tmp_path / 'b.sidecar.json'} matches 'tray' ('tray'); its " \
        "entities: block, plate, gripper (rename it in the description or the file)" in notes
    assert notes[-1] == "no spec for (description not compilable or its entities not in the sidecar): 1 video(s) not scored"
