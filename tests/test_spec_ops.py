"""The operator table and what is built on it: grammar agreement, node checks, traversals, the end-state cut."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ltlreward import SpecError, evaluate, format_formula, load_spec, parse_formula, parse_spec
from ltlreward.ltlf.core import CNot, CUntil, lower
from ltlreward.spec import end_state_spec, explain_formula, subformulas, substitute
from ltlreward.spec.ast import (
    BOOL_BINARY_OPS,
    BOUNDABLE_OPS,
    CMP_OPS,
    TEMPORAL_BINARY_OPS,
    UNARY_OPS,
    Atom,
    Binary,
    Call,
    Compare,
    Const,
    Interval,
    Num,
    Quoted,
    Unary,
)
from ltlreward.spec.ops import OPS, Cmp, Op
from ltlreward.spec.walk import atoms_of, is_temporal

GRAMMAR = (Path(__file__).resolve().parents[1] / "ltlreward" / "spec" / "grammar.lark").read_text()
SPECS = Path(__file__).resolve().parents[1] / "specs"
A, B = Atom(Call("a")), Atom(Call("b"))


def _token_alternatives(pattern: str) -> set[str]:
    """The operator words a grammar regex alternates over, e.g. `UOP.3: /(WX|X|…)(?!…)/`."""
    m = re.search(pattern, GRAMMAR)
    assert m, pattern
    return set(m.group(1).split("|"))


def test_grammar_tokens_agree_with_the_table():
    words = {info.symbol for info in OPS.values() if info.is_word}
    assert _token_alternatives(r"UOP\.\d+: /\(([^)]*)\)") == {s for s in words if OPS[Op(s)].arity == 1}
    assert _token_alternatives(r"TBIN\.\d+: /\(([^)]*)\)") == {s for s in words if OPS[Op(s)].arity == 2}
    assert _token_alternatives(r"NAME: /\(\?!\(([^)]*)\)") == words  # operator words are no names
    for info in OPS.values():
        if not info.is_word:
            assert f'"{info.symbol}"' in GRAMMAR, info.symbol


def test_derived_operator_tuples_keep_their_names_and_order():
    assert UNARY_OPS == ("!", "X", "WX", "F", "G", "Y", "O", "H")
    assert TEMPORAL_BINARY_OPS == ("U", "R", "W", "M", "S")
    assert BOOL_BINARY_OPS == ("&", "|", "->", "<->")
    assert BOUNDABLE_OPS == ("F", "G", "O", "H", "U", "R")
    assert CMP_OPS == ("<", "<=", ">", ">=")


@pytest.mark.parametrize("op", list(Op))
def test_every_operator_prints_parses_reads_and_lowers(op):
    info = op.info
    assert (info.kernel is None) != (info.desugar == ""), "exactly one of kernel and desugaring"
    assert (info.weak is None) == (not info.temporal)
    iv = Interval(1, 3) if info.boundable else None
    node = Unary(op, A, iv) if info.arity == 1 else Binary(op, A, B, iv)
    assert parse_formula(format_formula(node)) == node
    text = explain_formula(node)
    assert text and "{" not in text
    assert lower(node) is not None


@pytest.mark.parametrize("op", [op for op in Op if op.info.desugar])
def test_desugarings_are_over_the_operands_and_primitives_only(op):
    template = parse_formula(op.info.desugar)
    assert {a.canonical for a in atoms_of(template)} == set("ab"[: op.info.arity])
    inside = [g.info for g in subformulas(template) if g.info is not None]
    assert all(i.kernel is not None for i in inside), f"{op}: only primitives, so expansion ends"
    if op.info.boundable:  # exactly one operator inside takes the interval
        assert sum(i.boundable for i in inside) == 1


def test_bounded_sugar_passes_its_interval_to_the_bounded_operator_inside():
    node = lower(parse_formula("a R[2,4] b"))
    assert isinstance(node, CNot) and isinstance(node.c, CUntil)
    assert (node.c.lo, node.c.hi, node.c.weak) == (2, 4, False)
    sig = {"a": np.array([-1.0, -1.0, -1.0, -1.0, -1.0, 1.0]), "b": np.array([1.0, 1.0, 1.0, 1.0, 1.0, -1.0])}
    assert bool(evaluate("a R[2,4] b", sig))  # b holds over [0, 4]: released or not, R holds
    assert not bool(evaluate("a R[2,4] b", {**sig, "b": np.array([1.0, 1.0, 1.0, -1.0, 1.0, 1.0])}))


def test_nodes_store_table_members_and_stay_equal_to_strings():
    g = Unary("G", A)
    assert g.op is Op.ALWAYS and g.info is OPS[Op.ALWAYS]
    assert g == Unary(Op.ALWAYS, A) and hash(g) == hash(Unary(Op.ALWAYS, A))
    assert repr(g) == "Unary(op='G', child=Atom(call=Call(name='a', args=(), kwargs=())), interval=None)"
    c = Compare(Call("dist", ("a", "b")), "<", Num(0.5))
    assert c.op is Cmp.LT and c.canonical == "dist(a,b)<0.5" and c.op.info.english == "is below"
    assert f"{Op.IFF}" == str(Op.IFF) == "<->"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Unary("Q", A), r"unknown operator 'Q'"),
        (lambda: Unary("U", A), r"operator U is not unary"),
        (lambda: Binary("G", A, B), r"operator G is not binary"),
        (lambda: Unary("X", A, Interval(0, 2)), r"operator X takes no interval \(bounded operators: F G O H U R\)"),
        (lambda: Binary("W", A, B, Interval(0, 2)), r"operator W takes no interval"),
        (lambda: Compare(Call("d"), "==", Num(1)), r"unknown comparison '=='"),
    ],
)
def test_invalid_nodes_built_in_code_are_spec_errors(build, message):
    with pytest.raises(SpecError, match=message):
        build()


def test_children_and_map_children():
    f = parse_formula('F (a U[0,2] !b) & "q" & dist(x, y) < 1 & true')
    assert [type(g).__name__ for g in subformulas(f)] == [
        "Binary", "Binary", "Binary", "Unary", "Binary", "Atom", "Unary", "Atom", "Quoted", "Compare", "Const"]
    for leaf in (A, Quoted("q"), Const(True), f.right):
        assert leaf.children() == () and leaf.map_children(lambda g: B) is leaf
    assert f.map_children(lambda g: g) is f  # nothing changed: the same node
    swapped = f.left.left.left.map_children(lambda g: Atom(Call("z")))  # F (…) -> F z
    assert swapped == Unary("F", Atom(Call("z")))
    u = parse_formula("a U[0,2] b").map_children(lambda g: Unary("!", g))
    assert u == Binary("U", Unary("!", A), Unary("!", B), Interval(0, 2)) and hash(u) == hash(parse_formula("!a U[0,2] !b"))


def test_substitute_and_calls_reach_every_leaf():
    f = parse_formula("G (holding(g, o) -> dist(o, goal) < 0.1 & near(o, g, d=2))")
    g = substitute(f, {"o": "cup", "g": "left"})
    assert format_formula(g) == "G (holding(left, cup) -> dist(cup, goal) < 0.1 & near(cup, left, d=2))"
    assert [c.canonical for a in atoms_of(g) for c in a.calls()] == ["holding(left,cup)", "dist(cup,goal)",
                                                                    "near(cup,left,d=2)"]
    assert substitute(f, {}) is f


def test_is_temporal_reads_the_table():
    assert not is_temporal(parse_formula("a & !(b | c) -> (d <-> e)"))
    for text in ("a & X b", "!(a S b)", "(a -> H b) | c", "a M b"):
        assert is_temporal(parse_formula(text)), text


@pytest.mark.parametrize(
    ("formula", "kept"),
    [
        ("F G (a & !b)", True),
        ("F G (a -> (b <-> c))", True),
        ("F G a", True),
        ("F G X a", False),  # temporal inside
        ("F G (a & F b)", False),
        ("F[0,5] G a", False),  # bounded outer
        ("F G[0,5] a", False),  # bounded inner
        ("G F a", False),
        ("F a", False),
        ("F (G a & b)", False),
        ("F !G a", False),
    ],
)
def test_end_state_cut(formula, kept):
    spec = parse_spec(f'task "t"\nconstraint c: {formula}\nconstraint d: G a\n')
    cut = end_state_spec(spec)
    if kept:
        assert cut is not None and [c.name for c in cut.constraints] == ["c"]
        assert cut.task == "t (end state only)" and cut.constraints[0] == spec.constraints[0]
        assert cut.entities == spec.entities and cut.reward == spec.reward
    else:
        assert cut is None


def test_end_state_cut_of_the_shipped_specs():
    kept = {}
    for p in sorted(SPECS.glob("*.ltl")):
        cut = end_state_spec(load_spec(p))
        kept[p.stem] = None if cut is None else [c.name for c in cut.constraints]
        if cut is not None:
            assert cut.path == str(p)
    assert kept["handover"] == ["finish"]
    assert kept["pick_place"] == ["placed", "released"]
    assert kept["toy_carry"] == ["deliver"]
    assert kept["robosuite_two_arm_lift"] == ["lifted_end"]
    assert all(v == ["at_goal"] for k, v in kept.items() if k.startswith("metaworld_")), kept
    assert len(kept) == 19 and None not in kept.values()
