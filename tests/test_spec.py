"""Spec language: parsing, canonical atoms, located errors, printer round trip and parser fuzzing."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltlreward import SpecError, format_formula, format_spec, load_spec, parse_formula, parse_spec
from ltlreward.spec import explain_constraint
from ltlreward.spec.ast import Atom, Binary, Call, Compare, Const, Entity, Interval, Num, Quoted, Unary
from ltlreward.spec.ops import ops_where

SPECS = Path(__file__).resolve().parents[1] / "specs"

HANDOVER = '''
task "Hand the bottle over"
entity bottle = "red bottle" color=red
entity left   = "left gripper"  : gripper
entity right  = "right gripper" : gripper hsv=(50, 80, 60, 80, 255, 255)
let held(o) := holding(left, o) | holding(right, o)
constraint grasp_first "left first": !touching(right, bottle) U holding(left, bottle)
constraint no_drop [weight=2] "never unheld": G (lifted(bottle) -> held(bottle))
reward weighted_mean
'''


def test_parse_spec_structure_and_macro_expansion():
    spec = parse_spec(HANDOVER, path="h.ltl")
    assert spec.task == "Hand the bottle over"
    assert spec.entity_names == ("bottle", "left", "right")
    assert spec.entity("right").kind == "gripper"
    assert spec.entity("bottle").hint("color") == "red"
    assert spec.entity("right").hint("hsv") == (50, 80, 60, 80, 255, 255)
    no_drop = spec.constraint("no_drop")
    assert no_drop.weight == 2.0 and no_drop.description == "never unheld"
    held = Binary("|", Atom(Call("holding", ("left", "bottle"))), Atom(Call("holding", ("right", "bottle"))))
    assert no_drop.formula == Unary("G", Binary("->", Atom(Call("lifted", ("bottle",))), held))
    assert spec.macros[0].params == ("o",)


def test_precedence_and_associativity():
    f = parse_formula("!a & b | c -> d -> e <-> f")
    assert f == Binary("<->", Binary("->", Binary("|", Binary("&", Unary("!", Atom(Call("a"))), Atom(Call("b"))),
                                                   Atom(Call("c"))),
                                     Binary("->", Atom(Call("d")), Atom(Call("e")))), Atom(Call("f")))
    assert parse_formula("a U b U c") == Binary("U", Atom(Call("a")), Binary("U", Atom(Call("b")), Atom(Call("c"))))
    assert parse_formula("F a U b") == Binary("U", Unary("F", Atom(Call("a"))), Atom(Call("b")))
    assert parse_formula("a U b & c") == Binary("&", Binary("U", Atom(Call("a")), Atom(Call("b"))), Atom(Call("c")))


def test_intervals_comparisons_quoted_and_past():
    f = parse_formula('F[0s,2.5s] "the drawer is open" & G[2,5] dist(a, b) < 0.05 | Y O H (p S q)')
    assert f.left.left == Unary("F", Quoted("the drawer is open"), Interval(0, 2.5, "s"))
    assert f.left.right == Unary("G", Compare(Call("dist", ("a", "b")), "<", Num(0.05)), Interval(2, 5))
    assert parse_formula("p U[1,3] q").interval == Interval(1, 3)
    assert parse_formula("WX p") == Unary("WX", Atom(Call("p")))


def test_canonical_atom_strings():
    from ltlreward.spec import atoms_of

    f = parse_formula('near(a, b, d=0.05, c=2) & "it is open" & height(o) >= 0.1 & p & q() & x(o) > y(o)')
    assert [a.canonical for a in atoms_of(f)] == [
        "near(a,b,c=2,d=0.05)", '"it is open"', "height(o)>=0.1", "p", "q", "x(o)>y(o)"]


def _err(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_spec(text, path="t.ltl")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "col", "pattern"),
    [
        ('entity a = "x"\nconstraint c: F holdin(a, a)\n', 2, 17, r"unknown predicate 'holdin'; did you mean 'holding'\?"),
        ('entity cup = "x"\nconstraint c: F lifted(cpu)\n', 2, 24, r"unknown entity 'cpu'; did you mean 'cup'\?"),
        ('entity a = "x"\nconstraint c: F lifted(a)\nconstraint c: G lifted(a)\n', 3, 12, r"duplicate constraint 'c'"),
        ('entity a = "x"\nlet p(o) := q(o)\nlet q(o) := p(o)\nconstraint c: p(a)\n', None, None, r"macro recursion: p -> q -> p"),
        ('entity a = "x"\nconstraint c: F[5,2] lifted(a)\n', 2, 16, r"bad interval: lower bound 5 is greater than upper bound 2"),
        ('entity a = "x"\nconstraint c: F[0,2.5] lifted(a)\n', 2, 19, r"not a whole number \(write 2.5s"),
        ('entity a = "x"\nconstraint c: F[0,2s] lifted(a)\n', 2, 16, r"both bounds must be in frames or both in seconds"),
        ('entity a = "x"\nconstraint c: X[0,2] lifted(a)\n', 2, 16, r"takes no interval"),
        ('entity a = "x"\nconstraint c [weight=0]: lifted(a)\n', 2, 22, r"weight must be > 0"),
        ('entity a = "x"\nconstraint c: lifted(a, a)\n', 2, 15, r"lifted takes 1 argument"),
        ('entity a = "x"\nconstraint c: near(a, a, z=1)\n', 2, 15, r"unknown option 'z' for near"),
        ('entity a = "x"\nconstraint c: F a\n', 2, 17, r"entity 'a' used as a formula; did you mean visible\(a\)\?"),
        ('entity a = "x" : grippr\n', 1, 18, r"unknown entity kind 'grippr'; did you mean 'gripper'\?"),
        ('entity a = "x"\nentity a = "y"\n', 2, 8, r"duplicate entity 'a'"),
        ('reward best\n', 1, 8, r"unknown reward mode 'best'"),
        ('entity a = "x"\nconstraint c: F (lifted(a) &\n', 2, 29, r"unexpected end of input; expected a formula"),
        ('entity a = "x"\nconstraint c: F lifted(a) )\n', 2, 27, r"unexpected '\)'"),
        ('entity a = "x"\nconstraint c: dist(a, a)\n', 2, 15, r"dist is a numeric function"),
        ('entity a = "x"\nconstraint c: lifted(a) < 3\n', 2, 15, r"lifted is a predicate, not a numeric function"),
        ("constraint c: 'p'\n", 1, 15, r"strings use double quotes"),
    ],
)
def test_located_errors(text, line, col, pattern):
    e = _err(text)
    assert re.search(pattern, e.message), e.message
    assert e.file == "t.ltl"
    if line is not None:
        assert (e.line, e.column) == (line, col)
        rendered = e.render()
        assert rendered.startswith(f"t.ltl:{line}:{col}: error: ")
        caret_line = rendered.splitlines()[-1]
        assert caret_line.index("^") == 4 + col - 1


def test_load_spec_missing_file_names_it(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.ltl")


def test_bare_formulas_accept_any_names_but_specs_check_them():
    assert parse_formula("holdin(x, y)") == Atom(Call("holdin", ("x", "y")))
    assert parse_spec('constraint c: F p\n').constraint("c").formula == Unary("F", Atom(Call("p")))


def test_shipped_specs_parse_and_round_trip():
    paths = sorted(SPECS.glob("*.ltl"))
    assert paths, "specs/ ships example specs"
    for p in paths:
        spec = load_spec(p)
        assert parse_spec(format_spec(spec)) == spec, p
        for c in spec.constraints:
            assert explain_constraint(c, spec)


# The example of the spec-language design page (SPEC_LANGUAGE.md), kept here so the test reads nothing
# outside the checkout.
DOC_EXAMPLE = '''
# specs/handover.ltl
task "Hand the bottle from the left arm to the right arm"

entity bottle = "red bottle"
entity left   = "left gripper"  : gripper
entity right  = "right gripper" : gripper

let held(o) := holding(left, o) | holding(right, o)

constraint grasp_first "the left arm has the bottle before the right arm touches it":
    !touching(right, bottle) U holding(left, bottle)
constraint exchange "at some moment both arms hold the bottle":
    F (holding(left, bottle) & holding(right, bottle))
constraint finish "at the end the right arm alone holds it":
    F G (holding(right, bottle) & !holding(left, bottle))
constraint no_drop [weight=2] "the bottle is never in the air unheld":
    G (lifted(bottle) -> held(bottle))

reward weighted_mean
'''


def test_design_document_example_parses():
    spec = parse_spec(DOC_EXAMPLE)
    assert [c.name for c in spec.constraints] == ["grasp_first", "exchange", "finish", "no_drop"]
    finish = explain_constraint(spec.constraint("finish"), spec)
    assert finish == ("Eventually, and from then on always, the right gripper holds the red bottle and the left "
                      "gripper does not hold the red bottle")


# ----------------------------------------------------------------------------------- hypothesis
NAMES = st.sampled_from(["a", "b", "cup", "left_arm", "x1"])
NUMS = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
CALLS = st.builds(
    Call,
    st.sampled_from(["p", "near", "holding", "dist", "q_2"]),
    st.lists(st.one_of(NAMES, NUMS), max_size=3).map(tuple),
    st.dictionaries(st.sampled_from(["d", "k", "z"]), st.one_of(NUMS, NAMES), max_size=2).map(lambda d: tuple(sorted(d.items()))),
)
TERMS = st.one_of(CALLS, NUMS.map(Num))
INTERVALS = st.one_of(
    st.tuples(st.integers(0, 50), st.integers(0, 50)).map(lambda t: Interval(min(t), max(t))),
    st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 100, allow_nan=False)).map(
        lambda t: Interval(min(t), max(t), "s")),
)
LEAVES = st.one_of(
    st.booleans().map(Const),
    CALLS.map(Atom),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).map(Quoted),
    st.builds(Compare, CALLS, st.sampled_from(["<", "<=", ">", ">="]), TERMS),
)


def _ops(arity: int, boundable: bool) -> list[str]:
    """Operator symbols from the table, so a new operator is in the round trips without editing them."""
    return [str(op) for op in ops_where(lambda o: o.arity == arity and o.boundable == boundable)]


def _extend(children):
    return st.one_of(
        st.builds(Unary, st.sampled_from(_ops(1, False)), children),  # ! X WX Y
        st.builds(Unary, st.sampled_from(_ops(1, True)), children, st.one_of(st.none(), INTERVALS)),  # F G O H
        st.builds(Binary, st.sampled_from(_ops(2, False)), children, children),  # & | -> <-> W M S
        st.builds(Binary, st.sampled_from(_ops(2, True)), children, children, st.one_of(st.none(), INTERVALS)),
    )


FORMULAS = st.recursive(LEAVES, _extend, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FORMULAS)
def test_printer_round_trips_formulas(f):
    assert parse_formula(format_formula(f)) == f


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "cup"]), st.text(max_size=8), st.sampled_from(["object", "gripper"])),
             min_size=1, max_size=3, unique_by=lambda t: t[0]),
    st.lists(st.floats(0.1, 10, allow_nan=False), min_size=1, max_size=3),
    st.sampled_from(["weighted_mean", "all", "mean_robustness", "min_robustness"]),
)
def test_printer_round_trips_specs(ents, weights, mode):
    names = [e[0] for e in ents]
    text = "".join(f"entity {n} = {format_formula(Quoted(p))} : {k}\n" for n, p, k in ents)
    text += f"let both(o) := lifted(o) & visible({names[0]})\n"
    for i, w in enumerate(weights):
        text += f'constraint c{i} [weight={w!r}] "desc {i}": F both({names[i % len(names)]}) U[0,{i}] !near({names[0]}, {names[-1]})\n'
    text += f"reward {mode}\n"
    spec = parse_spec(text)
    assert parse_spec(format_spec(spec)) == spec


VALID = [HANDOVER, 'entity a = "x"\nconstraint c: G (lifted(a) -> F[0s,2s] near(a, a, d=0.1))\n']


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_random_text_only_raises_spec_error(text):
    with contextlib.suppress(SpecError):
        parse_spec(text)
    with contextlib.suppress(SpecError):
        parse_formula(text)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID), st.integers(0, 10_000), st.integers(0, 5), st.text(max_size=6))
def test_fuzz_mutated_specs_only_raise_spec_error(base, pos, cut, insert):
    i = pos % (len(base) + 1)
    mutated = base[:i] + insert + base[i + cut:]
    try:
        parse_spec(mutated)
    except SpecError as e:
        assert e.render()


@pytest.mark.parametrize("depth", [50, 5000])
def test_deep_nesting_is_a_clean_error_or_parse(depth):
    text = "(" * depth + "p" + ")" * depth
    try:
        assert parse_formula(text) == Atom(Call("p"))
    except SpecError as e:
        assert "nested too deeply" in e.message
    text = "!" * depth + "p"
    try:
        parse_formula(text)
    except SpecError as e:
        assert "nested too deeply" in e.message


def test_entity_prompt_and_hints_round_trip():
    e = parse_spec('entity w = "a \\"big\\" wall" : surface color="dark red" size=2.5\n').entities[0]
    assert e == Entity("w", 'a "big" wall', "surface", (("color", "dark red"), ("size", 2.5)))
