"""The predicate catalogue: one registry whose metadata sits beside each function, read by the spec layer,
`ltlreward predicates` and the README's table; a new predicate is one decorated function."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ltlreward.cli import app
from ltlreward.errors import CapabilityError
from ltlreward.grounding.observations import Observations
from ltlreward.predicates import (
    COMPARE_SCALE,
    PREDICATE_FUNCS,
    PREDICATES,
    PredicateOptions,
    compute_signals,
    predicate,
    predicate_table_markdown,
    squash,
)
from ltlreward.predicates import library as lib
from ltlreward.spec import parse_spec
from ltlreward.spec.ast import Atom, Call, Compare, Num

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("visible", "near", "touching", "above", "on", "inside", "left_of", "right_of", "lifted", "moving",
         "holding", "gripper_open", "gripper_closed", "at", "dist", "height", "speed", "x", "y", "area")


def _obs(pa: list[float], pb: list[float], T: int = 3) -> Observations:
    """Two entities a, b at fixed world positions, no image geometry."""
    pos = np.array([np.tile(pa, (T, 1)), np.tile(pb, (T, 1))], np.float32)
    nan = np.full((2, T, 4), np.nan, np.float32)
    return Observations(("a", "b"), T, 100, 100, 10.0, nan, nan[..., :2], np.ones((2, T), np.float32),
                        positions=pos)


def test_catalogue_is_a_read_only_view_of_the_registry_in_table_order():
    assert tuple(PREDICATES) == ORDER == PREDICATE_FUNCS.names() and len(PREDICATES) == 20
    assert PREDICATES["near"] is PREDICATE_FUNCS.meta("near")
    assert PREDICATE_FUNCS.get("near") is lib.near and PREDICATE_FUNCS.get("area") is lib.area
    assert "near" in PREDICATES and "holdin" not in PREDICATES and PREDICATES.get("holdin") is None
    with pytest.raises(KeyError):
        PREDICATES["holdin"]
    assert not hasattr(PREDICATES, "__setitem__")


def test_flags_and_scales_come_from_the_decorators():
    assert {n for n, p in PREDICATES.items() if p.image_only} == {"visible", "left_of", "right_of", "area"}
    assert {n for n, p in PREDICATES.items() if not p.gated} == {"visible", "gripper_open", "gripper_closed"}
    assert dict(COMPARE_SCALE) == {"dist": 0.1, "height": 0.1, "speed": 0.1, "x": 0.1, "y": 0.1, "area": 0.02}
    assert PREDICATES["inside"].options == (("d", 0.0), ("q", lib.INSIDE_Q))
    assert PREDICATES["holding"].options == (("d", 0.0), ("p", lib.HOLD_P))
    assert PREDICATES["near"].signature() == "near(a, b, d=0)"


def test_each_default_threshold_is_written_once_and_shown_in_the_texts():
    """The semantics texts are formatted from the same constants the functions read."""
    assert f"auto d = {lib.NEAR_3D:.2f} m" in PREDICATES["near"].state
    assert f"{lib.NEAR_2D_K:g} × mean" in PREDICATES["near"].image
    assert f"auto h = {lib.LIFT_3D:.2f} m" in PREDICATES["lifted"].state
    assert f"default q = {lib.INSIDE_Q:g}" in PREDICATES["inside"].image
    assert f"comparison scale {lib.AREA_SCALE:g}" in PREDICATES["area"].image
    # and the functions use them: near at 0.04 m, auto d = NEAR_3D
    obs = _obs([0, 0, 0], [0.04, 0, 0])
    r = compute_signals([Atom(Call("near", ("a", "b")))], obs, options=PredicateOptions(smooth=0))
    np.testing.assert_allclose(r.values["near(a,b)"], squash(lib.NEAR_3D - 0.04, lib.NEAR_3D), atol=1e-6)


def test_a_new_predicate_is_one_decorated_function():
    @predicate("farther", params=("a", "b"), options={"d": 0.5}, english="{0} is far from {1}",
               negated="{0} is not far from {1}", doc="centre distance above d", image="—",
               state="‖p_a − p_b‖ > d", needs="positions")
    def farther(ctx, sp, args, o):
        return squash(lib._dist(ctx, *args, sp) - o["d"], o["d"])

    try:
        assert PREDICATES["farther"].option_names == ("d",) and list(PREDICATES)[-1] == "farther"
        obs = _obs([0, 0, 0], [1.0, 0, 0])
        s = compute_signals([Atom(Call("farther", ("a", "b"))), Atom(Call("farther", ("a", "b"), (("d", 2.0),)))],
                            obs, options=PredicateOptions(smooth=0))
        np.testing.assert_allclose(s.values["farther(a,b)"], 0.5)  # x = (1 − 0.5) / 0.5 = 1 → x / (1 + x)
        np.testing.assert_allclose(s.values["farther(a,b,d=2)"], -1 / 3, atol=1e-6)  # x = (1 − 2) / 2
        spec = parse_spec('entity a = "a"\nentity b = "b"\nconstraint c "x": G farther(a, b, d=1)\n')
        assert spec.constraints[0].name == "c"  # the spec validator knows it too
        with pytest.raises(CapabilityError, match="unknown option 'z' for farther"):
            compute_signals([Atom(Call("farther", ("a", "b"), (("z", 1.0),)))], obs)
    finally:
        PREDICATE_FUNCS.unregister("farther")
    assert "farther" not in PREDICATES


def test_registry_rejects_a_duplicate_and_a_numeric_function_without_scale():
    kw = {"params": ("a",), "english": "", "image": "", "state": "", "needs": ""}
    with pytest.raises(CapabilityError, match="predicate 'near' is already registered"):
        predicate("near", **kw)(lambda ctx, sp, args, o: None)
    with pytest.raises(ValueError, match="needs a positive comparison scale"):
        predicate("width", numeric=True, **kw)
    assert "width" not in PREDICATES


def test_numeric_functions_are_registered_functions():
    obs = _obs([0.0, 0.1, 0.3], [0.3, 0.5, 0.3])
    s = compute_signals([Compare(Call("dist", ("a", "b")), "<", Num(0.6)), Compare(Call("height", ("a",)), ">",
                                                                                   Call("x", ("b",)))],
                        obs, options=PredicateOptions(smooth=0))
    np.testing.assert_allclose(s.values["dist(a,b)<0.6"], 0.5, atol=1e-5)  # 0.5 m apart: x = 1
    np.testing.assert_allclose(s.values["height(a)>x(b)"], 0.0, atol=1e-6)  # 0.3 − 0.3


def test_predicates_command_prints_the_metadata():
    runner = CliRunner()
    out = runner.invoke(app, ["predicates", "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(x) for x in out.stdout.splitlines()]  # JSON Lines: one object per predicate
    assert rows == [p.to_json() for p in PREDICATES.values()]
    near = rows[1]
    assert near["name"] == "near" and near["options"] == {"d": 0.0} and near["english"] == "{0} is near {1}"
    assert rows[-1]["name"] == "area" and rows[-1]["scale"] == 0.02 and rows[-1]["image_only"] is True
    md = runner.invoke(app, ["predicates", "--markdown"])
    assert md.exit_code == 0 and md.stdout == predicate_table_markdown()
    text = runner.invoke(app, ["predicates"], env={"COLUMNS": "250"})
    assert "holding(g, o, d=0, p=0.8)" in text.stdout


def test_readme_predicate_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"### Predicates\n(.*?)\n## ", readme, re.S)
    assert section is not None and predicate_table_markdown().strip() in section.group(1)
